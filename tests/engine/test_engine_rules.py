"""The engine stand-in's own rules, on a program of its own (tests/engine/programs): aliases
adopt what state holds under an old name; secrets stay secret from config to state to exports."""

from __future__ import annotations

import asyncio
import contextvars
import json
import runpy
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.config import set_all_config
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.stack import wait_for_rpcs
from pulumi.runtime.sync_await import _sync_await
from testing.engine.props import from_struct, is_secret, strip_secrets

from testing.emulator import EmulatorClient
from testing.engine import StackEngine
from testing.mocks import PlaceholderMocks
from testing.stacks import ROOT, emulator_config

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
    assert any(u.endswith("engine-test:index:RenamedGroup$pulumi-python:dynamic/databricks-braintrust:Echo"
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


def _under_plain_mocks(stack_file: Path, config: dict[str, Any], secrets: dict[str, str]
                       ) -> list[tuple[str, str, str, str]]:
    """(type, name, parent type, inputs not computed from other resources) of every resource
    the program registers under Pulumi's own mock monitor."""
    recorded: list[Any] = []

    class Recording(MockMonitor):
        def RegisterResource(self, request: Any) -> Any:
            recorded.append(request)
            return super().RegisterResource(request)

    def run() -> None:
        loop = asyncio.new_event_loop()  # this thread's own
        asyncio.set_event_loop(loop)
        try:
            engine = StackEngine(stack_file, None, config=config, secrets=secrets)
            mocks = PlaceholderMocks()
            pulumi.runtime.set_mocks(mocks, project=engine.project, stack=engine.stack,
                                     preview=False, monitor=Recording(mocks))
            set_all_config(engine.config, sorted(engine.secret_keys))
            runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
            _sync_await(wait_for_rpcs())
        finally:
            loop.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(contextvars.Context().run, run).result()
    return sorted(_static(r.type, r.name, r.parent, from_struct(r.object),
                          {k for k, v in r.propertyDependencies.items() if v.urns})
                  for r in recorded if r.type != "pulumi:pulumi:Stack")


def _static(type_: str, name: str, parent: str, inputs: dict[str, Any], computed: set[str]
            ) -> tuple[str, str, str, str]:
    parent_type = parent.split("::")[2] if parent else ""
    kept = {k: v for k, v in strip_secrets(inputs).items() if k not in computed and k != "__provider"}
    return type_, name, parent_type.rsplit("$", 1)[-1], json.dumps(kept, sort_keys=True)


def test_the_monitor_sees_what_plain_mocks_see(emulator: EmulatorClient, shared_proc: Any,
                                               tmp_path: Path) -> None:
    stack_file = ROOT / "stacks" / "Pulumi.local.yaml"
    config, secrets = emulator_config(stack_file, emulator)
    mocked = _under_plain_mocks(stack_file, config, secrets)
    result = StackEngine(stack_file, tmp_path / "state.json", config=config, secrets=secrets,
                         proc=shared_proc).up()
    monitored = sorted(_static(r.type, r.name, r.parent, r.inputs,
                               {k for k, v in r.property_dependencies.items() if v})
                       for r in result.registrations)
    assert monitored == mocked
    # And every custom registration reached the provider process as a Check.
    checked = {c.urn for c in result.calls if c.method == "Check"}
    assert checked == {r.urn for r in result.registrations if r.custom}
