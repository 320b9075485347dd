"""Bad input is refused at the edge: every broken stack file, and any fuzzed config, stops
`validate` and the program's load with a validation message naming the file, before a single
request reaches the workspace (the emulator's request log stays empty)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.spec import PROJECT, Stack, StackError, read_stack_text
from testing.stacks import ROOT

BROKEN = sorted((ROOT / "tests" / "broken_stacks").glob("*/Pulumi.*.yaml"))


class NoResources(pulumi.runtime.Mocks):
    """Loading registers nothing; a registration would be a failure of the edge."""

    def new_resource(self, args: Any) -> tuple[str, dict]:
        raise AssertionError(f"a resource was registered: {args.typ}")

    def call(self, args: Any) -> tuple[dict, list]:
        raise AssertionError("an invoke was made")


def load_program(config: dict[str, Any], stack: str) -> Stack:
    """The program's own load (`components.program.load_stack`) with `config` as the stack's."""
    from components import program

    flat = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    pulumi.runtime.set_mocks(NoResources(), project=PROJECT, stack=stack, preview=False)
    pulumi.runtime.set_all_config(flat, [])
    try:
        return program.load_stack()
    finally:
        pulumi.runtime.set_all_config({}, [])


def test_every_broken_stack_is_refused_by_validate_and_the_program_before_any_request(emulator) -> None:
    env = {**os.environ, "DATABRICKS_HOST": emulator.url, "DATABRICKS_TOKEN": emulator.admin_token,
           "BRAINTRUST_API_KEY": emulator.braintrust_api_key}
    done = subprocess.run([sys.executable, "-m", "components", "validate", *map(str, BROKEN)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    for path in BROKEN:
        lines = [line for line in done.stderr.splitlines() if line.startswith(str(path))]
        assert lines, f"{path} was not refused"
        try:
            read_stack_text(path.read_text(), str(path))
            config = (yaml.safe_load(path.read_text()) or {}).get("config")
        except (yaml.YAMLError, StackError):
            continue  # YAML-level defects (syntax, aliases, repeated keys, traps): only the file shows them
        if not isinstance(config, dict) or any(not str(k).startswith(f"{PROJECT}:") for k in config):
            continue  # file-level defects (another namespace): only the file shows them
        try:
            json.dumps(config)
        except TypeError:
            continue  # a YAML date: Pulumi hands the program its text, so only the file shows it
        with pytest.raises(pulumi.RunError) as err:
            load_program(config, path.name.split(".")[1])
        assert f"stacks/Pulumi.{path.name.split('.')[1]}.yaml" in str(err.value)
    assert emulator.requests() == []


keys = st.sampled_from(["workspace", "endpoints", "principal", "braintrust", "tags", "policy",
                        "readiness_timeout_minutes", "databricks_token", "unknown"])
leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=30),
                 st.sampled_from(["http://127.0.0.1:1", "meta-llama-3.1-8b-instruct", "pat", "Small"]))
value = st.recursive(leaf, lambda c: st.one_of(st.lists(c, max_size=3),
                                               st.dictionaries(st.text(max_size=12), c, max_size=3)),
                     max_leaves=10)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(base=st.sampled_from(sorted((ROOT / "stacks").glob("Pulumi.*.yaml"))), key=keys, replacement=value)
def test_no_config_crashes_the_programs_load_with_anything_but_a_validation_message(
        emulator_server, base: Path, key: str, replacement: Any) -> None:
    config = dict(yaml.safe_load(base.read_text())["config"])
    config[f"{PROJECT}:{key}"] = replacement
    stack = base.name.split(".")[1]
    before = len(emulator_server.requests())
    try:
        result = load_program(config, stack)
    except pulumi.RunError as exc:
        assert str(exc).startswith("invalid stack configuration:\n")
        assert f"stacks/Pulumi.{stack}.yaml" in str(exc)
    else:
        assert isinstance(result, Stack)
    assert len(emulator_server.requests()) == before
