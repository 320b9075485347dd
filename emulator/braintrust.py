"""Braintrust's AI-secret API, served under /braintrust (so the Braintrust base URL is
``{emulator}/braintrust``), behind ``Authorization: Bearer <braintrust api key>``.

As Braintrust's own OpenAPI specification states it (braintrustdata/braintrust-openapi,
``openapi/spec.json`` at b561b12; the parts used are copied in
tests/fixtures/braintrust-openapi/ai_secret.json): every operation on ``/v1/ai_secret`` and
``/v1/ai_secret/{ai_secret_id}``, with the spec's types, parameters, exclusions and bounds, and
only the statuses it lists (200, 400, 401, 403, 429, 500). Where the spec is silent the answer
is a switch (models.Switches, ``braintrust_*``) or a documented choice (emulator/README.md).

Records: id (uuid), org_id, name, type, metadata, created, updated_at, secret_updated_at,
preview_secret. The secret itself is stored but never returned.
"""

from __future__ import annotations

import copy
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from .errors import ApiError, BraintrustError
from .models import Workspace
from .routing import Request, Response, Route, ok

BASE = r"/braintrust/v1/ai_secret"
ORG_ID = "5d7c9a1e-0b1f-4a3c-9e6d-2f8b7a6c5e4d"
ORG_NAME = "emulator-org"
# The spec's `format: uuid`: the canonical 8-4-4-4-12 hex form, either case (what zod's uuid
# check, behind Braintrust's schemas, takes); uuid.UUID would also take braces and urn: forms.
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Request bodies, field -> (JSON types allowed, nullable); spec schemas CreateAISecret,
# PatchAISecret, DeleteAISecret. None of them sets additionalProperties: false (the list answer
# does), so other keys are accepted and ignored, as a non-strict zod object strips them.
Fields = dict[str, tuple[type, bool]]
CREATE: Fields = {"name": (str, False), "type": (str, True), "metadata": (dict, True),
          "secret": (str, True), "org_name": (str, True)}
PATCH: Fields = {"name": (str, True), "type": (str, True), "metadata": (dict, True), "secret": (str, True)}
DELETE: Fields = {"name": (str, False), "org_name": (str, True)}
JSON_TYPE: dict[type, str] = {str: "string", dict: "object"}
# CORS preflight headers (a guess: the API's own handler is not public; modelled on
# braintrust-proxy packages/proxy/edge/index.ts handleOptions and apis/node/src/index.js).
MAX_AGE = "86400"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def preview(secret: str | None) -> str | None:
    """Non-revealing: a fixed mask plus the last two characters of long secrets only."""
    if not secret:
        return None
    return "********" + (secret[-2:] if len(secret) >= 24 else "")


def _error(status: int, message: str) -> BraintrustError:
    code = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound"}.get(
        status, "InternalError")
    return BraintrustError(status, code, message)


def _render(rec: dict[str, Any]) -> dict[str, Any]:
    out = {k: copy.deepcopy(v) for k, v in rec.items() if k != "secret"}
    out["preview_secret"] = preview(rec.get("secret"))
    return out


def _body(req: Request, fields: Fields) -> dict[str, Any]:
    """The body's known fields, each type-checked as the spec types it; nothing is stored
    unless every field passes."""
    try:
        raw = req.json()
    except ApiError as e:  # invalid JSON, not UTF-8, not an object: Braintrust's error shape
        raise _error(400, e.message) from None
    body = {k: v for k, v in raw.items() if k in fields}
    for key, (kind, nullable) in fields.items():
        if key not in body:
            if not nullable:
                raise _error(400, f"{key}: Required")
            continue
        value = body[key]
        if value is None and nullable:
            continue
        if not isinstance(value, kind):
            got = "null" if value is None else type(value).__name__
            raise _error(400, f"{key}: Expected {JSON_TYPE[kind]}, received {got}")
    if "name" in body and body["name"] is not None and not body["name"]:
        raise _error(400, "name: String must contain at least 1 character(s)")
    return body


def _check_org(ws: Workspace, org_name: Any) -> None:
    """A write naming another organization (the spec says nothing of the answer: a switch)."""
    if org_name in (None, ORG_NAME):
        return
    status = 400 if ws.switches.braintrust_other_org == "400" else 403
    raise _error(status, f"The API key has no access to organization {org_name!r}")


def _uuid(value: str, what: str) -> str:
    if not UUID.fullmatch(value):
        raise _error(400, f"{what}: Invalid uuid")
    return value.lower()  # a uuid column compares without case


def _gone(ws: Workspace, what: str) -> BraintrustError:
    """An unknown or deleted record: the spec lists no 404, so the status is a switch."""
    status = int(ws.switches.braintrust_unknown_id)
    if status == 403:
        return _error(403, f"{what} does not exist or you do not have permission to access it")
    return _error(status, f"{what} not found")


def _by_name(ws: Workspace, name: str) -> dict[str, Any] | None:
    return next((r for r in ws.ai_secrets.values() if r["name"] == name), None)


def _new(ws: Workspace, body: dict[str, Any]) -> dict[str, Any]:
    now = _iso(ws.now())
    rec = {"id": str(uuid.uuid4()), "org_id": ORG_ID, "name": body["name"],
           "type": body.get("type"), "metadata": body.get("metadata"),
           "secret": body.get("secret"), "created": now, "updated_at": now,
           "secret_updated_at": now if body.get("secret") is not None else None}
    ws.ai_secrets[rec["id"]] = rec
    return rec


def create(ws: Workspace, req: Request) -> Response:
    body = _body(req, CREATE)
    _check_org(ws, body.get("org_name"))
    existing = _by_name(ws, body["name"])
    if existing is not None:  # POST returns the existing record unmodified (the spec says so)
        return ok(_render(existing))
    return ok(_render(_new(ws, body)))


def upsert(ws: Workspace, req: Request) -> Response:
    body = _body(req, CREATE)
    _check_org(ws, body.get("org_name"))
    rec = _by_name(ws, body["name"])
    if rec is None:
        return ok(_render(_new(ws, body)))
    # "Replace with the provided fields": whether an omitted type or metadata is cleared is a
    # switch. An omitted secret is kept (the spec says so); "secret": null is a switch.
    keep = ws.switches.braintrust_put_omitted == "keep"
    for key in ("type", "metadata"):
        if key in body or not keep:
            rec[key] = body.get(key)
    if body.get("secret") is not None:
        rec["secret"] = body["secret"]
        rec["secret_updated_at"] = _iso(ws.now())
    elif "secret" in body and ws.switches.braintrust_put_null_secret == "clear":
        rec["secret"] = None
        rec["secret_updated_at"] = _iso(ws.now())
    rec["updated_at"] = _iso(ws.now())
    return ok(_render(rec))


def delete_by_name(ws: Workspace, req: Request) -> Response:
    """DELETE /v1/ai_secret with body {name, org_name}."""
    body = _body(req, DELETE)
    _check_org(ws, body.get("org_name"))
    rec = _by_name(ws, body["name"])
    if rec is None:
        raise _gone(ws, f"ai_secret named {body['name']!r}")
    del ws.ai_secrets[rec["id"]]
    return ok(_render(rec))


def _int_arg(req: Request, name: str) -> int | None:
    raw = req.arg(name)
    if raw is None or raw == "":  # the spec's limit is nullable: empty is no limit
        return None
    if not re.fullmatch(r"[+-]?[0-9]+", raw.strip()):
        raise _error(400, f"{name}: Expected integer, received {raw[:40]!r}")
    value = int(raw)
    if value < 0:
        raise _error(400, f"{name}: Number must be greater than or equal to 0")
    return value


def list_(ws: Workspace, req: Request) -> Response:
    limit = _int_arg(req, "limit")
    # Present but empty is not absent: "" is no uuid, so the spec's `format: uuid` refuses it
    # (only `limit` is nullable).
    after, before = req.arg("starting_after"), req.arg("ending_before")
    if after is not None and before is not None:
        raise _error(400, "You may only pass one of starting_after and ending_before")
    if after is not None:
        after = _uuid(after, "starting_after")
    if before is not None:
        before = _uuid(before, "ending_before")
    ids = {_uuid(v, "ids") for v in req.query.get("ids", [])}
    org = req.arg("org_name")
    if org not in (None, "", ORG_NAME):
        if ws.switches.braintrust_other_org == "empty":
            return ok({"objects": []})
        _check_org(ws, org)
    # Newest first, as the spec says ("sorted by creation date").
    items = sorted(ws.ai_secrets.values(), key=lambda r: (r["created"], r["id"]), reverse=True)
    if ids:
        items = [r for r in items if r["id"] in ids]
    names = [n for n in req.query.get("ai_secret_name", []) if n != ""]
    if names:
        items = [r for r in items if r["name"] in names]
    types = [t for t in req.query.get("ai_secret_type", []) if t != ""]
    if types:
        items = [r for r in items if r["type"] in types]
    positions = [r["id"] for r in items]
    if after:  # an unknown cursor lists nothing
        items = items[positions.index(after) + 1:] if after in positions else []
    elif before:  # the page just before the cursor, still newest first
        end = positions.index(before) if before in positions else 0
        items = items[:end]
        if limit is not None:
            items = items[max(0, len(items) - limit):]
    if limit is not None:
        items = items[:limit]
    return ok({"objects": [_render(r) for r in items]})


def _get(ws: Workspace, req: Request) -> dict[str, Any]:
    secret_id = _uuid(req.params["id"], "ai_secret_id")
    rec = ws.ai_secrets.get(secret_id)
    if rec is None:
        raise _gone(ws, f"ai_secret {secret_id}")
    return rec


def get(ws: Workspace, req: Request) -> Response:
    return ok(_render(_get(ws, req)))


def _deep_merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = _deep_merge(base.get(k), v) if k in base else v
        return out
    return patch


def patch(ws: Workspace, req: Request) -> Response:
    rec = _get(ws, req)
    body = _body(req, PATCH)  # every field checked before anything changes
    name = body.get("name")
    if name is not None and name != rec["name"] and _by_name(ws, name) is not None:
        # Onto an existing name: the spec lists no 409; a 400 is the emulator's choice.
        raise _error(400, f"An ai_secret named {name!r} already exists")
    # null means "no change": the spec says it does not support setting fields to null.
    if name is not None:
        rec["name"] = name
    if body.get("type") is not None:
        rec["type"] = body["type"]
    if body.get("metadata") is not None:
        rec["metadata"] = _deep_merge(rec.get("metadata") or {}, body["metadata"])
    if body.get("secret") is not None:
        rec["secret"] = body["secret"]
        rec["secret_updated_at"] = _iso(ws.now())
    rec["updated_at"] = _iso(ws.now())
    return ok(_render(rec))


def delete(ws: Workspace, req: Request) -> Response:
    rec = _get(ws, req)
    del ws.ai_secrets[rec["id"]]
    return ok(_render(rec))


def _preflight(req: Request, methods: str) -> Response:
    """OPTIONS (CORS), open to every caller as the spec's `security: []` says. The header
    values are a guess (see MAX_AGE)."""
    return Response(status=200, body=None, content_type="text/plain", headers={
        "Access-Control-Allow-Origin": req.header("origin") or "*",
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Allow-Methods": methods,
        "Access-Control-Allow-Headers": req.header("access-control-request-headers")
        or "Content-Type, Authorization",
        "Access-Control-Max-Age": MAX_AGE,
    })


def options(ws: Workspace, req: Request) -> Response:
    return _preflight(req, "GET, POST, PUT, DELETE, OPTIONS")


def options_id(ws: Workspace, req: Request) -> Response:
    _uuid(req.params["id"], "ai_secret_id")  # the spec types the path parameter and lists a 400
    return _preflight(req, "GET, PATCH, DELETE, OPTIONS")


ID = r"(?P<id>[^/]+)"
ROUTES = [
    Route("POST", BASE, create, auth="braintrust"),
    Route("PUT", BASE, upsert, auth="braintrust"),
    Route("GET", BASE, list_, auth="braintrust"),
    Route("DELETE", BASE, delete_by_name, auth="braintrust"),
    Route("OPTIONS", BASE, options, auth="public"),
    Route("GET", f"{BASE}/{ID}", get, auth="braintrust"),
    Route("PATCH", f"{BASE}/{ID}", patch, auth="braintrust"),
    Route("DELETE", f"{BASE}/{ID}", delete, auth="braintrust"),
    Route("OPTIONS", f"{BASE}/{ID}", options_id, auth="public"),
]
