"""The budget at `pulumi up`, through the program against the emulator: the workspace's own DBU
rate (get-model-optimization-info `dbus`) is the one used, a rate that differs from the
catalog's is a warning, and an endpoint that would put the stack over max_dbu_per_hour is
refused before its write."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from testing.deployment import provider_for
from testing.emulator import EmulatorClient
from testing.engine import EngineError, StackEngine
from testing.stacks import PROJECT, ROOT, emulator_config

LOCAL = ROOT / "stacks" / "Pulumi.local.yaml"
ENTITY = "system.ai.meta_llama_v3_1_8b_instruct"


def budget_stack(tmp_path: Path, budget: float) -> Path:
    doc = yaml.safe_load(LOCAL.read_text())
    cfg = doc["config"]
    cfg[f"{PROJECT}:endpoints"] = [
        {"name": "bt-budget-8b", "foundation_model": "meta-llama-3.1-8b-instruct", "entity_version": "3",
         "throughput": {"min": 0, "max": 19000}},
        {"name": "databricks-meta-llama-3-3-70b-instruct", "pay_per_token": True},
    ]
    cfg[f"{PROJECT}:max_dbu_per_hour"] = budget
    cfg[f"{PROJECT}:braintrust"]["publish"] = False
    path = tmp_path / "Pulumi.local.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_a_live_rate_over_the_budget_is_refused_before_the_write(emulator: EmulatorClient, tmp_path: Path) -> None:
    # The catalog says 106 DBU/h for this chunk: offline the stack is within its budget of 150.
    emulator.admin("POST", "system-models", {"entity": ENTITY, "version": "3", "dbus": 200})
    config, secrets = emulator_config(LOCAL, emulator)
    engine = StackEngine(budget_stack(tmp_path, 150), tmp_path / "state.json", config=config, secrets=secrets)
    emulator.clear_requests()
    with pytest.raises(EngineError) as info:
        engine.up()
    text = str(info.value)
    assert "over max_dbu_per_hour 150" in text and "bt-budget-8b" in text and "nothing was written" in text
    assert not [r for r in emulator.requests() if r["method"] == "POST" and r["path"].startswith(
        "/api/2.0/serving-endpoints") and "bt-budget-8b" in str(r)]
    assert "bt-budget-8b" not in {e.name for e in emulator.workspace_client().serving_endpoints.list()}


def test_within_the_budget_the_live_rate_is_used_and_a_difference_is_a_warning(
        emulator: EmulatorClient, tmp_path: Path) -> None:
    emulator.admin("POST", "system-models", {"entity": ENTITY, "version": "3", "dbus": 120})
    config, secrets = emulator_config(LOCAL, emulator)
    proc = provider_for(emulator)  # its own, to read what the provider logged
    try:
        result = StackEngine(budget_stack(tmp_path, 150), tmp_path / "state.json", config=config,
                             secrets=secrets, proc=proc).up()
        logged = proc.stderr()
    finally:
        proc.close()
    assert result.ops()["bt-budget-8b"] == "create"
    assert "rate for system.ai.meta_llama_v3_1_8b_instruct version 3 is 120 DBU/h per chunk" in logged
    assert "the catalog's 106" in logged
    assert result.export("estimated_dbu_per_hour") == {"min": 0.0, "max": 106.0, "unknown": []}
