"""The emulator as tests and benchmarks see it: one client for its admin path (/_emulator/...)
and one way to run `python -m emulator` in its own process.

Only HTTP: nothing here imports `emulator/`, so the admin API is the contract, as it is for
the providers.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from testing.provider import first_line, stop_process

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

ROOT = Path(__file__).resolve().parents[1]


class EmulatorClient:
    """A running emulator: its URL, its admin token, its Braintrust API key, its admin path."""

    def __init__(self, url: str, admin_token: str, braintrust_api_key: str = "") -> None:
        self.url = url
        self.admin_token = admin_token
        self.braintrust_api_key = braintrust_api_key
        self.braintrust_url = f"{url}/braintrust"

    def admin(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(  # noqa: S310 - the emulator's own URL
            f"{self.url}/_emulator/{path.lstrip('/')}", data=data, method=method,
            headers={"Authorization": f"Bearer {self.admin_token}",
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback only
            raw = resp.read()
        return json.loads(raw) if raw else None

    def reset(self) -> None:
        self.admin("POST", "reset", {})

    def settings(self, **switches: Any) -> dict[str, Any]:
        """Flip emulator switches (pay_per_token_acl, propagation_delay, retired,
        scim_external_id, seed, ready_after, braintrust_unknown_id, braintrust_put_omitted,
        braintrust_put_null_secret, braintrust_other_org) until the next reset; answers all of them."""
        return dict(self.admin("POST", "settings", switches) or {})

    def system_model(self, entity: str, version: str, throughput_chunk_size: int | None = None,
                     served: bool = True, lifecycle: str | None = None, retires_on: str | None = None,
                     used_recently: bool = True) -> None:
        """Serve a system.ai version (or change its chunk), or stop serving it (served=False);
        `lifecycle` puts the model into active, legacy, deprecated or retired."""
        body: dict[str, Any] = {"entity": entity, "version": version, "served": served}
        if throughput_chunk_size is not None:
            body["throughput_chunk_size"] = throughput_chunk_size
        if lifecycle is not None:
            body.update(lifecycle=lifecycle, retires_on=retires_on, used_recently=used_recently)
        self.admin("POST", "system-models", body)

    def pay_per_token(self, name: str, lifecycle: str = "active", retires_on: str | None = None,
                      used_recently: bool = True, display_name: str | None = None) -> None:
        """Put a pay-per-token endpoint into a lifecycle state (retired: it is gone), or serve a
        new one."""
        self.admin("POST", "pay-per-token", {"name": name, "lifecycle": lifecycle,
                                             "retires_on": retires_on, "used_recently": used_recently,
                                             "display_name": display_name})

    def lose_answer(self, method: str, path: str, count: int = 1, offset: int = 0) -> None:
        """The next `count` matching requests are handled (state changes included), then the
        connection closes without an answer: what a network drop after the commit looks like."""
        self.admin("POST", "faults", {"kind": "lost-answer", "method": method, "path": path,
                                      "count": count, "offset": offset})

    def set_ready_after(self, seconds: float) -> None:
        self.settings(ready_after=seconds)

    def requests(self) -> list[dict[str, Any]]:
        """The request log (admin calls are never logged)."""
        return list(self.admin("GET", "requests")["requests"])

    def clear_requests(self) -> None:
        self.admin("DELETE", "requests")

    def advance_clock(self, seconds: float) -> None:
        self.admin("POST", "clock", {"advance_seconds": seconds})

    def revoke_tokens(self) -> int:
        """Every OAuth access token minted so far stops working; answers how many there were."""
        return int(self.admin("POST", "tokens/revoke", {})["revoked"])

    def set_clock_offset(self, seconds: float) -> None:
        """The workspace's clock `seconds` away from this machine's (negative: behind)."""
        self.admin("POST", "clock", {"offset_seconds": seconds})

    def inject_fault(self, method: str, path: str, status: int, count: int = 1, offset: int = 0,
                     retry_after: float | None = None, error_code: str | None = None,
                     every: int = 1) -> None:
        body: dict[str, Any] = {"method": method, "path": path, "status": status,
                                "count": count, "offset": offset, "retry_after": retry_after,
                                "every": every}
        if error_code is not None:
            body["error_code"] = error_code
        self.admin("POST", "faults", body)

    def swallow(self, method: str, path: str, count: int = 1, offset: int = 0) -> None:
        """The next `count` matching requests are answered 200 `{}` and never applied."""
        self.admin("POST", "faults", {"kind": "swallowed", "method": method, "path": path,
                                      "count": count, "offset": offset})

    def fail_next_rollout(self, endpoint: str, message: str) -> None:
        self.admin("POST", "rollout-failures", {"endpoint": endpoint, "message": message})

    def workspace_client(self, token: str | None = None) -> WorkspaceClient:
        from databricks.sdk import WorkspaceClient

        return WorkspaceClient(host=self.url, token=token or self.admin_token)


def free_port() -> int:
    """A loopback port free right now (for a server whose URL must be known before it starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmulatorProcess(EmulatorClient):
    """`python -m emulator` on a free loopback port, in its own process (as the workspace is for
    the engine and the provider process): its HTTP work never competes for their GIL."""

    def __init__(self, admin_token: str, ready_after: float, models: list[str] | None = None,
                 braintrust_api_key: str = "sk-bt-bench-0123456789",
                 extra_args: list[str] | None = None, start_timeout: float = 30.0,
                 port: int = 0) -> None:
        # Credentials travel in the environment, never on the command line (/proc/<pid>/cmdline).
        args = [sys.executable, "-m", "emulator", "--port", str(port), "--ready-after", str(ready_after)]
        for model in models or []:
            args += ["--model", model]
        self.proc = subprocess.Popen(
            [*args, *(extra_args or [])], cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "EMULATOR_ADMIN_TOKEN": admin_token,
                 "EMULATOR_BRAINTRUST_API_KEY": braintrust_api_key},
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = first_line(self.proc, start_timeout)
        match = re.search(rb"listening on (\S+)", line or b"")
        if match is None:
            stop_process(self.proc)
            raise RuntimeError(f"the emulator did not start (banner: {line!r})")
        super().__init__(match.group(1).decode(), admin_token, braintrust_api_key)

    def close(self) -> None:
        stop_process(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
