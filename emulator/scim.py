"""SCIM service principals: /api/2.0/preview/scim/v2/ServicePrincipals.

Wire shape is databricks.sdk.service.iam.ServicePrincipal (camelCase). Errors are SCIM bodies.
Reads and writes need a workspace admin (databricks/cli libs/iamutil/service_principal.go reads
them only as an admin); `Me` is open to every caller.

Switches (models.Switches): during `propagation_delay` after a create, get by id answers 404 and
list/filter show the principal without `displayName` (databricks/cli acceptance
bundle/resources/permissions/jobs/delete_one records a fresh principal without it);
`scim_external_id: drop` stores no `externalId` (terraform-provider-databricks #1676).
"""

from __future__ import annotations

import re
import shlex
import uuid
from typing import Any

from databricks.sdk.service.iam import ComplexValue, ServicePrincipal

from .errors import ScimError
from .models import Workspace
from .routing import Request, Response, Route, ok

SP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
BASE = r"/api/2\.0/preview/scim/v2/ServicePrincipals"
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
ENTITLEMENTS = {"allow-cluster-create", "allow-instance-pool-create", "databricks-sql-access",
                "workspace-access", "workspace-consume"}
FILTER_ATTRS = {"displayname": "displayName", "applicationid": "applicationId",
                "externalid": "externalId", "id": "id", "active": "active"}


def _require_admin(req: Request) -> None:
    if not req.caller.is_admin:
        raise ScimError(403, "Only workspace admins may manage service principals.")


def _get(ws: Workspace, sp_id: str) -> dict[str, Any]:
    sp = ws.service_principals.get(sp_id)
    if sp is None:
        raise ScimError(404, f"User not found. ServicePrincipal with id {sp_id} not found.")
    return sp


def _complex_values(value: Any, field: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ScimError(400, f"{field} must be a list", "invalidValue")
    out = []
    for v in value:
        if not isinstance(v, dict) or not isinstance(v.get("value"), str):
            raise ScimError(400, f"each of {field} needs a string value", "invalidValue")
        try:
            out.append(ComplexValue.from_dict(v).as_dict())
        except (TypeError, ValueError):
            raise ScimError(400, f"{field} holds a value of the wrong type", "invalidValue") from None
    if field == "entitlements":
        for v in out:
            if v["value"] not in ENTITLEMENTS:
                raise ScimError(400, f"Unknown entitlement {v['value']!r}", "invalidValue")
    return out


def _apply_fields(ws: Workspace, sp: dict[str, Any], body: dict[str, Any]) -> None:
    if "displayName" in body:
        if not isinstance(body["displayName"], str) or not body["displayName"].strip():
            raise ScimError(400, "displayName must be a non-empty string", "invalidValue")
        sp["displayName"] = body["displayName"]
    if "active" in body:
        if body["active"] in ("true", "false", "True", "False"):  # SCIM clients send strings too
            body = {**body, "active": body["active"].lower() == "true"}
        if not isinstance(body["active"], bool):
            raise ScimError(400, "active must be a boolean", "invalidValue")
        sp["active"] = body["active"]
    if "externalId" in body and ws.switches.scim_external_id == "keep":
        sp["externalId"] = body["externalId"]
    for field in ("entitlements", "groups", "roles"):
        if field in body:
            sp[field] = _complex_values(body[field], field)


def _render(sp: dict[str, Any], fresh: bool = False) -> dict[str, Any]:
    out = ServicePrincipal.from_dict(sp).as_dict()
    out["schemas"] = [SP_SCHEMA]
    out.setdefault("active", True)
    if fresh:  # still propagating: answered without its displayName
        out.pop("displayName", None)
    return out


def create(ws: Workspace, req: Request) -> Response:
    _require_admin(req)
    body = req.json()
    if not body.get("displayName"):
        raise ScimError(400, "Request is missing required field: displayName", "invalidValue")
    app_id = body.get("applicationId")
    if app_id is not None:
        if not isinstance(app_id, str) or not UUID_RE.fullmatch(app_id):
            raise ScimError(400, f"applicationId {app_id!r} is not a valid UUID", "invalidValue")
        if ws.sp_by_application_id(app_id):
            raise ScimError(409, f"Service principal with application ID {app_id} already exists.",
                            "uniqueness")
    else:
        app_id = str(uuid.uuid4())
    sp_id = str(7_000_000_000_000_000 + ws.next_number())  # numeric string, like the real ids
    sp: dict[str, Any] = {"id": sp_id, "applicationId": app_id, "active": True}
    _apply_fields(ws, sp, body)
    ws.service_principals[sp_id] = sp
    ws.sp_created[sp_id] = ws.now()
    return ok(_render(sp), status=201)


def _matches(sp: dict[str, Any], flt: str) -> bool:
    # Supports `attr eq "value"`, `attr co "v"`, `attr sw "v"`, joined with `and`.
    try:
        tokens = shlex.split(flt)
    except ValueError:
        raise ScimError(400, f"Invalid filter {flt!r}", "invalidFilter") from None
    clauses, i = [], 0
    while i < len(tokens):
        if i + 2 >= len(tokens):
            raise ScimError(400, f"Invalid filter {flt!r}", "invalidFilter")
        attr, op, value = tokens[i], tokens[i + 1].lower(), tokens[i + 2]
        key = FILTER_ATTRS.get(attr.lower())
        if key is None or op not in ("eq", "ne", "co", "sw"):
            raise ScimError(400, f"Unsupported filter {flt!r}", "invalidFilter")
        clauses.append((key, op, value))
        i += 3
        if i < len(tokens):
            if tokens[i].lower() != "and":
                raise ScimError(400, f"Unsupported filter {flt!r} (only 'and')", "invalidFilter")
            i += 1
    for key, op, value in clauses:
        actual = sp.get(key, True if key == "active" else None)
        actual = str(actual).lower() if isinstance(actual, bool) else actual
        if actual is None:
            return False
        a, v = str(actual), value
        if key in ("displayName",):  # SCIM: displayName compares case-insensitively
            a, v = a.lower(), v.lower()
        ok_ = {"eq": a == v, "ne": a != v, "co": v in a, "sw": a.startswith(v)}[op]
        if not ok_:
            return False
    return True


def list_(ws: Workspace, req: Request) -> Response:
    _require_admin(req)
    items = sorted(ws.service_principals.values(), key=lambda s: int(s["id"]))
    flt = req.arg("filter")
    if flt:
        items = [s for s in items if _matches(s, flt)]
    try:
        start = max(1, int(req.arg("startIndex", "1") or 1))
        count = int(req.arg("count", "10000") or 10000)
    except ValueError:
        raise ScimError(400, "startIndex and count must be integers", "invalidValue") from None
    page = items[start - 1:start - 1 + max(0, count)]
    return ok({"schemas": [LIST_SCHEMA], "totalResults": len(items), "startIndex": start,
               "itemsPerPage": len(page),
               "Resources": [_render(s, ws.propagating(s["id"])) for s in page]})


def get(ws: Workspace, req: Request) -> Response:
    _require_admin(req)
    if ws.propagating(req.params["id"]):  # not known by id yet; writes by id already work
        raise ScimError(404, f"User not found. ServicePrincipal with id {req.params['id']} not found.")
    return ok(_render(_get(ws, req.params["id"])))


def replace(ws: Workspace, req: Request) -> Response:
    _require_admin(req)
    sp = _get(ws, req.params["id"])
    body = req.json()
    app_id = body.get("applicationId")
    if app_id is not None and app_id != sp["applicationId"]:
        raise ScimError(400, "applicationId cannot be changed", "mutability")
    if not body.get("displayName"):
        raise ScimError(400, "Request is missing required field: displayName", "invalidValue")
    new = {"id": sp["id"], "applicationId": sp["applicationId"], "active": True}
    _apply_fields(ws, new, body)
    sp.clear()
    sp.update(new)
    return ok(_render(sp))


_ENT_PATH = re.compile(r'^(entitlements|groups|roles)\[value eq "([^"]+)"\]$')


def patch(ws: Workspace, req: Request) -> Response:
    _require_admin(req)
    sp = _get(ws, req.params["id"])
    body = req.json()
    ops = body.get("Operations", body.get("operations"))
    if not isinstance(ops, list):
        raise ScimError(400, "Operations must be a list", "invalidSyntax")
    work = dict(sp)
    for op in ops:
        if not isinstance(op, dict):
            raise ScimError(400, "each of Operations must be an object", "invalidSyntax")
        kind = str(op.get("op", "")).lower()
        path, value = op.get("path"), op.get("value")
        if path is not None and not isinstance(path, str):
            raise ScimError(400, "path must be a string", "invalidPath")
        if kind not in ("add", "replace", "remove"):
            raise ScimError(400, f"Unsupported op {op.get('op')!r}", "invalidSyntax")
        if kind == "remove":
            m = _ENT_PATH.match(path or "")
            if m:
                work[m.group(1)] = [v for v in work.get(m.group(1), []) if v["value"] != m.group(2)]
            elif path in ("entitlements", "groups", "roles", "externalId"):
                work.pop(path, None)
            else:
                raise ScimError(400, f"Cannot remove {path!r}", "noTarget")
            continue
        if path is None:
            if not isinstance(value, dict):
                raise ScimError(400, "value must be an object when path is absent", "invalidValue")
            changes = value
        else:
            changes = {path: value}
        for key, val in changes.items():
            if key == "applicationId":
                raise ScimError(400, "applicationId cannot be changed", "mutability")
            if key in ("entitlements", "groups", "roles") and kind == "add":
                current = {v["value"]: v for v in work.get(key, [])}
                for v in _complex_values(val if isinstance(val, list) else [val], key):
                    current[v["value"]] = v
                work[key] = list(current.values())
            elif key in ("displayName", "active", "externalId", "entitlements", "groups", "roles"):
                _apply_fields(ws, work, {key: val})
            else:
                raise ScimError(400, f"Unsupported attribute {key!r}", "invalidPath")
    sp.clear()
    sp.update(work)
    return ok(_render(sp))


def delete(ws: Workspace, req: Request) -> Response:
    _require_admin(req)
    _get(ws, req.params["id"])
    ws.delete_service_principal(req.params["id"])
    return Response(status=204)


def me(ws: Workspace, req: Request) -> Response:
    """The caller (w.current_user.me()): the admin user, or the service principal."""
    p = req.caller
    if p.kind == "user":
        return ok({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "1000000000000001",
                   "userName": p.name, "displayName": p.name.split("@")[0], "active": True,
                   "groups": [{"display": g, "value": g} for g in p.groups]})
    sp = ws.service_principals[p.sp_id or ""]
    return ok({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": sp["id"],
               "userName": sp["applicationId"], "displayName": sp.get("displayName"),
               "active": sp.get("active", True)})


ROUTES = [
    Route("GET", r"/api/2\.0/preview/scim/v2/Me", me),
    Route("POST", BASE, create),
    Route("GET", BASE, list_),
    Route("GET", BASE + r"/(?P<id>[^/]+)", get),
    Route("PUT", BASE + r"/(?P<id>[^/]+)", replace),
    Route("PATCH", BASE + r"/(?P<id>[^/]+)", patch),
    Route("DELETE", BASE + r"/(?P<id>[^/]+)", delete),
]
