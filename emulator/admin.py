"""The emulator's own admin path, /_emulator/..., for tests (off every real API's paths):
reset, rollout timing, failed rollouts, fault injection (like the CLI test server's fault.go:
rules keyed by method and path pattern, with a count and an offset), the clock, the request log.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import federation, seed
from .errors import FAULT_CODES, ApiError, invalid_parameter
from .routing import Request, Response, ok

if TYPE_CHECKING:
    from .server import App


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    retry_after: int | None
    count: int
    offset: int

    def response(self) -> Response:
        code = FAULT_CODES.get(self.status, "INTERNAL_ERROR")
        err = ApiError(self.status, code, f"Injected fault: {self.status} {code}")
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return Response(status=self.status, body=err.body(), headers=headers)


class Faults:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rules: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self.lock:
            self.rules.append(fault)

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()

    def take(self, method: str, path: str) -> Response | None:
        """The first matching rule: skip while it has an offset, then answer `count` times."""
        with self.lock:
            for rule in self.rules:
                if rule.method not in ("*", method) or not rule.path.search(path):
                    continue
                if rule.offset > 0:
                    rule.offset -= 1
                    continue
                if rule.count > 0:
                    rule.count -= 1
                    return rule.response()
            self.rules = [r for r in self.rules if r.count > 0]
        return None


def _body(req: Request) -> dict[str, Any]:
    return req.json()


def reset(app: App, req: Request) -> Response:
    app.reset()
    return ok({})


def settings(app: App, req: Request) -> Response:
    body = _body(req)
    ready_after = body.get("ready_after")
    if ready_after is not None:
        if isinstance(ready_after, bool) or not isinstance(ready_after, int | float) or ready_after < 0:
            raise invalid_parameter("ready_after must be a non-negative number of seconds")
        app.ws.ready_after = float(ready_after)
    return ok({"ready_after": app.ws.ready_after})


def add_fault(app: App, req: Request) -> Response:
    body = _body(req)
    method = str(body.get("method") or "*").upper()
    try:
        pattern = re.compile(str(body.get("path") or ".*"))
    except re.error as e:
        raise invalid_parameter(f"path is not a valid regular expression: {e}") from None
    status = body.get("status")
    if not isinstance(status, int) or not 400 <= status <= 599:
        raise invalid_parameter("status must be an HTTP error status (400-599)")
    retry_after = body.get("retry_after")
    if retry_after is not None:
        retry_after = int(retry_after)  # the SDK only parses integer Retry-After values
    count, offset = int(body.get("count", 1)), int(body.get("offset", 0))
    app.faults.add(Fault(method, pattern, status, retry_after, count, offset))
    return ok({})


def clear_faults(app: App, req: Request) -> Response:
    app.faults.clear()
    return ok({})


def rollout_failure(app: App, req: Request) -> Response:
    body = _body(req)
    if not body.get("endpoint") or not body.get("message"):
        raise invalid_parameter("endpoint and message are required")
    app.ws.rollout_failures[str(body["endpoint"])] = str(body["message"])
    return ok({})


def clock(app: App, req: Request) -> Response:
    body = _body(req)
    seconds = body.get("advance_seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise invalid_parameter("advance_seconds must be a non-negative number")
    app.ws.clock_offset += float(seconds)
    return ok({"now": app.ws.now(), "offset": app.ws.clock_offset})


def add_model(app: App, req: Request) -> Response:
    """Emulator extension: register a Unity Catalog model version (what `--model` does)."""
    body = _body(req)
    try:
        name, version, task = seed.parse_model_arg(
            f"{body.get('name')}:{body.get('version')}:{body.get('task') or ''}")
    except ValueError as e:
        raise invalid_parameter(str(e)) from None
    app.ws.add_uc_model(name, version, task)
    return ok({})


def requests_log(app: App, req: Request) -> Response:
    return ok({"requests": app.request_log()})


def clear_requests(app: App, req: Request) -> Response:
    app.clear_request_log()
    return ok({})


ADMIN_ROUTES = {
    ("POST", "reset"): reset,
    ("POST", "settings"): settings,
    ("POST", "faults"): add_fault,
    ("DELETE", "faults"): clear_faults,
    ("POST", "rollout-failures"): rollout_failure,
    ("POST", "clock"): clock,
    ("POST", "models"): add_model,
    ("GET", "requests"): requests_log,
    ("DELETE", "requests"): clear_requests,
    ("POST", "federation-policies"): federation.add_policy,
}
