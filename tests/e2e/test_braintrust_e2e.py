"""End to end on the emulator: the stack's Databricks side made through the real provider
process (principal, OAuth secret, a chat foundation-model endpoint, a completion custom
model, the readiness gate, one grant per endpoint), the Braintrust record assembled with
build_provider_config, then `python -m components verify --config FILE` as a user runs it.

The stack is built once for the module on the session emulator (reset first); the test that
deletes the secret out of band runs last.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from components.braintrust import build_provider_config, oauth_secret
from components.providers.endpoint import Endpoint, EndpointProvider
from components.providers.grant import QueryGrant, QueryGrantProvider
from components.providers.oauth_secret import OAuthSecret, OAuthSecretProvider
from components.providers.principal import ServicePrincipal, ServicePrincipalProvider
from components.providers.readiness import EndpointsReady, EndpointsReadyProvider
from testing.provider import Engine, ProviderProcess

ROOT = Path(__file__).resolve().parents[2]
CHAT = "bt-e2e-llama-3-1-8b"
COMPLETION = "bt-e2e-churn-scorer"
WRONG_SECRET = "dose-not-the-right-secret-0123456789"


@dataclass
class Stack:
    emulator: Any
    engine: Engine
    principal: dict[str, Any]
    secret: dict[str, Any]

    def record(self, **over: Any) -> dict[str, Any]:
        endpoints = over.pop("endpoints", [(CHAT, "chat"), (COMPLETION, "completion")])
        client_secret = over.pop("client_secret", self.secret["client_secret"])
        return build_provider_config(
            name="databricks-e2e", api_base=self.emulator.url, auth_type="service_principal_oauth",
            secret=oauth_secret(self.secret["client_id"], client_secret), endpoints=endpoints,
        ).to_record()


def _endpoint(name: str, mode: str, entity: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "mode": mode, "served_entities": [entity], "traffic": None,
            "tags": {"managed-by": "databricks-braintrust"}, "rate_limits": [], "usage_tracking": False,
            "route_optimized": False}


@pytest.fixture(scope="module")
def stack(emulator_server) -> Iterator[Stack]:
    emu = emulator_server
    emu.reset()
    # The seeded churn scorer, registered again as a completion LLM (an emulator extension):
    # the stack gives it flavor completion, so it must answer OpenAI completion requests.
    emu.admin("POST", "models", {"name": "main.ml.churn_scorer", "version": "3", "task": "llm/v1/completions"})
    proc = ProviderProcess()
    proc.configure({"workspace": {"host": emu.url}, "databricks_token": emu.admin_token},
                   secret_keys=("databricks_token",))
    try:
        engine = Engine(proc)
        sp = engine.register(ServicePrincipal, ServicePrincipalProvider, "principal", {
            "display_name": "braintrust-e2e", "external_id": "databricks-braintrust/e2e",
            "entitlements": []}).outputs
        secret = engine.register(OAuthSecret, OAuthSecretProvider, "secret", {
            "service_principal_id": sp["principal_id"], "application_id": sp["application_id"],
            "lifetime_days": 30, "rotate_before_days": 7, "scopes": None}).outputs
        endpoints = [
            engine.register(Endpoint, EndpointProvider, CHAT, _endpoint(CHAT, "provisioned", {
                "name": "llama", "entity_name": "system.ai.meta_llama_v3_1_8b_instruct", "entity_version": "1",
                "min_provisioned_throughput": 0, "max_provisioned_throughput": 1240})).outputs,
            engine.register(Endpoint, EndpointProvider, COMPLETION, _endpoint(COMPLETION, "custom", {
                "name": "churn", "entity_name": "main.ml.churn_scorer", "entity_version": "3",
                "workload_size": "Small", "scale_to_zero_enabled": True})).outputs,
        ]
        engine.register(EndpointsReady, EndpointsReadyProvider, "ready", {
            "endpoints": {e["name"]: e["revision"] for e in endpoints}, "timeout_seconds": 60})
        for ep in endpoints:
            engine.register(QueryGrant, QueryGrantProvider, f"grant-{ep['name']}", {
                "endpoint_id": ep["endpoint_id"], "endpoint_name": ep["name"],
                "service_principal_name": sp["application_id"], "permission_level": "CAN_QUERY"})
        yield Stack(emu, engine, sp, secret)
    finally:
        proc.close()


def verify(tmp_path: Path, record: dict[str, Any]) -> subprocess.CompletedProcess:
    path = tmp_path / "braintrust_provider.json"
    path.write_text(json.dumps(record))
    return subprocess.run(
        [sys.executable, "-m", "components", "verify", "--config", str(path), "--timeout", "10", "--retries", "1"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)


def rows(done: subprocess.CompletedProcess) -> dict[str, str]:
    """model -> its table row."""
    out = {}
    for line in done.stdout.splitlines():
        first = line.split(" ", 1)[0]
        if first and first not in ("MODEL", "verify") and "model(s) answered" not in line:
            out[first] = line
    return out


def assert_no_secret(stack: Stack, done: subprocess.CompletedProcess, *extra: str) -> None:
    text = done.stdout + done.stderr
    for secret in (stack.secret["client_secret"], stack.emulator.admin_token, *extra):
        assert secret not in text
    assert "eyJemu." not in text  # the emulator's access tokens


def test_verify_of_the_assembled_config_answers_for_every_model(stack: Stack, tmp_path: Path) -> None:
    done = verify(tmp_path, stack.record())
    assert done.returncode == 0, done.stdout + done.stderr
    table = rows(done)
    assert set(table) == {CHAT, COMPLETION}
    assert all(" ok " in row for row in table.values()), done.stdout
    assert "2 of 2 model(s) answered" in done.stdout
    assert_no_secret(stack, done)


BROKEN = {
    # name: (how to break the record, exit code, {model: text its row must hold})
    "wrong-auth-type-for-the-secret": (
        lambda s: {**s.record(), "metadata": {**s.record()["metadata"], "auth_type": "pat"}}, 2,
        {CHAT: "auth_type", COMPLETION: "auth_type"}),
    "trailing-slash": (
        lambda s: {**s.record(), "metadata": {**s.record()["metadata"], "api_base": s.emulator.url + "/"}}, 2,
        {CHAT: "api_base", COMPLETION: "api_base"}),
    "unknown-model": (
        lambda s: s.record(endpoints=[(CHAT, "chat"), (COMPLETION, "completion"), ("bt-e2e-gone", "chat")]), 1,
        {CHAT: " ok ", COMPLETION: " ok ", "bt-e2e-gone": "HTTP 404"}),
    "wrong-secret": (
        lambda s: s.record(client_secret=WRONG_SECRET), 1,
        {CHAT: "HTTP 401", COMPLETION: "HTTP 401"}),
    "wrong-flavor": (
        lambda s: s.record(endpoints=[(CHAT, "chat"), (COMPLETION, "chat")]), 1,
        {CHAT: " ok ", COMPLETION: "HTTP 400"}),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_config_fails_with_one_line_reason_per_model_and_no_secret(stack: Stack, tmp_path: Path,
                                                                          case: str) -> None:
    breaker, code, expected = BROKEN[case]
    done = verify(tmp_path, breaker(stack))
    assert done.returncode == code, done.stdout + done.stderr
    table = rows(done)
    assert set(table) == set(expected)
    for model, text in expected.items():
        assert text in table[model], table[model]
        if text != " ok ":
            assert table[model].rstrip().split("  ")[-1].strip() not in ("", "-")  # a reason is given
    assert_no_secret(stack, done, WRONG_SECRET)


def test_zz_after_the_secret_is_deleted_out_of_band_verify_fails_naming_the_cause(stack: Stack,
                                                                                  tmp_path: Path) -> None:
    w = stack.emulator.workspace_client()
    w.service_principal_secrets_proxy.delete(str(stack.principal["principal_id"]), stack.secret["secret_id"])
    done = verify(tmp_path, stack.record())
    assert done.returncode == 1
    table = rows(done)
    for model in (CHAT, COMPLETION):
        assert "HTTP 401" in table[model] and "OAuth token" in table[model]
        assert "deleted" in table[model]
    assert "0 of 2 model(s) answered" in done.stdout
    assert_no_secret(stack, done)
