"""Serving endpoint permissions: /api/2.0/permissions/serving-endpoints/{serving_endpoint_id}
(like the CLI test server's permissions.go), keyed by the endpoint's ``id``, not its name.

Wire shapes: ServingEndpointAccessControlRequest in, ServingEndpointPermissions out. Workspace
admins hold CAN_MANAGE inherited from the root object (/serving-endpoints) on every endpoint.
PUT replaces the direct entries; PATCH adds or raises entries (it never lowers or removes one).
A body naming one principal twice keeps the last level given, and entries are answered in no
fixed order (shuffled from the `seed` switch), as databricks/cli acceptance tests record against
real workspaces. With `pay_per_token_acl: reject`, writes on pay-per-token endpoints are refused.
"""

from __future__ import annotations

from typing import Any

from databricks.sdk.service.serving import ServingEndpointPermissions

from .errors import invalid_parameter, not_found, permission_denied
from .models import LEVELS, PRINCIPAL_KEYS, Workspace, level_rank
from .routing import Request, Response, Route, ok
from .serving_endpoints import require_level

BASE = r"/api/2\.0/permissions/serving-endpoints/(?P<id>[^/]+)"


def _by_id(ws: Workspace, endpoint_id: str) -> dict[str, Any]:
    for ep in ws.endpoints.values():
        if ep["id"] == endpoint_id:
            return ep
    # A name is not an id: the real API answers not-found for it as well.
    raise not_found(f"Serving endpoint with id '{endpoint_id}' does not exist.")


def _display(ws: Workspace, key: str, name: str) -> str | None:
    if key == "service_principal_name":
        sp = ws.sp_by_application_id(name)
        return sp.get("displayName") if sp else None
    if key == "user_name":
        return name.split("@")[0]
    return None


def render(ws: Workspace, ep: dict[str, Any]) -> dict[str, Any]:
    acl: list[dict[str, Any]] = []
    for e in ep["acl"]:
        item = {e["key"]: e["name"],
                "all_permissions": [{"permission_level": e["level"], "inherited": False}]}
        display = _display(ws, e["key"], e["name"])
        if display:
            item["display_name"] = display
        acl.append(item)
    acl.append({"group_name": "admins", "all_permissions": [
        {"permission_level": "CAN_MANAGE", "inherited": True,
         "inherited_from_object": ["/serving-endpoints/"]}]})
    ws.rng.shuffle(acl)  # no fixed order: clients must compare ACLs as sets
    out = {"object_id": f"/serving-endpoints/{ep['id']}", "object_type": "serving-endpoint",
           "access_control_list": acl}
    return ServingEndpointPermissions.from_dict(out).as_dict()


def _parse_acl(ws: Workspace, body: dict[str, Any]) -> list[dict[str, str]]:
    raw = body.get("access_control_list")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise invalid_parameter("access_control_list must be a list")
    out: dict[tuple[str, str], dict[str, str]] = {}
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise invalid_parameter(f"access_control_list[{i}] must be an object")
        unknown = set(entry) - {*PRINCIPAL_KEYS, "permission_level"}
        if unknown:
            raise invalid_parameter(f"Unknown field(s) in access_control_list[{i}]: {sorted(unknown)}")
        keys = [k for k in PRINCIPAL_KEYS if entry.get(k)]
        if len(keys) != 1:
            raise invalid_parameter(f"access_control_list[{i}] must name exactly one of "
                                    f"user_name, group_name, service_principal_name")
        key, name = keys[0], entry[keys[0]]
        level = entry.get("permission_level")
        if level not in LEVELS:
            raise invalid_parameter(f"Permission level {level!r} is not valid for serving "
                                    f"endpoints; use one of {', '.join(LEVELS)}")
        if not ws.principal_exists(key, name):
            kind = {"user_name": "UserName", "group_name": "GroupName",
                    "service_principal_name": "ServicePrincipalName"}[key]
            raise invalid_parameter(f"Principal: {kind}({name}) does not exist")
        if key == "group_name" and name == "admins":
            raise invalid_parameter("The admins group's permissions cannot be changed.")
        out.pop((key, name), None)  # named twice: the last level given wins
        out[(key, name)] = {"key": key, "name": name, "level": level}
    return list(out.values())


def _writable(ws: Workspace, ep: dict[str, Any]) -> None:
    if ep.get("pay_per_token") and ws.switches.pay_per_token_acl == "reject":
        # The status and wording are a guess: no public source shows the real refusal.
        raise permission_denied(
            f"Permissions of '{ep['name']}' cannot be changed: it is a pay-per-token endpoint "
            f"managed by Databricks, whose access is governed by Unity Catalog EXECUTE on "
            f"system.ai.")


def get(ws: Workspace, req: Request) -> Response:
    ep = _by_id(ws, req.params["id"])
    require_level(ws, ep, req.caller, "CAN_VIEW", "read its permissions")
    return ok(render(ws, ep))


def put(ws: Workspace, req: Request) -> Response:
    ep = _by_id(ws, req.params["id"])
    require_level(ws, ep, req.caller, "CAN_MANAGE", "change its permissions")
    _writable(ws, ep)
    ep["acl"] = _parse_acl(ws, req.json())
    return ok(render(ws, ep))


def patch(ws: Workspace, req: Request) -> Response:
    ep = _by_id(ws, req.params["id"])
    require_level(ws, ep, req.caller, "CAN_MANAGE", "change its permissions")
    _writable(ws, ep)
    current = {(e["key"], e["name"]): e for e in ep["acl"]}
    for e in _parse_acl(ws, req.json()):
        prev = current.get((e["key"], e["name"]))
        if prev is None or level_rank(e["level"]) > level_rank(prev["level"]):
            current[(e["key"], e["name"])] = e
    ep["acl"] = list(current.values())
    return ok(render(ws, ep))


def permission_levels(ws: Workspace, req: Request) -> Response:
    _by_id(ws, req.params["id"])
    descriptions = {"CAN_VIEW": "Can view the endpoint", "CAN_QUERY": "Can view and query the endpoint",
                    "CAN_MANAGE": "Can manage the endpoint"}
    return ok({"permission_levels": [{"permission_level": lvl, "description": descriptions[lvl]}
                                     for lvl in LEVELS]})


ROUTES = [
    Route("GET", BASE + "/permissionLevels", permission_levels, serving_scope=True),
    Route("GET", BASE, get, serving_scope=True),
    Route("PUT", BASE, put, serving_scope=True),
    Route("PATCH", BASE, patch, serving_scope=True),
]
