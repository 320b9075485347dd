"""Faults a `pulumi up` meets, through the real provider process against the emulator: throttling
and unavailability on every API the providers call, failed and concurrent rollouts, a provider
process killed mid-create, a readiness deadline, and the workspace restarting between runs.
Each test fails if the behaviour it names regresses."""

from __future__ import annotations

import copy
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from databricks.sdk.service.iam import Patch, PatchOp, PatchSchema
from databricks.sdk.service.serving import ServedEntityInput

from components.plan import SWEEP_NAME
from components.providers.ai_secret import AiSecret
from components.providers.endpoint import Endpoint
from components.providers.grant import QueryGrant
from components.providers.oauth_secret import OAuthSecret, OAuthSecretSweep
from components.providers.principal import ServicePrincipal
from components.providers.readiness import EndpointsReady
from testing.deployment import Deployment, provider_for
from testing.engine import EngineError, type_token
from testing.stacks import ROOT
from tests.conftest import ADMIN_TOKEN, BRAINTRUST_API_KEY, READY_AFTER, EmulatorHandle
from tests.reliability.conftest import wait_until

LOCAL = yaml.safe_load((ROOT / "stacks" / "Pulumi.local.yaml").read_text())["config"]
ENDPOINTS = LOCAL["databricks-braintrust:endpoints"]
CUSTOM = "bt-local-churn-scorer"
PT = "bt-local-llama-3-1-8b"
PPT = "databricks-meta-llama-3-3-70b-instruct"

# Every API the providers call: (method, path pattern). Anchored, so one rule is one API.
EP = r"^/api/2\.0/serving-endpoints"
SCIM = r"^/api/2\.0/preview/scim/v2/ServicePrincipals"
SECRETS = r"^/api/2\.0/accounts/servicePrincipals/\d+/credentials/secrets"
PERMS = r"^/api/2\.0/permissions/serving-endpoints/[^/]+$"
BT = r"^/braintrust/v1/ai_secret"
PROVIDER_APIS = [
    ("POST", EP + "$"), ("GET", EP + "/[^/]+$"), ("PATCH", EP + "/[^/]+/tags$"),
    ("PUT", EP + "/[^/]+/ai-gateway$"), ("PUT", EP + "/[^/]+/config$"), ("DELETE", EP + "/[^/]+$"),
    ("GET", PERMS), ("PATCH", PERMS), ("PUT", PERMS),
    ("GET", SCIM + "$"), ("POST", SCIM + "$"), ("GET", SCIM + r"/\d+$"), ("PATCH", SCIM + r"/\d+$"),
    ("DELETE", SCIM + r"/\d+$"),
    ("POST", SECRETS + "$"), ("GET", SECRETS + "$"), ("DELETE", SECRETS + "/[^/]+$"),
    ("PUT", BT + "$"), ("GET", BT + "/[^/]+$"), ("DELETE", BT + "/[^/]+$"),
]


def endpoints(**changes: dict[str, Any]) -> list[dict[str, Any]]:
    """The local stack's endpoints, with `changes` merged into the one of each name
    (underscores in the keyword stand for dashes)."""
    eps = copy.deepcopy(ENDPOINTS)
    for key, change in changes.items():
        target = next(e for e in eps if e["name"] == key.replace("_", "-"))
        target.update(change)
    return eps


def _ignore_outcome(pending: Any) -> None:
    try:
        pending.result()
    except EngineError:
        pass  # killed mid-call: the engine saw the process die


def faulted(emulator: EmulatorHandle, method: str, pattern: str, status: int) -> int:
    rx = re.compile(pattern)
    return sum(1 for r in emulator.requests()
               if r["method"] == method and rx.search(r["path"]) and r["status"] == status)


def served(emulator: EmulatorHandle, name: str) -> dict[str, Any]:
    ep = emulator.workspace_client().serving_endpoints.get(name)
    cfg = ep.pending_config or ep.config
    return cfg.served_entities[0].as_dict()


def endpoint_names(emulator: EmulatorHandle) -> list[str]:
    return [e.name for e in emulator.workspace_client().serving_endpoints.list()]


def full_lifecycle_under_faults(make_run, emulator: EmulatorHandle, status: int, count: int) -> None:
    """up, an update touching every update API, drift repaired, refresh, destroy: with `count`
    faults of `status` waiting on every API the providers call."""
    for method, pattern in PROVIDER_APIS:
        emulator.inject_fault(method, pattern, status, count=count, retry_after=0)

    run = make_run()
    run.up()
    assert run.changed() == []
    sp = run.outputs(ServicePrincipal, run.principal_name)

    # Every update API: tags, AI Gateway, config, SCIM patch (out-of-band rename put back).
    emulator.workspace_client().service_principals.patch(
        sp["principal_id"], operations=[Patch(op=PatchOp.REPLACE, path="displayName", value="renamed")],
        schemas=[PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP])
    assert all(run.refresh().values())
    changed = run.with_config(tags={"owner": "local", "environment": "local", "tier": "gold"},
                              endpoints=endpoints(bt_local_churn_scorer={
                                  "workload_size": "Medium", "usage_tracking": True,
                                  "rate_limits": [{"calls": 10, "renewal_period": "minute",
                                                   "key": "user"}]}))
    steps = changed.up()
    assert {n for n, s in steps.items() if s.op == "update"} >= {CUSTOM, PT, run.principal_name}
    assert changed.changed() == []
    assert served(emulator, CUSTOM)["workload_size"] == "Medium"
    assert emulator.workspace_client().service_principals.get(sp["principal_id"]).display_name == (
        "braintrust-local")

    changed.destroy()
    assert not [st for st in run.state().values() if st.custom]
    assert not {CUSTOM, PT} & set(endpoint_names(emulator))  # only what Databricks owns is left

    not_hit = [(m, p) for m, p in PROVIDER_APIS if faulted(emulator, m, p, status) < count]
    assert not_hit == [], f"these APIs were never faulted, so not proven: {not_hit}"


def test_create_update_and_destroy_survive_a_burst_of_429_with_retry_after_on_every_api(
        make_run, emulator) -> None:
    full_lifecycle_under_faults(make_run, emulator, 429, count=2)


def test_create_update_and_destroy_survive_a_burst_of_503_on_every_api(make_run, emulator) -> None:
    full_lifecycle_under_faults(make_run, emulator, 503, count=1)


def test_failed_rollout_names_the_endpoint_and_its_message_and_the_fixed_spec_converges(
        make_run, emulator) -> None:
    message = "Container failed to start: out of memory loading main.ml.churn_scorer (workload Small)"
    emulator.fail_next_rollout(CUSTOM, message)
    run = make_run()
    with pytest.raises(EngineError) as err:
        run.up()
    text = err.value.message
    first = text.splitlines()[0]
    assert "failed to roll out" in first and CUSTOM in first
    assert message in text and PT not in text.split("\n", 1)[1]
    assert not run.has(EndpointsReady, run.gate_name) and not run.has(AiSecret, "databricks-local")
    # Running again unchanged does not pretend it worked.
    with pytest.raises(EngineError):
        run.up()

    fixed = run.with_config(endpoints=endpoints(bt_local_churn_scorer={"workload_size": "Medium"}))
    steps = fixed.up()
    assert steps[CUSTOM].op == "update" and steps[fixed.gate_name].op == "create"
    assert steps["databricks-local"].op == "create"
    assert fixed.changed() == []
    assert endpoint_names(emulator).count(CUSTOM) == 1


def test_transient_rollout_failure_is_retried_by_refresh_then_up_with_no_spec_change(
        make_run, emulator) -> None:
    emulator.fail_next_rollout(CUSTOM, "Capacity temporarily unavailable for workload Small")
    run = make_run()
    with pytest.raises(EngineError) as err:
        run.up()
    assert "pulumi up --refresh" in err.value.message.splitlines()[0]
    run.refresh()  # finds the failed rollout: the endpoint is marked for another one
    steps = run.up()
    assert steps[CUSTOM].op == "update" and steps[run.gate_name].op == "create"
    assert emulator.workspace_client().serving_endpoints.get(CUSTOM).state.config_update.value == "NOT_UPDATING"
    assert run.changed() == [] and endpoint_names(emulator).count(CUSTOM) == 1


def test_update_during_a_rollout_waits_for_it_then_applies(make_run, emulator) -> None:
    run = make_run()
    run.up()
    # Someone starts a rollout by hand (it takes 1.5 s); the stack's update comes in during it.
    emulator.set_ready_after(1.5)
    w = emulator.workspace_client()
    current = served(emulator, CUSTOM)
    w.serving_endpoints.update_config(CUSTOM, served_entities=[ServedEntityInput.from_dict(
        {**current, "scale_to_zero_enabled": False})])
    assert w.serving_endpoints.get(CUSTOM).state.config_update.value == "IN_PROGRESS"
    emulator.clear_requests()

    bigger = run.with_config(endpoints=endpoints(bt_local_churn_scorer={"workload_size": "Large"}))
    step = bigger.up()[CUSTOM]
    assert step.op == "update"
    assert served(emulator, CUSTOM)["workload_size"] == "Large"
    puts = [r for r in emulator.requests() if r["method"] == "PUT" and r["path"].endswith("/config")]
    assert [r["status"] for r in puts] == [200]  # never sent into the rollout (no 409)


def _up_killed_after(run: Deployment, victim: Any, emulator: EmulatorHandle, method: str,
                     path_end: str, status: int) -> None:
    """`up` through `victim`, SIGKILLed as soon as the emulator answered `method` on a path
    ending in `path_end` with `status` (whether or not the provider got the answer)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(run.up)
        wait_until(lambda: any(r["method"] == method and r["path"].endswith(path_end)
                               and r["status"] == status for r in emulator.requests()))
        victim.kill()  # the engine records nothing for a call whose answer it never had
        _ignore_outcome(pending)


def test_provider_killed_after_the_endpoint_create_was_accepted_a_fresh_process_adopts_it(
        make_run, emulator) -> None:
    emulator.set_ready_after(READY_AFTER)
    victim = provider_for(emulator)
    run = make_run(proc=victim)
    try:
        _up_killed_after(run, victim, emulator, "POST", "/api/2.0/serving-endpoints", 200)
    finally:
        victim.close()
    created = [n for n in endpoint_names(emulator) if n in (CUSTOM, PT)]
    assert created
    for name in created:  # a create answered just before the kill: the answer is lost all the same
        if run.has(Endpoint, name):
            run.forget(Endpoint, name)

    fresh = provider_for(emulator)
    try:
        again = make_run(proc=fresh)  # the same state file: the next `pulumi up`
        steps = again.up()  # the engine re-sends each create it has no answer for
        for name in created:
            assert steps[name].op == "create"
            ep = emulator.workspace_client().serving_endpoints.get(name)
            assert again.outputs(Endpoint, name)["endpoint_id"] == ep.id
        assert endpoint_names(emulator).count(CUSTOM) == 1 and endpoint_names(emulator).count(PT) == 1
        assert again.changed() == []
    finally:
        fresh.close()


def test_provider_killed_after_the_principal_was_created_a_fresh_process_adopts_it(
        make_run, emulator) -> None:
    victim = provider_for(emulator)
    run = make_run(proc=victim)
    try:
        _up_killed_after(run, victim, emulator, "POST", "/ServicePrincipals", 201)
    finally:
        victim.close()
    if run.has(ServicePrincipal, run.principal_name):  # answered just before the kill: lost anyway
        run.forget(ServicePrincipal, run.principal_name)

    fresh = provider_for(emulator)
    try:
        again = make_run(proc=fresh)
        again.up()  # the whole stack, as the next `pulumi up` would
        sps = list(emulator.workspace_client().service_principals.list(
            filter='displayName eq "braintrust-local"'))
        assert len(sps) == 1
        assert again.outputs(ServicePrincipal, again.principal_name)["principal_id"] == str(sps[0].id)
        assert again.changed() == []
    finally:
        fresh.close()


def gate_timeout(seconds: float) -> Any:
    """A stand-in for a stack transform: the readiness gate's deadline in seconds (the stack
    file counts it in minutes)."""
    gate = type_token(EndpointsReady)

    def transform(type_: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        return {**inputs, "timeout_seconds": seconds} if type_ == gate else inputs

    return transform


def test_readiness_deadline_passed_fails_clearly_keeps_state_and_the_next_run_resumes(
        make_run, emulator) -> None:
    emulator.set_ready_after(600)  # rollouts take ten minutes of the emulator's clock
    run = make_run(transform=gate_timeout(0.5))
    with pytest.raises(EngineError) as err:
        run.up()
    first = err.value.message.splitlines()[0]
    assert first.startswith("timed out after") and "run `pulumi up` again to resume" in first
    assert PT in first and CUSTOM in first
    # Everything but the gate and what waits for it is in state and in the workspace.
    for token, name in run.resources():
        expected = token not in (type_token(EndpointsReady), type_token(AiSecret),
                                 type_token(OAuthSecretSweep))
        assert run.has(token, name) == expected, name
    posts_before = [r for r in emulator.requests() if r["method"] == "POST"]

    emulator.admin("POST", "clock", {"advance_seconds": 601})
    steps = run.up()
    waited = (run.gate_name, "databricks-local", SWEEP_NAME)
    assert all(steps[n].op == "create" for n in waited)
    assert all(s.op == "same" for n, s in steps.items() if n not in waited)
    assert [r for r in emulator.requests() if r["method"] == "POST"
            and r["path"].startswith("/api/2.0/")] == [r for r in posts_before
                                                        if r["path"].startswith("/api/2.0/")]
    assert run.changed() == []


def test_emulator_restarted_with_state_between_steps_loses_nothing(tmp_path: Path) -> None:
    from emulator.server import EmulatorServer

    state = str(tmp_path / "workspace.json")

    def start(port: int = 0) -> tuple[EmulatorServer, EmulatorHandle]:
        server = EmulatorServer(host="127.0.0.1", port=port, admin_token=ADMIN_TOKEN, ready_after=1.0,
                                braintrust_api_key=BRAINTRUST_API_KEY,
                                models=["main.ml.churn_scorer:3:llm/v1/completions"], state_file=state).start()
        return server, EmulatorHandle(server.url, ADMIN_TOKEN, BRAINTRUST_API_KEY)

    server, handle = start()
    port = int(handle.url.rsplit(":", 1)[1])
    proc = provider_for(handle)
    try:
        run = Deployment(handle, tmp_path / "state.json", proc=proc)
        # Step 1: `up` until the secret exists and the endpoints roll out; then the workspace
        # goes down under it and comes back.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(run.up)
            wait_until(lambda: any(r["path"].endswith("/credentials/secrets") and r["status"] == 200
                                   for r in handle.requests()))
            server.stop()
            server, handle = start(port)
            try:
                pending.result()
            except EngineError:
                pass  # what was in flight when the workspace went away

        # Step 2: the next `up` finishes the stack against the restarted workspace.
        steps = run.up()
        assert all(steps[e].op in ("same", "create") for e in run.endpoint_names())
        assert all(run.refresh().values()) and run.changed() == []
        server.stop()
        server, handle = start(port)

        # Step 3: after another restart, everything is still there and the credentials work.
        assert all(run.refresh().values()) and run.changed() == []
        assert sorted(endpoint_names(handle)).count(CUSTOM) == 1
        sec = run.outputs(OAuthSecret, run.secret_name)
        from components.braintrust import validate_record
        from components.verify import Verifier

        config, problems = validate_record(run.export("braintrust_provider"))
        assert config is not None, problems
        rows = Verifier(config, timeout=10, retries=0).run()
        assert [r.status for r in rows] == ["ok"] * len(rows), rows
        assert sec["client_secret"] not in proc.stderr()
        run.destroy()
        assert not {CUSTOM, PT} & set(endpoint_names(handle))
    finally:
        proc.close()
        server.stop()


def test_grant_create_is_idempotent_when_re_sent_after_a_crash(make_run, emulator) -> None:
    run = make_run()
    run.up()
    name = run.grant_name(CUSTOM)
    run.forget(QueryGrant, name)  # the engine lost the result of the create
    assert run.up()[name].op == "create"
    sp = run.outputs(ServicePrincipal, run.principal_name)["application_id"]
    acl = emulator.workspace_client().serving_endpoints.get_permissions(
        run.outputs(Endpoint, CUSTOM)["endpoint_id"])
    ours = [p.permission_level.value for a in acl.access_control_list or []
            if a.service_principal_name == sp for p in a.all_permissions or [] if not p.inherited]
    assert ours == ["CAN_QUERY"]
    assert run.changed() == []
