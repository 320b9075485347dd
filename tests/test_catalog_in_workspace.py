"""The catalog against a workspace that is not ours: every model the catalog offers exists
there as it says (entity, default version, throughput chunk), every pay-per-token endpoint it
calls active is served, and none it calls retired is. Runs against the emulator, whose seed is
its own data, written independently of components/catalog.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from databricks.sdk.errors import NotFound
from databricks.sdk.service.serving import (
    EndpointCoreConfigInput,
    PtEndpointCoreConfig,
    PtServedModel,
    ServedEntityInput,
)

from components import catalog

PROVISIONED = [m for m in catalog.MODELS if m.provisioned and m.provisioned.status != "retired"]
PAY_PER_TOKEN = [m for m in catalog.MODELS if m.pay_per_token]


@pytest.mark.parametrize("model", PROVISIONED, ids=lambda m: m.key)
def test_catalog_entity_serves_at_its_default_version_and_chunk(emulator, model) -> None:
    emulator.set_ready_after(0.05)
    w = emulator.workspace_client()
    entity = model.provisioned
    name = f"cat-{model.key.replace('.', '-')}"
    if entity.capacity == "units":
        # No unit step is published: ask the workspace for its own (the emulator's is a guess).
        info = w.api_client.do("GET", f"/api/2.0/serving-endpoints/get-model-optimization-info/"
                                      f"{entity.entity_name}/{entity.default_version}")
        ep = w.serving_endpoints.create_provisioned_throughput_endpoint(name, PtEndpointCoreConfig(
            served_entities=[PtServedModel(entity_name=entity.entity_name, entity_version=entity.default_version,
                                           provisioned_model_units=info["throughput_chunk_size"])])
        ).result(timeout=timedelta(seconds=30))
    else:
        # Every catalog chunk, confirmed or not, is the one the emulator seeds for that version.
        chunk = entity.chunk_for(None)[0]
        ep = w.serving_endpoints.create_and_wait(name, config=EndpointCoreConfigInput(name=name, served_entities=[
            ServedEntityInput(entity_name=entity.entity_name, entity_version=entity.default_version,
                              min_provisioned_throughput=0, max_provisioned_throughput=chunk)]),
            timeout=timedelta(seconds=30))
    assert ep.state.ready.value == "READY"
    assert ep.config.served_entities[0].entity_name == entity.entity_name


@pytest.mark.parametrize(("model", "version"), [(m, v) for m in PROVISIONED for v in m.provisioned.versions],
                         ids=lambda x: getattr(x, "key", getattr(x, "version", "")))
def test_every_chunk_the_catalog_states_per_version_is_the_workspaces(emulator, model, version) -> None:
    w = emulator.workspace_client()
    info = w.api_client.do("GET", f"/api/2.0/serving-endpoints/get-model-optimization-info/"
                                  f"{model.provisioned.entity_name}/{version.version}")
    assert info["throughput_chunk_size"] == version.chunk


@pytest.mark.parametrize("model", PAY_PER_TOKEN, ids=lambda m: m.key)
def test_pay_per_token_endpoints_exist_exactly_when_the_catalog_calls_them_active(emulator, model) -> None:
    w = emulator.workspace_client()
    ppt = model.pay_per_token
    if ppt.status != "retired":
        assert w.serving_endpoints.get(ppt.endpoint_name).state.ready.value == "READY"
    else:
        with pytest.raises(NotFound):
            w.serving_endpoints.get(ppt.endpoint_name)
        assert ppt.replacement is None or w.serving_endpoints.get(ppt.replacement).name == ppt.replacement
