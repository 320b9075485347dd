"""Each emulator switch in each position, and the always-on alignments with what Databricks'
own CLI tests record against real workspaces, checked with the real databricks-sdk."""

from __future__ import annotations

import urllib.request

import pytest
import requests
from databricks.sdk.errors import (
    BadRequest,
    InvalidParameterValue,
    NotFound,
    PermissionDenied,
)
from databricks.sdk.service.serving import (
    EndpointCoreConfigInput,
    ServedEntityInput,
    ServingEndpointAccessControlRequest,
    ServingEndpointPermissionLevel,
)

from .conftest import CHURN, LLAMA_8B, PPT, WAIT, llama_config

DEFAULTS = {"ready_after": 0.3, "pay_per_token_acl": "accept", "propagation_delay": 0.0,
            "retired": [], "scim_external_id": "keep", "braintrust_unknown_id": "404",
            "braintrust_put_omitted": "clear", "braintrust_put_null_secret": "keep",
            "braintrust_other_org": "403"}
OPT_INFO = "/api/2.0/serving-endpoints/get-model-optimization-info/{}/{}"


def _grant(app_id: str, level=ServingEndpointPermissionLevel.CAN_QUERY):
    return ServingEndpointAccessControlRequest(service_principal_name=app_id, permission_level=level)


def _levels(perms) -> dict[str, str]:
    return {(a.service_principal_name or a.group_name or a.user_name): a.all_permissions[0].permission_level.value
            for a in perms.access_control_list}


# ---- settings -------------------------------------------------------------------------------


def test_settings_default_to_todays_behaviour_and_reset_restores_them(emulator):
    got = emulator.admin("GET", "settings")
    assert {k: got[k] for k in DEFAULTS} == DEFAULTS
    changed = emulator.settings(pay_per_token_acl="reject", propagation_delay=30,
                                retired=["mixtral_8x7b_instruct_v0_1"], scim_external_id="drop",
                                seed=7, ready_after=0)
    assert changed["retired"] == ["system.ai.mixtral_8x7b_instruct_v0_1"]
    assert emulator.settings(retired=LLAMA_8B)["retired"] == [LLAMA_8B]  # one, not in a list
    assert changed["pay_per_token_acl"] == "reject" and changed["seed"] == 7
    emulator.reset()
    back = emulator.admin("GET", "settings")
    assert {k: back[k] for k in DEFAULTS} == DEFAULTS
    assert back["seed"] == got["seed"]


@pytest.mark.parametrize("body", [
    {"pay_per_token_acl": "maybe"}, {"propagation_delay": -1}, {"propagation_delay": True},
    {"retired": [3]}, {"scim_external_id": "lose"}, {"seed": "x"}, {"colour": "red"},
    {"braintrust_unknown_id": "410"}, {"braintrust_unknown_id": True},
    {"braintrust_put_omitted": "drop"}, {"braintrust_put_null_secret": "drop"},
    {"braintrust_other_org": "404"},
])
def test_a_bad_setting_is_refused_and_changes_nothing(emulator, body):
    with pytest.raises(urllib.request.HTTPError) as e:
        emulator.settings(**body)
    assert e.value.code == 400
    assert {k: emulator.admin("GET", "settings")[k] for k in DEFAULTS} == DEFAULTS


# ---- pay-per-token ACL ------------------------------------------------------------------------


def test_pay_per_token_acl_accept_takes_writes(w, make_sp):
    sp, _ = make_sp()
    ep_id = w.serving_endpoints.get(PPT).id
    perms = w.serving_endpoints.update_permissions(ep_id, access_control_list=[_grant(sp.application_id)])
    assert _levels(perms)[sp.application_id] == "CAN_QUERY"


def test_pay_per_token_acl_reject_refuses_writes_with_a_4xx_and_reads_work(w, emulator, make_sp):
    sp, _ = make_sp()
    emulator.settings(pay_per_token_acl="reject")
    ep_id = w.serving_endpoints.get(PPT).id
    before = _levels(w.serving_endpoints.get_permissions(ep_id))
    with pytest.raises(PermissionDenied, match="pay-per-token"):
        w.serving_endpoints.update_permissions(ep_id, access_control_list=[_grant(sp.application_id)])
    with pytest.raises(PermissionDenied):
        w.serving_endpoints.set_permissions(ep_id, access_control_list=[_grant(sp.application_id)])
    assert _levels(w.serving_endpoints.get_permissions(ep_id)) == before
    # Our own endpoints are not affected.
    mine = w.serving_endpoints.create_and_wait("own", config=llama_config("own"), timeout=WAIT)
    w.serving_endpoints.update_permissions(mine.id, access_control_list=[_grant(sp.application_id)])


# ---- propagation delay ------------------------------------------------------------------------


def test_propagation_delay_hides_a_new_principal_from_get_acl_and_secrets_until_it_passes(w, emulator):
    emulator.settings(propagation_delay=60)
    mine = w.serving_endpoints.create_and_wait("prop", config=llama_config("prop"), timeout=WAIT)
    sp = w.service_principals.create(display_name="fresh")
    assert sp.display_name == "fresh"  # the create's own answer echoes it

    with pytest.raises(NotFound):
        w.service_principals.get(sp.id)
    listed = list(w.service_principals.list(filter='displayName eq "fresh"'))
    assert [s.id for s in listed] == [sp.id]
    assert listed[0].display_name is None  # a fresh principal may come back without it
    with pytest.raises(NotFound):
        w.service_principal_secrets_proxy.create(sp.id)
    with pytest.raises(NotFound):
        list(w.service_principal_secrets_proxy.list(sp.id))
    with pytest.raises(InvalidParameterValue, match="does not exist"):
        w.serving_endpoints.update_permissions(mine.id, access_control_list=[_grant(sp.application_id)])

    emulator.advance_clock(61)
    assert w.service_principals.get(sp.id).display_name == "fresh"
    assert [s.display_name for s in w.service_principals.list(filter='displayName eq "fresh"')] == ["fresh"]
    assert w.service_principal_secrets_proxy.create(sp.id).secret
    perms = w.serving_endpoints.update_permissions(mine.id, access_control_list=[_grant(sp.application_id)])
    assert _levels(perms)[sp.application_id] == "CAN_QUERY"


def test_propagation_delay_zero_knows_a_principal_at_once(w):
    sp = w.service_principals.create(display_name="known")
    assert w.service_principals.get(sp.id).display_name == "known"
    assert w.service_principal_secrets_proxy.create(sp.id).secret


# ---- five secrets -----------------------------------------------------------------------------


def test_a_sixth_secret_is_refused_naming_the_five_and_a_delete_makes_room(w):
    sp = w.service_principals.create(display_name="capped")
    ids = [w.service_principal_secrets_proxy.create(sp.id).id for _ in range(5)]
    with pytest.raises(BadRequest) as e:
        w.service_principal_secrets_proxy.create(sp.id)
    assert all(i in str(e.value) for i in ids)
    assert "dose" not in str(e.value)  # ids only, never a value
    w.service_principal_secrets_proxy.delete(sp.id, ids[0])
    assert w.service_principal_secrets_proxy.create(sp.id).secret


# ---- retired models ---------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", [LLAMA_8B, LLAMA_8B.removeprefix("system.ai.")])
def test_retired_entity_is_refused_on_create_and_update_others_are_not(w, emulator, spelling):
    w.serving_endpoints.create_and_wait("before", config=llama_config("before"), timeout=WAIT)
    emulator.settings(retired=[spelling])
    with pytest.raises(InvalidParameterValue, match="retired") as e:
        w.serving_endpoints.create("after", config=llama_config("after"))
    assert LLAMA_8B in str(e.value)
    with pytest.raises(InvalidParameterValue, match="retired"):
        w.serving_endpoints.update_config("before", served_entities=llama_config("before").served_entities)
    # What already serves it keeps serving; other models deploy.
    assert w.serving_endpoints.get("before").state.ready.value == "READY"
    w.serving_endpoints.create("other", config=EndpointCoreConfigInput(name="other", served_entities=[
        ServedEntityInput(entity_name="system.ai.mistral_7b_instruct_v0_2", entity_version="1",
                          min_provisioned_throughput=0, max_provisioned_throughput=970)]))


# ---- chunks and versions from the live API ----------------------------------------------------


def test_optimization_info_answers_the_chunk_and_follows_system_models(w, emulator):
    info = w.api_client.do("GET", OPT_INFO.format(LLAMA_8B, "1"))
    assert info == {"optimizable": True, "model_type": "llama", "throughput_chunk_size": 1240,
                    "dbus": info["dbus"]}
    assert isinstance(info["dbus"], int)
    emulator.system_model(LLAMA_8B, "3", throughput_chunk_size=1000)
    assert w.api_client.do("GET", OPT_INFO.format(LLAMA_8B, "3"))["throughput_chunk_size"] == 1000
    assert w.api_client.do("GET", OPT_INFO.format(LLAMA_8B, "1"))["throughput_chunk_size"] == 1240
    # Create validates against the live chunk of that version.
    cfg = EndpointCoreConfigInput(name="c", served_entities=[ServedEntityInput(
        entity_name=LLAMA_8B, entity_version="3", min_provisioned_throughput=0,
        max_provisioned_throughput=1240)])
    with pytest.raises(InvalidParameterValue, match="multiple of 1000"):
        w.serving_endpoints.create("c", config=cfg)
    cfg.served_entities[0].max_provisioned_throughput = 2000
    w.serving_endpoints.create("c", config=cfg)


def test_optimization_info_of_a_custom_model_and_of_an_unknown_version(w):
    assert w.api_client.do("GET", OPT_INFO.format(CHURN, "3")) == {"optimizable": False}
    with pytest.raises(NotFound):
        w.api_client.do("GET", OPT_INFO.format(LLAMA_8B, "99"))


def test_model_versions_list_answers_the_served_versions_and_follows_system_models(w, emulator):
    def versions(name: str) -> set[int]:
        return {v.version for v in w.model_versions.list(name)}

    assert versions(LLAMA_8B) == {1, 2, 3, 4}
    assert versions(CHURN) == {3}
    emulator.system_model(LLAMA_8B, "1", served=False)
    emulator.admin("POST", "system-models", {"entity": LLAMA_8B, "version": 5,
                                             "throughput_chunk_size": 1240})
    assert versions(LLAMA_8B) == {2, 3, 4, 5}
    with pytest.raises(NotFound):
        w.serving_endpoints.create("v1", config=llama_config("v1"))
    emulator.system_model("system.ai.brand_new_model", "1", throughput_chunk_size=500)
    assert versions("system.ai.brand_new_model") == {1}
    with pytest.raises(NotFound):
        list(w.model_versions.list("system.ai.no_such_model"))
    assert {v.version for v in w.model_versions.list(LLAMA_8B, max_results=1)} == {2, 3, 4, 5}  # pages
    emulator.reset()
    assert versions(LLAMA_8B) == {1, 2, 3, 4}


def test_system_models_route_refuses_what_is_not_a_system_model(emulator):
    for body in ({"entity": "main.ml.x", "version": "1", "throughput_chunk_size": 10},
                 {"entity": LLAMA_8B}, {"entity": "system.ai.new_one", "version": "1"},
                 {"entity": LLAMA_8B, "version": "1", "throughput_chunk_size": 0}):
        with pytest.raises(urllib.request.HTTPError) as e:
            emulator.admin("POST", "system-models", body)
        assert e.value.code == 400, body


# ---- SCIM externalId --------------------------------------------------------------------------


def test_scim_external_id_keep_stores_it(w):
    sp = w.service_principals.create(display_name="kept", external_id="stack:dev")
    assert w.service_principals.get(sp.id).external_id == "stack:dev"
    assert [s.id for s in w.service_principals.list(filter='externalId eq "stack:dev"')] == [sp.id]


def test_scim_external_id_drop_stores_nothing(w, emulator):
    emulator.settings(scim_external_id="drop")
    sp = w.service_principals.create(display_name="dropped", external_id="stack:dev")
    assert sp.external_id is None
    assert w.service_principals.get(sp.id).external_id is None
    assert list(w.service_principals.list(filter='externalId eq "stack:dev"')) == []
    w.service_principals.update(sp.id, display_name="dropped", external_id="again")
    assert w.service_principals.get(sp.id).external_id is None


# ---- strict paths -----------------------------------------------------------------------------


@pytest.mark.parametrize("method,path", [
    ("POST", "//oidc/v1/token"),
    ("POST", "/serving-endpoints//invocations"),
    ("GET", "/api/2.0//serving-endpoints"),
    ("GET", "/api/2.0/serving-endpoints/"),
    ("GET", "//api/2.0/serving-endpoints"),
])
def test_a_path_with_an_empty_segment_is_not_found(emulator, method, path):
    resp = requests.request(method, emulator.url + path, timeout=10,
                            headers={"Authorization": f"Bearer {emulator.admin_token}"},
                            data={"grant_type": "client_credentials"})
    assert resp.status_code == 404
    assert resp.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_a_trailing_slash_in_a_base_url_now_fails(emulator, make_sp):
    sp, secret = make_sp()
    base = emulator.url + "/"  # a careless api_base: every path below it gains a '//'
    resp = requests.post(base + "/oidc/v1/token", auth=(sp.application_id, secret.secret),
                         data={"grant_type": "client_credentials", "scope": "all-apis"}, timeout=10)
    assert resp.status_code == 404
    ok = requests.post(emulator.url + "/oidc/v1/token", auth=(sp.application_id, secret.secret),
                       data={"grant_type": "client_credentials", "scope": "all-apis"}, timeout=10)
    assert ok.status_code == 200


# ---- ACL order, duplicates, SCIM reads --------------------------------------------------------


def test_acl_entries_come_back_in_no_fixed_order_repeatable_by_seed(w, emulator, make_sp):
    ep = w.serving_endpoints.create_and_wait("acl", config=llama_config("acl"), timeout=WAIT)
    sps = [make_sp(f"p{i}")[0] for i in range(4)]
    w.serving_endpoints.update_permissions(ep.id, access_control_list=[_grant(s.application_id) for s in sps])

    def orders() -> list[tuple[str, ...]]:
        return [tuple(a.service_principal_name or a.group_name or a.user_name
                      for a in w.serving_endpoints.get_permissions(ep.id).access_control_list)
                for _ in range(8)]

    emulator.settings(seed=12345)
    first = orders()
    assert len(set(first)) > 1  # 6 entries, 8 reads: one fixed order would be a bug
    assert len({frozenset(o) for o in first}) == 1  # same entries every time
    emulator.settings(seed=12345)  # given again: the same sequence of orders again
    assert orders() == first


def test_a_put_naming_one_principal_twice_keeps_the_last_level(w, make_sp):
    ep = w.serving_endpoints.create_and_wait("dup", config=llama_config("dup"), timeout=WAIT)
    sp, _ = make_sp()
    levels = ServingEndpointPermissionLevel
    perms = w.serving_endpoints.set_permissions(ep.id, access_control_list=[
        _grant(sp.application_id, levels.CAN_MANAGE), _grant(sp.application_id, levels.CAN_QUERY)])
    assert _levels(perms)[sp.application_id] == "CAN_QUERY"
    perms = w.serving_endpoints.set_permissions(ep.id, access_control_list=[
        _grant(sp.application_id, levels.CAN_VIEW), _grant(sp.application_id, levels.CAN_MANAGE)])
    assert _levels(perms)[sp.application_id] == "CAN_MANAGE"


def test_reading_service_principals_needs_a_workspace_admin(w, make_sp, sp_client):
    sp, secret = make_sp()
    as_sp = sp_client(sp, secret)
    with pytest.raises(PermissionDenied):
        list(as_sp.service_principals.list())
    with pytest.raises(PermissionDenied):
        as_sp.service_principals.get(sp.id)
    assert as_sp.current_user.me().user_name == sp.application_id
    assert w.service_principals.get(sp.id).id == sp.id



def test_the_propagation_window_survives_a_restart_from_the_state_file(tmp_path):
    from databricks.sdk import WorkspaceClient

    from emulator.server import EmulatorServer

    state = str(tmp_path / "state.json")
    first = EmulatorServer(port=0, admin_token="adm", ready_after=0, state_file=state,
                           propagation_delay=60).start()
    try:
        sp = WorkspaceClient(host=first.url, token="adm").service_principals.create(display_name="p")
    finally:
        first.stop()
    second = EmulatorServer(port=0, admin_token="adm", ready_after=0, state_file=state,
                            propagation_delay=60).start()
    try:
        w = WorkspaceClient(host=second.url, token="adm")
        with pytest.raises(NotFound):
            w.service_principals.get(sp.id)
        requests.post(f"{second.url}/_emulator/clock", json={"advance_seconds": 61}, timeout=10,
                      headers={"Authorization": "Bearer adm"}).raise_for_status()
        assert w.service_principals.get(sp.id).display_name == "p"
    finally:
        second.stop()


# ---- Braintrust: the silences of its OpenAPI spec ----------------------------------------------
# Every position is driven through every operation, against the spec's schemas, in
# test_braintrust_openapi.py; here, that each setting takes and answers as documented.


@pytest.mark.parametrize("status", ["404", "400", "403", 403])
def test_braintrust_unknown_id_sets_the_status_of_a_gone_record(emulator, status):
    assert emulator.settings(braintrust_unknown_id=status)["braintrust_unknown_id"] == str(status)
    headers = {"Authorization": f"Bearer {emulator.braintrust_api_key}"}
    url = f"{emulator.braintrust_url}/v1/ai_secret/0b0b0b0b-1111-4222-8333-444455556666"
    for method in ("GET", "PATCH", "DELETE"):
        r = requests.request(method, url, headers=headers, json={} if method == "PATCH" else None,
                             timeout=10)
        assert r.status_code == int(status) and set(r.json()) == {"Code", "Message"}
    r = requests.get(f"{emulator.braintrust_url}/v1/ai_secret/not-a-uuid", headers=headers, timeout=10)
    assert r.status_code == 400  # a malformed id is a 400 in every position
