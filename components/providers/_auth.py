"""The deployer's credentials as BoundedApi sends them, and a token minted again after a 401.

A run can outlive its access token: OAuth tokens live an hour, a workspace can revoke one, and a
clock far from the workspace's makes the SDK believe an expired token is still good. A 401 in
the middle of `up` then failed the run, which had made one token request in all (issue 21).

databricks-sdk's own refresh (`oauth.Refreshable`) takes a lock around its token request, and
`oauth.retrieve_token` posts without a timeout (databricks-sdk 0.162 oauth.py): a thread
abandoned at a deadline would keep that lock, and every later call of the process would wait
on it. So:

- OAuth machine-to-machine credentials (client id and secret: `auth_type` oauth-m2m) are minted
  here, by one POST to the workspace's token endpoint (`/oidc/v1/token`, Databricks' documented
  workspace-level endpoint for client credentials) bounded by TOKEN_TIMEOUT and the call's own
  deadline; the token is used until a minute before its `expires_in`.
- Any other credentials (a PAT, a CLI profile, cloud identities) come from the SDK's `Config`
  as before; after a 401, a fresh copy of that `Config` authenticates again, in a thread the
  call waits for at most TOKEN_TIMEOUT (a hung one holds only that copy's lock).
- A PAT cannot be minted again: a 401 fails at once and says so.

Each 401 leads to at most one new token per provider process (threads that saw the same token
refused share one renewal), and a call whose request is refused again right after a renewal
fails with a message that says what to check. No token, secret or header value is ever in a
message or a log line.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import requests

from components import transport

from ._errors import ProviderError

TOKEN_TIMEOUT = 30.0  # one token request, or one fresh authentication
EARLY = 60.0  # a minted token is replaced this long before it expires
TOKEN_PATH = "/oidc/v1/token"
TOKEN_ANSWER_MAX = 64 << 10  # a token answer is well under a kilobyte
TOKEN_LIFETIME_MAX = 86400.0  # a lifetime a server claims past a day is taken as a day


class AuthConfig(Protocol):
    """What this module needs of a databricks-sdk `Config`."""

    @property
    def host(self) -> str | None: ...

    def authenticate(self) -> dict[str, str]: ...


def _m2m(cfg: Any) -> tuple[str, str] | None:
    """The client id and secret when the credentials are OAuth machine-to-machine."""
    client_id, secret = getattr(cfg, "client_id", None), getattr(cfg, "client_secret", None)
    if getattr(cfg, "token", None) or not client_id or not secret:
        return None
    if getattr(cfg, "auth_type", None) not in (None, "oauth-m2m"):
        return None
    return str(client_id), str(secret)


def _is_pat(cfg: Any) -> bool:
    return bool(getattr(cfg, "token", None)) or getattr(cfg, "auth_type", None) == "pat"


class Credentials:
    """One process's view of one set of credentials: the headers to send, and renewals."""

    def __init__(self, cfg: AuthConfig) -> None:
        self._cfg = cfg
        self._lock = threading.Lock()
        self.generation = 0
        self._headers: dict[str, str] | None = None
        self._expires = 0.0  # monotonic; minted tokens only
        self._source: Callable[[], dict[str, str]] = cfg.authenticate
        self.mints = 0  # token requests made here (tests and bench read it)

    def headers(self, deadline: float) -> tuple[int, dict[str, str]]:
        """(generation, headers) for the next request."""
        m2m = _m2m(self._cfg)
        if m2m is None:
            with self._lock:
                generation, source = self.generation, self._source
            return generation, source()
        with self._lock:
            if self._headers is None or time.monotonic() >= self._expires - EARLY:
                self._mint(m2m, deadline)
            assert self._headers is not None
            return self.generation, dict(self._headers)

    def renew(self, generation: int, deadline: float) -> None:
        """After a 401 to a request sent with `generation`'s headers: new credentials, unless
        another thread has already renewed them. Raises ProviderError when nothing can be
        minted again (a PAT) or the renewal fails."""
        with self._lock:
            if self.generation != generation:
                return  # renewed meanwhile: the caller retries with the new headers
            m2m = _m2m(self._cfg)
            if m2m is not None:
                self._mint(m2m, deadline)
            elif _is_pat(self._cfg):
                raise refused("the token was refused (401): it has expired or was revoked",
                              "set a valid one (`pulumi config set --secret databricks_token "
                              "...` or DATABRICKS_TOKEN), then run `pulumi up` again")
            else:
                self._source = self._fresh_source(deadline)
                self.generation += 1

    def _mint(self, m2m: tuple[str, str], deadline: float) -> None:
        client_id, secret = m2m
        host = (self._cfg.host or "").rstrip("/")
        timeout = max(0.1, min(TOKEN_TIMEOUT, deadline - time.monotonic()))
        self.mints += 1
        transport.remember(secret)
        # components/transport.py: one deadline for the whole request (a token endpoint sending a
        # byte at a time is cut), a 64 KiB cap, a nesting limit, never ~/.netrc.
        what = f"POST {TOKEN_PATH}"
        raw = b""
        with transport.new_session() as session, transport.deadline(time.monotonic() + timeout) as watch:
            try:
                answer = session.post(f"{host}{TOKEN_PATH}",
                                      data={"grant_type": "client_credentials", "scope": "all-apis"},
                                      auth=(client_id, secret), timeout=timeout,
                                      allow_redirects=False, stream=True)
                with answer:
                    raw = transport.read_capped(answer, TOKEN_ANSWER_MAX, what)
            except (requests.RequestException, transport.AnswerTooLarge) as exc:
                reason = "no answer in time" if watch.fired else type(exc).__name__
                raise refused(f"no new token: the token endpoint did not answer ({reason})",
                              "check the network to the workspace, then run `pulumi up` again") from None
            if watch.fired:
                raise refused("no new token: the token endpoint did not answer (no answer in time)",
                              "check the network to the workspace, then run `pulumi up` again")
        body: dict[str, Any] = {}
        try:
            parsed = transport.loads(raw, what)
            body = parsed if isinstance(parsed, dict) else {}
        except ValueError:  # not JSON, or nested too deeply: no token either way
            pass
        token = body.get("access_token")
        if answer.status_code != 200 or not isinstance(token, str) or not token:
            code = body.get("error") if isinstance(body.get("error"), str) else ""
            raise refused(
                f"no new token: the token endpoint answered HTTP {answer.status_code}"
                + (f" ({code})" if code else ""),
                "check that the deployer's service principal is active and its OAuth secret "
                "(DATABRICKS_CLIENT_SECRET) is valid, then run `pulumi up` again")
        seconds = _lifetime(body.get("expires_in"))
        transport.remember(token)
        self._headers = {"Authorization": f"{body.get('token_type') or 'Bearer'} {token}"}
        self._expires = time.monotonic() + seconds
        self.generation += 1

    def _fresh_source(self, deadline: float) -> Callable[[], dict[str, str]]:
        """A fresh copy of the SDK's Config, authenticated once in a thread waited for at most
        TOKEN_TIMEOUT: its token sources start empty, so the SDK fetches new credentials."""
        copy = getattr(self._cfg, "copy", None)
        if copy is None:
            return self._cfg.authenticate
        fresh = copy()
        out: list[Any] = []

        def run() -> None:
            try:
                fresh.init_auth()
                out.append(fresh.authenticate())
            except Exception as exc:  # noqa: BLE001 - reported below, without the details
                out.append(exc)

        worker = threading.Thread(target=run, daemon=True, name="reauthenticate")
        worker.start()
        worker.join(max(0.1, min(TOKEN_TIMEOUT, deadline - time.monotonic())))
        if not out or isinstance(out[0], BaseException):
            what = type(out[0]).__name__ if out else f"no answer within {TOKEN_TIMEOUT:.0f}s"
            raise refused(f"authenticating again failed ({what})",
                          "check the deployer's credentials, then run `pulumi up` again")
        return fresh.authenticate


def _lifetime(value: Any) -> float:
    """A token's `expires_in` in seconds; an hour (OAuth's usual) when it is missing or unusable:
    not a number, NaN, infinite, not positive, or an integer too large for a float (JSON allows
    all of these, and `float()` of the last raises OverflowError)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return 3600.0
    try:
        seconds = float(value)
    except OverflowError:
        return 3600.0
    return min(seconds, TOKEN_LIFETIME_MAX) if math.isfinite(seconds) and seconds > 0 else 3600.0


def refused(what: str, todo: str) -> ProviderError:
    return ProviderError(f"the workspace refused the deployer's credentials: {what}",
                         "deployer credentials", todo)


_LOCK = threading.Lock()
_BY_KEY: dict[str, Credentials] = {}


def credentials(key: str, cfg: AuthConfig) -> Credentials:
    """The process-wide credentials for `key` (a fingerprint of where and who)."""
    with _LOCK:
        found = _BY_KEY.get(key)
        if found is None or found._cfg is not cfg:
            found = _BY_KEY[key] = Credentials(cfg)
        return found
