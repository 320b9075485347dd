"""Shared fixtures: one emulator per test session on a free loopback port, reset per test
through its admin path (never by reaching into its memory)."""

from __future__ import annotations

import json
import os
import secrets
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ADMIN_TOKEN = "dapi-test-admin-0123456789abcdef"
BRAINTRUST_API_KEY = "sk-bt-test-key-0123456789"
# Rollouts long enough to observe IN_PROGRESS, short enough to keep the suite fast.
READY_AFTER = 0.3
# The emulator answers ACL entries in an order drawn from this seed: a run that fails because
# something depended on that order repeats with EMULATOR_SEED=<the seed in the header>.
EMULATOR_SEED = int(os.environ.get("EMULATOR_SEED") or secrets.randbelow(2**31))


def pytest_report_header() -> str:
    return f"emulator seed: {EMULATOR_SEED} (EMULATOR_SEED={EMULATOR_SEED} repeats this run's ACL order)"


class EmulatorHandle:
    """What a test needs of the running emulator: its URL, its admin token, its admin path."""

    def __init__(self, url: str, admin_token: str, braintrust_api_key: str) -> None:
        self.url = url
        self.admin_token = admin_token
        self.braintrust_api_key = braintrust_api_key
        self.braintrust_url = f"{url}/braintrust"

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}/_emulator/{path.lstrip('/')}",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.admin_token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback only
            raw = resp.read()
        return json.loads(raw) if raw else None

    def reset(self) -> None:
        self.admin("POST", "reset", {})

    def requests(self) -> list[dict[str, Any]]:
        return self.admin("GET", "requests")["requests"]

    def set_ready_after(self, seconds: float) -> None:
        self.admin("POST", "settings", {"ready_after": seconds})

    def settings(self, **switches: Any) -> dict[str, Any]:
        """Flip emulator switches (pay_per_token_acl, propagation_delay, retired,
        scim_external_id, seed, ready_after) until the next reset; answers all of them."""
        return self.admin("POST", "settings", switches)

    def advance_clock(self, seconds: float) -> None:
        self.admin("POST", "clock", {"advance_seconds": seconds})

    def system_model(self, entity: str, version: str, throughput_chunk_size: int | None = None,
                     served: bool = True) -> None:
        """Serve a system.ai version (or change its chunk), or stop serving it (served=False)."""
        body: dict[str, Any] = {"entity": entity, "version": version, "served": served}
        if throughput_chunk_size is not None:
            body["throughput_chunk_size"] = throughput_chunk_size
        self.admin("POST", "system-models", body)

    def inject_fault(self, method: str, path: str, status: int, count: int = 1, offset: int = 0,
                     retry_after: float | None = None) -> None:
        self.admin("POST", "faults", {"method": method, "path": path, "status": status,
                                      "count": count, "offset": offset, "retry_after": retry_after})

    def lose_answer(self, method: str, path: str, count: int = 1, offset: int = 0) -> None:
        """The next `count` matching requests are handled (state changes included), then the
        connection closes without an answer: what a network drop after the commit looks like."""
        self.admin("POST", "faults", {"kind": "lost-answer", "method": method, "path": path,
                                      "count": count, "offset": offset})

    def fail_next_rollout(self, endpoint: str, message: str) -> None:
        self.admin("POST", "rollout-failures", {"endpoint": endpoint, "message": message})

    def workspace_client(self, token: str | None = None):  # -> databricks.sdk.WorkspaceClient
        from databricks.sdk import WorkspaceClient

        return WorkspaceClient(host=self.url, token=token or self.admin_token)


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorHandle]:
    from emulator.server import EmulatorServer

    server = EmulatorServer(host="127.0.0.1", port=0, admin_token=ADMIN_TOKEN,
                            ready_after=READY_AFTER, braintrust_api_key=BRAINTRUST_API_KEY,
                            models=["main.ml.churn_scorer:3"], seed=EMULATOR_SEED)
    server.start()
    try:
        yield EmulatorHandle(server.url, ADMIN_TOKEN, BRAINTRUST_API_KEY)
    finally:
        server.stop()


@pytest.fixture
def emulator(emulator_server: EmulatorHandle) -> EmulatorHandle:
    emulator_server.reset()
    return emulator_server
