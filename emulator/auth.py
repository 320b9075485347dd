"""Authentication (like the CLI test server's fake_oidc.go): host metadata, OIDC discovery, the
client-credentials token endpoint, and resolving a bearer token to a Principal.

- The admin token is a PAT of a workspace admin.
- `POST /oidc/v1/token` mints an opaque access token for a live, unexpired secret of an active
  service principal, valid for TOKEN_LIFETIME seconds of the emulator's clock.
- A token's scopes are the secret's `scopes` when it has any, else the requested `scope`.
  Serving APIs accept a token whose scopes contain `all-apis` or any scope containing `serving`
  (the real scope catalogue is larger; this is the emulator's simplification).
"""

from __future__ import annotations

import base64
import secrets as pysecrets
from urllib.parse import unquote

from . import federation, seed
from .errors import OAuthError, permission_denied, unauthenticated
from .models import Principal, Workspace, sha256
from .routing import Request, Response, Route, ok

TOKEN_LIFETIME = 3600


def same_token(given: str, expected: str) -> bool:
    """Constant-time comparison that also takes a header holding non-ASCII bytes (as bytes:
    compare_digest refuses non-ASCII text with a TypeError, which would answer 500)."""
    return pysecrets.compare_digest(given.encode(), expected.encode())


def token_allows_serving(principal: Principal) -> bool:
    if principal.scopes is None:
        return True
    return any(s == "all-apis" or "serving" in s for s in principal.scopes)


def resolve_principal(ws: Workspace, req: Request, admin_token: str) -> Principal:
    header = req.header("authorization")
    if not header:
        raise unauthenticated("Credential was not sent or was of an unsupported type for this API.")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthenticated("Credential was not sent or was of an unsupported type for this API.")
    if same_token(token, admin_token):
        return Principal(kind="user", name=seed.ADMIN_USER, is_admin=True, groups=["admins"])
    grant = ws.tokens.get(sha256(token))
    if grant is None:
        raise unauthenticated("Invalid access token.")
    if ws.now() >= grant["expires_at"]:
        raise unauthenticated("Invalid access token: the token has expired.")
    sp = ws.service_principals.get(grant["sp_id"])
    if sp is None or not sp.get("active", True):
        # Tokens of a deleted or deactivated principal stop working at once.
        raise unauthenticated("Invalid access token: the service principal is no longer active.")
    groups = [g.get("display") or g.get("value") for g in sp.get("groups", []) if isinstance(g, dict)]
    return Principal(kind="service_principal", name=sp["applicationId"], sp_id=sp["id"],
                     scopes=grant["scopes"], groups=[g for g in groups if g],
                     is_admin="admins" in groups)


def require_admin(req: Request, what: str) -> None:
    p = req.principal
    if p is None or not p.is_admin:
        raise permission_denied(f"Only workspace admins may {what}.")


# ---- handlers ----------------------------------------------------------------------------


def host_metadata(ws: Workspace, req: Request) -> Response:
    # What the SDK needs from /.well-known/databricks-config (oauth.HostMetadata): the OIDC root
    # (it appends /.well-known/oauth-authorization-server) and the workspace id.
    return ok({"oidc_endpoint": f"{req.base_url}/oidc", "workspace_id": seed.WORKSPACE_ID,
               **federation.host_metadata_fields()})


def oidc_discovery(ws: Workspace, req: Request) -> Response:
    base = f"{req.base_url}/oidc"
    return ok({
        "issuer": base,
        "authorization_endpoint": f"{base}/v1/authorize",
        "token_endpoint": f"{base}/v1/token",
        "jwks_uri": f"{base}/jwks.json",
        "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "response_types_supported": ["code"],
        "scopes_supported": ["all-apis", "offline_access", "serving.serving-endpoints"],
    })


def _client_credentials(req: Request, form: dict[str, str]) -> tuple[str, str]:
    header = req.header("authorization") or ""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except ValueError:  # not base64, not ASCII, or not UTF-8
            raise OAuthError(401, "invalid_client", "Malformed client credentials") from None
        client_id, sep, client_secret = decoded.partition(":")
        if sep:
            return unquote(client_id), unquote(client_secret)
    if form.get("client_id") and form.get("client_secret"):
        return form["client_id"], form["client_secret"]
    raise OAuthError(401, "invalid_client", "Client authentication failed: no client credentials")


def token(ws: Workspace, req: Request) -> Response:
    form = req.form()
    grant_type = form.get("grant_type")
    if grant_type == federation.TOKEN_EXCHANGE:  # workload identity federation: a JWT, no secret
        return federation.token_exchange(ws, req, form, TOKEN_LIFETIME)
    if grant_type != "client_credentials":
        raise OAuthError(400, "unsupported_grant_type",
                         f"Grant type {grant_type!r} is not supported; use client_credentials")
    client_id, client_secret = _client_credentials(req, form)
    sp = ws.sp_by_application_id(client_id)
    if sp is None or not sp.get("active", True):
        raise OAuthError(401, "invalid_client", "Client authentication failed")
    now = ws.now()
    secret = next((s for s in ws.secrets.values()
                   if s["sp_id"] == sp["id"] and s["hash"] == sha256(client_secret)), None)
    if secret is None or now >= secret["expire_epoch"]:
        raise OAuthError(401, "invalid_client", "Client authentication failed")
    requested = (form.get("scope") or "all-apis").split()
    # The SDK documents a secret's scopes as a bound a minted token cannot exceed: asking for
    # more than the secret allows is refused, as an OAuth server answers invalid_scope.
    allowed = set(secret["scopes"] or [])
    if allowed and "all-apis" not in allowed and not set(requested) <= allowed:
        raise OAuthError(400, "invalid_scope",
                         f"The requested scope exceeds the scopes of this secret ({' '.join(sorted(allowed))})")
    scopes = requested
    access_token = "eyJemu." + pysecrets.token_urlsafe(32)
    ws.tokens[sha256(access_token)] = {"sp_id": sp["id"], "secret_id": secret["id"],
                                       "scopes": scopes, "expires_at": now + TOKEN_LIFETIME}
    # Drop grants that expired long ago so the state does not grow without bound.
    for key in [k for k, t in ws.tokens.items() if t["expires_at"] < now - 86400]:
        del ws.tokens[key]
    return ok({"access_token": access_token, "token_type": "Bearer",
               "expires_in": TOKEN_LIFETIME, "scope": " ".join(scopes)})


ROUTES = [
    Route("GET", r"/\.well-known/databricks-config", host_metadata, auth="public"),
    Route("GET", r"/oidc/\.well-known/oauth-authorization-server", oidc_discovery, auth="public"),
    Route("POST", r"/oidc/v1/token", token, auth="public"),
]
