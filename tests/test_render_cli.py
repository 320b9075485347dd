"""`python -m components render`: stable, diff-friendly, and free of secrets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.cli import main

ROOT = Path(__file__).resolve().parent.parent
STACKS = ["dev", "staging", "prod", "local"]


@pytest.mark.parametrize("stack", STACKS)
def test_render_lists_every_endpoint_with_a_grant_and_the_redacted_record(stack: str, capsys, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["render", stack, "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    file = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())
    declared = sorted(e["name"] for e in file["config"]["databricks-braintrust:endpoints"])
    assert [e["name"] for e in out["endpoints"]] == declared
    assert sorted(g["endpoint"] for g in out["grants"]) == declared
    provider = out["braintrust"]["provider"]
    assert provider["metadata"]["models"] == declared
    assert provider["metadata"]["auth_type"] == "service_principal_oauth"
    assert provider["secret"]["client_secret"] == "<redacted>"


def test_render_is_stable_between_runs() -> None:
    runs = [subprocess.run([sys.executable, "-m", "components", "render", "prod"], cwd=ROOT,
                           capture_output=True, text=True, timeout=60).stdout for _ in range(2)]
    assert runs[0] == runs[1] and "bt-prod-llama-3-1-70b" in runs[0]


def test_render_of_a_pat_stack_holds_no_secret(tmp_path: Path, capsys) -> None:
    stack = yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())
    ciphertext = "v1:SECRETCIPHERTEXTVALUE"
    stack["config"]["databricks-braintrust:braintrust"]["auth_type"] = "pat"
    stack["config"]["databricks-braintrust:braintrust_pat"] = {"secure": ciphertext}
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(stack))
    assert main(["render", str(path)]) == 0
    out = capsys.readouterr().out
    assert ciphertext not in out
    assert yaml.safe_load(out)["braintrust"]["provider"]["secret"] == "<redacted>"


def test_render_of_an_invalid_stack_exits_one(tmp_path: Path, capsys) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text("config: {}\n")
    assert main(["render", str(path)]) == 1
    assert "workspace" in capsys.readouterr().err


def test_schema_command_prints_json_schema(capsys) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "databricks-braintrust stack file"
