"""End to end on the emulator: the local stack made by the real program through the stand-in
engine (testing.engine: principal, OAuth secret, a chat foundation-model endpoint, a completion
custom model, Databricks' own pay-per-token endpoint, the readiness gate, one grant per endpoint,
the record published), then `python -m components verify --config FILE` on the
`braintrust_provider` record the program exported, as a user runs it. Nothing is wired by hand.

The stack is built once for the module on the session emulator (reset first); the test that
deletes the secret out of band runs last.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from testing.deployment import Deployment
from testing.stacks import ROOT

CHAT = "bt-local-llama-3-1-8b"
COMPLETION = "bt-local-churn-scorer"
PPT = "databricks-meta-llama-3-3-70b-instruct"
WRONG_SECRET = "dose-not-the-right-secret-0123456789"


@dataclass
class Stack:
    emulator: Any
    run: Deployment
    principal: dict[str, Any]
    secret: dict[str, Any]
    exported: dict[str, Any]

    def record(self, **over: Any) -> dict[str, Any]:
        """The record the program exported, with `endpoints` (name, flavor) or `client_secret`
        changed where a test breaks it."""
        record = copy.deepcopy(self.exported)
        if "endpoints" in over:
            pairs = over.pop("endpoints")
            custom = record["metadata"]["customModels"]
            record["metadata"]["models"] = [n for n, _ in pairs]
            record["metadata"]["customModels"] = {
                n: {**custom.get(n, {"format": "openai"}), "flavor": f} for n, f in pairs}
        if "client_secret" in over:
            secret = json.loads(record["secret"])
            record["secret"] = json.dumps({**secret, "client_secret": over.pop("client_secret")})
        assert not over, over
        return record


@pytest.fixture(scope="module")
def stack(emulator_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    emu = emulator_server
    emu.reset()
    # The seeded churn scorer, registered again as a completion LLM (an emulator extension):
    # the stack gives it flavor completion, so it must answer OpenAI completion requests.
    emu.admin("POST", "models", {"name": "main.ml.churn_scorer", "version": "3", "task": "llm/v1/completions"})
    run = Deployment(emu, tmp_path_factory.mktemp("e2e") / "state.json")
    run.up()
    yield Stack(emu, run, run.outputs("pulumi-python:dynamic/databricks-braintrust:ServicePrincipal",
                                      run.principal_name),
                run.outputs("pulumi-python:dynamic/databricks-braintrust:OAuthSecret", run.secret_name),
                run.export("braintrust_provider"))


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
    assert set(table) == {CHAT, COMPLETION, PPT}
    assert all(" ok " in row for row in table.values()), done.stdout
    assert "3 of 3 model(s) answered" in done.stdout
    assert_no_secret(stack, done)


BROKEN = {
    # name: (how to break the record, exit code, {model: text its row must hold})
    "wrong-auth-type-for-the-secret": (
        lambda s: {**s.record(), "metadata": {**s.record()["metadata"], "auth_type": "pat"}}, 2,
        {CHAT: "auth_type", COMPLETION: "auth_type", PPT: "auth_type"}),
    "trailing-slash": (
        lambda s: {**s.record(), "metadata": {**s.record()["metadata"], "api_base": s.emulator.url + "/"}}, 2,
        {CHAT: "api_base", COMPLETION: "api_base", PPT: "api_base"}),
    "unknown-model": (
        lambda s: s.record(endpoints=[(CHAT, "chat"), (COMPLETION, "completion"), ("bt-e2e-gone", "chat")]), 1,
        {CHAT: " ok ", COMPLETION: " ok ", "bt-e2e-gone": "HTTP 404"}),
    "wrong-secret": (
        lambda s: s.record(client_secret=WRONG_SECRET), 1,
        {CHAT: "HTTP 401", COMPLETION: "HTTP 401", PPT: "HTTP 401"}),
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
    for model in (CHAT, COMPLETION, PPT):
        assert "HTTP 401" in table[model] and "OAuth token" in table[model]
        assert "deleted" in table[model]
    assert "0 of 3 model(s) answered" in done.stdout
    assert_no_secret(stack, done)
