"""Drift: what someone changes in the workspace by hand is found by `pulumi refresh` and put back
by the next `pulumi up`; what belongs to other people is never touched."""

from __future__ import annotations

from typing import Any

from databricks.sdk.service.iam import Patch, PatchOp, PatchSchema
from databricks.sdk.service.serving import (
    EndpointTag,
    ServedEntityInput,
    ServingEndpointAccessControlRequest,
)

from components.providers.endpoint import Endpoint
from components.providers.oauth_secret import OAuthSecret
from components.providers.principal import ServicePrincipal
from testing.deployment import Deployment as StackRun
from tests.reliability.test_faults import ENDPOINTS

CUSTOM = "bt-local-churn-scorer"
PT = "bt-local-llama-3-1-8b"
PPT = "databricks-meta-llama-3-3-70b-instruct"
RECORD = "databricks-local"
PATCH_SCHEMA = [PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP]


def acl(run: StackRun, endpoint: str) -> set[tuple[str, str, str]]:
    """(kind, who, level) of every direct entry of an endpoint's ACL."""
    w = run_client(run)
    got = w.serving_endpoints.get_permissions(w.serving_endpoints.get(endpoint).id)
    out = set()
    for item in got.access_control_list or []:
        kind = next(k for k in ("user_name", "group_name", "service_principal_name") if getattr(item, k))
        out |= {(kind, getattr(item, kind), p.permission_level.value)
                for p in item.all_permissions or [] if not p.inherited}
    return out


def run_client(run: StackRun) -> Any:
    return run._client  # type: ignore[attr-defined]


def up(make_run, emulator) -> StackRun:
    run = make_run()
    run._client = emulator.workspace_client()  # type: ignore[attr-defined]
    run.up()
    assert run.changed() == []
    return run


def converges(run: StackRun) -> dict[str, str]:
    """One `up` repairs everything; the next has nothing to do. Returns the repairing up's ops."""
    ops = {n: s.op for n, s in run.up().items()}
    assert run.changed() == []
    assert all(s.op == "same" for s in run.up().values())
    return ops


def ours(run: StackRun) -> tuple[str, str, str]:
    app_id = run.outputs(ServicePrincipal, run.principal_name)["application_id"]
    return ("service_principal_name", app_id, "CAN_QUERY")


def test_endpoint_deleted_out_of_band_is_recreated_with_its_grant_and_the_gate_waits_again(
        make_run, emulator) -> None:
    run = up(make_run, emulator)
    old_id = run.outputs(Endpoint, CUSTOM)["endpoint_id"]
    run_client(run).serving_endpoints.delete(CUSTOM)
    found = run.refresh()
    assert found[CUSTOM] is False and found[run.grant_name(CUSTOM)] is False
    assert sum(not v for v in found.values()) == 2  # nothing else looks gone
    ops = converges(run)
    assert ops[CUSTOM] == "create" and ops[run.grant_name(CUSTOM)] == "create"
    # A new endpoint is rolling out: the gate must wait for it again, not trust its old answer.
    assert ops[run.gate_name] == "update"
    new_id = run.outputs(Endpoint, CUSTOM)["endpoint_id"]
    assert new_id != old_id and ours(run) in acl(run, CUSTOM)
    assert run_client(run).serving_endpoints.get(CUSTOM).state.ready.value == "READY"


def test_served_entity_changed_out_of_band_is_reported_as_a_diff_and_put_back(make_run, emulator) -> None:
    run = up(make_run, emulator)
    w = run_client(run)
    w.serving_endpoints.update_config(CUSTOM, served_entities=[ServedEntityInput(
        name="churn_scorer-3", entity_name="main.ml.churn_scorer", entity_version="3",
        workload_size="Large", scale_to_zero_enabled=False)]).result()
    assert all(run.refresh().values())
    refreshed = run.outputs(Endpoint, CUSTOM)["served_entities"][0]
    assert refreshed["workload_size"] == "Large"  # refresh shows what the workspace serves
    assert CUSTOM in run.changed() and not list(run.preview()[CUSTOM].diff.replaces)
    ops = converges(run)
    assert ops[CUSTOM] == "update"
    entity = (w.serving_endpoints.get(CUSTOM).pending_config or w.serving_endpoints.get(CUSTOM).config
              ).served_entities[0]
    assert (entity.workload_size, entity.scale_to_zero_enabled) == ("Small", True)


def test_endpoint_tag_removed_out_of_band_is_put_back(make_run, emulator) -> None:
    run = up(make_run, emulator)
    w = run_client(run)
    w.serving_endpoints.patch(PT, delete_tags=["owner"])
    run.refresh()
    assert "owner" not in run.outputs(Endpoint, PT)["tags"] and run.changed() == [PT]
    assert converges(run)[PT] == "update"
    assert {t.key: t.value for t in w.serving_endpoints.get(PT).tags}["owner"] == "local"


def test_principal_deleted_out_of_band_is_recreated_with_a_new_secret_grants_and_record(
        make_run, emulator) -> None:
    run = up(make_run, emulator)
    old = run.outputs(ServicePrincipal, run.principal_name)
    run_client(run).service_principals.delete(old["principal_id"])
    found = run.refresh()
    gone = sorted(n for n, v in found.items() if not v)
    assert gone == sorted([run.principal_name, run.secret_name]
                          + [run.grant_name(e) for e in run.endpoint_names()])
    ops = converges(run)
    assert ops[run.principal_name] == "create" and ops[RECORD] == "update"
    new = run.outputs(ServicePrincipal, run.principal_name)
    assert new["application_id"] != old["application_id"]
    for e in run.endpoint_names():
        assert ours(run) in acl(run, e)
    record = run.outputs(OAuthSecret, run.secret_name)
    assert record["client_id"] == new["application_id"]


def test_principal_renamed_out_of_band_is_renamed_back(make_run, emulator) -> None:
    run = up(make_run, emulator)
    sp_id = run.outputs(ServicePrincipal, run.principal_name)["principal_id"]
    w = run_client(run)
    w.service_principals.patch(sp_id, operations=[Patch(op=PatchOp.REPLACE, path="displayName",
                                                        value="someone-renamed-it")], schemas=PATCH_SCHEMA)
    run.refresh()
    assert run.outputs(ServicePrincipal, run.principal_name)["display_name"] == "someone-renamed-it"
    assert run.changed() == [run.principal_name]
    assert converges(run)[run.principal_name] == "update"
    # The name the stack file gives, not the resource's logical name (the old harness mixed them).
    assert w.service_principals.get(sp_id).display_name == "braintrust-local"


def test_secret_deleted_out_of_band_is_replaced_and_the_record_published_again(make_run, emulator) -> None:
    run = up(make_run, emulator)
    sec = run.outputs(OAuthSecret, run.secret_name)
    w = run_client(run)
    w.service_principal_secrets_proxy.delete(sec["service_principal_id"], sec["secret_id"])
    found = run.refresh()
    assert [n for n, v in found.items() if not v] == [run.secret_name]
    ops = converges(run)
    assert ops[run.secret_name] == "create" and ops[RECORD] == "update"
    live = {s.id for s in w.service_principal_secrets_proxy.list(sec["service_principal_id"])}
    assert live == {run.outputs(OAuthSecret, run.secret_name)["secret_id"]}


def test_grant_removed_out_of_band_is_restored(make_run, emulator) -> None:
    run = up(make_run, emulator)
    w = run_client(run)
    keep = [ServingEndpointAccessControlRequest.from_dict({k: who, "permission_level": lvl})
            for k, who, lvl in acl(run, PT) if who != ours(run)[1]]
    w.serving_endpoints.set_permissions(run.outputs(Endpoint, PT)["endpoint_id"], access_control_list=keep)
    found = run.refresh()
    assert [n for n, v in found.items() if not v] == [run.grant_name(PT)]
    assert converges(run)[run.grant_name(PT)] == "create"
    assert ours(run) in acl(run, PT)


def test_grant_raised_out_of_band_is_put_back_to_can_query(make_run, emulator) -> None:
    run = up(make_run, emulator)
    w = run_client(run)
    app_id = ours(run)[1]
    entries = [ServingEndpointAccessControlRequest.from_dict(
        {k: who, "permission_level": "CAN_MANAGE" if who == app_id else lvl}) for k, who, lvl in acl(run, PT)]
    w.serving_endpoints.set_permissions(run.outputs(Endpoint, PT)["endpoint_id"], access_control_list=entries)
    found = run.refresh()
    assert [n for n, v in found.items() if not v] == [run.grant_name(PT)]
    converges(run)
    mine = {lvl for _, who, lvl in acl(run, PT) if who == app_id}
    assert mine == {"CAN_QUERY"}  # exactly what it needs, not what someone raised it to


def test_other_users_grants_and_tags_added_out_of_band_are_left_alone(make_run, emulator) -> None:
    run = up(make_run, emulator)
    w = run_client(run)
    others = [{"user_name": "alice@example.com", "permission_level": "CAN_MANAGE"},
              {"group_name": "data-scientists", "permission_level": "CAN_QUERY"}]
    for e in (CUSTOM, PT, PPT):
        w.serving_endpoints.update_permissions(
            run.outputs(Endpoint, e)["endpoint_id"],
            access_control_list=[ServingEndpointAccessControlRequest.from_dict(o) for o in others])
        if e != PPT:
            w.serving_endpoints.patch(e, add_tags=[EndpointTag(key="cost-owner", value="alice")])
    before = {e: acl(run, e) for e in (CUSTOM, PT, PPT)}
    assert all(run.refresh().values())
    assert run.changed() == []  # not drift: not ours

    # Our own changes (a tag removed, an endpoint dropped with its grant) leave theirs as they were.
    smaller = run.with_config(tags={"owner": "local"},
                              endpoints=[e for e in ENDPOINTS if e["name"] != CUSTOM])
    smaller._client = w  # type: ignore[attr-defined]
    smaller.up()
    assert not run.has(Endpoint, CUSTOM) and CUSTOM not in [e.name for e in w.serving_endpoints.list()]
    for e in (PT, PPT):
        assert acl(smaller, e) == before[e]
    tags = {t.key: t.value for t in w.serving_endpoints.get(PT).tags}
    assert tags.get("cost-owner") == "alice" and "environment" not in tags
    mine = ours(run)
    smaller.destroy()
    assert acl(smaller, PPT) == before[PPT] - {mine}  # Databricks' endpoint: only our entry went
