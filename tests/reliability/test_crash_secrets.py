"""Issue 21: the first `up` killed (SIGKILL of the provider process) in the readiness gate,
after the OAuth secret was created, and the secret's step lost from state as when the engine
itself dies before saving it (the fault drive's case): the next `up` removes the orphan secret
from the stack's principal, by the signature in its lifetime, and leaves a secret made by hand
there alone. With per-step checkpoints (the bundled engine) only a kill inside the secret's own
step can lose it: the second test kills the engine itself right then."""

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


def test_the_engine_killed_right_after_the_secret_create_leaves_exactly_one_secret(
        emulator, tmp_path) -> None:
    """The bundled engine, checkpointing after every step, SIGKILLed (its whole process group)
    the moment the workspace answered the secret's create: whether or not that step's
    checkpoint reached the disk, the next `up` ends with exactly one secret of the stack on
    its principal, the one state holds, and the hand-made one."""
    import os
    import signal

    from testing.engine import StackEngine
    from testing.stacks import emulator_config
    from tests.engine.test_checkpoints import LOCAL, _engine_cli, _saved

    emulator.set_ready_after(3600)
    state = tmp_path / "state.json"
    proc = _engine_cli("up", emulator, state)
    try:
        wait_until(lambda: any(r["method"] == "POST" and r["path"].endswith(SECRETS)
                               and r["status"] == 200 for r in emulator.requests()), timeout=180)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)

    w = emulator.workspace_client()
    (sp,) = w.service_principals.list(filter='displayName eq "braintrust-local"')
    by_hand = str(w.service_principal_secrets_proxy.create(str(sp.id), lifetime="864000s").id)

    emulator.set_ready_after(READY_AFTER)
    emulator.advance_clock(3601)  # the rollouts the killed run started are done
    config, secrets = emulator_config(LOCAL, emulator)
    StackEngine(LOCAL, state, config=config, secrets=secrets).up()
    (ours,) = [r.outputs for r in _saved(state).values() if r.type.endswith(":OAuthSecret")]
    left = {str(s.id) for s in w.service_principal_secrets_proxy.list(str(sp.id))}
    assert left == {str(ours["secret_id"]), by_hand}
