"""`python -m components render`: the plan's declarations, stable, diff-friendly, free of secrets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components import plan as planmod
from components.args import EndpointArgs, QueryGrantArgs, substitute
from components.cli import NEWEST, main
from components.spec import load_stack_file

ROOT = Path(__file__).resolve().parent.parent
STACKS = ["dev", "staging", "prod", "local"]


def render_json(target: str, capsys: pytest.CaptureFixture[str]) -> dict:
    assert main(["render", target, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("stack", STACKS)
def test_render_shows_every_declaration_of_the_plan(stack: str, capsys, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    out = render_json(stack, capsys)
    plan = planmod.build_plan(load_stack_file(ROOT / "stacks" / f"Pulumi.{stack}.yaml"))
    assert list(out["resources"]) == [d.key for d in plan]
    for decl in plan:
        shown = out["resources"][decl.key]
        assert (shown["type"], shown["name"], shown.get("parent")) == (decl.type, decl.name, decl.parent)
        if decl.custom:
            assert decl.args is not None
            wanted = json.loads(json.dumps(substitute(decl.args.inputs(), str)))
            for entity in wanted.get("served_entities", []):
                entity.setdefault("entity_version", NEWEST)
            assert shown["inputs"] == wanted
            assert shown["depends_on"] == list(plan.dependencies(decl.key))


@pytest.mark.parametrize("stack", STACKS)
def test_render_lists_every_endpoint_with_a_grant_and_the_redacted_record(stack: str, capsys, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    out = render_json(stack, capsys)
    file = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())
    declared = sorted(e["name"] for e in file["config"]["databricks-braintrust:endpoints"])
    resources = out["resources"].values()
    endpoints = [r for r in resources if r["type"].endswith(":" + EndpointArgs.TYPE_NAME)]
    grants = [r for r in resources if r["type"].endswith(":" + QueryGrantArgs.TYPE_NAME)]
    assert sorted(e["inputs"]["name"] for e in endpoints) == declared
    assert sorted(g["inputs"]["endpoint_name"] for g in grants) == declared
    assert all(g["inputs"]["service_principal_name"] == "<ServicePrincipal/query-principal.application_id>"
               for g in grants)
    provider = out["braintrust"]["provider"]
    assert provider["metadata"]["models"] == declared
    assert provider["metadata"]["auth_type"] == "service_principal_oauth"
    assert provider["secret"]["client_secret"] == "<redacted>"


def test_render_shows_an_omitted_entity_version_as_resolved_at_create(capsys, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    resources = render_json("dev", capsys)["resources"]
    stack = yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())
    models = [e for e in stack["config"]["databricks-braintrust:endpoints"] if "foundation_model" in e]
    assert models and all("entity_version" not in e for e in models)
    for e in models:
        (entity,) = resources[f"Endpoint/{e['name']}"]["inputs"]["served_entities"]
        assert entity["entity_version"] == NEWEST


def test_render_shows_an_explicit_entity_version_as_written(tmp_path: Path, capsys) -> None:
    stack = yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())
    endpoint = next(e for e in stack["config"]["databricks-braintrust:endpoints"] if "foundation_model" in e)
    endpoint["entity_version"] = "7"
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(stack))
    out = render_json(str(path), capsys)
    (entity,) = out["resources"][f"Endpoint/{endpoint['name']}"]["inputs"]["served_entities"]
    assert entity["entity_version"] == "7" and entity["name"].endswith("-7")


def test_render_is_stable_between_runs() -> None:
    runs = [subprocess.run([sys.executable, "-m", "components", "render", "prod"], cwd=ROOT,
                           capture_output=True, text=True, timeout=60).stdout for _ in range(2)]
    assert runs[0] == runs[1] and "bt-prod-llama-3-1-70b" in runs[0]


def test_render_imports_neither_pulumi_nor_databricks_sdk() -> None:
    code = ("import sys; from components.cli import main; main(['render', 'prod']); "
            "print([m for m in sys.modules if m.split('.')[0] == 'pulumi' or m.startswith('databricks.sdk')],"
            " file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr.strip() == "[]", done.stderr


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
    rendered = yaml.safe_load(out)
    assert rendered["braintrust"]["provider"]["secret"] == "<redacted>"
    record = next(r for r in rendered["resources"].values() if r["type"].endswith(":BraintrustRecord"))
    assert record["arguments"]["secret"] == "<secret config braintrust_pat>"


def test_render_of_an_invalid_stack_exits_one(tmp_path: Path, capsys) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text("config: {}\n")
    assert main(["render", str(path)]) == 1
    assert "workspace" in capsys.readouterr().err


def test_schema_command_prints_json_schema(capsys) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "databricks-braintrust stack file"
