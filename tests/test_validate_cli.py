"""`python -m components validate` on every stack and on a folder of broken stack files, each
with one defect and, in its header, the field and message words it must produce."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import run_cli, run_cli_process

ROOT = Path(__file__).resolve().parent.parent
BROKEN = sorted(p for p in (ROOT / "tests" / "broken_stacks").glob("*/Pulumi.*.yaml"))


def expectations(path: Path) -> tuple[str, str]:
    header = path.read_text().splitlines()[:2]
    field = re.match(r"# expect-field: (.*)", header[0]).group(1)
    message = re.match(r"# expect-message: (.*)", header[1]).group(1)
    return field, message


def test_every_stack_in_stacks_folder_is_valid() -> None:
    result = run_cli("validate")
    assert result.returncode == 0, result.stderr
    for stack in ("dev", "staging", "prod", "local"):
        assert f"Pulumi.{stack}.yaml" in result.stdout


def test_there_are_enough_broken_stacks() -> None:
    assert len(BROKEN) >= 25


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.parent.name)
def test_broken_stack_is_refused_with_field_and_fix(path: Path) -> None:
    field, message = expectations(path)
    result = run_cli("validate", str(path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.startswith(str(path))]
    assert lines, result.stderr
    assert any(field in line and message in line for line in lines), result.stderr
    # Every problem line is FILE: field.path: what is wrong (how to fix).
    for line in lines:
        assert line.rstrip().endswith(")"), line


def test_validate_names_stacks_by_name_and_exits_one_when_any_is_invalid() -> None:
    # A real `python -m components` process: its exit status and streams, not main()'s return.
    broken = BROKEN[0]
    result = run_cli_process("validate", "dev", str(broken))
    assert result.returncode == 1
    assert "ok  stacks/Pulumi.dev.yaml" in result.stdout


def test_unknown_stack_name_lists_the_stacks_that_exist() -> None:
    result = run_cli_process("validate", "nosuchstack")
    assert result.returncode == 1
    assert result.stderr.startswith("nosuchstack: no such stack")
    assert "dev, local, prod, staging" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_does_not_import_databricks_sdk_or_pulumi() -> None:
    code = (
        "import sys; from components.cli import main; rc = main(['validate']);"
        "bad = [m for m in sys.modules if m.startswith(('databricks', 'pulumi'))]; print(bad); sys.exit(rc)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_validate_a_folder_checks_every_stack_file_in_it() -> None:
    result = run_cli("validate", "stacks/")
    assert result.returncode == 0, result.stderr
    assert [line.split()[1] for line in result.stdout.splitlines()] == [
        f"stacks/Pulumi.{name}.yaml" for name in ("dev", "local", "prod", "staging")]


def test_validate_a_folder_with_a_broken_stack_fails(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.good.yaml").write_text((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())
    (tmp_path / "Pulumi.bad.yaml").write_text(BROKEN[0].read_text())
    (tmp_path / "notes.yaml").write_text("not: a stack\n")
    result = run_cli("validate", str(tmp_path))
    assert result.returncode == 1
    assert f"ok  {tmp_path / 'Pulumi.good.yaml'}" in result.stdout
    assert str(tmp_path / "Pulumi.bad.yaml") in result.stderr and "notes.yaml" not in result.stderr


def test_an_empty_folder_is_refused_with_a_message(tmp_path: Path) -> None:
    result = run_cli("validate", str(tmp_path))
    assert result.returncode == 1 and "no Pulumi.<stack>.yaml files" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("target", ["stacks/Pulumi.dev", "stacks/Pulumi.dev.yaml", "Pulumi.dev", "dev",
                                    "./stacks/Pulumi.dev.yaml"])
@pytest.mark.parametrize("command", ["validate", "render"])
def test_every_spelling_of_a_stack_reaches_its_file_unmangled(command: str, target: str) -> None:
    result = run_cli(command, target)
    assert result.returncode == 0, result.stderr
    assert "stacks/Pulumi.dev.yaml" in result.stdout
    assert "Pulumi.stacks" not in result.stdout + result.stderr


@pytest.mark.parametrize("target", ["stacks/Pulumi.nope", "stacks/Pulumi.nope.yaml", "nope"])
@pytest.mark.parametrize("command", ["validate", "render"])
def test_an_unknown_stack_or_file_lists_the_stacks_that_exist(command: str, target: str) -> None:
    result = run_cli(command, target)
    assert result.returncode == 1
    assert result.stderr.startswith(f"{target}: no such stack")
    assert "dev, local, prod, staging" in result.stderr and "Traceback" not in result.stderr


def test_render_of_a_folder_says_it_is_a_folder() -> None:
    result = run_cli("render", "stacks")
    assert result.returncode == 1 and "is a folder" in result.stderr


def test_an_unpinned_version_is_checked_against_an_assumed_chunk_as_a_warning(tmp_path: Path) -> None:
    # Mistral's 970 is confirmed for version 1 only; the stack pins none, so the provider will
    # serve whatever the workspace's newest is: validate warns, naming the version it assumed.
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text((ROOT / "stacks" / "Pulumi.dev.yaml").read_text().replace("max: 970}", "max: 1000}"))
    result = run_cli("validate", str(path))
    assert result.returncode == 0, result.stderr
    assert f"ok  {path}" in result.stdout
    warning = next(line for line in result.stderr.splitlines() if "warning" in line)
    assert warning.startswith(f"{path}: endpoints[bt-dev-mistral-7b].throughput.max: warning: 1000 ")
    assert "970" in warning and "unconfirmed" in warning and "version 1, which validate assumes" in warning


def test_a_chunk_confirmed_for_the_pinned_version_refuses_a_non_multiple(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text((ROOT / "stacks" / "Pulumi.dev.yaml").read_text().replace(
        "throughput: {min: 0, max: 970}", "entity_version: '1'\n      throughput: {min: 0, max: 1000}"))
    result = run_cli("validate", str(path))
    assert result.returncode == 1
    assert "endpoints[bt-dev-mistral-7b].throughput.max: 1000 is not a multiple of 970" in result.stderr


def test_llama_8b_version_3_takes_its_own_chunk_of_19000(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text((ROOT / "stacks" / "Pulumi.dev.yaml").read_text().replace(
        "throughput: {min: 0, max: 1240}", "entity_version: '3'\n      throughput: {min: 0, max: 19000}"))
    result = run_cli("validate", str(path))
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr
    # ... and 1240, the chunk of another version, is refused for version 3.
    path.write_text((ROOT / "stacks" / "Pulumi.dev.yaml").read_text().replace(
        "throughput: {min: 0, max: 1240}", "entity_version: '3'\n      throughput: {min: 0, max: 1240}"))
    result = run_cli("validate", str(path))
    assert result.returncode == 1
    assert "1240 is not a multiple of 19000 tokens/s" in result.stderr and "version 3" in result.stderr
