"""Preview then up, through the project's program (testing.engine, the real provider process,
the emulator), for each kind of change a pull request makes: they agree resource by resource.

A preview of dynamic providers knows less than the up that follows: Pulumi passes them no
`stables`, so whatever an update computes is unknown downstream. The providers' diff rules
(grant, OAuth secret) read that unknown for what it is, so a preview never shows a replace (or
a create or a delete) that up does not do. What it may still show is an update of a resource
whose inputs were unknown (the engine marks it `unknowns`) that up then finds unchanged; never
an update of fully known inputs that up skips. And `python -m components diff` says the same
as up, from the stack files alone.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from components import diff as diffmod
from components.args import ENDPOINT
from components.spec import load_stack_file
from testing.emulator import EmulatorClient
from testing.engine import CommandResult, StackEngine
from testing.stacks import PROJECT, ROOT, emulator_config

LOCAL = ROOT / "stacks" / "Pulumi.local.yaml"
PT = "bt-local-llama-3-1-8b"
CUSTOM = "bt-local-churn-scorer"
EP = f"{PROJECT}:endpoints"

Edit = Callable[[dict[str, Any]], None]


def endpoint(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in cfg[EP] if e["name"] == name)


def double_throughput(cfg: dict[str, Any]) -> None:
    endpoint(cfg, PT)["throughput"]["max"] *= 2


def add_model(cfg: dict[str, Any]) -> None:
    cfg[EP].append({**copy.deepcopy(endpoint(cfg, CUSTOM)), "name": "bt-local-added"})


def switch_custom_to_foundation(cfg: dict[str, Any]) -> None:
    cfg[EP] = [e for e in cfg[EP] if e["name"] != CUSTOM] + [
        {"name": CUSTOM, "foundation_model": "meta-llama-3.1-8b-instruct", "throughput": {"min": 0, "max": 1240}}]


def switch_foundation_to_custom(cfg: dict[str, Any]) -> None:
    cfg[EP] = [e for e in cfg[EP] if e["name"] != CUSTOM] + [
        {"name": CUSTOM, "model": {"name": "main.ml.churn_scorer", "version": "3"}, "workload_size": "Small",
         "scale_to_zero": True, "flavor": "completion"}]


def rename_endpoint(cfg: dict[str, Any]) -> None:
    endpoint(cfg, "bt-local-added")["name"] = "bt-local-renamed"


def remove_endpoint(cfg: dict[str, Any]) -> None:
    cfg[EP] = [e for e in cfg[EP] if e["name"] != "bt-local-renamed"]


def rename_principal(cfg: dict[str, Any]) -> None:
    cfg[f"{PROJECT}:principal"]["display_name"] = "braintrust-local-renamed"


def tag_endpoints(cfg: dict[str, Any]) -> None:
    cfg[f"{PROJECT}:tags"]["team"] = "search"


CHANGES: list[tuple[str, Edit]] = [
    ("double a throughput", double_throughput),
    ("add a model", add_model),
    ("switch an endpoint from a custom to a foundation model", switch_custom_to_foundation),
    ("switch it back to the custom model", switch_foundation_to_custom),
    ("rename an endpoint", rename_endpoint),
    ("remove an endpoint", remove_endpoint),
    ("rename the principal", rename_principal),
    ("change every endpoint's tags", tag_endpoints),
]


def agree(preview: CommandResult, up: CommandResult, what: str) -> None:
    previewed, done = preview.ops(), up.ops()
    steps = preview.by_name()
    assert set(previewed) == set(done), what
    for name, op in done.items():
        shown = previewed[name]
        if shown == op:
            continue
        # The one allowed difference: an update previewed from unknown inputs that up found unchanged.
        assert (shown, op) == ("update", "same") and steps[name].unknowns, (
            f"{what}: {name} previewed as {shown}, but up did {op}")


def diff_agrees(before: Path, after: Path, up: CommandResult, what: str) -> None:
    """`python -m components diff` over the same two stack files: each resource up created,
    replaced or deleted, it says so; what up left alone, it never lists."""
    report = diffmod.diff_files(before, after)
    (sd,) = report.stacks
    said = {key.split("/", 1)[1]: c.action for c in sd.changes for key in [c.key]}
    for name, op in up.ops().items():
        if op in ("create", "replace", "delete"):
            assert said.get(name) == op, f"{what}: diff says {said.get(name)} for {name}, up did {op}"
        elif op == "same":
            assert name not in said, f"{what}: diff says {said[name]} for {name}, which up left alone"


def test_preview_agrees_with_up_for_each_kind_of_change(emulator: EmulatorClient, tmp_path: Path) -> None:
    # The custom model serves chat, as the foundation model it switches with does: the workspace
    # refuses an in-place switch that changes the endpoint's task.
    emulator.admin("POST", "models", {"name": "main.ml.churn_scorer", "version": "3", "task": "llm/v1/chat"})
    state = tmp_path / "state.json"
    config, secrets = emulator_config(LOCAL, emulator)
    doc = yaml.safe_load(LOCAL.read_text())
    current = tmp_path / "base" / "Pulumi.local.yaml"
    current.parent.mkdir()
    current.write_text(yaml.safe_dump(doc, sort_keys=False))
    StackEngine(current, state, config=config, secrets=secrets).up()

    replaced: list[str] = []
    for step, (what, edit) in enumerate(CHANGES):
        edit(doc["config"])
        changed = tmp_path / f"step-{step}" / "Pulumi.local.yaml"
        changed.parent.mkdir()
        changed.write_text(yaml.safe_dump(doc, sort_keys=False))
        load_stack_file(changed)  # a valid stack file, as a pull request would hold
        engine = StackEngine(changed, state, config=config, secrets=secrets)
        emulator.clear_requests()
        preview = engine.preview()
        assert [r for r in emulator.requests() if r["method"] != "GET"] == [], what  # a preview writes nothing
        up = engine.up()
        agree(preview, up, what)
        diff_agrees(current, changed, up, what)
        replaced += [f"{what}: {n}" for n, op in up.ops().items() if op == "replace"]
        current = changed

    # No false replace anywhere: the only replaces are an endpoint whose replace keys changed (a
    # switch between custom and foundation while `mode` is one of them) and its grant with it.
    switches = [w for w, _ in CHANGES if w.startswith("switch")]
    expected = ([f"{w}: {n}" for w in switches for n in (CUSTOM, f"{CUSTOM}-can-query")]
                if "mode" in ENDPOINT.replace_keys else [])
    assert sorted(replaced) == sorted(expected)
