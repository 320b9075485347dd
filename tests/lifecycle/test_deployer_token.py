"""Issue 21: the deployer's OAuth token revoked or expired in the middle of a run. The provider
mints a new one (its own bounded token request, not databricks-sdk's unbounded refresh) once
for that 401 and goes on; when no new token can be had, the run fails saying so. Through the
real provider process, with OAuth machine-to-machine credentials of an admin principal."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from databricks.sdk.service.iam import ComplexValue

from components.providers.principal import ServicePrincipal, ServicePrincipalProvider
from testing.provider import Engine, ProviderCallError, ProviderProcess
from tests.lifecycle.conftest import Target

TOKEN = "/oidc/v1/token"


@pytest.fixture
def m2m(target: Target) -> Iterator[tuple[Engine, dict[str, Any]]]:
    """A provider process whose deployer is an admin service principal with an OAuth secret,
    from the environment (DATABRICKS_CLIENT_ID/SECRET), as CI would run it."""
    target.needs_emulator()
    w = target.client()
    deployer = w.service_principals.create(
        display_name="deployer", groups=[ComplexValue(display="admins", value="admins")])
    secret = w.service_principal_secrets_proxy.create(str(deployer.id))
    proc = ProviderProcess(env={"DATABRICKS_HOST": target.host,
                                "DATABRICKS_CLIENT_ID": str(deployer.application_id),
                                "DATABRICKS_CLIENT_SECRET": str(secret.secret)})
    proc.configure({"workspace": {"host": target.host}})
    try:
        yield Engine(proc), {"id": str(deployer.id), "secret_id": str(secret.id)}
    finally:
        proc.close()


def principal(engine: Engine, name: str = "principal") -> dict[str, Any]:
    return engine.register(ServicePrincipal, ServicePrincipalProvider, name, {
        "display_name": f"braintrust-{name}", "external_id": f"databricks-braintrust/{name}",
        "entitlements": []}).outputs


def token_requests(target: Target) -> int:
    return sum(1 for r in target.emulator.requests() if r["path"] == TOKEN)


def test_a_token_revoked_mid_run_is_minted_again_and_the_run_goes_on(
        target: Target, m2m: tuple[Engine, dict[str, Any]]) -> None:
    engine, _ = m2m
    principal(engine, "first")
    minted = token_requests(target)
    assert minted == 1
    assert target.emulator.revoke_tokens() >= 1
    # Before issue 21 this failed with the 401 ("Invalid access token").
    principal(engine, "second")
    assert token_requests(target) == minted + 1  # one new token for that 401
    refused = [r for r in target.emulator.requests() if r["status"] == 401]
    assert len(refused) == 1
    state = engine.refresh(ServicePrincipal, "second")
    assert state is not None


def test_a_token_expired_on_the_workspaces_clock_is_minted_again(
        target: Target, m2m: tuple[Engine, dict[str, Any]]) -> None:
    """The workspace's clock far ahead: a token this machine thinks good has expired there."""
    engine, _ = m2m
    principal(engine, "first")
    target.emulator.advance_clock(2 * 3600)
    principal(engine, "second")
    assert token_requests(target) == 2


def test_no_new_token_fails_the_run_saying_what_to_check(
        target: Target, m2m: tuple[Engine, dict[str, Any]]) -> None:
    engine, deployer = m2m
    principal(engine, "first")
    target.client().service_principal_secrets_proxy.delete(deployer["id"], deployer["secret_id"])
    target.emulator.revoke_tokens()
    with pytest.raises(ProviderCallError) as err:
        principal(engine, "second")
    message = err.value.message
    assert "refused the deployer's credentials" in message
    assert "DATABRICKS_CLIENT_SECRET" in message and "invalid_client" in message
    assert token_requests(target) == 2  # one try for the 401, no loop


def test_a_pat_refused_mid_run_fails_at_once_saying_so(target: Target, engine: Engine) -> None:
    """A PAT cannot be minted again: the 401 fails the step with what to do."""
    target.needs_emulator()
    target.emulator.inject_fault("GET", r"^/api/2\.0/preview/scim/v2/ServicePrincipals$", 401,
                                 count=1)
    with pytest.raises(ProviderCallError) as err:
        principal(engine, "pat")
    assert "the token was refused (401)" in err.value.message
    assert "databricks_token" in err.value.message
