"""Lifecycle targets: the emulator always; a real workspace when DATABRICKS_HOST and credentials
are in the environment (skipped otherwise). One provider process per target per session, as
one `pulumi up` has one process for the whole stack."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from testing.provider import Engine, ProviderProcess


def _workspace_configured() -> bool:
    return bool(os.environ.get("DATABRICKS_HOST")) and bool(
        os.environ.get("DATABRICKS_TOKEN")
        or (os.environ.get("DATABRICKS_CLIENT_ID") and os.environ.get("DATABRICKS_CLIENT_SECRET"))
        or os.environ.get("DATABRICKS_CONFIG_PROFILE"))


@dataclass
class Target:
    """Where the lifecycle suite runs, and what it may do there."""

    kind: str  # "emulator" | "workspace"
    host: str
    proc: ProviderProcess
    token: str | None = None
    emulator: Any = None  # tests.conftest.EmulatorHandle on the emulator
    prefix: str = ""
    # A Unity Catalog model the target can serve: (name, version).
    model: tuple[str, str] | None = None
    _client: Any = field(default=None, repr=False)

    def name(self, base: str) -> str:
        return f"{self.prefix}{base}"

    def client(self) -> Any:
        """An admin's view of the workspace, for out-of-band changes and checks."""
        if self._client is None:
            if self.emulator is not None:
                self._client = self.emulator.workspace_client()
            else:
                from databricks.sdk import WorkspaceClient

                self._client = WorkspaceClient()
        return self._client

    def needs_emulator(self) -> None:
        if self.emulator is None:
            pytest.skip("uses the emulator's admin path")

    def needs_model(self) -> tuple[str, str]:
        if self.model is None:
            pytest.skip("set LIFECYCLE_MODEL=catalog.schema.model:version to serve a custom model")
        return self.model

    def request_count(self) -> int | None:
        return len(self.emulator.requests()) if self.emulator is not None else None


@pytest.fixture(scope="session", params=["emulator", "workspace"])
def _provider_process(request: pytest.FixtureRequest) -> Iterator[tuple[str, ProviderProcess]]:
    if request.param == "emulator":
        server = request.getfixturevalue("emulator_server")
        proc = ProviderProcess()
        proc.configure({"workspace": {"host": server.url}, "databricks_token": server.admin_token},
                       secret_keys=("databricks_token",))
    else:
        if not _workspace_configured():
            pytest.skip("no DATABRICKS_HOST and credentials in the environment")
        proc = ProviderProcess(env={k: v for k, v in os.environ.items()
                                    if k.startswith("DATABRICKS_")})
        config: dict[str, Any] = {"workspace": {"host": os.environ["DATABRICKS_HOST"]}}
        secret_keys: tuple[str, ...] = ()
        if os.environ.get("DATABRICKS_TOKEN"):
            config["databricks_token"] = os.environ["DATABRICKS_TOKEN"]
            secret_keys = ("databricks_token",)
        proc.configure(config, secret_keys=secret_keys)
    try:
        yield request.param, proc
    finally:
        proc.close()


@pytest.fixture
def target(_provider_process: tuple[str, ProviderProcess],
           request: pytest.FixtureRequest) -> Target:
    kind, proc = _provider_process
    if kind == "emulator":
        handle = request.getfixturevalue("emulator")  # reset per test
        return Target(kind, handle.url, proc, token=handle.admin_token, emulator=handle,
                      model=("main.ml.churn_scorer", "3"))
    model = os.environ.get("LIFECYCLE_MODEL")
    return Target(kind, os.environ["DATABRICKS_HOST"], proc,
                  token=os.environ.get("DATABRICKS_TOKEN"),
                  prefix=f"bt-lc-{uuid.uuid4().hex[:6]}-",
                  model=tuple(model.rsplit(":", 1)) if model else None)  # type: ignore[arg-type]


@pytest.fixture
def engine(target: Target) -> Iterator[Engine]:
    eng = Engine(target.proc)
    yield eng
    if target.kind == "workspace":
        # A real workspace is not reset: destroy what the test left, newest first.
        for urn in reversed(list(eng.state)):
            st = eng.state.pop(urn)
            try:
                target.proc.delete(st.id, urn, st.outputs)
            except Exception as exc:
                print(f"cleanup of {urn} failed: {exc}")


# ------------------------------------------------------------------ Braintrust's AI-secret API


def braintrust_call(emulator: Any, method: str, path: str) -> tuple[int, Any]:
    """One call to the emulator's Braintrust API with its key: (status, JSON body or None)."""
    req = urllib.request.Request(f"{emulator.braintrust_url}{path}", method=method,
                                 headers={"Authorization": f"Bearer {emulator.braintrust_api_key}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None


def ai_secret_names(emulator: Any) -> list[str]:
    return [r["name"] for r in braintrust_call(emulator, "GET", "/v1/ai_secret")[1]["objects"]]


@pytest.fixture(scope="module")
def braintrust_process(emulator_server: Any) -> Iterator[ProviderProcess]:
    """A provider process holding only the emulator's Braintrust key (no ambient Braintrust env)."""
    p = ProviderProcess(env={"BRAINTRUST_API_KEY": "", "BRAINTRUST_BASE_URL": ""})
    p.configure({"braintrust_api_key": emulator_server.braintrust_api_key},
                secret_keys=("braintrust_api_key",))
    yield p
    p.close()
