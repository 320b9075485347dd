"""Provider lifecycle through the real `python -m pulumi.dynamic` process, over gRPC, in the
orders the engine uses; against the emulator, and a real workspace when one is configured."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from databricks.sdk.errors import NotFound
from databricks.sdk.service.serving import (
    EndpointCoreConfigInput,
    EndpointTag,
    ServedEntityInput,
    ServingEndpointAccessControlRequest,
)

from components.providers.endpoint import Endpoint, EndpointProvider
from components.providers.grant import QueryGrant, QueryGrantProvider
from components.providers.oauth_secret import OAuthSecret, OAuthSecretProvider
from components.providers.principal import ServicePrincipal, ServicePrincipalProvider
from components.providers.readiness import EndpointsReady, EndpointsReadyProvider
from testing.provider import Engine, ProviderCallError, provider_string
from tests.lifecycle.conftest import Target

PPT = "databricks-meta-llama-3-3-70b-instruct"
DIFF_NONE = 1  # provider_pb2.DiffResponse.DIFF_NONE
GATE_TIMEOUT = 120.0


def endpoint_inputs(target: Target, base: str = "churn", **over: Any) -> dict[str, Any]:
    model, version = target.needs_model()
    inputs = {
        "name": target.name(base), "mode": "custom",
        "served_entities": [{"name": "churn", "entity_name": model, "entity_version": version,
                             "workload_size": "Small", "scale_to_zero_enabled": True}],
        "traffic": None, "tags": {"team": "ml-platform", "managed-by": "databricks-braintrust/lifecycle"},
        "rate_limits": [], "usage_tracking": False, "route_optimized": False,
    }
    inputs.update(over)
    return inputs


def up_endpoint(engine: Engine, name: str, inputs: dict[str, Any]) -> Any:
    return engine.register(Endpoint, EndpointProvider, name, inputs)


def up_gate(engine: Engine, endpoints: dict[str, str]) -> Any:
    return engine.register(EndpointsReady, EndpointsReadyProvider, "ready",
                           {"endpoints": endpoints, "timeout_seconds": GATE_TIMEOUT})


def up_principal(engine: Engine, target: Target) -> dict[str, Any]:
    return engine.register(ServicePrincipal, ServicePrincipalProvider, "principal", {
        "display_name": target.name("braintrust-lc"),
        "external_id": "databricks-braintrust/lifecycle", "entitlements": []}).outputs


def grant_inputs(ep: dict[str, Any], sp: dict[str, Any], level: str = "CAN_QUERY"
                 ) -> dict[str, Any]:
    return {"endpoint_id": ep["endpoint_id"], "endpoint_name": ep["name"],
            "service_principal_name": sp["application_id"], "permission_level": level}


def direct_entries(target: Target, endpoint_id: str) -> set[tuple[str, str, str]]:
    """(kind, principal, level) of every direct entry, as an admin sees them."""
    acl = target.client().serving_endpoints.get_permissions(endpoint_id)
    out = set()
    for item in acl.access_control_list or []:
        kind = next(k for k in ("user_name", "group_name", "service_principal_name")
                    if getattr(item, k))
        for p in item.all_permissions or []:
            if not p.inherited:
                out.add((kind, getattr(item, kind), p.permission_level.value))
    return out


def direct_acl(target: Target, endpoint_id: str) -> set[tuple[str, str]]:
    return {(who, level) for _, who, level in direct_entries(target, endpoint_id)}


# ------------------------------------------------------------------ endpoints


def test_create_from_nothing_then_a_noop_diff_makes_no_request(target: Target,
                                                               engine: Engine) -> None:
    inputs = endpoint_inputs(target)
    step = up_endpoint(engine, "churn", inputs)
    assert step.op == "create"
    outs = step.outputs
    assert outs["endpoint_id"] and outs["revision"]
    assert outs["url"] == f"{target.host.rstrip('/')}/serving-endpoints/{inputs['name']}/invocations"
    gate = up_gate(engine, {inputs["name"]: outs["revision"]})
    assert gate.outputs["ready"][inputs["name"]]["state"] == "READY"

    before = target.request_count()
    reordered = {**inputs, "tags": dict(reversed(list(inputs["tags"].items())))}
    assert engine.diff(Endpoint, EndpointProvider, "churn", reordered).changes == DIFF_NONE
    assert engine.diff(EndpointsReady, EndpointsReadyProvider, "ready",
                       {"endpoints": {inputs["name"]: outs["revision"]},
                        "timeout_seconds": GATE_TIMEOUT}).changes == DIFF_NONE
    if before is not None:
        assert target.request_count() == before  # diff never calls Databricks
    assert up_endpoint(engine, "churn", reordered).op == "same"


def test_in_place_update_uses_each_api_and_keeps_foreign_tags(target: Target,
                                                              engine: Engine) -> None:
    inputs = endpoint_inputs(target)
    name = inputs["name"]
    first = up_endpoint(engine, "churn", inputs).outputs
    up_gate(engine, {name: first["revision"]})
    w = target.client()
    from databricks.sdk.service.serving import EndpointTag

    w.serving_endpoints.patch(name, add_tags=[EndpointTag(key="owner", value="someone-else")])

    changed = endpoint_inputs(
        target, tags={"team": "ml-platform", "cost-center": "1234"},
        rate_limits=[{"calls": 100, "renewal_period": "minute", "key": "user"}],
        usage_tracking=True,
        served_entities=[{**inputs["served_entities"][0], "scale_to_zero_enabled": False}])
    step = up_endpoint(engine, "churn", changed)
    assert step.op == "update" and not list(step.diff.replaces)
    assert step.outputs["endpoint_id"] == first["endpoint_id"]
    assert step.outputs["revision"] != first["revision"]

    ep = w.serving_endpoints.get(name)
    tags = {t.key: t.value for t in ep.tags or []}
    # ours added, ours removed ("managed-by" was ours), someone else's kept
    assert tags == {"team": "ml-platform", "cost-center": "1234", "owner": "someone-else"}
    assert ep.ai_gateway.usage_tracking_config.enabled is True
    assert [(r.calls, r.key.value) for r in ep.ai_gateway.rate_limits] == [(100, "user")]
    cfg = ep.pending_config or ep.config
    assert cfg.served_entities[0].scale_to_zero_enabled is False

    gate = up_gate(engine, {name: step.outputs["revision"]})
    assert gate.op == "update" and gate.outputs["ready"][name]["state"] == "READY"
    # Reordered again, nothing to do.
    assert up_endpoint(engine, "churn", changed).op == "same"


def test_route_optimized_change_replaces_the_endpoint(target: Target, engine: Engine) -> None:
    inputs = endpoint_inputs(target)
    old = up_endpoint(engine, "churn", inputs).outputs
    step = up_endpoint(engine, "churn", {**inputs, "route_optimized": True})
    assert step.op == "replace" and list(step.diff.replaces) == ["route_optimized"]
    assert step.diff.deleteBeforeReplace  # same name: the old one must go first
    assert step.outputs["endpoint_id"] != old["endpoint_id"]
    assert target.client().serving_endpoints.get(inputs["name"]).route_optimized is True


def test_rename_creates_the_new_endpoint_before_deleting_the_old(target: Target,
                                                                 engine: Engine) -> None:
    inputs = endpoint_inputs(target)
    up_endpoint(engine, "churn", inputs)
    renamed = {**inputs, "name": target.name("churn-2")}
    step = up_endpoint(engine, "churn", renamed)
    assert step.op == "replace" and not step.diff.deleteBeforeReplace
    w = target.client()
    assert w.serving_endpoints.get(renamed["name"]).id == step.outputs["endpoint_id"]
    with pytest.raises(NotFound):
        w.serving_endpoints.get(inputs["name"])


def test_refresh_after_out_of_band_deletion_drops_it_and_up_recreates(target: Target,
                                                                      engine: Engine) -> None:
    inputs = endpoint_inputs(target)
    up_endpoint(engine, "churn", inputs)
    target.client().serving_endpoints.delete(inputs["name"])
    assert engine.refresh(Endpoint, "churn") is None
    assert up_endpoint(engine, "churn", inputs).op == "create"
    assert target.client().serving_endpoints.get(inputs["name"]).id


def test_refresh_reports_drift_and_up_repairs_it(target: Target, engine: Engine) -> None:
    inputs = endpoint_inputs(target)
    up_endpoint(engine, "churn", inputs)
    w = target.client()
    w.serving_endpoints.patch(inputs["name"], delete_tags=["team"])
    state = engine.refresh(Endpoint, "churn")
    assert state is not None and "team" not in state.outputs["tags"]
    step = up_endpoint(engine, "churn", inputs)
    assert step.op == "update"
    tags = {t.key for t in w.serving_endpoints.get(inputs["name"]).tags or []}
    assert {"team", "managed-by"} <= tags


def test_delete_removes_the_endpoint_and_tolerates_it_being_gone(target: Target,
                                                                 engine: Engine) -> None:
    inputs = endpoint_inputs(target)
    step = up_endpoint(engine, "churn", inputs)
    urn = engine.urn(Endpoint, "churn")
    engine.destroy(Endpoint, "churn")
    with pytest.raises(NotFound):
        target.client().serving_endpoints.get(inputs["name"])
    target.proc.delete(inputs["name"], urn, step.outputs)  # again: not found is fine


def test_concurrent_creates_of_eight_endpoints_then_one_gate(target: Target,
                                                             engine: Engine) -> None:
    names = [f"ep{i}" for i in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        steps = list(pool.map(
            lambda n: up_endpoint(engine, n, endpoint_inputs(target, base=n)), names))
    assert all(s.op == "create" for s in steps)
    assert len({s.outputs["endpoint_id"] for s in steps}) == 8
    gate = up_gate(engine, {s.outputs["name"]: s.outputs["revision"] for s in steps})
    assert sorted(gate.outputs["ready"]) == sorted(s.outputs["name"] for s in steps)
    assert all(v["state"] == "READY" for v in gate.outputs["ready"].values())


def test_failed_rollout_surfaces_the_entitys_message_in_the_gate_error(target: Target,
                                                                       engine: Engine) -> None:
    target.needs_emulator()
    good = endpoint_inputs(target, base="good")
    bad = endpoint_inputs(target, base="bad")
    target.emulator.fail_next_rollout(bad["name"], "Container image build failed: no GPU quota")
    revs = {i["name"]: up_endpoint(engine, i["name"], i).outputs["revision"] for i in (good, bad)}
    with pytest.raises(ProviderCallError) as err:
        up_gate(engine, revs)
    msg = err.value.message
    assert "failed to roll out" in msg.splitlines()[0] and bad["name"] in msg.splitlines()[0]
    assert "Container image build failed: no GPU quota" in msg
    assert good["name"] not in msg.split("\n", 1)[1]  # only the failing endpoint is listed
    assert target.token not in err.value.details


def test_second_create_after_a_crash_adopts_the_endpoint(target: Target, engine: Engine) -> None:
    inputs = endpoint_inputs(target)
    urn = engine.urn(Endpoint, "churn")
    checked, _ = target.proc.check(urn, {}, {**inputs,
                                             "__provider": provider_string(EndpointProvider)})
    first_id, first = target.proc.create(urn, checked)  # the engine died before saving this
    step = up_endpoint(engine, "churn", inputs)
    assert step.op == "create" and step.outputs["endpoint_id"] == first["endpoint_id"]
    names = [e.name for e in target.client().serving_endpoints.list()]
    assert names.count(inputs["name"]) == 1


def test_pay_per_token_is_only_read_never_written(target: Target, engine: Engine) -> None:
    inputs = {"name": PPT, "mode": "pay_per_token", "served_entities": [], "traffic": None,
              "tags": {"team": "x"}, "rate_limits": [], "usage_tracking": False,
              "route_optimized": False}
    before = target.request_count()
    step = up_endpoint(engine, "ppt", inputs)
    assert step.op == "create" and step.outputs["endpoint_id"]
    assert up_endpoint(engine, "ppt", {**inputs, "tags": {"team": "y"}}).op == "same"
    engine.destroy(Endpoint, "ppt")
    assert target.client().serving_endpoints.get(PPT).id == step.outputs["endpoint_id"]
    if before is not None:
        writes = [r for r in target.emulator.requests()[before:] if r["method"] != "GET"]
        assert writes == []


def test_missing_pay_per_token_endpoint_fails_clearly(target: Target, engine: Engine) -> None:
    inputs = {"name": "databricks-no-such-model", "mode": "pay_per_token", "served_entities": [],
              "traffic": None, "tags": {}, "rate_limits": [], "usage_tracking": False,
              "route_optimized": False}
    with pytest.raises(ProviderCallError) as err:
        up_endpoint(engine, "ppt", inputs)
    first = err.value.message.splitlines()[0]
    assert "serving endpoint not found" in first and "databricks-no-such-model" in first
    if target.token:
        assert target.token not in err.value.details


# ------------------------------------------------------------------ principal, secret, grant


def test_principal_secret_and_grant_lifecycle(target: Target, engine: Engine) -> None:
    sp = up_principal(engine, target)
    assert sp["principal_id"] and sp["application_id"]
    sec = engine.register(OAuthSecret, OAuthSecretProvider, "secret", {
        "service_principal_id": sp["principal_id"], "application_id": sp["application_id"],
        "lifetime_days": 90, "rotate_before_days": 14, "scopes": None}).outputs
    assert sec["client_id"] == sp["application_id"] and sec["client_secret"]
    assert sec["expire_time"]
    # No-op diffs, then a display name change in place.
    assert engine.diff(OAuthSecret, OAuthSecretProvider, "secret", {
        "service_principal_id": sp["principal_id"], "application_id": sp["application_id"],
        "lifetime_days": 90, "rotate_before_days": 14, "scopes": []}).changes == DIFF_NONE
    step = engine.register(ServicePrincipal, ServicePrincipalProvider, "principal", {
        "display_name": target.name("braintrust-lc-renamed"),
        "external_id": "databricks-braintrust/lifecycle", "entitlements": []})
    assert step.op == "update" and step.outputs["principal_id"] == sp["principal_id"]
    got = target.client().service_principals.get(sp["principal_id"])
    assert got.display_name == target.name("braintrust-lc-renamed")
    assert not got.entitlements  # none unless asked
    # The secret value never reaches the provider process's logs.
    assert sec["client_secret"] not in target.proc.stderr()


def test_principal_without_our_marker_is_never_adopted(target: Target, engine: Engine) -> None:
    w = target.client()
    other = w.service_principals.create(display_name=target.name("braintrust-lc"),
                                        external_id="someone-else")
    try:
        with pytest.raises(ProviderCallError) as err:
            up_principal(engine, target)
        first = err.value.message.splitlines()[0]
        assert "without this stack's marker" in first and "display_name" in first
    finally:
        w.service_principals.delete(other.id)


def test_principal_with_our_marker_is_adopted_after_a_crash(target: Target,
                                                            engine: Engine) -> None:
    w = target.client()
    existing = w.service_principals.create(display_name=target.name("braintrust-lc"),
                                           external_id="databricks-braintrust/lifecycle")
    sp = up_principal(engine, target)
    assert sp["principal_id"] == str(existing.id)


def test_secret_gone_or_expired_is_replaced_new_one_first(target: Target, engine: Engine) -> None:
    sp = up_principal(engine, target)
    inputs = {"service_principal_id": sp["principal_id"], "application_id": sp["application_id"],
              "lifetime_days": 30, "rotate_before_days": 7, "scopes": ["serving.serving-endpoints"]}
    first = engine.register(OAuthSecret, OAuthSecretProvider, "secret", inputs).outputs
    w = target.client()
    # Deleted out of band: refresh drops it, the next up creates a new one.
    w.service_principal_secrets_proxy.delete(sp["principal_id"], first["secret_id"])
    assert engine.refresh(OAuthSecret, "secret") is None
    second = engine.register(OAuthSecret, OAuthSecretProvider, "secret", inputs)
    assert second.op == "create" and second.outputs["secret_id"] != first["secret_id"]
    if target.emulator is None:
        return
    # Expired (the emulator's clock moves past the lifetime): replaced, new one first.
    target.emulator.admin("POST", "clock", {"advance_seconds": 31 * 86400})
    state = engine.refresh(OAuthSecret, "secret")
    assert state is not None and state.outputs["status"] != "ACTIVE"
    third = engine.register(OAuthSecret, OAuthSecretProvider, "secret", inputs)
    assert third.op == "replace" and list(third.diff.replaces) == ["expire_time"]
    assert not third.diff.deleteBeforeReplace
    ids = {s.id for s in w.service_principal_secrets_proxy.list(sp["principal_id"])}
    assert ids == {third.outputs["secret_id"]}


def test_grant_leaves_other_acl_entries_alone(target: Target, engine: Engine) -> None:
    inputs = endpoint_inputs(target)
    ep = up_endpoint(engine, "churn", inputs).outputs
    sp = up_principal(engine, target)
    engine.register(QueryGrant, QueryGrantProvider, "grant", grant_inputs(ep, sp))
    ours = (sp["application_id"], "CAN_QUERY")
    assert ours in direct_acl(target, ep["endpoint_id"])

    # Someone else's permissions, added out of band after our create.
    w = target.client()
    others = [{"group_name": "users", "permission_level": "CAN_VIEW"}]
    if target.emulator is not None:  # users the emulator's workspace is seeded with
        others += [{"user_name": "alice@example.com", "permission_level": "CAN_MANAGE"},
                   {"group_name": "data-scientists", "permission_level": "CAN_QUERY"}]
    others = [ServingEndpointAccessControlRequest.from_dict(e) for e in others]
    w.serving_endpoints.update_permissions(ep["endpoint_id"], access_control_list=others)
    before_others = direct_acl(target, ep["endpoint_id"]) - {ours}

    # endpoint_name alone is no change; another level is swapped in place, up and down.
    assert engine.register(QueryGrant, QueryGrantProvider, "grant",
                           {**grant_inputs(ep, sp), "endpoint_name": "renamed"}).op == "same"
    assert direct_acl(target, ep["endpoint_id"]) - {ours} == before_others
    for level in ("CAN_MANAGE", "CAN_QUERY"):
        step = engine.register(QueryGrant, QueryGrantProvider, "grant",
                               grant_inputs(ep, sp, level=level))
        assert step.op == "update"
        acl = direct_acl(target, ep["endpoint_id"])
        assert (sp["application_id"], level) in acl
        assert acl - {(sp["application_id"], level)} == before_others

    # Delete our grant: only our entry goes.
    engine.destroy(QueryGrant, "grant")
    after = direct_acl(target, ep["endpoint_id"])
    assert after == before_others
    assert not any(who == sp["application_id"] for who, _ in after)


def test_grant_refresh_reports_it_gone_when_removed_out_of_band(target: Target,
                                                                engine: Engine) -> None:
    ep = up_endpoint(engine, "churn", endpoint_inputs(target)).outputs
    sp = up_principal(engine, target)
    engine.register(QueryGrant, QueryGrantProvider, "grant", grant_inputs(ep, sp))
    w = target.client()
    keep = [ServingEndpointAccessControlRequest.from_dict({kind: who, "permission_level": lvl})
            for kind, who, lvl in direct_entries(target, ep["endpoint_id"])
            if who != sp["application_id"]]
    w.serving_endpoints.set_permissions(ep["endpoint_id"], access_control_list=keep)
    assert engine.refresh(QueryGrant, "grant") is None
    assert engine.register(QueryGrant, QueryGrantProvider, "grant",
                           grant_inputs(ep, sp)).op == "create"


def test_gate_deadline_fails_clearly_and_the_next_run_resumes(target: Target,
                                                              engine: Engine) -> None:
    target.needs_emulator()
    target.emulator.set_ready_after(3.0)
    inputs = endpoint_inputs(target)
    outs = up_endpoint(engine, "churn", inputs).outputs
    gate = {"endpoints": {inputs["name"]: outs["revision"]}, "timeout_seconds": 0.5}
    with pytest.raises(ProviderCallError) as err:
        engine.register(EndpointsReady, EndpointsReadyProvider, "ready", gate)
    first = err.value.message.splitlines()[0]
    assert first.startswith("timed out after") and inputs["name"] in first
    assert "run `pulumi up` again to resume" in first
    assert engine.urn(EndpointsReady, "ready") not in engine.state  # nothing recorded
    step = engine.register(EndpointsReady, EndpointsReadyProvider, "ready",
                           {**gate, "timeout_seconds": 60})
    assert step.op == "create" and step.outputs["ready"][inputs["name"]]["state"] == "READY"


def test_gate_rides_out_throttling(target: Target, engine: Engine) -> None:
    target.needs_emulator()
    inputs = endpoint_inputs(target)
    outs = up_endpoint(engine, "churn", inputs).outputs
    target.emulator.inject_fault("GET", "/api/2.0/serving-endpoints/", 429, count=2,
                                 retry_after=0.1)
    gate = up_gate(engine, {inputs["name"]: outs["revision"]})
    assert gate.outputs["ready"][inputs["name"]]["state"] == "READY"


def test_preview_with_an_unknown_endpoint_id_replaces_the_grant_only_for_another_endpoint(
        target: Target, engine: Engine) -> None:
    # A preview hands a dynamic provider no output of an updated endpoint, so its id is unknown:
    # the same endpoint (same name, updated in place) keeps its id at `up`, so no change; an
    # endpoint of another name is another endpoint, so the grant is replaced (issue 20).
    from pulumi.runtime import rpc

    ep = up_endpoint(engine, "churn", endpoint_inputs(target)).outputs
    sp = up_principal(engine, target)
    engine.register(QueryGrant, QueryGrantProvider, "grant", grant_inputs(ep, sp))
    before = target.request_count()
    same = engine.diff(QueryGrant, QueryGrantProvider, "grant",
                       {**grant_inputs(ep, sp), "endpoint_id": rpc.UNKNOWN})
    assert list(same.replaces) == [] and list(same.diffs) == []
    other = engine.diff(QueryGrant, QueryGrantProvider, "grant",
                        {**grant_inputs(ep, sp), "endpoint_id": rpc.UNKNOWN, "endpoint_name": "bt-other"})
    assert list(other.replaces) == ["endpoint_id"]
    if before is not None:
        assert target.request_count() == before


def test_an_endpoint_of_the_same_name_without_our_tag_is_never_taken_over(target: Target, engine: Engine) -> None:
    inputs = endpoint_inputs(target)
    w = target.client()
    entity = inputs["served_entities"][0]
    w.serving_endpoints.create(inputs["name"], config=EndpointCoreConfigInput(
        name=inputs["name"], served_entities=[ServedEntityInput.from_dict(entity)]),
        tags=[EndpointTag(key="managed-by", value="someone-else")])
    with pytest.raises(ProviderCallError) as err:
        up_endpoint(engine, "churn", inputs)
    assert "not this stack's" in err.value.message.splitlines()[0]
    tags = {t.key: t.value for t in w.serving_endpoints.get(inputs["name"]).tags or []}
    assert tags == {"managed-by": "someone-else"}


def test_a_crashed_create_without_any_marker_is_adopted_only_if_configured_as_ours(
        target: Target, engine: Engine) -> None:
    inputs = {**endpoint_inputs(target), "tags": {}}
    urn = engine.urn(Endpoint, "churn")
    checked, _ = target.proc.check(urn, {}, {**inputs, "__provider": provider_string(EndpointProvider)})
    first_id, first = target.proc.create(urn, checked)  # the engine died before saving this
    step = up_endpoint(engine, "churn", inputs)
    assert step.op == "create" and step.outputs["endpoint_id"] == first["endpoint_id"]
    other = {**inputs, "served_entities": [{**inputs["served_entities"][0], "workload_size": "Large"}]}
    with pytest.raises(ProviderCallError) as err:
        up_endpoint(engine, "churn-2", other)
    assert "not this stack's" in err.value.message.splitlines()[0]
