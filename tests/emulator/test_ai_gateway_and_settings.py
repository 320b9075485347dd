"""The AI Gateway, notifications, description, budget policy and the /pt-vs-/config switch, as
databricks-sdk sees them: stored and returned in the SDK's shapes, bad ones refused as
Databricks refuses them (the refusal wordings are guesses, marked in the emulator)."""

from __future__ import annotations

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidParameterValue
from databricks.sdk.service.serving import (
    AiGatewayGuardrailParameters,
    AiGatewayGuardrailPiiBehavior,
    AiGatewayGuardrailPiiBehaviorBehavior,
    AiGatewayGuardrails,
    AiGatewayInferenceTableConfig,
    AiGatewayRateLimit,
    AiGatewayRateLimitKey,
    AiGatewayRateLimitRenewalPeriod,
    AiGatewayUsageTrackingConfig,
    EmailNotifications,
    FallbackConfig,
)

from .conftest import WAIT, churn_config, llama_config

MAVERICK = "system.ai.llama-4-maverick"

MINUTE = AiGatewayRateLimitRenewalPeriod.MINUTE


def ready(w: WorkspaceClient, name: str, **create_args) -> None:
    w.serving_endpoints.create_and_wait(name, config=llama_config(name), timeout=WAIT, **create_args)


def test_the_whole_gateway_is_stored_and_read_back_in_the_sdk_shapes(w: WorkspaceClient) -> None:
    ready(w, "gw")
    limits = [AiGatewayRateLimit(renewal_period=MINUTE, key=AiGatewayRateLimitKey.ENDPOINT, calls=600),
              AiGatewayRateLimit(renewal_period=MINUTE, key=AiGatewayRateLimitKey.USER, tokens=20000),
              AiGatewayRateLimit(renewal_period=MINUTE, key=AiGatewayRateLimitKey.USER_GROUP,
                                 principal="data-scientists", calls=0)]
    guardrails = AiGatewayGuardrails(
        input=AiGatewayGuardrailParameters(safety=True, pii=AiGatewayGuardrailPiiBehavior(
            AiGatewayGuardrailPiiBehaviorBehavior.BLOCK)),
        output=AiGatewayGuardrailParameters(pii=AiGatewayGuardrailPiiBehavior(
            AiGatewayGuardrailPiiBehaviorBehavior.MASK)))
    table = AiGatewayInferenceTableConfig(catalog_name="main", schema_name="logs",
                                          table_name_prefix="bt", enabled=True)
    answer = w.serving_endpoints.put_ai_gateway(
        "gw", rate_limits=limits, guardrails=guardrails, inference_table_config=table,
        usage_tracking_config=AiGatewayUsageTrackingConfig(enabled=True))
    assert answer.rate_limits == limits and answer.guardrails == guardrails
    gw = w.serving_endpoints.get("gw").ai_gateway
    assert gw is not None
    assert gw.rate_limits == limits  # a limit of 0 is stored as 0, not dropped
    assert gw.guardrails == guardrails and gw.inference_table_config == table
    assert gw.usage_tracking_config == AiGatewayUsageTrackingConfig(enabled=True)


def test_a_put_replaces_the_whole_gateway(w: WorkspaceClient) -> None:
    ready(w, "gw")
    w.serving_endpoints.put_ai_gateway("gw", rate_limits=[AiGatewayRateLimit(renewal_period=MINUTE, calls=5)],
                                       usage_tracking_config=AiGatewayUsageTrackingConfig(enabled=True))
    w.serving_endpoints.put_ai_gateway("gw", usage_tracking_config=AiGatewayUsageTrackingConfig(enabled=False))
    gw = w.serving_endpoints.get("gw").ai_gateway
    assert gw is not None and not gw.rate_limits


@pytest.mark.parametrize(("body", "words"), [
    ({"rate_limits": [{"renewal_period": "minute", "key": "user"}]}, "needs calls or tokens"),
    ({"rate_limits": [{"renewal_period": "minute", "key": "user_group", "calls": 1}]}, "needs a principal"),
    ({"rate_limits": [{"renewal_period": "minute", "key": "service_principal", "calls": 1}]},
     "needs a principal"),
    ({"rate_limits": [{"renewal_period": "minute", "key": "team", "calls": 1}]}, "key 'team' is invalid"),
    ({"rate_limits": [{"renewal_period": "minute", "calls": -1}]}, "non-negative"),
    ({"guardrails": {"input": {"toxicity": True}}}, "Unknown field(s) in ai_gateway.guardrails.input"),
    ({"guardrails": {"input": {"pii": {"behavior": "REDACT"}}}}, "pii.behavior 'REDACT' is invalid"),
    ({"inference_table_config": {"enabled": True, "catalog_name": "main"}}, "are required"),
    ({"inference_table_config": {"enabled": True, "catalog_name": "main", "schema_name": "a-b"}},
     "not a valid Unity Catalog name"),
    ({"fallback_config": {"enabled": True}}, "external models"),
])
def test_bad_gateway_settings_are_refused_as_invalid_parameters(w: WorkspaceClient, body: dict, words: str) -> None:
    ready(w, "gw")
    with pytest.raises(InvalidParameterValue, match=words.replace("(", r"\(").replace(")", r"\)")):
        w.api_client.do("PUT", "/api/2.0/serving-endpoints/gw/ai-gateway", body=body)


def test_moving_an_enabled_inference_table_is_refused_until_it_is_disabled(w: WorkspaceClient) -> None:
    ready(w, "gw")
    here = AiGatewayInferenceTableConfig(catalog_name="main", schema_name="logs", enabled=True)
    there = AiGatewayInferenceTableConfig(catalog_name="main", schema_name="audit", enabled=True)
    w.serving_endpoints.put_ai_gateway("gw", inference_table_config=here)
    with pytest.raises(InvalidParameterValue, match="disable the inference table before changing schema_name"):
        w.serving_endpoints.put_ai_gateway("gw", inference_table_config=there)
    w.serving_endpoints.put_ai_gateway("gw", inference_table_config=AiGatewayInferenceTableConfig(enabled=False))
    w.serving_endpoints.put_ai_gateway("gw", inference_table_config=there)
    gw = w.serving_endpoints.get("gw").ai_gateway
    assert gw is not None and gw.inference_table_config == there


def test_fallback_is_refused_on_an_endpoint_serving_no_external_model(w: WorkspaceClient) -> None:
    ready(w, "gw")
    with pytest.raises(InvalidParameterValue, match="external models"):
        w.serving_endpoints.put_ai_gateway("gw", fallback_config=FallbackConfig(enabled=True))


def test_notifications_are_set_at_create_changed_in_place_and_cleared_by_empty_lists(w: WorkspaceClient) -> None:
    ready(w, "gw", email_notifications=EmailNotifications(on_update_success=["a@example.com"]))
    assert w.serving_endpoints.get("gw").email_notifications == EmailNotifications(
        on_update_success=["a@example.com"])
    answer = w.serving_endpoints.update_notifications("gw", email_notifications=EmailNotifications(
        on_update_failure=["ops@example.com"]))
    assert answer.email_notifications == EmailNotifications(on_update_failure=["ops@example.com"])
    assert w.serving_endpoints.get("gw").email_notifications == EmailNotifications(
        on_update_failure=["ops@example.com"])
    # The SDK drops empty lists; sent as written they clear.
    w.api_client.do("PATCH", "/api/2.0/serving-endpoints/gw/notifications",
                    body={"email_notifications": {"on_update_success": [], "on_update_failure": []}})
    assert w.serving_endpoints.get("gw").email_notifications is None


def test_a_notification_to_something_that_is_not_an_address_is_refused(w: WorkspaceClient) -> None:
    ready(w, "gw")
    with pytest.raises(InvalidParameterValue, match="not a valid email address"):
        w.serving_endpoints.update_notifications("gw", email_notifications=EmailNotifications(
            on_update_success=["ml-platform"]))


def test_description_is_echoed_and_budget_policy_id_is_not(w: WorkspaceClient) -> None:
    w.serving_endpoints.create_and_wait("gw", config=llama_config("gw"), description="for Braintrust",
                                        budget_policy_id="policy-1", timeout=WAIT)
    ep = w.serving_endpoints.get("gw")
    assert ep.description == "for Braintrust"
    assert ep.budget_policy_id is None  # databricks/cli: GET never returns it
    raw = w.api_client.do("GET", "/api/2.0/serving-endpoints/gw")
    assert isinstance(raw, dict) and raw["effective_budget_policy_id"] == "policy-1"
    w.serving_endpoints.create_and_wait("plain", config=llama_config("plain"), timeout=WAIT)
    assert w.serving_endpoints.get("plain").description == ""


def test_a_foundation_model_endpoint_switches_to_a_custom_model_in_place(emulator, w: WorkspaceClient) -> None:
    emulator.admin("POST", "models", {"name": "main.ml.churn_scorer", "version": "3", "task": "llm/v1/chat"})
    ready(w, "gw")
    before = w.serving_endpoints.get("gw").id
    cfg = churn_config("gw")
    w.serving_endpoints.update_config_and_wait("gw", served_entities=cfg.served_entities, timeout=WAIT)
    after = w.serving_endpoints.get("gw")
    assert after.id == before
    assert after.config is not None and after.config.served_entities is not None
    assert [e.entity_name for e in after.config.served_entities] == ["main.ml.churn_scorer"]


@pytest.mark.parametrize("answer", ["refuse", "accept"])
def test_the_pt_config_switch_plays_both_answers(emulator, w: WorkspaceClient, answer: str) -> None:
    """An endpoint made through /serving-endpoints/pt updated through /config, and one made
    through /serving-endpoints updated through /pt/{name}/config: both refused, or both
    accepted, by the switch (no public source says which)."""
    emulator.settings(pt_config_switch=answer)
    emulator.admin("POST", "models", {"name": "main.ml.support_bot", "version": "1", "task": "llm/v1/chat"})
    pt_body = {"name": "units", "config": {"served_entities": [
        {"entity_name": MAVERICK, "entity_version": "1", "provisioned_model_units": 50}]}}
    w.api_client.do("POST", "/api/2.0/serving-endpoints/pt", body=pt_body)
    w.serving_endpoints.wait_get_serving_endpoint_not_updating("units", timeout=WAIT)
    ready(w, "tps")
    custom = {"served_entities": [{"entity_name": "main.ml.support_bot", "entity_version": "1",
                                   "workload_size": "Small", "scale_to_zero_enabled": False}]}
    units = {"config": pt_body["config"]}
    calls = [("PUT", "/api/2.0/serving-endpoints/units/config", custom),
             ("PUT", "/api/2.0/serving-endpoints/pt/tps/config", units)]
    for method, path, body in calls:
        if answer == "refuse":
            with pytest.raises(InvalidParameterValue, match="change its config through"):
                w.api_client.do(method, path, body=body)
        else:
            w.api_client.do(method, path, body=body)
    assert emulator.settings()["pt_config_switch"] == answer
