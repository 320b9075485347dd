"""The nightly drift check's classifier on recorded `pulumi preview --refresh --json` outputs
(tests/fixtures/drift/, in Pulumi's PreviewDigest shape): a due secret rotation is reported, not
drift; anything else the next `up` would change is drift; the report holds no value, only names."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "drift"
SCRIPT = ROOT / "scripts" / "drift_report.py"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("drift_report", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["drift_report"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


drift_report = _module()


def _load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def _run(name: str, stack: str, tmp_path: Path) -> tuple[int, str, dict[str, str]]:
    outputs = tmp_path / "github_output"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--stack", stack, str(FIXTURES / name),
                           "--github-output", str(outputs)], capture_output=True, text=True, timeout=60)
    values = dict(line.split("=", 1) for line in outputs.read_text().splitlines()) if outputs.exists() else {}
    return proc.returncode, proc.stdout, values


@pytest.mark.parametrize(("fixture", "status", "drifted", "rotating"), [
    ("clean-dev.json", "no drift", [], []),
    ("rotation-due-prod.json", "rotation due", [],
     ["OAuthSecret:query-principal-oauth", "AiSecret:databricks-prod"]),
    ("acl-and-tag-drift-staging.json", "drift",
     ["Endpoint:bt-staging-llama-3-1-8b", "QueryGrant:bt-staging-llama-3-1-8b-can-query"], []),
    ("drift-and-rotation-prod.json", "drift",
     ["Endpoint:bt-prod-llama-3-1-8b", "QueryGrant:bt-prod-llama-3-1-8b-can-query"],
     ["OAuthSecret:query-principal-oauth", "AiSecret:databricks-prod"]),
    # A secret deleted by hand is recreated: drift, and so is re-publishing the record for it.
    ("secret-deleted-dev.json", "drift", ["OAuthSecret:query-principal-oauth", "AiSecret:databricks-dev"], []),
    # The Braintrust record edited by hand, with no rotation to explain it.
    ("record-edited-dev.json", "drift", ["AiSecret:databricks-dev"], []),
    ("principal-deleted-staging.json", "drift",
     ["ServicePrincipal:query-principal", "OAuthSecret:query-principal-oauth",
      "QueryGrant:bt-staging-llama-3-1-8b-can-query"], []),
    ("refresh-failed-prod.json", "preview failed", [], []),
])
def test_recorded_previews_are_classified(fixture: str, status: str, drifted: list[str],
                                          rotating: list[str]) -> None:
    report = drift_report.classify(_load(fixture), "s")
    assert report.status == status
    assert sorted({f"{c.type}:{c.name}" for c in report.drift}) == sorted(drifted)
    assert sorted({f"{c.type}:{c.name}" for c in report.rotation}) == sorted(rotating)


def test_a_due_rotation_names_the_expiry_and_does_not_fail(tmp_path: Path) -> None:
    code, out, outputs = _run("rotation-due-prod.json", "prod", tmp_path)
    assert code == 0
    assert outputs == {"status": "rotation due", "failed": "false", "rotation_due": "true"}
    assert "Rotation due (not drift)" in out and "expire_time" in out
    assert "What the next `pulumi up` would change" not in out


def test_drift_fails_and_says_what_drifted_and_how_to_fix(tmp_path: Path) -> None:
    code, out, outputs = _run("drift-and-rotation-prod.json", "prod", tmp_path)
    assert code == 1 and outputs["status"] == "drift" and outputs["failed"] == "true"
    assert "`update` Endpoint `bt-prod-llama-3-1-8b` (tags, tags.team)" in out
    assert "`create` QueryGrant `bt-prod-llama-3-1-8b-can-query`" in out
    assert "Rotation due" in out  # reported alongside, still not counted as drift
    assert "stacks/Pulumi.prod.yaml" in out


def test_a_clean_stack_passes(tmp_path: Path) -> None:
    code, out, outputs = _run("clean-dev.json", "dev", tmp_path)
    assert code == 0 and outputs["failed"] == "false" and "matches the stack" in out


def test_a_failed_preview_fails_with_its_first_error_line_only(tmp_path: Path) -> None:
    code, out, _ = _run("refresh-failed-prod.json", "prod", tmp_path)
    assert code == 1
    assert "PERMISSION_DENIED" in out and "Traceback" not in out


def test_unreadable_input_says_how_to_produce_it(tmp_path: Path) -> None:
    bad = tmp_path / "preview.json"
    bad.write_text("error: no stack named 'prod' found\n")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--stack", "prod", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "pulumi preview --refresh --json --stack prod" in proc.stderr and "Traceback" not in proc.stderr


def test_a_rotation_mixed_with_another_replace_reason_is_drift() -> None:
    preview = _load("rotation-due-prod.json")
    for step in preview["steps"]:
        if step["urn"].endswith("OAuthSecret::query-principal-oauth"):
            step["replaceReasons"] = ["expire_time", "scopes"]
    report = drift_report.classify(preview, "prod")
    assert report.status == "drift"
    assert {c.type for c in report.drift} == {"OAuthSecret", "AiSecret"}


def _with_sweep(preview: dict[str, Any], reasons: list[str]) -> dict[str, Any]:
    """The preview as today's program makes it: the secret's sweep follows the rotated secret."""
    secret = next(s for s in preview["steps"] if s["urn"].endswith("OAuthSecret::query-principal-oauth"))
    head = secret["urn"].rsplit("::", 2)[0]
    preview["steps"].append({"op": "update", "diffReasons": reasons,
                             "urn": f"{head}::pulumi-python:dynamic/databricks-braintrust:OAuthSecretSweep"
                                    "::query-principal-oauth-sweep"})
    return preview


def test_the_sweep_following_a_rotated_secret_is_part_of_the_rotation() -> None:
    report = drift_report.classify(_with_sweep(_load("rotation-due-prod.json"), ["live_secret_id"]), "prod")
    assert report.status == "rotation due"
    assert "OAuthSecretSweep" in {c.type for c in report.rotation}
    # Without a rotation, or for another reason (a new principal), it is drift.
    clean = _with_sweep(_load("clean-dev.json"), ["live_secret_id"])
    assert drift_report.classify(clean, "dev").status == "drift"
    other = _with_sweep(_load("rotation-due-prod.json"), ["live_secret_id", "service_principal_id"])
    assert {c.type for c in drift_report.classify(other, "prod").drift} == {"OAuthSecretSweep"}


def test_a_detailed_diff_filled_in_by_the_engine_does_not_turn_a_rotation_into_drift() -> None:
    preview = _load("rotation-due-prod.json")
    for step in preview["steps"]:
        if step["urn"].endswith("OAuthSecret::query-principal-oauth"):
            step["detailedDiff"] = {k: {"kind": "delete", "inputDiff": False}
                                    for k in ("secret_id", "client_secret", "expire_time", "status")}
    report = drift_report.classify(preview, "prod")
    assert report.status == "rotation due"
    assert "client_secret" in report.markdown()  # named (never its value) in the report


def test_the_report_never_holds_a_value_from_the_preview() -> None:
    """States hold secret outputs (Pulumi blinds them, but the report must not depend on that)."""
    preview = _load("drift-and-rotation-prod.json")
    plaintext = "dose0123456789abcdef-plaintext-client-secret"
    for step in preview["steps"]:
        for key in ("oldState", "newState"):
            state = step.get(key) or {}
            if "outputs" in state:
                state["outputs"] = {**state["outputs"], "client_secret": plaintext, "record": plaintext}
    preview["config"]["databricks-braintrust:databricks_token"] = plaintext
    text = drift_report.classify(preview, "prod").markdown()
    assert plaintext not in text
    # Nor any other state value: ids, hashes, application ids.
    for value in ("6b1f0c1e-8a35-4d0e-9d0b-2f7e1c9a3b54", "4821937465012345", "3f9a", "2026-12-03"):
        assert value not in text


def test_the_fixtures_are_pulumi_preview_digests() -> None:
    """Each recorded file has PreviewDigest's shape: steps with op and urn, a change summary
    that counts the steps' ops, and no top-level key Pulumi does not write."""
    known = {"config", "steps", "diagnostics", "duration", "changeSummary", "maybeCorrupt"}
    for path in sorted(FIXTURES.glob("*.json")):
        digest = json.loads(path.read_text())
        assert set(digest) <= known, path.name
        ops: dict[str, int] = {}
        for step in digest["steps"]:
            assert step["urn"].startswith("urn:pulumi:") and step["op"], path.name
            ops[step["op"]] = ops.get(step["op"], 0) + 1
        assert digest["changeSummary"] == ops, path.name
