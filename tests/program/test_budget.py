"""The budget (max_dbu_per_hour) in the program: checked on the whole plan before any resource
is registered; and the cost estimate every stack exports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from components import catalog
from components.catalog import DbuRate
from components.spec import PROJECT
from tests.program.conftest import ROOT, Mocks, install, run_program

MISTRAL = "system.ai.mistral_7b_instruct_v0_2"


def stack_file(tmp_path: Path, budget: float | None) -> Path:
    doc = yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())
    cfg = doc["config"]
    cfg[f"{PROJECT}:endpoints"] = [
        {"name": "bt-mistral", "foundation_model": "mistral-7b-instruct", "entity_version": "1",
         "throughput": {"min": 970, "max": 1940}},
        {"name": "databricks-meta-llama-3-3-70b-instruct", "pay_per_token": True},
    ]
    if budget is not None:
        cfg[f"{PROJECT}:max_dbu_per_hour"] = budget
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(autouse=True)
def rate(monkeypatch: pytest.MonkeyPatch) -> None:
    original = catalog.dbu_rate
    monkeypatch.setattr(catalog, "dbu_rate", lambda e, v: DbuRate("chunk", 970, 24.0, "test figure")
                        if (e, v) == (MISTRAL, "1") else original(e, v))


def test_a_stack_over_its_budget_registers_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mocks = install(stack_file(tmp_path, 40), monkeypatch)

    @pulumi.runtime.test  # type: ignore[misc]
    def run() -> Any:
        from components import program as prog

        return prog.build(prog.load_stack())

    try:
        with pytest.raises(pulumi.RunError) as info:
            run()
    finally:
        pulumi.runtime.set_all_config({}, [])
    assert "max_dbu_per_hour" in str(info.value) and "48 DBU/h" in str(info.value)
    assert "nothing was changed" in str(info.value)
    assert [r for r in mocks.resources if r.typ != "pulumi:pulumi:Stack"] == []  # refused before the first


def test_within_budget_the_estimate_is_exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mocks, exports, _ = run_program(stack_file(tmp_path, 48), monkeypatch)
    assert exports["estimated_dbu_per_hour"] == {"min": 24.0, "max": 48.0, "unknown": []}
    # The check adds no resource: the same plan as without a budget.
    without, _, _ = run_program(stack_file(tmp_path, None), monkeypatch)
    def declared(m: Mocks) -> list[tuple[str, str]]:
        return sorted((r.typ, r.name) for r in m.resources if r.typ != "pulumi:pulumi:Stack")
    assert declared(mocks) == declared(without)


def test_an_unknown_rate_is_exported_as_unknown_never_0(monkeypatch: pytest.MonkeyPatch) -> None:
    _, exports, _ = run_program(ROOT / "stacks" / "Pulumi.prod.yaml", monkeypatch)
    estimate = exports["estimated_dbu_per_hour"]
    assert estimate["max"] is None and estimate["min"] is None
    assert "bt-prod-llama-3-1-70b" in estimate["unknown"]
