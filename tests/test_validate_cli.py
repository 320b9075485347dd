"""`python -m components validate` on every stack and on a folder of broken stack files, each
with one defect and, in its header, the field and message words it must produce."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BROKEN = sorted(p for p in (ROOT / "tests" / "broken_stacks").glob("*/Pulumi.*.yaml"))


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "components", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


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
    broken = BROKEN[0]
    result = run_cli("validate", "dev", str(broken))
    assert result.returncode == 1
    assert "ok  stacks/Pulumi.dev.yaml" in result.stdout


def test_unknown_stack_name_lists_the_stacks_that_exist() -> None:
    result = run_cli("validate", "nosuchstack")
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
