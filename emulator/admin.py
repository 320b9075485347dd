"""The emulator's own admin path, /_emulator/..., for tests (off every real API's paths):
reset, rollout timing, failed rollouts, fault injection (like the CLI test server's fault.go:
rules keyed by method and path pattern, with a count and an offset), the clock, the request log.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from . import federation, seed
from .admin_app import AdminApp as App
from .errors import invalid_parameter
from .faults import FAULT_KINDS, Fault
from .models import qualify_system_model
from .routing import Request, Response, ok


def _body(req: Request) -> dict[str, Any]:
    return req.json()


def reset(app: App, req: Request) -> Response:
    app.reset()
    return ok({})


def settings(app: App, req: Request) -> Response:
    """Change any switch (models.Switches) at run time; the answer holds them all."""
    body = {k: v for k, v in _body(req).items() if v is not None}
    if isinstance(body.get("retired"), str):
        body["retired"] = [body["retired"]]  # one entity given alone
    try:
        app.ws.apply(body)
    except (TypeError, ValueError) as e:
        raise invalid_parameter(str(e)) from None
    return ok(app.ws.settings())


def get_settings(app: App, req: Request) -> Response:
    return ok(app.ws.settings())


def system_models(app: App, req: Request) -> Response:
    """Serve a version of a system.ai model, change its chunk, or stop serving it."""
    body = _body(req)
    entity, version = body.get("entity"), body.get("version")
    if isinstance(version, int) and not isinstance(version, bool):
        version = str(version)  # versions are text on the wire; take 4 for "4"
    if not isinstance(entity, str) or not isinstance(version, str) or not entity or not version:
        raise invalid_parameter('entity ("system.ai.<model>") and version (a string) are required')
    entity = qualify_system_model(entity)
    if not entity.startswith("system.ai.") or entity.count(".") != 2:
        raise invalid_parameter(f"entity {entity!r} is not a system.ai model")
    served = body.get("served", True)
    if not isinstance(served, bool):
        raise invalid_parameter("served must be a boolean")
    if not served:
        app.ws.unserve_system_version(entity, version)
        return ok({})
    chunk = body.get("throughput_chunk_size")
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk <= 0):
        raise invalid_parameter("throughput_chunk_size must be a positive integer")
    if chunk is None and entity not in app.ws.uc_models:
        raise invalid_parameter(f"throughput_chunk_size is required for a new model {entity}")
    app.ws.serve_system_version(entity, version, chunk)
    return ok({})


def add_fault(app: App, req: Request) -> Response:
    body = _body(req)
    method = str(body.get("method") or "*").upper()
    try:
        pattern = re.compile(str(body.get("path") or ".*"))
    except re.error as e:
        raise invalid_parameter(f"path is not a valid regular expression: {e}") from None
    kind = str(body.get("kind") or "status")
    if kind not in FAULT_KINDS:
        raise invalid_parameter(f"kind must be one of {', '.join(FAULT_KINDS)}, not {kind!r}")
    status = body.get("status")
    if kind == "lost-answer":
        status = 0  # no answer at all
    elif kind == "swallowed":
        status = 200  # acknowledged, never applied
    elif isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        raise invalid_parameter("status must be an HTTP error status (400-599)")
    retry_after = body.get("retry_after")
    if retry_after is not None:
        retry_after = int(retry_after)  # the SDK only parses integer Retry-After values
    count, offset = body.get("count", 1), body.get("offset", 0)
    for key, value in (("count", count), ("offset", offset)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise invalid_parameter(f"{key} must be a non-negative integer")
    error_code = body.get("error_code")
    if error_code is not None and (not isinstance(error_code, str)
                                   or not re.fullmatch(r"[A-Z_]{1,64}", error_code)):
        raise invalid_parameter("error_code must be an upper-case code such as PERMISSION_DENIED")
    app.faults.add(Fault(method, pattern, status, retry_after, count, offset, kind, error_code))
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


AdminHandler = Callable[[App, Request], Response]

ADMIN_ROUTES: dict[tuple[str, str], AdminHandler] = {
    ("POST", "reset"): reset,
    ("POST", "settings"): settings,
    ("GET", "settings"): get_settings,
    ("POST", "system-models"): system_models,
    ("POST", "faults"): add_fault,
    ("DELETE", "faults"): clear_faults,
    ("POST", "rollout-failures"): rollout_failure,
    ("POST", "clock"): clock,
    ("POST", "models"): add_model,
    ("GET", "requests"): requests_log,
    ("DELETE", "requests"): clear_requests,
    ("POST", "federation-policies"): federation.add_policy,
}
