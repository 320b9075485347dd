"""Model-unit endpoints (/api/2.0/serving-endpoints/pt), cost fields and the model lifecycle, as
the emulator plays them, driven by databricks-sdk exactly as a client would."""

from __future__ import annotations

import urllib.request

import pytest
from databricks.sdk.errors import InvalidParameterValue, NotFound, PermissionDenied
from databricks.sdk.service.serving import (
    EndpointCoreConfigInput,
    EndpointTag,
    PtEndpointCoreConfig,
    PtServedModel,
    ServedEntityInput,
)

from .conftest import LLAMA_8B, PPT, WAIT, llama_config

MAVERICK = "system.ai.llama-4-maverick"
OPT_INFO = "/api/2.0/serving-endpoints/get-model-optimization-info/{}/{}"


def pt_config(units: int = 50, burst: bool | None = None, entity: str = MAVERICK) -> PtEndpointCoreConfig:
    return PtEndpointCoreConfig(served_entities=[PtServedModel(
        entity_name=entity, entity_version="1", name="maverick-1", provisioned_model_units=units,
        burst_scaling_enabled=burst)])


def test_a_unit_model_endpoint_is_created_read_changed_in_place_and_deleted_through_pt(w, emulator) -> None:
    emulator.set_ready_after(0.05)
    ep = w.serving_endpoints.create_provisioned_throughput_endpoint(
        "bt-maverick", pt_config(50, burst=False), tags=[EndpointTag(key="team", value="ml")]
    ).result(timeout=WAIT)
    assert ep.state.ready.value == "READY" and ep.task == "llm/v1/chat"
    entity = ep.config.served_entities[0]
    assert (entity.entity_name, entity.entity_version, entity.provisioned_model_units) == (MAVERICK, "1", 50)
    assert entity.burst_scaling_enabled is None  # never echoed on GET
    endpoint_id, first_version = ep.id, ep.config.config_version
    # A change of units: PUT /pt/{name}/config with the body wrapped as {"config": ...}.
    emulator.clear_requests()
    changed = w.serving_endpoints.update_provisioned_throughput_endpoint_config(
        "bt-maverick", pt_config(100)).response
    writes = [r for r in emulator.requests() if r["method"] != "GET"]
    assert [(r["method"], r["path"]) for r in writes] == [
        ("PUT", "/api/2.0/serving-endpoints/pt/bt-maverick/config")]
    assert changed.name == "bt-maverick"
    now = w.serving_endpoints.get("bt-maverick")
    assert now.id == endpoint_id and now.config.config_version == first_version + 1
    assert now.config.served_entities[0].provisioned_model_units == 100
    assert {t.key: t.value for t in now.tags or []} == {"team": "ml"}
    w.serving_endpoints.delete("bt-maverick")
    with pytest.raises(NotFound):
        w.serving_endpoints.get("bt-maverick")


def test_each_api_refuses_the_other_groups_model(w) -> None:
    # A unit model on the ordinary create: the recorded wording.
    with pytest.raises(InvalidParameterValue, match="not eligible for Provisioned Throughput"):
        w.serving_endpoints.create("wrong", config=EndpointCoreConfigInput(name="wrong", served_entities=[
            ServedEntityInput(entity_name=MAVERICK, entity_version="1", min_provisioned_throughput=0,
                              max_provisioned_throughput=1000)]))
    # A band model on /pt: 400 INVALID_PARAMETER_VALUE naming the model (wording a guess).
    with pytest.raises(InvalidParameterValue, match=LLAMA_8B):
        w.serving_endpoints.create_provisioned_throughput_endpoint("wrong", pt_config(50, entity=LLAMA_8B))
    # And each config route refuses the other kind of endpoint.
    w.serving_endpoints.create("band", config=llama_config("band"))
    w.serving_endpoints.create_provisioned_throughput_endpoint("units", pt_config(50))
    with pytest.raises(InvalidParameterValue, match="pt/units/config"):
        w.serving_endpoints.update_config("units", served_entities=llama_config("units").served_entities)
    with pytest.raises(InvalidParameterValue, match="not a model-units endpoint"):
        w.serving_endpoints.update_provisioned_throughput_endpoint_config("band", pt_config(50))
    with pytest.raises(NotFound):
        w.serving_endpoints.get("wrong")


@pytest.mark.parametrize(("body", "words"), [
    ({"provisioned_model_units": 0}, "positive integer"),
    ({"provisioned_model_units": 30}, "multiple of 50 model units"),
    ({"min_provisioned_throughput": 0}, "Unknown field"),
])
def test_pt_refuses_units_it_cannot_sell(w, body: dict, words: str) -> None:
    entity = {"entity_name": MAVERICK, "entity_version": "1", "provisioned_model_units": 50, **body}
    with pytest.raises(InvalidParameterValue, match=words):
        w.api_client.do("POST", "/api/2.0/serving-endpoints/pt",
                        body={"name": "x", "config": {"served_entities": [entity]}})


def test_pt_create_takes_no_description(w) -> None:
    with pytest.raises(InvalidParameterValue, match="description"):
        w.api_client.do("POST", "/api/2.0/serving-endpoints/pt", body={
            "name": "x", "description": "nope", "config": pt_config().as_dict()})


def test_optimization_info_states_dbus_and_a_unit_models_unit_step(w, emulator) -> None:
    assert w.api_client.do("GET", OPT_INFO.format(LLAMA_8B, "3")) == {
        "optimizable": True, "model_type": "llama", "throughput_chunk_size": 19000, "dbus": 106}
    assert w.api_client.do("GET", OPT_INFO.format(LLAMA_8B, "2"))["throughput_chunk_size"] == 970
    unit = w.api_client.do("GET", OPT_INFO.format(MAVERICK, "1"))
    assert unit["optimizable"] is True and unit["throughput_chunk_size"] == 50 and unit["dbus"] > 0
    emulator.system_model(MAVERICK, "1", throughput_chunk_size=10)
    assert w.api_client.do("GET", OPT_INFO.format(MAVERICK, "1"))["throughput_chunk_size"] == 10


def test_served_entities_carry_min_and_max_dbus_in_the_raw_json(w, emulator) -> None:
    emulator.set_ready_after(0.05)
    w.serving_endpoints.create_provisioned_throughput_endpoint("u", pt_config(100)).result(timeout=WAIT)
    w.serving_endpoints.create("b", config=EndpointCoreConfigInput(name="b", served_entities=[ServedEntityInput(
        entity_name=LLAMA_8B, entity_version="3", min_provisioned_throughput=0,
        max_provisioned_throughput=38000)])).result(timeout=WAIT)
    raw_units = w.api_client.do("GET", "/api/2.0/serving-endpoints/u")["config"]["served_entities"][0]
    raw_band = w.api_client.do("GET", "/api/2.0/serving-endpoints/b")["config"]["served_entities"][0]
    assert raw_band["min_dbus"] == 0 and raw_band["max_dbus"] == 212  # 2 chunks at 106 DBU/h
    assert raw_units["min_dbus"] == raw_units["max_dbus"] > 0
    # The SDK's dataclasses drop them: only the raw JSON has them.
    assert not hasattr(w.serving_endpoints.get("b").config.served_entities[0], "max_dbus")


def test_a_retired_system_model_is_refused_and_a_legacy_one_only_where_used_lately(w, emulator) -> None:
    emulator.system_model(LLAMA_8B, "1", lifecycle="retired")
    with pytest.raises(InvalidParameterValue, match="retired"):
        w.serving_endpoints.create("r", config=llama_config("r"))
    emulator.system_model(LLAMA_8B, "1", lifecycle="deprecated", retires_on="2027-01-31", used_recently=True)
    w.serving_endpoints.create("kept", config=llama_config("kept"))
    emulator.system_model(LLAMA_8B, "1", lifecycle="legacy", used_recently=False)
    with pytest.raises(InvalidParameterValue, match="legacy.*30 days"):
        w.serving_endpoints.create("new", config=llama_config("new"))
    emulator.system_model(MAVERICK, "1", lifecycle="deprecated", retires_on="2027-03-01", used_recently=False)
    with pytest.raises(InvalidParameterValue, match="deprecated and retires on 2027-03-01"):
        w.serving_endpoints.create_provisioned_throughput_endpoint("m", pt_config())


def test_pay_per_token_lifecycle_through_the_admin_route(w, emulator) -> None:
    emulator.pay_per_token(PPT, lifecycle="legacy", used_recently=False)
    with pytest.raises(PermissionDenied, match="legacy"):
        w.api_client.do("POST", f"/serving-endpoints/{PPT}/invocations",
                        body={"messages": [{"role": "user", "content": "hi"}]})
    emulator.pay_per_token(PPT, lifecycle="deprecated", retires_on="2027-01-31", used_recently=True)
    assert w.api_client.do("POST", f"/serving-endpoints/{PPT}/invocations",
                           body={"messages": [{"role": "user", "content": "hi"}]})["choices"]
    emulator.pay_per_token(PPT, lifecycle="retired")
    with pytest.raises(NotFound):
        w.serving_endpoints.get(PPT)
    emulator.pay_per_token("databricks-new-model", display_name="New Model")
    assert w.serving_endpoints.get("databricks-new-model").state.ready.value == "READY"
    with pytest.raises(urllib.request.HTTPError) as e:
        emulator.admin("POST", "pay-per-token", {"name": PPT, "lifecycle": "gone"})
    assert e.value.code == 400


def test_the_retired_405b_endpoint_is_not_seeded(w) -> None:
    with pytest.raises(NotFound):
        w.serving_endpoints.get("databricks-meta-llama-3-1-405b-instruct")
