"""Service principals (SCIM), their OAuth secrets, and OAuth M2M: through the SDK and through
plain HTTP exactly as Braintrust's proxy calls Databricks."""

from __future__ import annotations

import base64

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import (
    InvalidParameterValue,
    NotFound,
    PermissionDenied,
    ResourceConflict,
    Unauthenticated,
)
from databricks.sdk.service.iam import ComplexValue, Patch, PatchOp, PatchSchema
from databricks.sdk.service.serving import (
    ServingEndpointAccessControlRequest,
    ServingEndpointPermissionLevel,
)

from .conftest import PPT, WAIT, churn_config, llama_config


def test_service_principal_crud_round_trips_camel_case_fields(w):
    sp = w.service_principals.create(display_name="bt-dev", external_id="ext-1",
                                     entitlements=[ComplexValue(value="workspace-access")])
    assert sp.id.isdigit() and len(sp.application_id) == 36 and sp.active is True
    assert sp.external_id == "ext-1"
    got = w.service_principals.get(sp.id)
    assert got.display_name == "bt-dev" and got.application_id == sp.application_id
    w.service_principals.update(sp.id, display_name="bt-renamed", active=True)
    assert w.service_principals.get(sp.id).display_name == "bt-renamed"
    assert not w.service_principals.get(sp.id).external_id  # PUT replaces
    w.service_principals.patch(sp.id, schemas=[PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP],
                               # the SDK drops a falsy `value`, so a path-less object carries `active: false`
                               operations=[Patch(op=PatchOp.REPLACE, value={"active": False}),
                                           Patch(op=PatchOp.ADD, path="entitlements",
                                                 value=[{"value": "databricks-sql-access"}])])
    got = w.service_principals.get(sp.id)
    assert got.active is False
    assert [e.value for e in got.entitlements] == ["databricks-sql-access"]
    w.service_principals.delete(sp.id)
    with pytest.raises(NotFound):
        w.service_principals.get(sp.id)


def test_list_filters_by_display_name_application_id_and_external_id(w):
    a = w.service_principals.create(display_name="alpha", external_id="ea")
    b = w.service_principals.create(display_name="beta")
    assert [s.id for s in w.service_principals.list(filter='displayName eq "alpha"')] == [a.id]
    assert [s.id for s in w.service_principals.list(filter=f'applicationId eq "{b.application_id}"')] == [b.id]
    assert [s.id for s in w.service_principals.list(filter='externalId eq "ea"')] == [a.id]
    assert list(w.service_principals.list(filter='displayName eq "nobody"')) == []


def test_list_pages_with_start_index_and_count(w, emulator):
    ids = [w.service_principals.create(display_name=f"p{i}").id for i in range(3)]
    assert [s.id for s in w.service_principals.list(count=1)] == ids  # the SDK pages through
    r = requests.get(f"{emulator.url}/api/2.0/preview/scim/v2/ServicePrincipals",
                     params={"startIndex": 2, "count": 1},
                     headers={"Authorization": f"Bearer {emulator.admin_token}"}, timeout=10).json()
    assert r["totalResults"] == 3 and [s["id"] for s in r["Resources"]] == [ids[1]]


def test_duplicate_application_id_raises_conflict_with_a_scim_body(w, emulator):
    sp = w.service_principals.create(display_name="one")
    with pytest.raises(ResourceConflict):
        w.service_principals.create(display_name="two", application_id=sp.application_id)
    r = requests.post(f"{emulator.url}/api/2.0/preview/scim/v2/ServicePrincipals",
                      json={"displayName": "two", "applicationId": sp.application_id},
                      headers={"Authorization": f"Bearer {emulator.admin_token}"}, timeout=10)
    assert r.status_code == 409
    assert r.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert r.json()["status"] == "409" and r.json()["scimType"] == "uniqueness"


def test_secret_value_only_in_create_and_list_pages(w, make_sp):
    sp, first = make_sp(lifetime="7776000s")
    assert first.secret and first.status == "ACTIVE" and first.secret_hash
    assert first.expire_time.endswith("Z") and first.create_time.endswith("Z")
    for _ in range(2):
        w.service_principal_secrets_proxy.create(sp.id)
    listed = list(w.service_principal_secrets_proxy.list(sp.id, page_size=1))
    assert len(listed) == 3 and first.id in {s.id for s in listed}
    assert all(not hasattr(s, "secret") for s in listed)
    w.service_principal_secrets_proxy.delete(sp.id, first.id)
    assert first.id not in {s.id for s in w.service_principal_secrets_proxy.list(sp.id)}
    with pytest.raises(NotFound):
        w.service_principal_secrets_proxy.delete(sp.id, first.id)


@pytest.mark.parametrize("lifetime", ["63072001s", "0s", "90d"])
def test_secret_lifetime_out_of_range_raises_invalid_parameter_value(w, lifetime):
    sp = w.service_principals.create(display_name="lt")
    with pytest.raises(InvalidParameterValue):
        w.service_principal_secrets_proxy.create(sp.id, lifetime=lifetime)


def test_secret_for_unknown_principal_raises_not_found(w):
    with pytest.raises(NotFound):
        w.service_principal_secrets_proxy.create("424242")


def test_oauth_m2m_through_the_sdk_authenticates_as_the_principal(w, emulator, make_sp, sp_client):
    sp, secret = make_sp()
    sw = sp_client(sp, secret)
    assert sw.config.auth_type == "oauth-m2m"
    assert sw.serving_endpoints.get(PPT).name == PPT  # every user may use pay-per-token
    with pytest.raises(PermissionDenied):  # management needs an admin
        sw.serving_endpoints.create("by-sp", config=churn_config("by-sp"))
    assert any(r["principal"] == f"service-principal:{sp.application_id}"
               for r in emulator.requests())


def _token(url: str, client_id: str, client_secret: str, scope: str = "all-apis") -> requests.Response:
    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    return requests.post(f"{url}/oidc/v1/token",
                         headers={"Authorization": f"Basic {basic}",
                                  "Content-Type": "application/x-www-form-urlencoded"},
                         data=f"grant_type=client_credentials&scope={scope}", timeout=10)


def _chat(url: str, token: str, endpoint: str) -> requests.Response:
    return requests.post(f"{url}/serving-endpoints/{endpoint}/invocations",
                         headers={"Authorization": f"Bearer {token}"},
                         json={"messages": [{"role": "user", "content": "ping"}], "max_tokens": 20},
                         timeout=10)


def test_braintrust_proxy_sequence_is_refused_before_the_grant_and_answered_after(
        w, emulator, make_sp):
    emulator.set_ready_after(0.05)
    sp, secret = make_sp()
    r = _token(emulator.url, sp.application_id, secret.secret)
    assert r.status_code == 200, r.text
    tok = r.json()
    assert tok["token_type"] == "Bearer" and tok["expires_in"] > 60 and tok["scope"] == "all-apis"
    assert _chat(emulator.url, tok["access_token"], PPT).status_code == 200
    w.serving_endpoints.create_and_wait("bt-llama", config=llama_config("bt-llama"), timeout=WAIT)
    llama = w.serving_endpoints.get("bt-llama")
    refused = _chat(emulator.url, tok["access_token"], "bt-llama")
    assert refused.status_code == 403 and refused.json()["error_code"] == "PERMISSION_DENIED"
    w.serving_endpoints.update_permissions(llama.id, access_control_list=[
        ServingEndpointAccessControlRequest(service_principal_name=sp.application_id,
                                            permission_level=ServingEndpointPermissionLevel.CAN_QUERY)])
    answered = _chat(emulator.url, tok["access_token"], "bt-llama")
    assert answered.status_code == 200
    body = answered.json()
    assert body["object"] == "chat.completion" and body["choices"][0]["message"]["role"] == "assistant"
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]


def test_token_endpoint_refuses_wrong_deleted_and_expired_secrets(w, emulator, make_sp):
    sp, secret = make_sp(lifetime="3600s")
    bad = _token(emulator.url, sp.application_id, "dose-wrong")
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    assert bad.headers["Content-Type"].startswith("application/json")
    emulator.admin("POST", "clock", {"advance_seconds": 3601})
    assert _token(emulator.url, sp.application_id, secret.secret).status_code == 401
    other = w.service_principal_secrets_proxy.create(sp.id)
    assert _token(emulator.url, sp.application_id, other.secret).status_code == 200
    w.service_principal_secrets_proxy.delete(sp.id, other.id)
    assert _token(emulator.url, sp.application_id, other.secret).json()["error"] == "invalid_client"


def test_tokens_expire_on_the_emulator_clock(emulator, make_sp):
    sp, secret = make_sp()
    token = _token(emulator.url, sp.application_id, secret.secret).json()["access_token"]
    assert _chat(emulator.url, token, PPT).status_code == 200
    emulator.admin("POST", "clock", {"advance_seconds": 3601})
    r = _chat(emulator.url, token, PPT)
    assert r.status_code == 401 and r.json()["error_code"] == "UNAUTHENTICATED"


def test_deleting_a_principal_revokes_its_tokens_secrets_and_grants(w, emulator, make_sp, sp_client):
    emulator.set_ready_after(0.05)
    ep = w.serving_endpoints.create_and_wait("rev", config=churn_config("rev"), timeout=WAIT)
    sp, secret = make_sp()
    w.serving_endpoints.update_permissions(ep.id, access_control_list=[
        ServingEndpointAccessControlRequest(service_principal_name=sp.application_id,
                                            permission_level=ServingEndpointPermissionLevel.CAN_QUERY)])
    sw = sp_client(sp, secret)
    assert sw.serving_endpoints.get("rev").name == "rev"
    w.service_principals.delete(sp.id)
    with pytest.raises(Unauthenticated):
        sw.serving_endpoints.get("rev")
    assert _token(emulator.url, sp.application_id, secret.secret).status_code == 401
    acl = w.serving_endpoints.get_permissions(ep.id).access_control_list
    assert all(e.service_principal_name != sp.application_id for e in acl)


def test_a_secret_scoped_away_from_serving_gets_permission_denied(emulator, make_sp):
    sp, secret = make_sp(scopes=["sql"])
    tok = _token(emulator.url, sp.application_id, secret.secret, scope="sql").json()
    assert tok["scope"] == "sql"
    r = _chat(emulator.url, tok["access_token"], PPT)
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"


def test_a_token_request_beyond_the_secrets_scopes_is_refused_with_invalid_scope(emulator, make_sp):
    # What Braintrust's proxy sends (scope=all-apis) against a secret bound to the serving scope.
    sp, secret = make_sp(scopes=["serving.serving-endpoints"])
    refused = _token(emulator.url, sp.application_id, secret.secret)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_scope"
    within = _token(emulator.url, sp.application_id, secret.secret, scope="serving.serving-endpoints")
    assert within.status_code == 200 and within.json()["scope"] == "serving.serving-endpoints"


def test_wrong_or_missing_credentials_raise_unauthenticated(emulator):
    with pytest.raises(Unauthenticated):
        WorkspaceClient(host=emulator.url, token="dapi-wrong").serving_endpoints.get(PPT)
    r = requests.get(f"{emulator.url}/api/2.0/serving-endpoints", timeout=10)
    assert r.status_code == 401 and r.json()["error_code"] == "UNAUTHENTICATED"


def test_host_metadata_and_oidc_discovery_point_at_the_emulator(emulator):
    meta = requests.get(f"{emulator.url}/.well-known/databricks-config", timeout=10).json()
    assert meta["oidc_endpoint"] == f"{emulator.url}/oidc" and meta["workspace_id"]
    disc = requests.get(f"{emulator.url}/oidc/.well-known/oauth-authorization-server", timeout=10).json()
    assert disc["token_endpoint"] == f"{emulator.url}/oidc/v1/token"


def test_current_user_is_the_admin_or_the_service_principal(w, make_sp, sp_client):
    assert w.current_user.me().user_name == "admin@emulator.local"
    sp, secret = make_sp()
    assert sp_client(sp, secret).current_user.me().user_name == sp.application_id
