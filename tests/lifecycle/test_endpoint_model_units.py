"""A unit-model endpoint through the real dynamic-provider process: created through
/serving-endpoints/pt, its units changed in place by one PUT to /pt/{name}/config, its burst
setting (never echoed by GET) kept from state without drift, its unit step checked before any
write, deleted by the ordinary DELETE."""

from __future__ import annotations

from typing import Any

import pytest
from databricks.sdk.service.serving import PtEndpointCoreConfig, PtServedModel

from components.providers.endpoint import Endpoint, EndpointProvider
from testing.provider import Engine, ProviderCallError
from tests.lifecycle.conftest import Target

MAVERICK = "system.ai.llama-4-maverick"
DIFF_NONE = 1  # provider_pb2.DiffResponse.DIFF_NONE


def units(target: Target, count: int = 50, burst: bool | None = False, version: str | None = "1",
          tags: dict[str, str] | None = None) -> dict[str, Any]:
    served: dict[str, Any] = {"name": "llama-4-maverick-1", "entity_name": MAVERICK,
                              "provisioned_model_units": count}
    if burst is not None:
        served["burst_scaling_enabled"] = burst
    if version is not None:
        served["entity_version"] = version
    return {"name": target.name("units"), "mode": "provisioned", "served_entities": [served],
            "traffic": None,
            "tags": {"managed-by": "databricks-braintrust/lifecycle", **(tags or {})},
            "rate_limits": [{"calls": 10, "renewal_period": "minute", "key": "endpoint"}],
            "usage_tracking": True, "route_optimized": False}


def writes_since(target: Target, before: int) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in target.emulator.requests()[before:] if r["method"] != "GET"]


def test_a_unit_model_endpoint_is_created_through_pt_and_changed_by_one_write(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    target.emulator.set_ready_after(0)
    inputs = units(target)
    name = inputs["name"]
    before = len(target.emulator.requests())
    step = engine.register(Endpoint, EndpointProvider, "units", inputs)
    assert step.op == "create" and step.outputs["endpoint_id"]
    assert writes_since(target, before)[0] == ("POST", "/api/2.0/serving-endpoints/pt")
    ep = target.client().serving_endpoints.get(name)
    assert ep.config.served_entities[0].provisioned_model_units == 50
    assert {t.key for t in ep.tags or []} >= {"managed-by"}
    assert ep.ai_gateway.usage_tracking_config.enabled is True
    # burst_scaling_enabled is not echoed: neither refresh nor diff reads that as drift.
    refreshed = engine.refresh(Endpoint, "units")
    assert refreshed is not None
    assert refreshed.outputs["served_entities"][0]["burst_scaling_enabled"] is False
    assert engine.diff(Endpoint, EndpointProvider, "units", inputs).changes == DIFF_NONE
    # A change of units: one write, in place, to the /pt config route.
    before = len(target.emulator.requests())
    step = engine.register(Endpoint, EndpointProvider, "units", units(target, count=100))
    assert step.op == "update" and not list(step.diff.replaces)
    assert writes_since(target, before) == [("PUT", f"/api/2.0/serving-endpoints/pt/{name}/config")]
    assert target.client().serving_endpoints.get(name).config.served_entities[0].provisioned_model_units == 100
    engine.destroy(Endpoint, "units")
    assert name not in [e.name for e in target.client().serving_endpoints.list()]


def test_units_off_the_workspaces_unit_step_fail_before_anything_is_written(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    before = len(target.emulator.requests())
    with pytest.raises(ProviderCallError) as err:
        engine.register(Endpoint, EndpointProvider, "units", units(target, count=30))
    first = err.value.message.splitlines()[0]
    assert target.name("units") in first and MAVERICK in first
    assert "model units 30 is not a multiple of the workspace's unit step of 50" in first
    assert "nothing was written" in err.value.message
    assert writes_since(target, before) == []


def test_an_omitted_version_is_resolved_and_the_units_change_keeps_it(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    target.emulator.set_ready_after(0)
    step = engine.register(Endpoint, EndpointProvider, "units", units(target, version=None, burst=None))
    assert step.outputs["served_entities"][0]["entity_version"] == "1"
    step = engine.register(Endpoint, EndpointProvider, "units", units(target, count=150, version=None,
                                                                     burst=None))
    assert step.op == "update" and step.outputs["served_entities"][0]["entity_version"] == "1"


def test_a_unit_model_sent_as_tokens_per_second_names_model_units_as_the_fix(
        target: Target, engine: Engine) -> None:
    # What a stale catalog entry would send: the workspace's recorded refusal is turned into
    # the stack-file fix.
    target.needs_emulator()
    inputs = units(target)
    inputs["served_entities"] = [{"name": "llama-4-maverick-1", "entity_name": MAVERICK,
                                  "entity_version": "1", "min_provisioned_throughput": 0,
                                  "max_provisioned_throughput": 1000}]
    with pytest.raises(ProviderCallError) as err:
        engine.register(Endpoint, EndpointProvider, "units", inputs)
    first = err.value.message.splitlines()[0]
    assert "sells this model in model units" in first and MAVERICK in first
    assert "model_units: N" in err.value.message


def test_a_lost_answer_to_the_pt_create_adopts_the_one_endpoint_it_made_and_drift_is_repaired(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    target.emulator.set_ready_after(0)
    target.emulator.admin("POST", "faults", {"kind": "lost-answer", "method": "POST",
                                             "path": r"^/api/2\.0/serving-endpoints/pt$", "count": 1})
    inputs = units(target)
    step = engine.register(Endpoint, EndpointProvider, "units", inputs)
    assert step.op == "create"
    assert [e.name for e in target.client().serving_endpoints.list()].count(inputs["name"]) == 1
    assert step.outputs["endpoint_id"] == target.client().serving_endpoints.get(inputs["name"]).id
    # Someone changes the units out of band: refresh records it, the next up puts ours back.
    target.client().serving_endpoints.update_provisioned_throughput_endpoint_config(
        inputs["name"], PtEndpointCoreConfig(served_entities=[PtServedModel(
            entity_name=MAVERICK, entity_version="1", name="llama-4-maverick-1",
            provisioned_model_units=200)]))
    refreshed = engine.refresh(Endpoint, "units")
    assert refreshed is not None
    assert refreshed.outputs["served_entities"][0]["provisioned_model_units"] == 200
    assert engine.register(Endpoint, EndpointProvider, "units", inputs).op == "update"
    served = target.client().serving_endpoints.get(inputs["name"]).config.served_entities[0]
    assert served.provisioned_model_units == 50
