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

from components.providers.ai_secret import AiSecret
from components.providers.endpoint import Endpoint, EndpointProvider
from components.providers.grant import QueryGrant
from components.providers.oauth_secret import OAuthSecret
from components.providers.principal import ServicePrincipal, ServicePrincipalProvider
from components.providers.readiness import EndpointsReady
from tests.conftest import ADMIN_TOKEN, BRAINTRUST_API_KEY, READY_AFTER, EmulatorHandle
from tests.lifecycle.harness import Engine, ProviderCallError, provider_string
from tests.reliability.conftest import wait_until
from tests.stackrun import ROOT, load, new_process, stack_document

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
    except ProviderCallError:
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
    changed = make_run(tags={"owner": "local", "environment": "local", "tier": "gold"},
                       endpoints=endpoints(bt_local_churn_scorer={
                           "workload_size": "Medium", "usage_tracking": True,
                           "rate_limits": [{"calls": 10, "renewal_period": "minute", "key": "user"}]}))
    changed.engine = run.engine
    steps = changed.up()
    assert {n for n, s in steps.items() if s.op == "update"} >= {CUSTOM, PT, run.principal_name}
    assert changed.changed() == []
    assert served(emulator, CUSTOM)["workload_size"] == "Medium"
    assert emulator.workspace_client().service_principals.get(sp["principal_id"]).display_name == (
        run.principal_name)

    changed.destroy()
    assert run.engine.state == {}
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
    with pytest.raises(ProviderCallError) as err:
        run.up()
    text = err.value.message
    first = text.splitlines()[0]
    assert "failed to roll out" in first and CUSTOM in first
    assert message in text and PT not in text.split("\n", 1)[1]
    assert not run.has(EndpointsReady, run.gate_name) and not run.has(AiSecret, "databricks-local")
    # Running again unchanged does not pretend it worked.
    with pytest.raises(ProviderCallError):
        run.up()

    fixed = make_run(endpoints=endpoints(bt_local_churn_scorer={"workload_size": "Medium"}))
    fixed.engine = run.engine
    steps = fixed.up()
    assert steps[CUSTOM].op == "update" and steps[fixed.gate_name].op == "create"
    assert steps["databricks-local"].op == "create"
    assert fixed.changed() == []
    assert endpoint_names(emulator).count(CUSTOM) == 1


def test_transient_rollout_failure_is_retried_by_refresh_then_up_with_no_spec_change(
        make_run, emulator) -> None:
    emulator.fail_next_rollout(CUSTOM, "Capacity temporarily unavailable for workload Small")
    run = make_run()
    with pytest.raises(ProviderCallError) as err:
        run.up()
    assert "pulumi up --refresh" in err.value.message.splitlines()[0]
    run.refresh()  # finds the failed rollout: the endpoint is marked for another one
    steps = run.up()
    assert steps[CUSTOM].op == "update" and steps[run.gate_name].op == "create"
    assert emulator.workspace_client().serving_endpoints.get(CUSTOM).state.config_update.value == "NOT_UPDATING"
    assert run.changed() == [] and endpoint_names(emulator).count(CUSTOM) == 1


def test_update_during_a_rollout_waits_for_it_then_applies(make_run, emulator) -> None:
    emulator.set_ready_after(1.5)
    run = make_run()
    engine = run.engine
    created = engine.register(Endpoint, EndpointProvider, CUSTOM, run.endpoint_inputs(CUSTOM)).outputs
    w = emulator.workspace_client()
    assert w.serving_endpoints.get(CUSTOM).state.config_update.value == "IN_PROGRESS"

    bigger = make_run(endpoints=endpoints(bt_local_churn_scorer={"workload_size": "Large"}))
    step = engine.register(Endpoint, EndpointProvider, CUSTOM, bigger.endpoint_inputs(CUSTOM))
    assert step.op == "update" and step.outputs["revision"] != created["revision"]
    assert served(emulator, CUSTOM)["workload_size"] == "Large"
    puts = [r for r in emulator.requests() if r["method"] == "PUT" and r["path"].endswith("/config")]
    assert [r["status"] for r in puts] == [200]  # never sent into the rollout (no 409)


def test_provider_killed_after_the_endpoint_create_was_accepted_a_fresh_process_adopts_it(
        make_run, emulator) -> None:
    emulator.set_ready_after(READY_AFTER)
    victim = new_process(emulator)
    run = make_run(proc=victim)
    urn = Engine.urn(Endpoint, CUSTOM)
    inputs = run.endpoint_inputs(CUSTOM)
    checked, _ = victim.check(urn, {}, {**inputs, "__provider": provider_string(EndpointProvider)})
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(victim.create, urn, checked)
        wait_until(lambda: any(r["method"] == "POST" and r["path"] == "/api/2.0/serving-endpoints"
                               and r["status"] == 200 for r in emulator.requests()))
        victim.kill()  # whether or not create had returned, the engine recorded nothing
        _ignore_outcome(pending)
    assert endpoint_names(emulator).count(CUSTOM) == 1

    fresh = new_process(emulator)
    try:
        run.engine.proc = fresh
        step = run.register(Endpoint, CUSTOM)  # the engine re-sends the create
        assert step.op == "create"
        ep = emulator.workspace_client().serving_endpoints.get(CUSTOM)
        assert step.outputs["endpoint_id"] == ep.id
        assert endpoint_names(emulator).count(CUSTOM) == 1
        assert run.engine.register(Endpoint, EndpointProvider, CUSTOM, inputs).op == "same"
    finally:
        fresh.close()


def test_provider_killed_after_the_principal_was_created_a_fresh_process_adopts_it(
        make_run, emulator) -> None:
    victim = new_process(emulator)
    run = make_run(proc=victim)
    urn = Engine.urn(ServicePrincipal, run.principal_name)
    checked, _ = victim.check(urn, {}, {**run.principal_inputs(),
                                        "__provider": provider_string(ServicePrincipalProvider)})
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(victim.create, urn, checked)
        wait_until(lambda: any(r["method"] == "POST" and r["path"].endswith("/ServicePrincipals")
                               and r["status"] == 201 for r in emulator.requests()))
        victim.kill()
        _ignore_outcome(pending)

    fresh = new_process(emulator)
    try:
        run.engine.proc = fresh
        run.up()  # the whole stack, as the next `pulumi up` would
        sps = list(emulator.workspace_client().service_principals.list(
            filter=f'displayName eq "{run.principal_name}"'))
        assert len(sps) == 1
        assert run.outputs(ServicePrincipal, run.principal_name)["principal_id"] == str(sps[0].id)
        assert run.changed() == []
    finally:
        fresh.close()


def test_readiness_deadline_passed_fails_clearly_keeps_state_and_the_next_run_resumes(
        make_run, emulator) -> None:
    emulator.set_ready_after(600)  # rollouts take ten minutes of the emulator's clock
    run = make_run(gate_timeout=0.5)
    with pytest.raises(ProviderCallError) as err:
        run.up()
    first = err.value.message.splitlines()[0]
    assert first.startswith("timed out after") and "run `pulumi up` again to resume" in first
    assert PT in first and CUSTOM in first
    # Everything but the gate and what waits for it is in state and in the workspace.
    for cls, name in run.resources():
        expected = cls not in (EndpointsReady, AiSecret)
        assert run.has(cls, name) == expected, name
    posts_before = [r for r in emulator.requests() if r["method"] == "POST"]

    emulator.admin("POST", "clock", {"advance_seconds": 601})
    steps = run.up()
    assert steps[run.gate_name].op == "create" and steps["databricks-local"].op == "create"
    assert all(s.op == "same" for n, s in steps.items() if n not in (run.gate_name, "databricks-local"))
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
    proc = new_process(handle)
    try:
        doc = stack_document(host=handle.url, braintrust_url=handle.braintrust_url)
        from tests.stackrun import StackRun

        run = StackRun(Engine(proc), load(doc))
        # Step 1: endpoints created, their rollouts in flight; then the workspace goes down.
        for e in run.spec.endpoints:
            run.register(Endpoint, e.name)
        run.register(ServicePrincipal, run.principal_name)
        run.register(OAuthSecret, run.secret_name)
        server.stop()
        server, handle = start(port)

        # Step 2: the rest of the stack against the restarted workspace.
        steps = run.up()
        assert all(steps[e.name].op == "same" for e in run.spec.endpoints)
        assert steps[run.principal_name].op == "same" and steps[run.secret_name].op == "same"
        assert steps[run.gate_name].op == "create"
        assert all(run.refresh().values()) and run.changed() == []
        server.stop()
        server, handle = start(port)

        # Step 3: after another restart, everything is still there and the credentials work.
        assert all(run.refresh().values()) and run.changed() == []
        assert sorted(endpoint_names(handle)).count(CUSTOM) == 1
        sec = run.outputs(OAuthSecret, run.secret_name)
        from components.braintrust import validate_record
        from components.verify import Verifier

        config, problems = validate_record(run.record())
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
    urn = run.engine.urn(QueryGrant, name)
    del run.engine.state[urn]  # the engine lost the result of the create
    assert run.register(QueryGrant, name).op == "create"
    sp = run.outputs(ServicePrincipal, run.principal_name)["application_id"]
    acl = emulator.workspace_client().serving_endpoints.get_permissions(
        run.outputs(Endpoint, CUSTOM)["endpoint_id"])
    ours = [p.permission_level.value for a in acl.access_control_list or []
            if a.service_principal_name == sp for p in a.all_permissions or [] if not p.inherited]
    assert ours == ["CAN_QUERY"]
    assert run.changed() == []

