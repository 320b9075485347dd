"""Serving endpoints through the real databricks-sdk: CRUD, validation, asynchronous rollouts."""

from __future__ import annotations

import pytest
from databricks.sdk.errors import (
    InvalidParameterValue,
    NotFound,
    OperationFailed,
    ResourceAlreadyExists,
    ResourceConflict,
    ResourceDoesNotExist,
)
from databricks.sdk.service.serving import (
    AiGatewayRateLimit,
    AiGatewayRateLimitRenewalPeriod,
    AiGatewayUsageTrackingConfig,
    EndpointCoreConfigInput,
    EndpointStateConfigUpdate,
    EndpointStateReady,
    EndpointTag,
    RateLimit,
    RateLimitRenewalPeriod,
    Route,
    ServedEntityInput,
    ServedModelStateDeployment,
    TrafficConfig,
)

from .conftest import CHURN, LLAMA_8B, PPT, WAIT, churn_config, llama_config


def test_pay_per_token_endpoints_exist_and_are_ready(w):
    names = {e.name for e in w.serving_endpoints.list()}
    assert {"databricks-meta-llama-3-3-70b-instruct", "databricks-meta-llama-3-1-8b-instruct",
            "databricks-llama-4-maverick", "databricks-gpt-oss-120b", "databricks-gpt-oss-20b",
            "databricks-gemma-3-12b"} <= names
    assert "databricks-meta-llama-3-1-70b-instruct" not in names  # replaced by 3.3 70B
    assert "databricks-meta-llama-3-1-405b-instruct" not in names  # retired: answers 404
    ep = w.serving_endpoints.get(PPT)
    assert ep.state.ready == EndpointStateReady.READY
    assert ep.task == "llm/v1/chat"
    assert ep.config.served_entities[0].foundation_model.name == PPT


def test_create_answers_at_once_with_only_a_pending_config(w):
    waiter = w.serving_endpoints.create("bt-llama", config=llama_config("bt-llama"))
    ep = waiter.response
    assert ep.name == "bt-llama" and ep.id and ep.id != ep.name
    assert ep.state.ready == EndpointStateReady.NOT_READY
    assert ep.state.config_update == EndpointStateConfigUpdate.IN_PROGRESS
    assert ep.config is None
    assert ep.pending_config.config_version == 1 and ep.pending_config.start_time
    entity = ep.pending_config.served_entities[0]
    assert entity.state.deployment == ServedModelStateDeployment.DEPLOYMENT_CREATING


def test_create_and_wait_ends_ready_with_entities_models_and_default_traffic(w):
    ep = w.serving_endpoints.create_and_wait("bt-churn", config=churn_config("bt-churn"),
                                             tags=[EndpointTag("team", "ml"), EndpointTag("a", "1")],
                                             timeout=WAIT)
    assert ep.state.ready == EndpointStateReady.READY
    assert ep.state.config_update == EndpointStateConfigUpdate.NOT_UPDATING
    assert ep.pending_config is None
    (entity,) = ep.config.served_entities
    assert entity.entity_name == CHURN and entity.entity_version == "3"
    assert entity.state.deployment == ServedModelStateDeployment.DEPLOYMENT_READY
    assert entity.name == "main-ml-churn_scorer-3"
    (model,) = ep.config.served_models  # the deprecated view is returned too
    assert model.model_name == CHURN
    assert ep.config.traffic_config.routes[0].served_entity_name == entity.name
    assert ep.config.traffic_config.routes[0].traffic_percentage == 100
    assert {(t.key, t.value) for t in ep.tags} == {("team", "ml"), ("a", "1")}


def test_duplicate_name_raises_resource_already_exists(w):
    w.serving_endpoints.create("dup", config=churn_config("dup"))
    with pytest.raises(ResourceAlreadyExists):
        w.serving_endpoints.create("dup", config=churn_config("dup"))


@pytest.mark.parametrize("entity", [
    ServedEntityInput(entity_name="main.ml.nope", entity_version="1", workload_size="Small",
                      scale_to_zero_enabled=True),
    ServedEntityInput(entity_name=CHURN, entity_version="99", workload_size="Small",
                      scale_to_zero_enabled=True),
])
def test_unknown_entity_or_version_raises_resource_does_not_exist(w, entity):
    with pytest.raises(ResourceDoesNotExist):
        w.serving_endpoints.create("x", config=EndpointCoreConfigInput(name="x", served_entities=[entity]))


def _pt(max_tp, min_tp=0, **kw):
    return ServedEntityInput(entity_name=LLAMA_8B, entity_version="1",
                             min_provisioned_throughput=min_tp, max_provisioned_throughput=max_tp, **kw)


def _small(**kw):
    return ServedEntityInput(entity_name=CHURN, entity_version="3", scale_to_zero_enabled=True,
                             **{"workload_size": "Small", **kw})


@pytest.mark.parametrize(("name", "entities", "traffic"), [
    ("bad name!", [_small()], None),
    ("x" * 64, [_small()], None),
    ("ok", [_small(workload_size="Huge")], None),
    ("ok", [_pt(1000)], None),  # not a multiple of Llama 3.1 8B's 1240
    ("ok", [_pt(2480, min_tp=100)], None),
    ("ok", [ServedEntityInput(entity_name=CHURN, entity_version="3", scale_to_zero_enabled=True,
                              max_provisioned_throughput=1240)], None),  # custom model, no PT
    ("ok", [_small(name="a"), _small(name="b")], None),  # two entities need a traffic config
    ("ok", [_small(name="a"), _small(name="b")],
     TrafficConfig(routes=[Route(served_entity_name="a", traffic_percentage=50),
                           Route(served_entity_name="b", traffic_percentage=40)])),
    ("ok", [_small(name="a")],
     TrafficConfig(routes=[Route(served_entity_name="zzz", traffic_percentage=100)])),
], ids=["name-chars", "name-too-long", "workload-size", "throughput-chunk", "min-throughput-chunk",
        "custom-model-throughput", "traffic-missing", "traffic-not-100", "traffic-unknown-entity"])
def test_invalid_config_raises_invalid_parameter_value(w, name, entities, traffic):
    cfg = EndpointCoreConfigInput(name=name, served_entities=entities, traffic_config=traffic)
    with pytest.raises(InvalidParameterValue):
        w.serving_endpoints.create(name, config=cfg)


def test_bad_workload_type_enum_raises_invalid_parameter_value(w, emulator):
    import requests

    body = {"name": "wt", "config": {"name": "wt", "served_entities": [
        {"entity_name": CHURN, "entity_version": "3", "workload_size": "Small",
         "scale_to_zero_enabled": True, "workload_type": "TPU"}]}}
    r = requests.post(f"{emulator.url}/api/2.0/serving-endpoints", json=body,
                      headers={"Authorization": f"Bearer {emulator.admin_token}"}, timeout=10)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_two_entities_with_split_traffic_are_accepted(w):
    cfg = EndpointCoreConfigInput(name="split", served_entities=[_small(name="a"), _small(name="b")],
                                  traffic_config=TrafficConfig(routes=[
                                      Route(served_entity_name="a", traffic_percentage=70),
                                      Route(served_entity_name="b", traffic_percentage=30)]))
    ep = w.serving_endpoints.create("split", config=cfg).response
    assert {e.name for e in ep.pending_config.served_entities} == {"a", "b"}


def test_update_during_rollout_raises_resource_conflict(w, emulator):
    emulator.set_ready_after(30)
    w.serving_endpoints.create("busy", config=churn_config("busy"))
    with pytest.raises(ResourceConflict):
        w.serving_endpoints.update_config("busy", served_entities=churn_config("busy").served_entities)


def test_update_config_rolls_out_while_the_old_config_keeps_serving(w, emulator):
    emulator.set_ready_after(0.05)
    w.serving_endpoints.create_and_wait("upd", config=llama_config("upd"), timeout=WAIT)
    emulator.set_ready_after(30)
    ep = w.serving_endpoints.update_config(
        "upd", served_entities=llama_config("upd", max_tp=2480).served_entities).response
    assert ep.state.ready == EndpointStateReady.READY
    assert ep.state.config_update == EndpointStateConfigUpdate.IN_PROGRESS
    assert ep.config.config_version == 1 and ep.pending_config.config_version == 2
    assert ep.config.served_entities[0].max_provisioned_throughput == 1240
    emulator.admin("POST", "clock", {"advance_seconds": 31})
    ep = w.serving_endpoints.wait_get_serving_endpoint_not_updating("upd", timeout=WAIT)
    assert ep.config.config_version == 2 and ep.pending_config is None
    assert ep.config.served_entities[0].max_provisioned_throughput == 2480


def test_update_config_and_wait_completes(w, emulator):
    emulator.set_ready_after(0.05)
    w.serving_endpoints.create_and_wait("upw", config=churn_config("upw"), timeout=WAIT)
    ep = w.serving_endpoints.update_config_and_wait(
        "upw", served_entities=[_small(workload_size="Medium")], timeout=WAIT)
    assert ep.config.served_entities[0].workload_size == "Medium"
    assert ep.state.config_update == EndpointStateConfigUpdate.NOT_UPDATING


def test_failed_first_rollout_raises_operation_failed_and_entity_carries_message(w, emulator):
    emulator.set_ready_after(0.05)
    emulator.fail_next_rollout("boom", "Out of GPU capacity in us-east-1")
    with pytest.raises(OperationFailed, match="UPDATE_FAILED"):
        w.serving_endpoints.create_and_wait("boom", config=llama_config("boom"), timeout=WAIT)
    ep = w.serving_endpoints.get("boom")
    assert ep.state.ready == EndpointStateReady.NOT_READY
    assert ep.state.config_update == EndpointStateConfigUpdate.UPDATE_FAILED
    entity = ep.config.served_entities[0]
    assert entity.state.deployment == ServedModelStateDeployment.DEPLOYMENT_FAILED
    assert entity.state.deployment_state_message == "Out of GPU capacity in us-east-1"


def test_failed_update_keeps_the_previous_config_serving(w, emulator):
    emulator.set_ready_after(0.05)
    w.serving_endpoints.create_and_wait("keep", config=churn_config("keep"), timeout=WAIT)
    emulator.fail_next_rollout("keep", "image build failed")
    with pytest.raises(OperationFailed):
        w.serving_endpoints.update_config_and_wait(
            "keep", served_entities=[_small(workload_size="Large")], timeout=WAIT)
    ep = w.serving_endpoints.get("keep")
    assert ep.state.ready == EndpointStateReady.READY
    assert ep.config.served_entities[0].workload_size == "Small"
    failed = ep.pending_config.served_entities[0]
    assert failed.state.deployment_state_message == "image build failed"
    # A failed update may be retried at once.
    w.serving_endpoints.update_config_and_wait("keep", served_entities=[_small(workload_size="Large")],
                                               timeout=WAIT)
    assert w.serving_endpoints.get("keep").config.served_entities[0].workload_size == "Large"


def test_get_and_delete_of_unknown_endpoint_raise_not_found(w):
    with pytest.raises(NotFound):
        w.serving_endpoints.get("nope")
    with pytest.raises(ResourceDoesNotExist):
        w.serving_endpoints.delete("nope")


def test_delete_removes_the_endpoint(w):
    w.serving_endpoints.create("gone", config=churn_config("gone"))
    w.serving_endpoints.delete("gone")
    with pytest.raises(NotFound):
        w.serving_endpoints.get("gone")
    assert "gone" not in {e.name for e in w.serving_endpoints.list()}


def test_patch_tags_adds_and_deletes_by_key(w):
    w.serving_endpoints.create("tags", config=churn_config("tags"), tags=[EndpointTag("a", "1")])
    out = w.serving_endpoints.patch("tags", add_tags=[EndpointTag("b", "2"), EndpointTag("a", "9")],
                                    delete_tags=["missing"])
    assert {(t.key, t.value) for t in out.tags} == {("a", "9"), ("b", "2")}
    out = w.serving_endpoints.patch("tags", delete_tags=["a"])
    assert {t.key for t in out.tags} == {"b"}
    assert {t.key for t in w.serving_endpoints.get("tags").tags} == {"b"}


def test_put_ai_gateway_sets_and_returns_the_gateway(w, emulator):
    emulator.set_ready_after(0.05)
    w.serving_endpoints.create_and_wait("gw", config=churn_config("gw"), timeout=WAIT)
    out = w.serving_endpoints.put_ai_gateway(
        "gw", usage_tracking_config=AiGatewayUsageTrackingConfig(enabled=True),
        rate_limits=[AiGatewayRateLimit(renewal_period=AiGatewayRateLimitRenewalPeriod.MINUTE, calls=10)])
    assert out.usage_tracking_config.enabled is True
    assert w.serving_endpoints.get("gw").ai_gateway.rate_limits[0].calls == 10


def test_put_ai_gateway_during_rollout_raises_resource_conflict(w, emulator):
    emulator.set_ready_after(30)
    w.serving_endpoints.create("gwc", config=churn_config("gwc"))
    with pytest.raises(ResourceConflict):
        w.serving_endpoints.put_ai_gateway("gwc", usage_tracking_config=AiGatewayUsageTrackingConfig(enabled=True))


def test_put_rate_limits_returns_them(w):
    w.serving_endpoints.create("rl", config=churn_config("rl"))
    out = w.serving_endpoints.put("rl", rate_limits=[RateLimit(calls=5, renewal_period=RateLimitRenewalPeriod.MINUTE)])
    assert out.rate_limits[0].calls == 5


def test_429_with_retry_after_is_retried_by_the_sdk(w, emulator):
    emulator.inject_fault("GET", r"^/api/2\.0/serving-endpoints/" + PPT + "$", 429, count=1, retry_after=1)
    assert w.serving_endpoints.get(PPT).name == PPT
    statuses = [r["status"] for r in emulator.requests() if r["path"].endswith(PPT)]
    assert statuses == [429, 200]


def test_fault_offset_skips_matching_requests_first(w, emulator):
    from databricks.sdk.errors import InternalError

    emulator.inject_fault("GET", r"/serving-endpoints/" + PPT, 500, count=1, offset=1)
    w.serving_endpoints.get(PPT)
    with pytest.raises(InternalError):
        w.serving_endpoints.get(PPT)
    w.serving_endpoints.get(PPT)


def test_a_custom_model_without_sizing_gets_small_without_scale_to_zero(w):
    cfg = EndpointCoreConfigInput(name="plain", served_entities=[
        ServedEntityInput(entity_name=CHURN, entity_version="3")])
    entity = w.serving_endpoints.create("plain", config=cfg).response.pending_config.served_entities[0]
    assert entity.workload_size == "Small" and entity.scale_to_zero_enabled is False
