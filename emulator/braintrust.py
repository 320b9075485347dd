"""Braintrust's AI-secret API, served under /braintrust (so the Braintrust base URL is
``{emulator}/braintrust``), behind ``Authorization: Bearer <braintrust api key>``.

Records: id (uuid), org_id, name, type, metadata, created, updated_at, preview_secret. The secret
itself is stored but never returned.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from typing import Any

from .errors import BraintrustError
from .models import Workspace
from .routing import Request, Response, Route, ok

BASE = r"/braintrust/v1/ai_secret"
ORG_ID = "5d7c9a1e-0b1f-4a3c-9e6d-2f8b7a6c5e4d"
ORG_NAME = "emulator-org"
FIELDS = {"name", "type", "metadata", "secret", "org_name"}


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def preview(secret: str | None) -> str | None:
    """Non-revealing: a fixed mask plus the last two characters of long secrets only."""
    if not secret:
        return None
    return "********" + (secret[-2:] if len(secret) >= 24 else "")


def _error(status: int, message: str) -> BraintrustError:
    code = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
            409: "Conflict"}.get(status, "InternalError")
    return BraintrustError(status, code, message)


def _render(rec: dict[str, Any]) -> dict[str, Any]:
    out = {k: copy.deepcopy(v) for k, v in rec.items() if k != "secret"}
    out["preview_secret"] = preview(rec.get("secret"))
    return out


def _body(req: Request, *, need_name: bool) -> dict[str, Any]:
    try:
        body = req.json()
    except Exception as e:  # any parse error is the client's
        raise _error(400, "Invalid JSON body") from e
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise _error(400, f"Unrecognized key(s) in object: {', '.join(unknown)}")
    if need_name and (not isinstance(body.get("name"), str) or not body["name"]):
        raise _error(400, "name: Required")
    for key in ("type", "secret", "org_name"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise _error(400, f"{key}: Expected string")
    if body.get("metadata") is not None and not isinstance(body["metadata"], dict):
        raise _error(400, "metadata: Expected object")
    if body.get("org_name") not in (None, ORG_NAME):
        raise _error(403, f"The API key has no access to organization {body['org_name']!r}")
    return body


def _by_name(ws: Workspace, name: str) -> dict[str, Any] | None:
    return next((r for r in ws.ai_secrets.values() if r["name"] == name), None)


def _new(ws: Workspace, body: dict[str, Any]) -> dict[str, Any]:
    now = _iso(ws.now())
    rec = {"id": str(uuid.uuid4()), "org_id": ORG_ID, "name": body["name"],
           "type": body.get("type"), "metadata": body.get("metadata"),
           "secret": body.get("secret"), "created": now, "updated_at": now}
    ws.ai_secrets[rec["id"]] = rec
    return rec


def create(ws: Workspace, req: Request) -> Response:
    body = _body(req, need_name=True)
    existing = _by_name(ws, body["name"])
    if existing is not None:  # POST returns the existing record unmodified
        return ok(_render(existing))
    return ok(_render(_new(ws, body)))


def upsert(ws: Workspace, req: Request) -> Response:
    body = _body(req, need_name=True)
    rec = _by_name(ws, body["name"])
    if rec is None:
        return ok(_render(_new(ws, body)))
    rec["type"] = body.get("type")
    rec["metadata"] = body.get("metadata")
    if body.get("secret") is not None:  # a PUT without secret keeps the stored one
        rec["secret"] = body["secret"]
    rec["updated_at"] = _iso(ws.now())
    return ok(_render(rec))


def list_(ws: Workspace, req: Request) -> Response:
    items = sorted(ws.ai_secrets.values(), key=lambda r: (r["created"], r["id"]), reverse=True)
    names = req.query.get("ai_secret_name")
    if names:
        items = [r for r in items if r["name"] in names]
    types = req.query.get("ai_secret_type")
    if types:
        items = [r for r in items if r["type"] in types]
    after = req.arg("starting_after")
    if after:
        ids = [r["id"] for r in items]
        items = items[ids.index(after) + 1:] if after in ids else []
    try:
        limit = int(req.arg("limit") or 0)
    except ValueError:
        raise _error(400, "limit: Expected number") from None
    if limit > 0:
        items = items[:limit]
    return ok({"objects": [_render(r) for r in items]})


def _get(ws: Workspace, req: Request) -> dict[str, Any]:
    rec = ws.ai_secrets.get(req.params["id"])
    if rec is None:
        raise _error(404, f"ai_secret {req.params['id']} not found")
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
    body = _body(req, need_name=False)
    if body.get("name") and body["name"] != rec["name"]:
        other = _by_name(ws, body["name"])
        if other is not None:
            raise _error(409, f"An ai_secret named {body['name']!r} already exists")
        rec["name"] = body["name"]
    if body.get("type") is not None:
        rec["type"] = body["type"]
    if body.get("metadata") is not None:
        rec["metadata"] = _deep_merge(rec.get("metadata") or {}, body["metadata"])
    if body.get("secret") is not None:
        rec["secret"] = body["secret"]
    rec["updated_at"] = _iso(ws.now())
    return ok(_render(rec))


def delete(ws: Workspace, req: Request) -> Response:
    rec = _get(ws, req)
    del ws.ai_secrets[rec["id"]]
    return ok(_render(rec))


ID = r"(?P<id>[^/]+)"
ROUTES = [
    Route("POST", BASE, create, auth="braintrust"),
    Route("PUT", BASE, upsert, auth="braintrust"),
    Route("GET", BASE, list_, auth="braintrust"),
    Route("GET", f"{BASE}/{ID}", get, auth="braintrust"),
    Route("PATCH", f"{BASE}/{ID}", patch, auth="braintrust"),
    Route("DELETE", f"{BASE}/{ID}", delete, auth="braintrust"),
]
