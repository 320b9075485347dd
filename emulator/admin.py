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


def _lifecycle(body: dict[str, Any]) -> tuple[str, str | None, bool] | None:
    """(state, retires_on, used_recently) from an admin body's `lifecycle`, `retires_on` and
    `used_recently` (whether this workspace used the model in the 30 days before the
    announcement: such a workspace keeps a legacy or deprecated model); None when absent."""
    state = body.get("lifecycle")
    if state is None:
        return None
    if state not in seed.LIFECYCLE_STATES:
        raise invalid_parameter(f"lifecycle must be one of {', '.join(seed.LIFECYCLE_STATES)}")
    retires_on = body.get("retires_on")
    if retires_on is not None and not isinstance(retires_on, str):
        raise invalid_parameter("retires_on must be a date as text (YYYY-MM-DD)")
    used = body.get("used_recently", True)
    if not isinstance(used, bool):
        raise invalid_parameter("used_recently must be a boolean")
    return str(state), retires_on, used


def system_models(app: App, req: Request) -> Response:
    """Serve a version of a system.ai model, change its chunk (its unit step for a unit model),
    put the model into a lifecycle state, or stop serving the version."""
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
    life = _lifecycle(body)
    capacity = body.get("capacity")
    if capacity not in (None, "band", "units"):
        raise invalid_parameter("capacity must be band (tokens per second) or units (model units)")
    if not served:
        app.ws.unserve_system_version(entity, version)
        return ok({})
    chunk = body.get("throughput_chunk_size")
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk <= 0):
        raise invalid_parameter("throughput_chunk_size must be a positive integer")
    if chunk is None and entity not in app.ws.uc_models:
        raise invalid_parameter(f"throughput_chunk_size is required for a new model {entity}")
    dbus = body.get("dbus")
    if dbus is not None and (isinstance(dbus, bool) or not isinstance(dbus, int | float) or dbus < 0):
        raise invalid_parameter("dbus must be a number of DBU per hour, 0 or more")
    app.ws.serve_system_version(entity, version, chunk)
    if dbus is not None:  # a copy: the seed's table is never changed
        model = app.ws.uc_models[entity]
        model["dbus"] = {**(model.get("dbus") or {}), version: float(dbus)}
    if capacity is not None:
        app.ws.uc_models[entity]["capacity"] = capacity
    if life is not None:
        app.ws.set_lifecycle(entity, *life)
    return ok({})


def pay_per_token(app: App, req: Request) -> Response:
    """Put a pay-per-token endpoint into a lifecycle state, or serve a new one (`display_name`).
    Retired: the endpoint is gone (GET answers 404, as databricks-meta-llama-3-1-405b-instruct
    does). Legacy or deprecated with `used_recently: false`: queries are refused (a GUESS of the
    wording; the rule is Databricks' maintenance policy)."""
    body = _body(req)
    name = body.get("name")
    if not isinstance(name, str) or not name.startswith("databricks-"):
        raise invalid_parameter('name ("databricks-<model>") is required')
    life = _lifecycle(body) or ("active", None, True)
    ep = app.ws.endpoints.get(name)
    if ep is not None and not ep.get("pay_per_token"):
        raise invalid_parameter(f"{name} is not a pay-per-token endpoint")
    if life[0] == "retired":
        app.ws.endpoints.pop(name, None)
        return ok({})
    if ep is None:
        display = body.get("display_name") or name
        task = body.get("task") or seed.CHAT
        ep = app.ws.endpoints[name] = app.ws.pay_per_token_endpoint(
            name, {"display_name": str(display), "task": str(task)})
    ep["lifecycle"] = {"state": life[0], "retires_on": life[1], "used_recently": life[2]}
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
    every = body.get("every", 1)
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise invalid_parameter("every must be a positive integer")
    error_code = body.get("error_code")
    if error_code is not None and (not isinstance(error_code, str)
                                   or not re.fullmatch(r"[A-Z_]{1,64}", error_code)):
        raise invalid_parameter("error_code must be an upper-case code such as PERMISSION_DENIED")
    app.faults.add(Fault(method, pattern, status, retry_after, count, offset, kind, error_code,
                         every))
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
    """`advance_seconds` (>= 0) moves the clock forward; `offset_seconds` (any sign) sets how far
    the workspace's clock is from the machine's, e.g. a workspace behind the deployer's clock."""
    body = _body(req)
    if "offset_seconds" in body:
        offset = body["offset_seconds"]
        if isinstance(offset, bool) or not isinstance(offset, int | float):
            raise invalid_parameter("offset_seconds must be a number")
        app.ws.clock_offset = float(offset)
        return ok({"now": app.ws.now(), "offset": app.ws.clock_offset})
    seconds = body.get("advance_seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise invalid_parameter("advance_seconds must be a non-negative number")
    app.ws.clock_offset += float(seconds)
    return ok({"now": app.ws.now(), "offset": app.ws.clock_offset})


def revoke_tokens(app: App, req: Request) -> Response:
    """Every OAuth access token minted so far stops working (401 "Invalid access token"), as a
    revocation, or a run outliving its tokens, does; secrets still mint new ones."""
    revoked = len(app.ws.tokens)
    app.ws.tokens.clear()
    return ok({"revoked": revoked})


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
    ("POST", "pay-per-token"): pay_per_token,
    ("POST", "faults"): add_fault,
    ("DELETE", "faults"): clear_faults,
    ("POST", "rollout-failures"): rollout_failure,
    ("POST", "clock"): clock,
    ("POST", "tokens/revoke"): revoke_tokens,
    ("POST", "models"): add_model,
    ("GET", "requests"): requests_log,
    ("DELETE", "requests"): clear_requests,
    ("POST", "federation-policies"): federation.add_policy,
}
