"""The query grant through the real provider process: lost answers on its PATCH and PUT, a
pay-per-token endpoint whose ACL the workspace refuses or accepts, and a principal the
workspace does not know yet. Against the emulator only (its admin path plays them)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.serving import ServingEndpointAccessControlRequest

from components.providers.grant import QueryGrant, QueryGrantProvider
from components.providers.oauth_secret import OAuthSecret, OAuthSecretProvider
from testing.provider import Engine, ProviderCallError
from tests.lifecycle.conftest import Target
from tests.lifecycle.test_lifecycle import (
    DIFF_NONE,
    PPT,
    direct_entries,
    endpoint_inputs,
    grant_inputs,
    up_endpoint,
    up_principal,
)
from tests.lifecycle.test_principal_reliability import StderrMark, settings
from tests.lifecycle.test_secret_reliability import secret_inputs

PERMS = r"^/api/2\.0/permissions/serving-endpoints/[^/]+$"
OTHERS = [{"user_name": "alice@example.com", "permission_level": "CAN_MANAGE"},
          {"group_name": "data-scientists", "permission_level": "CAN_QUERY"},
          {"user_name": "bob@example.com", "permission_level": "CAN_VIEW"}]


def add_others(target: Target, endpoint_id: str, entries: list[dict[str, str]] = OTHERS) -> None:
    target.client().serving_endpoints.update_permissions(
        endpoint_id,
        access_control_list=[ServingEndpointAccessControlRequest.from_dict(e) for e in entries])


def writes(target: Target) -> list[dict[str, Any]]:
    pattern = re.compile(PERMS)
    return [r for r in target.emulator.requests()
            if r["method"] in ("PATCH", "PUT") and pattern.search(r["path"])]


def custom_endpoint(target: Target, engine: Engine) -> dict[str, Any]:
    return up_endpoint(engine, "churn", endpoint_inputs(target)).outputs


def pay_per_token(target: Target) -> dict[str, Any]:
    """Databricks' own endpoint, present in every workspace: its id and name."""
    ep = target.client().serving_endpoints.get(PPT)
    return {"endpoint_id": ep.id, "name": ep.name}


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_lost_answer_to_the_grant_create_leaves_one_entry_and_the_others_as_they_were(
        target: Target, engine: Engine, method: str) -> None:
    target.needs_emulator()
    ep = custom_endpoint(target, engine)
    sp = up_principal(engine, target)
    add_others(target, ep["endpoint_id"])
    if method == "PUT":
        # Our principal holds another level already (raised by hand): create swaps it by PUT.
        add_others(target, ep["endpoint_id"], [{"service_principal_name": sp["application_id"],
                                                "permission_level": "CAN_MANAGE"}])
    before = direct_entries(target, ep["endpoint_id"])
    target.emulator.lose_answer(method, PERMS)
    out = engine.register(QueryGrant, QueryGrantProvider, "grant", grant_inputs(ep, sp)).outputs
    assert out["governed_by"] == "acl"
    ours = ("service_principal_name", sp["application_id"], "CAN_QUERY")
    after = direct_entries(target, ep["endpoint_id"])
    assert after == {e for e in before if e[1] != sp["application_id"]} | {ours}
    assert [r["method"] for r in writes(target) if r.get("lost")] == [method]  # it did happen
    assert engine.refresh(QueryGrant, "grant") is not None  # state equals the workspace


def test_lost_answer_to_the_grant_delete_removes_only_our_entry(target: Target,
                                                                engine: Engine) -> None:
    target.needs_emulator()
    ep = custom_endpoint(target, engine)
    sp = up_principal(engine, target)
    add_others(target, ep["endpoint_id"])
    before = direct_entries(target, ep["endpoint_id"])
    engine.register(QueryGrant, QueryGrantProvider, "grant", grant_inputs(ep, sp))
    target.emulator.lose_answer("PUT", PERMS)
    engine.destroy(QueryGrant, "grant")
    assert direct_entries(target, ep["endpoint_id"]) == before
    assert [r["method"] for r in writes(target) if r.get("lost")] == ["PUT"]


# ------------------------------------------------------------------ pay_per_token_acl


def test_pay_per_token_grant_refused_by_the_workspace_is_recorded_as_governed_by_it(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    settings(target, pay_per_token_acl="reject")
    ep = pay_per_token(target)
    sp = up_principal(engine, target)
    before = direct_entries(target, ep["endpoint_id"])
    mark = StderrMark(target)
    step = engine.register(QueryGrant, QueryGrantProvider, "grant", grant_inputs(ep, sp))
    assert step.op == "create" and step.outputs["governed_by"] == "workspace"
    assert "Unity Catalog" in mark.new()
    # The principal can query it all the same, with its own OAuth secret, as Braintrust does.
    secret = engine.register(OAuthSecret, OAuthSecretProvider, "secret",
                             secret_inputs(sp)).outputs
    as_principal = WorkspaceClient(host=target.host, client_id=secret["client_id"],
                                   client_secret=secret["client_secret"])
    answer = as_principal.api_client.do(
        "POST", f"/serving-endpoints/{PPT}/invocations",
        body={"messages": [{"role": "user", "content": "ok?"}], "max_tokens": 4})
    assert isinstance(answer, dict) and answer.get("choices")
    # Refresh keeps it (there is no entry to find), and the next up changes nothing.
    state = engine.refresh(QueryGrant, "grant")
    assert state is not None and state.outputs["governed_by"] == "workspace"
    assert engine.diff(QueryGrant, QueryGrantProvider, "grant",
                       grant_inputs(ep, sp)).changes == DIFF_NONE
    target.emulator.admin("DELETE", "requests")
    engine.destroy(QueryGrant, "grant")
    assert writes(target) == []  # nothing of ours there: nothing written
    assert direct_entries(target, ep["endpoint_id"]) == before


def test_pay_per_token_grant_refused_only_on_databricks_endpoints(target: Target,
                                                                  engine: Engine) -> None:
    """The reject switch leaves the stack's own endpoints writable, and a 4xx on them fails."""
    target.needs_emulator()
    settings(target, pay_per_token_acl="reject")
    ep = custom_endpoint(target, engine)
    sp = up_principal(engine, target)
    out = engine.register(QueryGrant, QueryGrantProvider, "grant", grant_inputs(ep, sp)).outputs
    assert out["governed_by"] == "acl"
    with pytest.raises(ProviderCallError) as err:
        engine.register(QueryGrant, QueryGrantProvider, "other", {
            **grant_inputs(ep, sp), "service_principal_name": "no-such-application-id"})
    assert "granting query access failed" in err.value.message


def test_pay_per_token_grant_delete_keeps_every_other_entry_and_skips_a_gone_entry(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    ep = pay_per_token(target)
    sp = up_principal(engine, target)
    before = direct_entries(target, ep["endpoint_id"])
    out = engine.register(QueryGrant, QueryGrantProvider, "grant", grant_inputs(ep, sp)).outputs
    assert out["governed_by"] == "acl"
    add_others(target, ep["endpoint_id"])  # others change the shared ACL after our create
    expected = direct_entries(target, ep["endpoint_id"]) - {
        ("service_principal_name", sp["application_id"], "CAN_QUERY")}
    assert expected >= before
    engine.destroy(QueryGrant, "grant")
    assert direct_entries(target, ep["endpoint_id"]) == expected

    # Our entry already removed by someone: delete reads, finds it gone, writes nothing.
    engine.register(QueryGrant, QueryGrantProvider, "grant", grant_inputs(ep, sp))
    target.client().serving_endpoints.set_permissions(
        ep["endpoint_id"], access_control_list=[ServingEndpointAccessControlRequest.from_dict(
            {kind: who, "permission_level": level}) for kind, who, level in expected])
    target.emulator.admin("DELETE", "requests")
    engine.destroy(QueryGrant, "grant")
    assert writes(target) == []
    assert direct_entries(target, ep["endpoint_id"]) == expected


def test_pay_per_token_grant_written_before_the_workspace_refused_still_changes_and_destroys(
        target: Target, engine: Engine) -> None:
    """A grant recorded as an ACL entry (the workspace accepted it then) on a pay-per-token
    endpoint whose ACL the workspace now refuses to change: a level change is recorded as
    governed by the workspace, and destroy warns with the entry left instead of failing forever."""
    target.needs_emulator()
    ep = pay_per_token(target)
    sp = up_principal(engine, target)
    out = engine.register(QueryGrant, QueryGrantProvider, "grant", grant_inputs(ep, sp)).outputs
    assert out["governed_by"] == "acl"
    settings(target, pay_per_token_acl="reject")
    mark = StderrMark(target)
    engine.destroy(QueryGrant, "grant")
    assert engine.urn(QueryGrant, "grant") not in engine.state
    assert "refused removing this entry" in mark.new()
    assert ("service_principal_name", sp["application_id"], "CAN_QUERY") in direct_entries(
        target, ep["endpoint_id"])  # left, as the warning says

    settings(target, pay_per_token_acl="accept")
    engine.register(QueryGrant, QueryGrantProvider, "other", grant_inputs(ep, sp, "CAN_VIEW"))
    settings(target, pay_per_token_acl="reject")
    step = engine.register(QueryGrant, QueryGrantProvider, "other",
                           grant_inputs(ep, sp, "CAN_MANAGE"))
    assert step.op == "update" and step.outputs["governed_by"] == "workspace"


# ------------------------------------------------------------------ propagation_delay


def test_grant_waits_for_a_principal_the_workspace_does_not_know_yet(target: Target,
                                                                     engine: Engine) -> None:
    target.needs_emulator()
    ep = custom_endpoint(target, engine)
    settings(target, propagation_delay=1.5)  # real seconds: the emulator's clock runs
    sp = up_principal(engine, target)
    engine.register(QueryGrant, QueryGrantProvider, "grant", grant_inputs(ep, sp))
    assert ("service_principal_name", sp["application_id"], "CAN_QUERY") in direct_entries(
        target, ep["endpoint_id"])
    assert any(r["status"] == 400 for r in writes(target))  # refused first, then retried


def test_grant_refused_for_a_principal_that_is_not_new_is_reported_at_once(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    ep = custom_endpoint(target, engine)
    settings(target, propagation_delay=3600)
    sp = up_principal(engine, target)
    with pytest.raises(ProviderCallError) as err:
        engine.register(QueryGrant, QueryGrantProvider, "grant",
                        {**grant_inputs(ep, sp), "principal_created_at": "2020-01-01T00:00:00Z"})
    assert "does not exist" in err.value.message
    assert len(writes(target)) == 1


def test_grant_on_pay_per_token_waits_for_a_new_principal_before_judging_the_refusal(
        target: Target, engine: Engine) -> None:
    """"Not known yet" is retried, never taken for the workspace governing the endpoint."""
    target.needs_emulator()
    ep = pay_per_token(target)
    settings(target, propagation_delay=1.5)
    sp = up_principal(engine, target)
    out = engine.register(QueryGrant, QueryGrantProvider, "grant", grant_inputs(ep, sp)).outputs
    assert out["governed_by"] == "acl"
    assert ("service_principal_name", sp["application_id"], "CAN_QUERY") in direct_entries(
        target, ep["endpoint_id"])
