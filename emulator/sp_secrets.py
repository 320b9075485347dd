"""Workspace-level OAuth secrets of service principals:
/api/2.0/accounts/servicePrincipals/{id}/credentials/secrets (ServicePrincipalSecretsProxyAPI).

Wire shapes: databricks.sdk.service.oauth2.CreateServicePrincipalSecretResponse and SecretInfo.
The secret value is only in the create response; the emulator keeps only its SHA-256.
At most MAX_SECRETS secrets per principal (the Databricks OAuth doc states five). During the
propagation delay a new principal is unknown here (404), as right after a real create.
"""

from __future__ import annotations

import base64
import re
import secrets as pysecrets
import uuid
from datetime import UTC, datetime

from databricks.sdk.service.oauth2 import CreateServicePrincipalSecretResponse, SecretInfo

from .auth import require_admin
from .errors import invalid_parameter, not_found
from .models import Workspace, sha256
from .routing import Request, Response, Route, ok

BASE = r"/api/2\.0/accounts/servicePrincipals/(?P<sp>[^/]+)/credentials/secrets"
MAX_LIFETIME = 730 * 86400
DEFAULT_LIFETIME = 730 * 86400
MAX_SECRETS = 5
LIFETIME_RE = re.compile(r"(\d+)(?:\.(\d{1,9}))?s")


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sp(ws: Workspace, req: Request) -> dict:
    sp = ws.service_principals.get(req.params["sp"])
    if sp is None or ws.propagating(sp["id"]):
        raise not_found(f"Service principal {req.params['sp']} does not exist in this workspace.")
    return sp


def _info(ws: Workspace, s: dict) -> dict:
    status = "ACTIVE" if ws.now() < s["expire_epoch"] else "EXPIRED"
    return SecretInfo(id=s["id"], secret_hash=s["secret_hash"], create_time=rfc3339(s["create_epoch"]),
                      update_time=rfc3339(s["create_epoch"]), expire_time=rfc3339(s["expire_epoch"]),
                      status=status, scopes=s["scopes"] or None).as_dict()


def create(ws: Workspace, req: Request) -> Response:
    require_admin(req, "create OAuth secrets for service principals")
    sp = _sp(ws, req)
    body = req.json()
    lifetime = body.get("lifetime")
    seconds = DEFAULT_LIFETIME
    if lifetime is not None:
        m = LIFETIME_RE.fullmatch(str(lifetime))
        if not m:
            raise invalid_parameter(f"Invalid lifetime {lifetime!r}: expected seconds such as '7776000s'")
        seconds = int(m.group(1))
        if seconds <= 0 or seconds > MAX_LIFETIME:
            raise invalid_parameter(
                f"lifetime must be between 1s and {MAX_LIFETIME}s (730 days), got {lifetime}")
    scopes = body.get("scopes") or []
    if not isinstance(scopes, list) or not all(isinstance(s, str) and s for s in scopes):
        raise invalid_parameter("scopes must be a list of non-empty strings")
    held = sorted(s["id"] for s in ws.secrets.values() if s["sp_id"] == sp["id"])
    if len(held) >= MAX_SECRETS:
        # Expired secrets count too until deleted. The exact wording is the emulator's; a 400 is
        # never retried by the SDK (a 429 RESOURCE_EXHAUSTED would be, for minutes).
        raise invalid_parameter(
            f"Service principal {sp['id']} already has {len(held)} OAuth secrets, the maximum "
            f"of {MAX_SECRETS}: delete one of {', '.join(held)} before creating another.")
    value = "dose" + pysecrets.token_hex(18)
    now = ws.now()
    record = {"id": uuid.uuid4().hex, "sp_id": sp["id"], "hash": sha256(value),
              "secret_hash": sha256(value)[:8], "create_epoch": int(now),
              "expire_epoch": int(now) + seconds, "scopes": scopes}
    ws.secrets[record["id"]] = record
    info = _info(ws, record)
    return ok(CreateServicePrincipalSecretResponse.from_dict({**info, "secret": value}).as_dict())


def list_(ws: Workspace, req: Request) -> Response:
    sp = _sp(ws, req)
    if not (req.caller.is_admin or req.caller.sp_id == sp["id"]):
        require_admin(req, "list another service principal's secrets")
    items = sorted((s for s in ws.secrets.values() if s["sp_id"] == sp["id"]),
                   key=lambda s: (s["create_epoch"], s["id"]))
    try:
        size = int(req.arg("page_size") or 100)
        token = req.arg("page_token")
        start = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
    except ValueError:
        raise invalid_parameter("Invalid page_token or page_size") from None
    size = max(1, min(size, 1000))
    page = items[start:start + size]
    out: dict = {"secrets": [_info(ws, s) for s in page]}
    if start + size < len(items):
        out["next_page_token"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
    return ok(out)


def delete(ws: Workspace, req: Request) -> Response:
    require_admin(req, "delete OAuth secrets of service principals")
    sp = _sp(ws, req)
    s = ws.secrets.get(req.params["secret"])
    if s is None or s["sp_id"] != sp["id"]:
        raise not_found(f"Secret {req.params['secret']} does not exist for service principal {sp['id']}.")
    del ws.secrets[s["id"]]
    # Tokens already minted from it stay valid until they expire, as JWTs would.
    return ok({})


ROUTES = [
    Route("POST", BASE, create),
    Route("GET", BASE, list_),
    Route("DELETE", BASE + r"/(?P<secret>[^/]+)", delete),
]
