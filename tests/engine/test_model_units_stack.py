"""A stack serving a unit model (model units, /serving-endpoints/pt) next to a band model
(tokens per second) and today's pay-per-token endpoint, through `python -m testing.engine` and
the real program: it converges, its Braintrust record verifies, a change of units is one write
and no replacement, and destroy leaves nothing of it in the workspace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from testing.emulator import EmulatorClient
from testing.stacks import PROJECT, ROOT

LOCAL = ROOT / "stacks" / "Pulumi.local.yaml"
UNITS, BAND, PPT = "bt-local-maverick", "bt-local-llama-3-1-8b", "databricks-llama-4-maverick"


def stack_file(tmp_path: Path, model_units: int) -> Path:
    doc = yaml.safe_load(LOCAL.read_text())
    doc["config"][f"{PROJECT}:endpoints"] = [
        {"name": UNITS, "foundation_model": "meta-llama-4-maverick", "model_units": model_units,
         "burst_scaling": False, "tags": {"tier": "units"},
         "rate_limits": [{"calls": 100, "key": "user"}], "usage_tracking": True},
        {"name": BAND, "foundation_model": "meta-llama-3.1-8b-instruct",
         "throughput": {"min": 0, "max": 1240}},
        {"name": PPT, "pay_per_token": True},
    ]
    path = tmp_path / "Pulumi.local.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def engine(command: str, stack: Path, emulator: EmulatorClient, tmp_path: Path
           ) -> subprocess.CompletedProcess[str]:
    config = {"workspace": {"host": emulator.url},
              "braintrust": {**yaml.safe_load(LOCAL.read_text())["config"][f"{PROJECT}:braintrust"],
                             "api_url": emulator.braintrust_url}}
    args = [sys.executable, "-m", "testing.engine", command, str(stack), "--state",
            str(tmp_path / "state.json"), "--secret-env", "databricks_token=T_DATABRICKS",
            "--secret-env", "braintrust_api_key=T_BRAINTRUST", "--outputs", str(tmp_path / "out.json")]
    for key, value in config.items():
        args += ["--config", f"{key}={json.dumps(value)}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "BRAINTRUST_"))}
    env.update(T_DATABRICKS=emulator.admin_token, T_BRAINTRUST=emulator.braintrust_api_key,
               PYTHONPATH=str(ROOT))
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
                          check=False)


def writes(emulator: EmulatorClient) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in emulator.requests() if r["method"] != "GET"]


def test_a_unit_model_and_a_band_model_converge_verify_change_in_place_and_go(
        emulator: EmulatorClient, tmp_path: Path) -> None:
    emulator.set_ready_after(0.2)
    w = emulator.workspace_client()
    before_endpoints = {e.name for e in w.serving_endpoints.list()}

    done = engine("up", stack_file(tmp_path, 50), emulator, tmp_path)
    assert done.returncode == 0, done.stderr
    assert ("POST", "/api/2.0/serving-endpoints/pt") in writes(emulator)
    ep = w.serving_endpoints.get(UNITS)
    assert ep.state.ready.value == "READY"
    served = ep.config.served_entities[0]
    assert (served.entity_name, served.provisioned_model_units) == ("system.ai.llama-4-maverick", 50)
    assert {t.key: t.value for t in ep.tags or []}["tier"] == "units"
    assert ep.ai_gateway.usage_tracking_config.enabled is True
    principal = next(p for p in w.service_principals.list() if p.display_name == "braintrust-local")
    acl = w.serving_endpoints.get_permissions(ep.id).access_control_list or []
    assert any(a.service_principal_name == principal.application_id for a in acl)

    record = json.loads((tmp_path / "out.json").read_text())["braintrust_provider"]
    path = tmp_path / "braintrust_provider.json"
    path.write_text(json.dumps(record))
    verified = subprocess.run(
        [sys.executable, "-m", "components", "verify", "--config", str(path), "--timeout", "10",
         "--retries", "1"], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=120, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "3 of 3 model(s) answered" in verified.stdout

    # Converged: a second up changes nothing and writes nothing.
    emulator.clear_requests()
    again = engine("up", stack_file(tmp_path, 50), emulator, tmp_path)
    assert again.returncode == 0, again.stderr
    assert writes(emulator) == []

    # A change of units: one write, in place, on the /pt config route; no replacement.
    emulator.clear_requests()
    changed = engine("up", stack_file(tmp_path, 100), emulator, tmp_path)
    assert changed.returncode == 0, changed.stderr
    assert writes(emulator) == [("PUT", f"/api/2.0/serving-endpoints/pt/{UNITS}/config")]
    assert "replace" not in changed.stdout.lower()
    assert w.serving_endpoints.get(UNITS).config.served_entities[0].provisioned_model_units == 100
    assert w.serving_endpoints.get(UNITS).id == ep.id

    gone = engine("destroy", stack_file(tmp_path, 100), emulator, tmp_path)
    assert gone.returncode == 0, gone.stderr
    assert {e.name for e in w.serving_endpoints.list()} == before_endpoints
    assert not [p for p in w.service_principals.list() if p.display_name == "braintrust-local"]
    assert braintrust_secrets(emulator) == []


def braintrust_secrets(emulator: EmulatorClient) -> list[Any]:
    request = urllib.request.Request(f"{emulator.braintrust_url}/v1/ai_secret",
                                     headers={"Authorization": f"Bearer {emulator.braintrust_api_key}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return list(json.loads(answer.read())["objects"])
