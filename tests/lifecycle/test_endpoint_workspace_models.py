"""Throughput chunks, model versions and retirements come from the workspace, not from the
catalog: checked before anything is written, resolved once at create, never drifting."""

from __future__ import annotations

from typing import Any

import pytest

from components.providers.endpoint import Endpoint, EndpointProvider
from testing.provider import Engine, ProviderCallError
from tests.lifecycle.conftest import Target

LLAMA_8B = "system.ai.meta_llama_v3_1_8b_instruct"
MIXTRAL = "system.ai.mixtral_8x7b_instruct_v0_1"
DIFF_NONE = 1  # provider_pb2.DiffResponse.DIFF_NONE


def provisioned(target: Target, entity: str = LLAMA_8B, version: str | None = "1",
                max_tp: int = 1240, base: str = "pt") -> dict[str, Any]:
    served: dict[str, Any] = {"name": "llm", "entity_name": entity,
                              "min_provisioned_throughput": 0, "max_provisioned_throughput": max_tp}
    if version is not None:
        served["entity_version"] = version
    return {"name": target.name(base), "mode": "provisioned", "served_entities": [served],
            "traffic": None, "tags": {"managed-by": "databricks-braintrust/lifecycle"},
            "rate_limits": [], "usage_tracking": False, "route_optimized": False}


def system_model(target: Target, entity: str, version: str, chunk: int | None = None,
                 served: bool = True) -> None:
    body: dict[str, Any] = {"entity": entity, "version": version, "served": served}
    if chunk is not None:
        body["throughput_chunk_size"] = chunk
    target.emulator.admin("POST", "system-models", body)


def writes_since(target: Target, before: int) -> list[dict[str, Any]]:
    return [r for r in target.emulator.requests()[before:] if r["method"] != "GET"]


def test_a_throughput_off_the_live_chunk_fails_before_anything_is_written(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    # The workspace's chunk differs from the catalog's 1240: the live one decides.
    system_model(target, LLAMA_8B, "1", chunk=1500)
    inputs = provisioned(target, max_tp=1240)
    before = len(target.emulator.requests())
    with pytest.raises(ProviderCallError) as err:
        engine.register(Endpoint, EndpointProvider, "pt", inputs)
    first = err.value.message.splitlines()[0]
    assert inputs["name"] in first and LLAMA_8B in first
    assert "multiple of 1500" in first and "1500, 3000" in first
    assert writes_since(target, before) == []
    ok = engine.register(Endpoint, EndpointProvider, "pt", provisioned(target, max_tp=3000))
    assert ok.op == "create"


def test_an_update_off_the_live_chunk_fails_before_anything_is_written(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    inputs = provisioned(target)
    engine.register(Endpoint, EndpointProvider, "pt", inputs)
    before = len(target.emulator.requests())
    wrong = provisioned(target, max_tp=2000)
    with pytest.raises(ProviderCallError) as err:
        engine.register(Endpoint, EndpointProvider, "pt", wrong)
    assert "multiple of 1240" in err.value.message.splitlines()[0]
    assert writes_since(target, before) == []


def test_an_omitted_version_is_the_newest_served_resolved_once_and_never_drifting(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    # A workspace that does not serve "1" at all, and serves a newer "4".
    system_model(target, LLAMA_8B, "1", served=False)
    system_model(target, LLAMA_8B, "4", chunk=1240)
    inputs = provisioned(target, version=None)
    step = engine.register(Endpoint, EndpointProvider, "pt", inputs)
    assert step.op == "create"
    assert step.outputs["served_entities"][0]["entity_version"] == "4"
    ep = target.client().serving_endpoints.get(inputs["name"])
    cfg = ep.pending_config or ep.config
    assert cfg is not None and cfg.served_entities is not None
    assert cfg.served_entities[0].entity_version == "4"
    # A newer version appears: the stack keeps what it resolved, and a no-op up asks nothing.
    system_model(target, LLAMA_8B, "5", chunk=1240)
    before = len(target.emulator.requests())
    diff = engine.diff(Endpoint, EndpointProvider, "pt", inputs)
    assert diff.changes == DIFF_NONE
    assert engine.register(Endpoint, EndpointProvider, "pt", inputs).op == "same"
    assert len(target.emulator.requests()) == before
    # An in-place change keeps the version resolved at create.
    more = provisioned(target, version=None, max_tp=2480)
    step = engine.register(Endpoint, EndpointProvider, "pt", more)
    assert step.op == "update"
    assert step.outputs["served_entities"][0]["entity_version"] == "4"


def test_a_model_with_no_served_version_fails_naming_endpoint_and_model(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    for v in ("1", "2", "3", "4"):
        system_model(target, LLAMA_8B, v, served=False)
    inputs = provisioned(target, version=None)
    with pytest.raises(ProviderCallError) as err:
        engine.register(Endpoint, EndpointProvider, "pt", inputs)
    first = err.value.message.splitlines()[0]
    assert inputs["name"] in first and LLAMA_8B in first and "entity_version" in first


def test_a_retired_model_names_the_endpoint_the_model_and_what_to_serve_instead(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    target.emulator.admin("POST", "settings", {"retired": [MIXTRAL]})
    inputs = provisioned(target, entity=MIXTRAL, max_tp=1080, base="mixtral")
    with pytest.raises(ProviderCallError) as err:
        engine.register(Endpoint, EndpointProvider, "mixtral", inputs)
    first = err.value.message.splitlines()[0]
    assert "retired" in first and inputs["name"] in first and MIXTRAL in first
    # The catalog's replacement (Mixtral's successor on pay-per-token, also served provisioned).
    assert "replacement for mixtral-8x7b-instruct is foundation_model: meta-llama-3.3-70b-instruct" \
        in first
    assert inputs["name"] not in [e.name for e in target.client().serving_endpoints.list()]


def test_an_entity_switched_to_another_model_without_a_version_gets_that_models_newest(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    engine.register(Endpoint, EndpointProvider, "pt", provisioned(target, version="1"))
    target.emulator.set_ready_after(0)
    target.client().serving_endpoints.wait_get_serving_endpoint_not_updating(target.name("pt"))
    other = provisioned(target, entity=MIXTRAL, version=None, max_tp=1080)
    step = engine.register(Endpoint, EndpointProvider, "pt", other)
    assert step.op == "update"
    assert step.outputs["served_entities"][0]["entity_version"] == "3"  # Mixtral's newest


@pytest.mark.parametrize("kind", ["custom", "provisioned"])
def test_a_model_version_the_workspace_lacks_is_named_first_before_any_permission_hint(
        target: Target, engine: Engine, kind: str) -> None:
    target.needs_emulator()
    if kind == "custom":
        inputs = provisioned(target, base="nover")
        inputs["served_entities"] = [{"name": "churn", "entity_name": "main.ml.churn_scorer",
                                      "entity_version": "99", "workload_size": "Small",
                                      "scale_to_zero_enabled": True}]
        inputs["mode"] = "custom"
        model = "main.ml.churn_scorer version 99"
    else:
        inputs = provisioned(target, version="99", base="nover")
        model = f"{LLAMA_8B} version 99"
    with pytest.raises(ProviderCallError) as err:
        engine.register(Endpoint, EndpointProvider, "nover", inputs)
    first = err.value.message.splitlines()[0]
    assert f"the workspace has no {model}" in first, first
    assert first.index(model) < first.find("permission") if "permission" in first else True
    assert inputs["name"] in first
