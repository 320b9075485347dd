"""Endpoint permissions (by id) and queries: the SDK, and the official openai client with base
URL {host}/serving-endpoints and a service principal's OAuth token as the key."""

from __future__ import annotations

import openai
import pytest
import requests
from databricks.sdk.errors import InvalidParameterValue, NotFound, PermissionDenied
from databricks.sdk.service.serving import (
    ChatMessage,
    ChatMessageRole,
    EndpointCoreConfigInput,
    ServedEntityInput,
    ServingEndpointAccessControlRequest,
    ServingEndpointPermissionLevel,
)

from .conftest import PPT, WAIT, churn_config, llama_config

CAN_QUERY = ServingEndpointPermissionLevel.CAN_QUERY
CAN_VIEW = ServingEndpointPermissionLevel.CAN_VIEW


def _acl(perms):
    out = {}
    for e in perms.access_control_list:
        who = e.user_name or e.group_name or e.service_principal_name
        out[who] = {(p.permission_level.value, bool(p.inherited)) for p in e.all_permissions}
    return out


def _grant(sp, level=CAN_QUERY):
    return ServingEndpointAccessControlRequest(service_principal_name=sp.application_id,
                                               permission_level=level)


def test_permissions_are_keyed_by_id_and_a_name_is_not_found(w):
    ep = w.serving_endpoints.create("perm", config=churn_config("perm")).response
    perms = w.serving_endpoints.get_permissions(ep.id)
    assert perms.object_id == f"/serving-endpoints/{ep.id}" and perms.object_type == "serving-endpoint"
    acl = _acl(perms)
    assert acl["admins"] == {("CAN_MANAGE", True)}
    assert ("CAN_MANAGE", False) in acl["admin@emulator.local"]
    with pytest.raises(NotFound):
        w.serving_endpoints.get_permissions("perm")


def test_patch_adds_an_entry_and_leaves_other_entries_alone(w, make_sp):
    ep = w.serving_endpoints.create("grant", config=churn_config("grant")).response
    sp, _ = make_sp()
    w.serving_endpoints.update_permissions(ep.id, access_control_list=[
        ServingEndpointAccessControlRequest(user_name="alice@example.com", permission_level=CAN_VIEW)])
    acl = _acl(w.serving_endpoints.update_permissions(ep.id, access_control_list=[_grant(sp)]))
    assert acl[sp.application_id] == {("CAN_QUERY", False)}
    assert acl["alice@example.com"] == {("CAN_VIEW", False)}
    assert ("CAN_MANAGE", False) in acl["admin@emulator.local"]


def test_put_replaces_direct_entries_but_admins_stay(w, make_sp):
    ep = w.serving_endpoints.create("put", config=churn_config("put")).response
    sp, _ = make_sp()
    acl = _acl(w.serving_endpoints.set_permissions(ep.id, access_control_list=[_grant(sp)]))
    assert set(acl) == {sp.application_id, "admins"}


def test_granting_an_unknown_principal_raises_invalid_parameter_value(w):
    ep = w.serving_endpoints.create("unk", config=churn_config("unk")).response
    with pytest.raises(InvalidParameterValue):
        w.serving_endpoints.update_permissions(ep.id, access_control_list=[
            ServingEndpointAccessControlRequest(service_principal_name="00000000-0000-0000-0000-000000000000",
                                                permission_level=CAN_QUERY)])


def test_a_viewer_may_get_but_not_query_or_manage(w, emulator, make_sp, sp_client):
    emulator.set_ready_after(0.05)
    ep = w.serving_endpoints.create_and_wait("view", config=llama_config("view"), timeout=WAIT)
    sp, secret = make_sp()
    sw = sp_client(sp, secret)
    with pytest.raises(PermissionDenied):
        sw.serving_endpoints.get("view")
    w.serving_endpoints.update_permissions(ep.id, access_control_list=[_grant(sp, CAN_VIEW)])
    got = sw.serving_endpoints.get("view")
    assert got.permission_level.value == "CAN_VIEW"
    assert "view" in {e.name for e in sw.serving_endpoints.list()}
    with pytest.raises(PermissionDenied):
        sw.serving_endpoints.query("view", messages=[ChatMessage(role=ChatMessageRole.USER, content="x")])
    with pytest.raises(PermissionDenied):
        sw.serving_endpoints.set_permissions(ep.id, access_control_list=[_grant(sp)])


def test_sdk_query_answers_chat_deterministically(w, emulator):
    msgs = [ChatMessage(role=ChatMessageRole.USER, content="hello world")]
    a = w.serving_endpoints.query(PPT, messages=msgs)
    b = w.serving_endpoints.query(PPT, messages=msgs)
    assert a.choices[0].message.content == b.choices[0].message.content
    assert "hello world" in a.choices[0].message.content and a.id == b.id


def test_openai_client_is_refused_before_the_grant_and_answered_after(w, emulator, make_sp):
    emulator.set_ready_after(0.05)
    ep = w.serving_endpoints.create_and_wait("oa-llama", config=llama_config("oa-llama"), timeout=WAIT)
    sp, secret = make_sp()
    import base64

    basic = base64.b64encode(f"{sp.application_id}:{secret.secret}".encode()).decode()
    token = requests.post(f"{emulator.url}/oidc/v1/token", headers={"Authorization": f"Basic {basic}"},
                          data={"grant_type": "client_credentials", "scope": "all-apis"},
                          timeout=10).json()["access_token"]
    client = openai.OpenAI(base_url=f"{emulator.url}/serving-endpoints", api_key=token, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="oa-llama", messages=[{"role": "user", "content": "hi"}])
    w.serving_endpoints.update_permissions(ep.id, access_control_list=[_grant(sp)])
    out = client.chat.completions.create(model="oa-llama", messages=[{"role": "user", "content": "hi"}])
    assert out.object == "chat.completion" and "hi" in out.choices[0].message.content
    stream = client.chat.completions.create(model="oa-llama", stream=True,
                                            messages=[{"role": "user", "content": "streamed"}])
    assert "streamed" in "".join(c.choices[0].delta.content or "" for c in stream)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-endpoint", messages=[{"role": "user", "content": "x"}])


def test_completion_only_endpoint_refuses_chat_and_answers_completions(w, emulator):
    emulator.set_ready_after(0.05)
    emulator.admin("POST", "models", {"name": "main.ml.text_gen", "version": "1",
                                      "task": "llm/v1/completions"})
    cfg = EndpointCoreConfigInput(name="gen", served_entities=[ServedEntityInput(
        entity_name="main.ml.text_gen", entity_version="1", workload_size="Small",
        scale_to_zero_enabled=False)])
    w.serving_endpoints.create_and_wait("gen", config=cfg, timeout=WAIT)
    client = openai.OpenAI(base_url=f"{emulator.url}/serving-endpoints", api_key=emulator.admin_token,
                           max_retries=0)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gen", messages=[{"role": "user", "content": "x"}])
    out = client.completions.create(model="gen", prompt="Once upon")
    assert out.object == "text_completion" and "Once upon" in out.choices[0].text


def test_a_custom_model_answers_predictions(w, emulator):
    emulator.set_ready_after(0.05)
    w.serving_endpoints.create_and_wait("churn", config=churn_config("churn"), timeout=WAIT)
    out = w.serving_endpoints.query("churn", dataframe_records=[{"tenure": 3}, {"tenure": 40}])
    assert len(out.predictions) == 2


def test_an_endpoint_not_ready_yet_refuses_queries_with_400(w, emulator):
    emulator.set_ready_after(30)
    w.serving_endpoints.create("slow", config=llama_config("slow"))
    r = requests.post(f"{emulator.url}/serving-endpoints/slow/invocations",
                      headers={"Authorization": f"Bearer {emulator.admin_token}"},
                      json={"messages": [{"role": "user", "content": "x"}]}, timeout=10)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_STATE"


def test_unknown_endpoint_query_is_404(emulator):
    r = requests.post(f"{emulator.url}/serving-endpoints/nope/invocations",
                      headers={"Authorization": f"Bearer {emulator.admin_token}"},
                      json={"messages": [{"role": "user", "content": "x"}]}, timeout=10)
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


# Deprecated in favour of databricks-openai, but it is what users of this SDK version call.
@pytest.mark.filterwarnings("ignore:get_open_ai_client")
def test_sdk_built_openai_client_answers_chat_on_a_pay_per_token_endpoint(w, emulator):
    # What a Databricks user writes first: the SDK builds the OpenAI client with its own auth.
    client = w.serving_endpoints.get_open_ai_client()
    assert str(client.base_url).rstrip("/") == f"{emulator.url}/serving-endpoints"
    out = client.chat.completions.create(model=PPT, messages=[{"role": "user", "content": "ping"}])
    assert out.object == "chat.completion" and out.choices[0].message.content


# Deprecated in favour of databricks-openai, but it is what users of this SDK version call.
@pytest.mark.filterwarnings("ignore:get_open_ai_client")
def test_a_custom_model_without_a_task_answers_the_openai_client_like_a_chat_agent(w, emulator):
    emulator.set_ready_after(0.05)
    w.serving_endpoints.create_and_wait("agent", config=churn_config("agent"), timeout=WAIT)
    client = w.serving_endpoints.get_open_ai_client()
    out = client.chat.completions.create(model="agent", messages=[{"role": "user", "content": "churn?"}])
    assert "churn?" in out.choices[0].message.content
