"""The GitHub workflows a team adopts: they load, trigger on the right events, call only make
targets and CLI subcommands that exist, take credentials only from the secret store, and
deploy dev, then staging, then prod, each verified."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
CREDENTIALS = ("DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET", "DATABRICKS_TOKEN", "PULUMI_ACCESS_TOKEN",
               "PULUMI_CONFIG_PASSPHRASE", "BRAINTRUST_API_KEY")
# Things that look like credentials written out: Databricks PATs, Braintrust/OpenAI keys, OAuth
# secrets (dose...), Pulumi tokens, long hex or base64 runs.
PLAINTEXT = re.compile(r"dapi[0-9a-f]{8,}|sk-[A-Za-z0-9_-]{8,}|dose[0-9a-f]{8,}|pul-[0-9a-f]{8,}|[0-9a-f]{32,}"
                       r"|[A-Za-z0-9+/]{40,}={0,2}")


def _load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    if True in data:  # YAML 1.1 reads the key `on` as the boolean true
        data["on"] = data.pop(True)
    return data


def _all() -> dict[str, dict[str, Any]]:
    return {p.name: _load(p.name) for p in sorted(WORKFLOWS.glob("*.yml"))}


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w.-]*)\s*:(?!=)", text, re.MULTILINE))


def _subcommands() -> set[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return set(action.choices)


def _steps(wf: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [(job_id, job, step) for job_id, job in wf["jobs"].items() for step in job.get("steps", [])]


def _walk(value: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _walk(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [item for i, v in enumerate(value) for item in _walk(v, f"{path}[{i}]")]
    return [(path, str(value))]


def test_there_are_exactly_the_two_workflows() -> None:
    assert sorted(_all()) == ["deploy.yml", "pr.yml"]


def test_pull_request_workflow_runs_on_pull_requests_only() -> None:
    assert set(_load("pr.yml")["on"]) == {"pull_request"}


def test_deploy_workflow_runs_on_push_to_main_only() -> None:
    on = _load("deploy.yml")["on"]
    assert set(on) == {"push"} and on["push"]["branches"] == ["main"]


@pytest.mark.parametrize("name", ["pr.yml", "deploy.yml"])
def test_every_make_call_names_an_existing_target(name: str) -> None:
    targets, seen = _make_targets(), 0
    for _, _, step in _steps(_load(name)):
        for target in re.findall(r"\bmake\s+(?:-\S+\s+)*([A-Za-z][\w.-]*)", step.get("run", "")):
            seen += 1
            assert target in targets, f"{name}: `make {target}` is not a Makefile target"
    assert seen


@pytest.mark.parametrize("name", ["pr.yml", "deploy.yml"])
def test_every_cli_call_names_an_existing_subcommand(name: str) -> None:
    subcommands, seen = _subcommands(), 0
    for _, _, step in _steps(_load(name)):
        for command in re.findall(r"python\S*\s+-m\s+components\s+(\S+)", step.get("run", "")):
            seen += 1
            assert command in subcommands, f"{name}: `python -m components {command}` does not exist"
    assert seen


def test_the_checks_find_a_missing_target_and_subcommand() -> None:
    assert "bench-nonexistent" not in _make_targets() and "up" in _make_targets()
    assert "deploy" not in _subcommands() and {"validate", "render", "verify"} <= _subcommands()


@pytest.mark.parametrize("name", ["pr.yml", "deploy.yml"])
def test_credentials_come_only_from_the_secret_store(name: str) -> None:
    wf = _load(name)
    envs = [wf.get("env") or {}] + [job.get("env") or {} for job in wf["jobs"].values()] + [
        step.get("env") or {} for _, _, step in _steps(wf)]
    for env in envs:
        for key, value in env.items():
            if key in CREDENTIALS:
                assert re.fullmatch(r"\$\{\{ secrets\.[A-Z_]+ \}\}", str(value)), f"{name}: {key}={value!r}"
    for path, text in _walk(wf):
        assert not PLAINTEXT.search(text), f"{name}{path} looks like a credential written out"


def test_the_plaintext_check_catches_a_written_out_token() -> None:
    assert PLAINTEXT.search("DATABRICKS_TOKEN: dapi0123456789abcdef0123")
    assert not PLAINTEXT.search("${{ secrets.DATABRICKS_TOKEN }}")


def test_pull_request_validates_and_renders_every_stack_without_credentials() -> None:
    wf = _load("pr.yml")
    job = wf["jobs"]["validate"]
    assert "environment" not in job and "secrets." not in str(job.get("env", ""))
    runs = " ".join(step.get("run", "") for step in job["steps"])
    assert "make validate" in runs
    assert "stacks/Pulumi.*.yaml" in runs and "-m components render" in runs
    assert "GITHUB_STEP_SUMMARY" in runs and "gh pr comment" in runs


def test_pull_request_previews_each_changed_stack_with_pulumi_actions() -> None:
    job = _load("pr.yml")["jobs"]["preview"]
    assert "changed" in job["needs"] and "validate" in job["needs"]
    assert "fromJSON(needs.changed.outputs.stacks)" in str(job["strategy"]["matrix"]["stack"])
    assert job["environment"] == "${{ matrix.stack }}-preview"
    action = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@"))
    assert action["with"]["command"] == "preview"
    assert action["with"]["stack-name"] == "${{ matrix.stack }}"


def test_deploy_goes_dev_then_staging_then_prod_each_behind_its_environment() -> None:
    jobs = _load("deploy.yml")["jobs"]
    assert set(jobs) == {"dev", "staging", "prod"}
    assert "needs" not in jobs["dev"]
    assert jobs["staging"]["needs"] in ("dev", ["dev"])
    assert jobs["prod"]["needs"] in ("staging", ["staging"])
    for stack, job in jobs.items():
        assert job["environment"] == stack


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_each_deploy_runs_pulumi_up_then_verifies_the_same_stack(stack: str) -> None:
    steps = _load("deploy.yml")["jobs"][stack]["steps"]
    up = next(i for i, s in enumerate(steps)
              if str(s.get("uses", "")).startswith("pulumi/actions@") and s["with"]["command"] == "up")
    assert steps[up]["with"]["stack-name"] == stack
    verify = next(i for i, s in enumerate(steps) if "-m components verify" in s.get("run", ""))
    assert verify > up
    assert f"--stack {stack}" in steps[verify]["run"]


def test_every_deployed_stack_has_a_stack_file() -> None:
    for stack in _load("deploy.yml")["jobs"]:
        assert (ROOT / "stacks" / f"Pulumi.{stack}.yaml").exists()
