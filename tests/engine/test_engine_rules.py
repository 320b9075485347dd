"""The engine stand-in's own rules, on a program of its own (tests/engine/programs): aliases
adopt what state holds under an old name; secrets stay secret from config to state to exports."""

from __future__ import annotations

import json
from pathlib import Path

from testing.engine import StackEngine
from testing.engine.props import is_secret

PROGRAM = Path(__file__).parent / "programs" / "aliased.py"
TOKEN = "engine-test-token-do-not-print"


def engine(tmp_path: Path, layout: str) -> StackEngine:
    stack_file = tmp_path / "Pulumi.rules.yaml"
    stack_file.write_text("config:\n  engine-test:layout: " + layout + "\n")
    return StackEngine(stack_file, tmp_path / "state.json", program=PROGRAM,
                       secrets={"engine-test:token": TOKEN})


def test_renamed_component_and_child_with_aliases_are_the_same_resources(tmp_path: Path) -> None:
    first = engine(tmp_path, "old").up()
    assert first.ops() == {"thing": "create"}
    old_urns = set(json.loads((tmp_path / "state.json").read_text())["resources"][i]["urn"]
                   for i in range(2))

    renamed = engine(tmp_path, "new").up()
    assert renamed.ops() == {"thing-renamed": "same"}
    assert "Delete" not in renamed.methods() and "Create" not in renamed.methods()
    urns = {r["urn"] for r in json.loads((tmp_path / "state.json").read_text())["resources"]}
    assert not urns & old_urns
    assert any(u.endswith("engine-test:index:RenamedGroup$pulumi-python:dynamic/engine-test:Echo"
                          "::thing-renamed") for u in urns)


def test_a_secret_input_keeps_its_outputs_secret_in_state_and_exports(tmp_path: Path) -> None:
    result = engine(tmp_path, "old").up()
    # `derived` is computed from the secret by the provider, under a new key: plain, as the
    # engine has it (only additional_secret_outputs would make it secret).
    assert result.export_is_secret("value") is False
    assert result.export_is_secret("derived") is False
    step = result.by_name()["thing"]
    assert is_secret(step.outputs["token"]) and not is_secret(step.outputs["value"])
    state = json.loads((tmp_path / "state.json").read_text())
    echo = next(r for r in state["resources"] if r["custom"])
    assert is_secret(echo["inputs"]["token"]) and is_secret(echo["outputs"]["token"])
    registrations = json.dumps([r.as_json() for r in result.registrations])
    assert TOKEN not in registrations
