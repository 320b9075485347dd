"""Principal, OAuth secret and grants (one on a custom endpoint, one on Databricks' pay-per-token
endpoint) through a whole lifecycle, with each emulator switch in its non-default position, one
switch at a time: up, refresh, a no-op up, a rotation, a lost answer on every create, destroy.
Whichever way the real service behaves, the stack converges and leaves nothing behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.providers.endpoint import Endpoint
from components.providers.grant import QueryGrant, QueryGrantProvider
from components.providers.oauth_secret import OAuthSecret, OAuthSecretProvider
from components.providers.principal import ServicePrincipal, ServicePrincipalProvider
from testing.deployment import Deployment, provider_for
from testing.emulator import EmulatorClient
from testing.provider import Engine
from tests.lifecycle.conftest import Target
from tests.lifecycle.test_grant_reliability import custom_endpoint, pay_per_token
from tests.lifecycle.test_lifecycle import DIFF_NONE, direct_entries, grant_inputs
from tests.lifecycle.test_principal_reliability import MARKER, SCIM_CREATE, principals, settings
from tests.lifecycle.test_secret_reliability import SECRETS, expire, secret_ids, secret_inputs

SWITCHES = [
    {"pay_per_token_acl": "reject"},
    {"propagation_delay": 1.5},  # real seconds: the emulator's clock runs
    {"scim_external_id": "drop"},
]
PERMS_WRITE = r"^/api/2\.0/permissions/serving-endpoints/[^/]+$"


@pytest.mark.parametrize("switch", SWITCHES, ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()))
def test_principal_secret_and_grants_converge_and_leave_nothing_behind(
        target: Target, engine: Engine, switch: dict[str, Any]) -> None:
    target.needs_emulator()
    custom = custom_endpoint(target, engine)
    ppt = pay_per_token(target)
    acl_before = {ep["endpoint_id"]: direct_entries(target, ep["endpoint_id"])
                  for ep in (custom, ppt)}
    settings(target, **switch)
    # Every create loses its first answer.
    for method, path in (("POST", SCIM_CREATE), ("POST", SECRETS + "$"),
                         ("PATCH", PERMS_WRITE)):
        target.emulator.lose_answer(method, path)

    def up() -> dict[str, str]:
        steps = {}
        sp_step = engine.register(ServicePrincipal, ServicePrincipalProvider, "principal", {
            "display_name": target.name("braintrust-lc"), "external_id": MARKER,
            "entitlements": []})
        sp = sp_step.outputs
        created = {"principal_created_at": sp["created_at"]}
        steps["principal"] = sp_step.op
        steps["secret"] = engine.register(OAuthSecret, OAuthSecretProvider, "secret",
                                          secret_inputs(sp, **created)).op
        for name, ep in (("custom", custom), ("ppt", ppt)):
            steps[name] = engine.register(QueryGrant, QueryGrantProvider, name,
                                          {**grant_inputs(ep, sp), **created}).op
        return steps

    assert set(up().values()) == {"create"}
    sp = engine.outputs(ServicePrincipal, "principal")
    secret = engine.outputs(OAuthSecret, "secret")
    assert [str(p.id) for p in principals(target)] == [sp["principal_id"]]
    assert secret_ids(target, sp) == {secret["secret_id"]}
    ours = ("service_principal_name", sp["application_id"], "CAN_QUERY")
    assert ours in direct_entries(target, custom["endpoint_id"])
    ppt_governed = engine.outputs(QueryGrant, "ppt")["governed_by"] == "workspace"
    assert ppt_governed == (switch.get("pay_per_token_acl") == "reject")
    assert (ours in direct_entries(target, ppt["endpoint_id"])) != ppt_governed

    # Refresh drops nothing and finds no drift; the next up changes nothing; neither writes.
    target.emulator.admin("DELETE", "requests")
    for cls, name in ((ServicePrincipal, "principal"), (OAuthSecret, "secret"),
                      (QueryGrant, "custom"), (QueryGrant, "ppt")):
        assert engine.refresh(cls, name) is not None, name
    assert set(up().values()) == {"same"}
    assert engine.diff(ServicePrincipal, ServicePrincipalProvider, "principal", {
        "display_name": target.name("braintrust-lc"), "external_id": MARKER,
        "entitlements": []}).changes == DIFF_NONE
    assert {r["method"] for r in target.emulator.requests()} <= {"GET"}

    # A rotation: new secret first, then the old one goes; never more than two.
    expire(target, engine)
    assert up()["secret"] == "replace"
    assert secret_ids(target, sp) == {engine.outputs(OAuthSecret, "secret")["secret_id"]}

    # Destroy, as the engine does (dependents first): nothing of the stack is left.
    for cls, name in ((QueryGrant, "ppt"), (QueryGrant, "custom"), (OAuthSecret, "secret"),
                      (ServicePrincipal, "principal")):
        engine.destroy(cls, name)
    assert principals(target) == []
    for endpoint_id, before in acl_before.items():
        assert direct_entries(target, endpoint_id) == before


# Every create of the whole stack: endpoint, principal, secret, grant, Braintrust record.
STACK_CREATES = [("POST", r"^/api/2\.0/serving-endpoints$"), ("POST", SCIM_CREATE),
                 ("POST", SECRETS + "$"), ("PATCH", PERMS_WRITE),
                 ("PUT", r"^/braintrust/v1/ai_secret$")]


@pytest.mark.parametrize("switch", SWITCHES, ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()))
def test_the_whole_local_stack_converges_and_destroys_cleanly_under_each_switch(
        emulator: EmulatorClient, tmp_path: Path, switch: dict[str, Any]) -> None:
    """The real program and every provider, one switch at a time, each create losing its
    first answer: one `up` converges, refresh keeps everything, the next `up` changes nothing,
    `destroy` leaves no principal, secret or endpoint of the stack behind."""
    emulator.settings(**switch)
    for method, path in STACK_CREATES:
        emulator.lose_answer(method, path)
    proc = provider_for(emulator)
    try:
        run = Deployment(emulator, tmp_path / "local.state.json", base="local", proc=proc)
        run.up()
        assert len([r for r in emulator.requests() if r.get("lost")]) == len(STACK_CREATES)
        emulator.admin("DELETE", "requests")
        assert run.changed() == []
        assert all(run.refresh().values())
        # `preview --refresh` is read-only: check, diff and read never write.
        assert {r["method"] for r in emulator.requests()} <= {"GET"}
        assert all(step.op == "same" for step in run.up().values())
        w = emulator.workspace_client()
        name = run.outputs(ServicePrincipal, run.principal_name)["display_name"]
        sps = list(w.service_principals.list(filter=f'displayName eq "{name}"'))
        assert len(sps) == 1
        assert len(list(w.service_principal_secrets_proxy.list(str(sps[0].id)))) == 1
        created = {run.outputs(Endpoint, n)["name"] for n in run.endpoint_names()} - {
            ep.name for ep in w.serving_endpoints.list() if (ep.name or "").startswith("databricks-")}
        assert created  # the stack does create endpoints of its own
        run.destroy()
        assert list(w.service_principals.list(filter=f'displayName eq "{name}"')) == []
        assert not created & {ep.name for ep in w.serving_endpoints.list()}
    finally:
        proc.close()
