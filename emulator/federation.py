"""Workload identity federation (like the CLI test server's fake_oidc.go, for the token-exchange
grant): a service principal's federation policies, and `POST /oidc/v1/token` with
`grant_type=urn:ietf:params:oauth:grant-type:token-exchange`, which is what databricks-sdk's
`github-oidc` (and `env-oidc`, `file-oidc`) auth sends: a JWT `subject_token`, the principal's
`client_id`, and no secret.

A policy has the fields of databricks-sdk's `oauth2.OidcFederationPolicy` (issuer, audiences,
subject_claim, subject, jwks_json or jwks_uri). The token is accepted when one policy of that
principal verifies it: an RS256 signature by one of the policy's keys, `exp` in the future and
`nbf` (when present) not, `iss` equal to the issuer, one `aud` among the audiences (default: the
account id, as the real service defaults it), and the subject claim equal to the subject.

Deviations from the real service:
- the real service finds the issuer's keys through its well-known endpoint when a policy has
  neither jwks_json nor jwks_uri; the emulator has no network, so it needs one of them;
- policies are set through the admin path (`POST /_emulator/federation-policies`, keyed by
  application id), not the account API (`/accounts/{id}/servicePrincipals/{id}/federationPolicies`);
- refusals are OAuth errors (400 `invalid_request`/`invalid_grant`, 401 `invalid_client`) whose
  description names the check that failed; the real service words them its own way.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets as pysecrets
import threading
import urllib.parse
import urllib.request
import uuid
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from databricks.sdk.service.oauth2 import FederationPolicy, OidcFederationPolicy

from .errors import OAuthError, invalid_parameter
from .models import Workspace, sha256
from .routing import Request, Response, ok

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
SUBJECT_TOKEN_TYPES = ("urn:ietf:params:oauth:token-type:jwt", "urn:ietf:params:oauth:token-type:id_token")
# The account the emulated workspace belongs to. Host metadata publishes it, and as the default
# federation audience, so the SDK asks GitHub for a token with aud=<account id>.
ACCOUNT_ID = "7f1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b"
DEFAULT_AUDIENCES = [ACCOUNT_ID]
CLOCK_SKEW = 30  # seconds of leeway on exp/nbf, as JWT validators commonly allow
JWKS_FETCH_TIMEOUT = 5
JWKS_MAX = 1 << 20  # a key set is a few KB


def host_metadata_fields() -> dict[str, Any]:
    """What `/.well-known/databricks-config` adds for federation (oauth.HostMetadata's fields)."""
    return {"account_id": ACCOUNT_ID, "token_federation_default_oidc_audiences": list(DEFAULT_AUDIENCES)}


# ---- policies (state) ------------------------------------------------------------------------


def _policies(ws: Workspace) -> dict[str, list[dict[str, Any]]]:
    return ws.federation_policies


def parse_policy(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The admin body, flat or the SDK's nested `{"oidc_policy": {...}}`, → (application id, policy)."""
    application_id = body.get("application_id")
    if not isinstance(application_id, str) or not application_id:
        raise invalid_parameter("application_id is required: the service principal's application id")
    nested = body.get("oidc_policy")
    if nested is not None and not isinstance(nested, dict):
        raise invalid_parameter("oidc_policy must be an object with the fields of OidcFederationPolicy")
    known = set(OidcFederationPolicy.__dataclass_fields__)
    if nested is not None:
        # The SDK's FederationPolicy: its other fields (name, description, ...) are accepted and ignored.
        outer = set(FederationPolicy.__dataclass_fields__) | {"application_id"}
        unknown = sorted(set(body) - outer)
        fields = nested
    else:
        fields = {k: v for k, v in body.items() if k != "application_id"}
        unknown = []
    unknown += sorted(set(fields) - known)
    if unknown:
        raise invalid_parameter(f"unknown policy field(s) {unknown}; expected some of {sorted(known)}")
    if isinstance(fields.get("jwks_json"), dict):
        # The API takes the key set as JSON text; an object is accepted as the same thing.
        fields = {**fields, "jwks_json": json.dumps(fields["jwks_json"])}
    policy = OidcFederationPolicy.from_dict(fields)
    if not policy.issuer:
        raise invalid_parameter("issuer is required, e.g. https://token.actions.githubusercontent.com")
    if not policy.subject:
        raise invalid_parameter("subject is required for a service principal federation policy, "
                                "e.g. repo:acme/infra:environment:prod")
    if bool(policy.jwks_json) == bool(policy.jwks_uri):
        raise invalid_parameter("give exactly one of jwks_json or jwks_uri (the emulator cannot "
                                "discover the issuer's keys over the network)")
    if policy.jwks_json:
        _keys_from_jwks(policy.jwks_json, invalid_parameter)
    if policy.audiences is not None and (not isinstance(policy.audiences, list) or not all(
            isinstance(a, str) and a for a in policy.audiences)):
        raise invalid_parameter("audiences must be a list of non-empty strings")
    stored = policy.as_dict()
    stored["audiences"] = list(policy.audiences or DEFAULT_AUDIENCES)
    stored["subject_claim"] = policy.subject_claim or "sub"
    return application_id, stored


class HasWorkspace(Protocol):
    """What the admin route needs of the server's App (no import of server.py: no circle)."""

    ws: Workspace


def add_policy(app: HasWorkspace, req: Request) -> Response:
    """`POST /_emulator/federation-policies`: add a policy to a service principal (by application id)."""
    application_id, policy = parse_policy(req.json())
    policy["uid"] = uuid.uuid4().hex
    _policies(app.ws).setdefault(application_id, []).append(policy)
    return ok({"application_id": application_id, "oidc_policy": policy})


# ---- JWT verification ----------------------------------------------------------------------------


def _b64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _int(value: str) -> int:
    return int.from_bytes(_b64url(value), "big")


def _keys_from_jwks(text: str, error: Any) -> list[tuple[str | None, rsa.RSAPublicKey]]:
    try:
        jwks = json.loads(text)
        keys = []
        for jwk in jwks["keys"]:
            if jwk.get("kty") != "RSA":
                continue
            key = rsa.RSAPublicNumbers(_int(jwk["e"]), _int(jwk["n"])).public_key()
            keys.append((jwk.get("kid"), key))
    except (ValueError, KeyError, TypeError, binascii.Error) as e:
        raise error(f"jwks is not a JSON Web Key Set with RSA keys ({type(e).__name__})") from None
    if not keys:
        raise error("jwks holds no RSA key")
    return keys


def _policy_keys(policy: dict[str, Any]) -> list[tuple[str | None, rsa.RSAPublicKey]]:
    def refuse(message: str) -> OAuthError:
        return OAuthError(400, "invalid_grant", f"Federation policy keys unusable: {message}")

    if policy.get("jwks_json"):
        return _keys_from_jwks(policy["jwks_json"], refuse)
    uri = str(policy["jwks_uri"])
    if not uri.startswith(("http://", "https://")):
        raise refuse("jwks_uri must be an http(s) URL")
    got: list[str | BaseException] = []

    def fetch() -> None:
        try:
            with urllib.request.urlopen(uri, timeout=JWKS_FETCH_TIMEOUT) as resp:  # noqa: S310 - http(s) only
                body = resp.read(JWKS_MAX + 1)
            got.append(body.decode() if len(body) <= JWKS_MAX else ValueError("larger than 1 MiB"))
        except (OSError, UnicodeDecodeError) as e:
            got.append(e)

    # The timeout bounds each read; the thread bounds the whole fetch (a byte-a-time answer).
    worker = threading.Thread(target=fetch, daemon=True)
    worker.start()
    worker.join(JWKS_FETCH_TIMEOUT * 2)
    if not got or isinstance(got[0], BaseException):
        reason = type(got[0]).__name__ if got else "no complete answer in time"
        raise refuse(f"could not fetch jwks_uri ({reason})")
    return _keys_from_jwks(got[0], refuse)


def _decode(subject_token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    parts = subject_token.split(".")
    if len(parts) != 3:
        raise OAuthError(400, "invalid_grant", "subject_token is not a signed JWT (header.payload.signature)")
    try:
        header, claims = json.loads(_b64url(parts[0])), json.loads(_b64url(parts[1]))
        signature = _b64url(parts[2])
    except (ValueError, binascii.Error, RecursionError):
        raise OAuthError(400, "invalid_grant", "subject_token is not a well-formed JWT") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise OAuthError(400, "invalid_grant", "subject_token is not a well-formed JWT")
    return header, claims, f"{parts[0]}.{parts[1]}".encode(), signature


def _signature_ok(policy: dict[str, Any], header: dict[str, Any], signed: bytes, signature: bytes) -> bool:
    kid = header.get("kid")
    for key_id, key in _policy_keys(policy):
        if kid is not None and key_id is not None and key_id != kid:
            continue
        try:
            key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
            return True
        except InvalidSignature:
            continue
    return False


def _mismatch(policy: dict[str, Any], claims: dict[str, Any], now: float) -> str | None:
    """Why these (signature-checked) claims do not satisfy the policy, or None."""
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return "the token has no exp claim"
    if now > exp + CLOCK_SKEW:
        return "the token has expired"
    nbf = claims.get("nbf")
    if isinstance(nbf, int | float) and not isinstance(nbf, bool) and now + CLOCK_SKEW < nbf:
        return "the token is not valid yet (nbf)"
    if claims.get("iss") != policy["issuer"]:
        return f"issuer {claims.get('iss')!r} is not the policy's issuer {policy['issuer']!r}"
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    if not set(auds) & set(policy["audiences"]):
        return f"audience {aud!r} is not among the policy's audiences {policy['audiences']}"
    claim = policy["subject_claim"]
    if claims.get(claim) != policy["subject"]:
        return f"claim {claim} {claims.get(claim)!r} is not the policy's subject {policy['subject']!r}"
    return None


def _basic_client(req: Request) -> tuple[str, str] | None:
    scheme, _, value = (req.header("authorization") or "").partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        client_id, _, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except ValueError:  # not base64, not ASCII, or not UTF-8
        raise OAuthError(401, "invalid_client", "Malformed client credentials") from None
    return urllib.parse.unquote(client_id), urllib.parse.unquote(secret)


def exchange(ws: Workspace, form: dict[str, str]) -> dict[str, Any]:
    """Check a token-exchange request; the service principal it authenticates, or an OAuthError."""
    subject_token = form.get("subject_token") or ""
    if not subject_token:
        raise OAuthError(400, "invalid_request", "subject_token is required for the token-exchange grant")
    token_type = form.get("subject_token_type")
    if token_type and token_type not in SUBJECT_TOKEN_TYPES:
        raise OAuthError(400, "invalid_request",
                         f"subject_token_type {token_type!r} is not supported; use {SUBJECT_TOKEN_TYPES[0]}")
    if form.get("client_secret"):
        raise OAuthError(400, "invalid_request", "the token-exchange grant takes no client_secret")
    client_id = form.get("client_id") or ""
    sp = ws.sp_by_application_id(client_id) if client_id else None
    if sp is None or not sp.get("active", True):
        raise OAuthError(401, "invalid_client", "Client authentication failed: client_id names no active "
                                                "service principal")
    policies = _policies(ws).get(client_id) or []
    if not policies:
        raise OAuthError(401, "invalid_client", "The service principal has no federation policy")
    header, claims, signed, signature = _decode(subject_token)
    if header.get("alg") != "RS256":
        raise OAuthError(400, "invalid_grant", f"JWT alg {header.get('alg')!r} is not supported; RS256 is")
    reasons = []
    for policy in policies:
        if not _signature_ok(policy, header, signed, signature):
            reasons.append("the signature does not verify with the policy's keys")
            continue
        reason = _mismatch(policy, claims, ws.now())
        if reason is None:
            return sp
        reasons.append(reason)
    # Name every policy's reason (they hold no secret: claims and policy fields only).
    raise OAuthError(400, "invalid_grant", "No federation policy accepts the token: " + "; ".join(reasons))


def token_exchange(ws: Workspace, req: Request, form: dict[str, str], lifetime: int) -> Response:
    """The token-exchange branch of `POST /oidc/v1/token`: a token for the federated principal."""
    basic = _basic_client(req)
    if basic is not None and not form.get("client_id"):
        # The SDK sends client_id in the form; a client may send it as HTTP Basic (empty secret).
        form = {**form, "client_id": basic[0], **({"client_secret": basic[1]} if basic[1] else {})}
    sp = exchange(ws, form)
    scopes = (form.get("scope") or "all-apis").split()
    now = ws.now()
    access_token = "eyJemu." + pysecrets.token_urlsafe(32)
    ws.tokens[sha256(access_token)] = {"sp_id": sp["id"], "secret_id": None, "scopes": scopes,
                                       "expires_at": now + lifetime}
    return ok({"access_token": access_token, "token_type": "Bearer", "expires_in": lifetime,
               "scope": " ".join(scopes)})
