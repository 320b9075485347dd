"""End to end through the real program: `__main__.py` on Pulumi's runtime, the stand-in engine
(testing/engine) playing each registration on the real provider process, against the emulator.
Nothing is wired by hand: the Braintrust record `verify` proves is the one the program exported.
"""

from __future__ import annotations

import copy
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from testing.emulator import EmulatorClient
from testing.engine import EngineError, StackEngine
from testing.stacks import PROJECT, ROOT, emulator_config

LOCAL = ROOT / "stacks" / "Pulumi.local.yaml"
PT = "bt-local-llama-3-1-8b"
CUSTOM = "bt-local-churn-scorer"
PPT = "databricks-meta-llama-3-3-70b-instruct"
ADDED = "bt-local-churn-scorer-2"


def completion_model(emulator: EmulatorClient) -> None:
    """The local stack serves the churn scorer as a completion LLM (an emulator extension)."""
    emulator.admin("POST", "models", {"name": "main.ml.churn_scorer", "version": "3",
                                      "task": "llm/v1/completions"})


def verify(tmp_path: Path, record: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "braintrust_provider.json"
    path.write_text(json.dumps(record))
    return subprocess.run(
        [sys.executable, "-m", "components", "verify", "--config", str(path), "--timeout", "10",
         "--retries", "1"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=120, check=False)


def changed_stack(tmp_path: Path) -> Path:
    """The local stack with one endpoint added, one removed, one throughput changed and the
    principal's display name changed."""
    doc = yaml.safe_load(LOCAL.read_text())
    cfg = doc["config"]
    endpoints = [e for e in cfg[f"{PROJECT}:endpoints"] if e["name"] != PPT]
    for e in endpoints:
        if e["name"] == PT:
            e["throughput"] = {"min": 0, "max": 2 * e["throughput"]["max"]}
    extra = copy.deepcopy(next(e for e in endpoints if e["name"] == CUSTOM))
    endpoints.append({**extra, "name": ADDED})
    cfg[f"{PROJECT}:endpoints"] = endpoints
    cfg[f"{PROJECT}:principal"]["display_name"] = "braintrust-local-renamed"
    path = tmp_path / "Pulumi.local.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def writes(emulator: EmulatorClient) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in emulator.requests() if r["method"] != "GET"]


def test_up_noop_change_drift_preview_destroy_and_the_exported_record_verifies(
        emulator: EmulatorClient, tmp_path: Path) -> None:
    completion_model(emulator)
    state = tmp_path / "state.json"
    config, secrets = emulator_config(LOCAL, emulator)
    w = emulator.workspace_client()

    # up: every resource created, the exports' secrets kept secret, state private.
    first = StackEngine(LOCAL, state, config=config, secrets=secrets).up()
    assert set(first.ops().values()) == {"create"}
    assert {PT, CUSTOM, PPT, "query-principal", "query-principal-oauth", "local-endpoints-ready",
            "databricks-local", f"{PT}-can-query"} <= set(first.ops())
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    for name in ("braintrust_provider", "principal_client_secret"):
        assert first.export_is_secret(name), name
    assert not first.export_is_secret("braintrust_provider_redacted")
    client_secret = first.export("principal_client_secret")
    # The live secret's id, plain: what the cap's error tells to keep (never the value).
    (live,) = [s.id for s in w.service_principal_secrets_proxy.list(
        first.by_name()["query-principal"].outputs["principal_id"])]
    assert first.export("principal_secret_id") == live
    assert not first.export_is_secret("principal_secret_id")
    registrations = json.dumps([r.as_json() for r in first.registrations])
    assert client_secret not in registrations and emulator.admin_token not in registrations
    assert emulator.admin_token not in state.read_text()  # provider config is not state

    # The record the program exported works, as Braintrust would use it.
    done = verify(tmp_path, first.export("braintrust_provider"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 of 3 model(s) answered" in done.stdout
    assert client_secret not in done.stdout + done.stderr

    # A second up: nothing to do, no write and one read: the workspace's clock, which decides
    # the secret's rotation (issue 21), learnt once by the new provider process.
    emulator.clear_requests()
    again = StackEngine(LOCAL, state, config=config, secrets=secrets).up()
    assert set(again.ops().values()) == {"same"}
    assert [(r["method"], r["path"]) for r in emulator.requests()] == [
        ("GET", "/.well-known/databricks-config")]

    # The stack file changes: one endpoint added, one removed, a throughput, the display name.
    changed = changed_stack(tmp_path)
    result = StackEngine(changed, state, config=config, secrets=secrets).up()
    ops = result.ops()
    assert ops[ADDED] == "create" and ops[f"{ADDED}-can-query"] == "create"
    assert ops[PPT] == "delete" and ops[f"{PPT}-can-query"] == "delete"
    deleted = [c.urn.rsplit("::", 1)[1] for c in result.calls if c.method == "Delete"]
    assert deleted.index(f"{PPT}-can-query") < deleted.index(PPT)  # dependants first
    assert ops[PT] == "update" and ops["query-principal"] == "update"
    assert ops[CUSTOM] == "same" and ops["query-principal-oauth"] == "same"
    assert ops["databricks-local"] == "update"  # the record names other models now
    assert not [n for n, op in ops.items() if op == "replace"]
    sp = w.service_principals.get(result.by_name()["query-principal"].plain["principal_id"])
    assert sp.display_name == "braintrust-local-renamed"
    pt = w.serving_endpoints.get(PT)
    cfg = pt.pending_config or pt.config
    assert cfg is not None and cfg.served_entities is not None
    assert cfg.served_entities[0].max_provisioned_throughput == 2480

    # Drift: a tag removed by hand; refresh sees it, preview shows the repair and writes nothing.
    w.serving_endpoints.patch(CUSTOM, delete_tags=["owner"])
    engine = StackEngine(changed, state, config=config, secrets=secrets)
    refreshed = engine.refresh()
    assert "owner" not in refreshed.by_name()[CUSTOM].plain["tags"]
    assert {c.method for c in refreshed.calls} == {"Read"}
    emulator.clear_requests()
    preview = engine.preview()
    assert preview.methods() <= {"Check", "Diff"}
    assert writes(emulator) == []
    ops = preview.ops()
    assert ops[CUSTOM] == "update" and ops[PT] == "same" and ops[ADDED] == "same"
    # As in a real preview of a dynamic provider (no preview support), what the update will
    # compute is unknown downstream, so what depends on it shows as changing too.
    assert set(preview.changed()) <= {CUSTOM, f"{CUSTOM}-can-query", "local-endpoints-ready",
                                      "databricks-local"}
    repaired = engine.up()
    assert repaired.changed() == [CUSTOM]
    assert w.serving_endpoints.get(CUSTOM).tags is not None
    assert "owner" in {t.key for t in w.serving_endpoints.get(CUSTOM).tags or []}

    # The record after the change still verifies: the added endpoint answers, the removed one
    # is not in it.
    done = verify(tmp_path, repaired.export("braintrust_provider"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert ADDED in done.stdout and PPT not in done.stdout

    # destroy: everything the stack made is gone; Databricks' own endpoint stays.
    destroyed = StackEngine(changed, state, config=config, secrets=secrets).destroy()
    assert set(destroyed.ops().values()) == {"delete"}
    names = {e.name for e in w.serving_endpoints.list()}
    assert not {PT, CUSTOM, ADDED} & names and PPT in names
    assert not [s for s in w.service_principals.list() if s.display_name.startswith("braintrust-local")]
    assert json.loads(state.read_text())["resources"] == []


def test_preview_of_a_new_stack_sends_only_check_and_unknowns_flow_downstream(
        emulator: EmulatorClient, tmp_path: Path) -> None:
    config, secrets = emulator_config(LOCAL, emulator)
    emulator.clear_requests()
    preview = StackEngine(LOCAL, tmp_path / "state.json", config=config, secrets=secrets).preview()
    assert set(preview.ops().values()) == {"create"}
    assert preview.methods() == {"Check"}
    assert writes(emulator) == []
    assert not (tmp_path / "state.json").exists()  # a preview never writes state
    # What only the providers compute is unknown in preview: the grant's endpoint id.
    grant = next(r for r in preview.registrations if r.name == f"{PT}-can-query")
    assert grant.inputs["endpoint_id"] == "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def test_a_failed_resource_fails_the_command_and_state_keeps_everything_that_succeeded(
        emulator: EmulatorClient, tmp_path: Path) -> None:
    message = "Container failed to start: out of memory"
    emulator.fail_next_rollout(CUSTOM, message)
    config, secrets = emulator_config(LOCAL, emulator)
    engine = StackEngine(LOCAL, tmp_path / "state.json", config=config, secrets=secrets)
    with pytest.raises(EngineError) as err:
        engine.up()
    assert CUSTOM in err.value.message and message in err.value.message
    assert "Traceback" not in err.value.message
    done = err.value.result
    assert done is not None and done.ops()["query-principal-oauth"] == "create"
    assert "local-endpoints-ready" not in done.ops() and "databricks-local" not in done.ops()
    saved = {r["urn"].rsplit("::", 1)[1]
             for r in json.loads((tmp_path / "state.json").read_text())["resources"] if r["custom"]}
    assert {"query-principal", CUSTOM, PT} <= saved and "databricks-local" not in saved


def test_cli_runs_a_stack_writes_registrations_without_secrets_and_prints_none(
        emulator: EmulatorClient, tmp_path: Path) -> None:
    config, secrets = emulator_config(LOCAL, emulator)
    args = [sys.executable, "-m", "testing.engine", "up", str(LOCAL), "--state", str(tmp_path / "s.json"),
            "--registrations", str(tmp_path / "regs.json"), "--outputs", str(tmp_path / "out.json")]
    for key, value in config.items():
        args += ["--config", f"{key}={json.dumps(value)}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for key, value in secrets.items():  # through the environment: never on a command line
        env[f"TEST_SECRET_{key.upper()}"] = value
        args += ["--secret-env", f"{key}=TEST_SECRET_{key.upper()}"]
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    outputs = json.loads((tmp_path / "out.json").read_text())
    client_secret = outputs["principal_client_secret"]
    assert stat.S_IMODE((tmp_path / "out.json").stat().st_mode) == 0o600
    for text in (done.stdout, done.stderr, (tmp_path / "regs.json").read_text()):
        assert client_secret not in text and emulator.admin_token not in text
        assert emulator.braintrust_api_key not in text
    regs = json.loads((tmp_path / "regs.json").read_text())
    by_name = {(r["type"].rsplit(":", 1)[1], r["name"]): r for r in regs}
    secret = by_name[("OAuthSecret", "query-principal-oauth")]
    assert secret["parent"].endswith("::query-principal") and secret["custom"]
    assert any(d.endswith("ServicePrincipal::query-principal") for d in secret["dependencies"])
    assert by_name[("AiSecret", "databricks-local")]["inputs"]["record"] == "[secret]"
    assert "create" in done.stdout and "[secret]" in done.stdout
