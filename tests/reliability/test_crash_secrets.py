"""Issue 21: the first `up` killed (SIGKILL of the provider process) in the readiness gate,
after the OAuth secret was created, and the secret's step lost from state as when the engine
itself dies before saving it (the fault drive's case): the next `up` removes the orphan secret
from the stack's principal, by the signature in its lifetime, and leaves a secret made by hand
there alone. With per-step checkpoints only a kill inside the secret's own step loses it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from components.providers.oauth_secret import OAuthSecret
from components.providers.principal import ServicePrincipal
from testing.deployment import provider_for
from tests.conftest import READY_AFTER
from tests.reliability.conftest import wait_until
from tests.reliability.test_faults import _ignore_outcome

SECRETS = "/credentials/secrets"


def test_a_first_up_killed_in_the_gate_leaves_no_orphan_secret_and_keeps_a_hand_made_one(
        make_run, emulator) -> None:
    emulator.set_ready_after(3600)  # the gate waits: the kill lands in it
    victim = provider_for(emulator)
    run = make_run(proc=victim)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(run.up)
            wait_until(lambda: any(r["method"] == "POST" and r["path"].endswith(SECRETS)
                                   and r["status"] == 200 for r in emulator.requests()))
            wait_until(lambda: any(r["method"] == "GET" and r["path"] == "/api/2.0/serving-endpoints"
                                   for r in emulator.requests()))  # the gate's first round
            victim.kill()
            _ignore_outcome(pending)
    finally:
        victim.close()

    # The provider process died, not this engine, which saved what had answered: the engine
    # killed too (the drive's case) saves nothing, so the secret's step is lost as well.
    if run.has(OAuthSecret, run.secret_name):
        run.forget(OAuthSecret, run.secret_name)

    w = emulator.workspace_client()
    (sp,) = w.service_principals.list(filter='displayName eq "braintrust-local"')
    made = {str(s.id) for s in w.service_principal_secrets_proxy.list(str(sp.id))}
    assert len(made) == 1  # the killed run's secret
    by_hand = str(w.service_principal_secrets_proxy.create(str(sp.id), lifetime="864000s").id)

    emulator.set_ready_after(READY_AFTER)
    emulator.advance_clock(3601)  # the rollouts the killed run started are done
    fresh = provider_for(emulator)
    try:
        again = make_run(proc=fresh)  # the same state file: the next `pulumi up`
        again.up()
        assert again.outputs(ServicePrincipal, again.principal_name)["principal_id"] == str(sp.id)
        ours = again.outputs(OAuthSecret, again.secret_name)
        left = {str(s.id) for s in w.service_principal_secrets_proxy.list(str(sp.id))}
        assert left == {str(ours["secret_id"]), by_hand}
        assert list(ours["unmanaged_secret_ids"]) == [by_hand]
        assert again.changed() == []
    finally:
        fresh.close()
