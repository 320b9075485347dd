"""Credentials, the shared WorkspaceClient of the provider process, and bounded API calls.

`configure` only records where to connect (the stack's `workspace.host` and an optional
secret `databricks_token`); the client is built on first use, because constructing one
probes the host and retries for minutes. One client per host and credential is shared by
every provider and every worker thread of the process.

`BoundedApi` replaces the SDK's transport for calls that must respect a deadline or must not
be re-sent blindly. databricks-sdk 0.162 retries every request for up to 300 s
(`retry_timeout_seconds=0` silently means 300) and `retried()` sleeps a whole `Retry-After`
before it looks at its deadline; it also re-sends a POST whose answer was lost, which
duplicates whatever the POST creates. `BoundedApi` has the `do()` signature the SDK's service
classes call, so `ServingEndpointsAPI(BoundedApi(...))` keeps the typed API while this module
decides: every attempt and every pause fits in the time left, 429/503 are retried for any
method (the server did not act), a lost connection is retried only for a method that is safe
to repeat, and a POST whose answer was lost raises `AnswerLost` for the caller to reconcile.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import requests
from pulumi.dynamic import ConfigureRequest, ResourceProvider

from components.spec.constants import PROJECT as PRODUCT

from . import _auth, _clock
from ._errors import ProviderError

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

_LOCK = threading.Lock()
_CLIENTS: dict[str, WorkspaceClient] = {}
_SESSIONS: dict[str, requests.Session] = {}

# An ordinary call (not a wait) gives up after this long, retries included.
CALL_BUDGET = 120.0
# One attempt never waits longer than this for an answer (the SDK's own default is 60 s).
ATTEMPT_TIMEOUT = 60.0
# Methods that are safe to send again when the answer was lost: the second one changes
# nothing the first did not (GET reads; PUT/PATCH/DELETE set a state, at worst answer 404).
SAFE_TO_REPEAT = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})
RETRY_STATUSES = frozenset({429, 503})
# A wait's poll ends within POLL_BUDGET, and never more than POLL_GRACE past the wait's own
# deadline: the poll made at the deadline is a real look at the workspace, and the wait still
# returns within its deadline + 10 s (issue 10's bound), whatever the workspace answers.
POLL_BUDGET = 20.0
POLL_GRACE = 5.0

S = TypeVar("S")


@dataclass(frozen=True)
class Credentials:
    """Where to connect; None fields fall back to the SDK's unified auth (env, profiles)."""

    host: str | None = None
    token: str | None = field(default=None, repr=False)  # never printed

    def fingerprint(self) -> str:
        # A hash, so the cache key (and anything that logs it) never holds the token.
        raw = f"{self.host or ''}\0{self.token or ''}".encode()
        return hashlib.sha256(raw).hexdigest()


def _as_object(value: Any) -> dict[str, Any] | None:
    # The engine may hand structured config over as a JSON string or as an object.
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ProviderError(
                "reading stack config failed", "databricks-braintrust:workspace",
                "set it to an object such as {host: https://<workspace>.cloud.databricks.com}",
            ) from exc
    if not isinstance(value, dict):
        raise ProviderError(
            "reading stack config failed", "databricks-braintrust:workspace",
            "set it to an object such as {host: https://<workspace>.cloud.databricks.com}",
        )
    return value


def credentials_from_config(req: ConfigureRequest) -> Credentials:
    """Read `<project>:workspace.host` and the optional secret `<project>:databricks_token`."""
    # Fully qualified keys: a bare key is qualified with PULUMI_PROJECT, which the provider
    # process only knows if the engine exported it (it falls back to "project").
    workspace = _as_object(req.config.get(f"{PRODUCT}:workspace")) or {}
    host = workspace.get("host") or None
    token = req.config.get(f"{PRODUCT}:databricks_token") or None
    return Credentials(host=host, token=token)


def workspace_client(creds: Credentials | None) -> WorkspaceClient:
    """The process-wide client for these credentials, built on first use (thread-safe)."""
    creds = creds or Credentials()
    key = creds.fingerprint()
    client = _CLIENTS.get(key)
    if client is not None:
        return client
    with _LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            from databricks.sdk import WorkspaceClient  # heavy import, only when needed

            kwargs: dict[str, Any] = {"product": PRODUCT, "product_version": "0.1.0"}
            if creds.host:
                kwargs["host"] = creds.host
            if creds.token:
                # An explicit token wins over whatever unified auth finds in the environment.
                kwargs["token"] = creds.token
                kwargs["auth_type"] = "pat"
            try:
                client = WorkspaceClient(config=_bounded_probe_config()(**kwargs))
            except Exception as exc:  # noqa: BLE001 - the SDK raises ValueError and friends
                raise ProviderError(
                    "connecting to Databricks failed",
                    creds.host or "workspace from the environment",
                    "set databricks-braintrust:workspace.host and a token "
                    "(`pulumi config set --secret databricks_token ...`) or DATABRICKS_* variables",
                    f"{type(exc).__name__}: {exc}",
                ) from None
            _CLIENTS[key] = client
    return client


# How long building the client may spend probing the host's /.well-known/databricks-config.
HOST_PROBE_TIMEOUT = 5.0


def _bounded_probe_config() -> type:
    """databricks-sdk's `Config`, with its host-metadata probe bounded.

    `Config()` fetches `/.well-known/databricks-config` through a client that retries for
    300 s and sleeps a whole `Retry-After` first: a workspace answering 503, or holding the
    connection, would hold the first call of a provider process (a readiness gate with a
    deadline of minutes included) for five minutes. One plain GET of a few seconds decides
    first; only a workspace that answers it gets the SDK's own probe (which fills in the
    OIDC discovery URL and token audience); otherwise the SDK's fallbacks apply, as they do
    when its own probe fails.
    """
    from databricks.sdk.config import Config

    class BoundedProbeConfig(Config):
        # Config finds its settings in its own class __dict__: hand the subclass Config's list.
        _attributes = Config.attributes()

        def _resolve_host_metadata(self) -> None:
            if not self.host:
                return
            try:
                answer = requests.get(f"{self.host.rstrip('/')}/.well-known/databricks-config",
                                      timeout=HOST_PROBE_TIMEOUT, allow_redirects=False)
            except requests.RequestException:
                return
            if answer.status_code == 200:
                super()._resolve_host_metadata()

    return BoundedProbeConfig


class DatabricksProvider(ResourceProvider):
    """Base of every provider here: credentials from `configure`, a lazily built client.

    Nothing is set in `__init__`, so the pickled provider (stored in state) holds no
    credentials and does not change between runs.
    """

    _creds: Credentials | None = None

    def configure(self, req: ConfigureRequest) -> None:
        self._creds = credentials_from_config(req)

    @property
    def w(self) -> WorkspaceClient:
        return workspace_client(self._creds)

    def bounded(self, seconds: float = CALL_BUDGET, *, deadline: float | None = None,
                retry: bool = True) -> BoundedApi:
        """A transport whose calls end within `seconds` (or by the monotonic `deadline`).

        `retry=False`: one attempt per call; a 429/503 raises, a lost answer raises AnswerLost
        whatever the method, so a caller whose request body comes from a read (an ACL PUT)
        reads again before the next attempt instead of re-sending a stale body."""
        key = (self._creds or Credentials()).fingerprint()
        if deadline is not None:
            return BoundedApi(self.w.config, deadline, session_key=key, retry=retry)
        return BoundedApi.within(self.w.config, seconds, session_key=key, retry=retry)

    def host(self) -> str:
        return (self.w.config.host or "").rstrip("/")


# ---------------------------------------------------------------- bounded calls


class DeadlineExceeded(TimeoutError):
    """A bounded call ran out of time; `last` is the last answer or error, if any."""

    def __init__(self, method: str, path: str, budget: float, last: BaseException | None) -> None:
        self.method, self.path, self.last = method, path, last
        from ._errors import describe

        detail = f"; last answer: {describe(last)}" if last is not None else ""
        super().__init__(f"{method} {path} got no answer within {budget:.0f}s{detail}")


class AnswerLost(ConnectionError):
    """A request that is not safe to repeat was sent, but its answer never arrived: the
    workspace may or may not have acted on it. The caller reconciles (looks the object up)."""

    def __init__(self, method: str, path: str, cause: BaseException) -> None:
        self.method, self.path = method, path
        super().__init__(f"{method} {path}: the connection closed before the answer "
                         f"({type(cause).__name__}); the request may have been applied")


def poll_deadline(deadline: float, clock: Callable[[], float] = time.monotonic) -> float:
    """The deadline for one poll of a wait that ends at `deadline` (both on `clock`)."""
    return min(deadline + POLL_GRACE, clock() + POLL_BUDGET)


def _transient() -> tuple[type[BaseException], ...]:
    from databricks.sdk.errors import InternalError, TemporarilyUnavailable, TooManyRequests

    return (DeadlineExceeded, AnswerLost, InternalError, TemporarilyUnavailable, TooManyRequests)


# What a wait rides out and polls again after: no answer in time, or a 5xx/429.
TRANSIENT = _transient()


def _session(key: str) -> requests.Session:
    session = _SESSIONS.get(key)
    if session is None:
        with _LOCK:
            session = _SESSIONS.setdefault(key, requests.Session())
    return session


def _query(query: dict[str, Any] | None) -> dict[str, Any] | None:
    # As the SDK sends them: booleans as true/false, nested dicts flattened to a.b=...
    if query is None:
        return None
    flat: dict[str, Any] = {}

    def put(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                put(f"{prefix}.{k}", v)
        elif isinstance(value, bool):
            flat[prefix] = "true" if value else "false"
        else:
            flat[prefix] = value

    for key, value in query.items():
        put(key, value)
    return flat


class ApiConfig(Protocol):
    """What BoundedApi needs of a databricks-sdk `Config`: where, who, and as what client."""

    @property
    def host(self) -> str | None: ...

    @property
    def user_agent(self) -> str: ...

    def authenticate(self) -> dict[str, str]: ...


class BoundedApi:
    """A drop-in for `WorkspaceClient.api_client` whose every call ends by `deadline`.

    It takes the client's `config` (host, user agent, authentication headers), not the client.

    `deadline` is on `clock` (time.monotonic by default). Each call makes attempts until one
    answers, pausing between them (backoff, or the server's `Retry-After`) only as long as the
    time left allows; when the time is up it raises DeadlineExceeded carrying the last error.
    Errors the workspace answers are the SDK's own exception classes (NotFound, ...).
    """

    def __init__(self, config: ApiConfig, deadline: float, *,
                 session_key: str = "",
                 retry: bool = True,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        from databricks.sdk.errors import _Parser  # the SDK's own error mapping

        self._cfg = config
        self._deadline = deadline
        self._retry = retry
        self._auth = _auth.credentials(session_key, config)
        self._clock = clock
        self._sleep = sleep
        self._session = _session(session_key)
        self._parser = _Parser()

    @classmethod
    def within(cls, config: ApiConfig, seconds: float, **kwargs: Any) -> BoundedApi:
        """A client whose calls all end within `seconds` from now."""
        clock = kwargs.get("clock", time.monotonic)
        return cls(config, clock() + seconds, **kwargs)

    def remaining(self) -> float:
        return self._deadline - self._clock()

    def service(self, api_class: Callable[[Any], S]) -> S:
        """One of the SDK's service classes (ServingEndpointsAPI, ...) over this transport."""
        return api_class(self)

    def do(self, method: str, path: str | None = None, url: str | None = None,
           query: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
           body: Any = None, raw: bool = False, files: Any = None, data: Any = None,
           auth: Any = None, response_headers: list[str] | None = None) -> Any:
        if raw or files is not None or data is not None:
            raise NotImplementedError("BoundedApi sends JSON bodies only")
        method = method.upper()
        where = path or url or ""
        url = url or f"{(self._cfg.host or '').rstrip('/')}{path}"
        budget = max(0.0, self.remaining())
        last: BaseException | None = None
        attempt = 0
        renewed = False
        while True:
            left = self.remaining()
            if left <= 0:
                raise DeadlineExceeded(method, where, budget, last)
            attempt += 1
            hdrs = {"User-Agent": self._cfg.user_agent, **(headers or {})}
            # The deployer's credentials (`_auth`): minted here for OAuth M2M, bounded.
            generation, auth_headers = self._auth.headers(self._deadline)
            hdrs.update(auth_headers)
            if body is not None:
                hdrs.setdefault("Content-Type", "application/json")
            sent = time.time()
            try:
                response = self._session.request(
                    method, url, params=_query(query),
                    data=json.dumps(body) if body is not None else None,
                    headers=hdrs, timeout=min(ATTEMPT_TIMEOUT, left), allow_redirects=False)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ContentDecodingError) as exc:
                # A connect timeout means nothing was sent: any method may go again. Anything
                # later (reset, closed, read timeout, an answer cut off mid-body) may follow a
                # request the server handled.
                if not self._retry or (method not in SAFE_TO_REPEAT
                                       and not isinstance(exc, requests.ConnectTimeout)):
                    raise AnswerLost(method, where, exc) from None
                last, pause = exc, _backoff(attempt)
            else:
                _clock.observe(self._cfg.host, sent, time.time(), response.headers.get("Date"))
                error = self._parser.get_api_error(response)
                if error is None and response.is_redirect:
                    # Never followed: the Authorization header must not reach another origin.
                    from databricks.sdk.errors import DatabricksError

                    error = DatabricksError(
                        f"the workspace answered HTTP {response.status_code} (a redirect, not "
                        "followed); check that the host is the workspace URL")
                if error is None:
                    return _decode(response, response_headers)
                if response.status_code == 401:
                    # The token expired or was revoked mid-run: one new token, then the same
                    # request again (the workspace did not act on a refused request).
                    if renewed:
                        raise _auth.refused(
                            "refused again right after new credentials were obtained",
                            "check that the deployer's identity is active and may use this "
                            "workspace, then run `pulumi up` again") from None
                    self._auth.renew(generation, self._deadline)
                    renewed = True
                    continue
                if response.status_code not in RETRY_STATUSES or not self._retry:
                    raise error
                last = error
                retry_after = getattr(error, "retry_after_secs", None)
                pause = float(retry_after) if retry_after else _backoff(attempt)
            left = self.remaining()
            if pause >= left:
                # The pause the server asks for does not fit: give up now rather than
                # sleep past the deadline.
                raise DeadlineExceeded(method, where, budget, last)
            self._sleep(pause)


def pause_for(error: BaseException | None, attempt: int) -> float:
    """How long to wait before attempt `attempt + 1`: the server's Retry-After, else backoff."""
    retry_after = getattr(error, "retry_after_secs", None)
    return float(retry_after) if retry_after else _backoff(attempt)


def _backoff(attempt: int) -> float:
    return min(10.0, 0.5 * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)  # noqa: S311


def _decode(response: requests.Response, response_headers: list[str] | None) -> Any:
    out: dict[str, Any] = {}
    for header in response_headers or []:
        out[header] = response.headers.get(header.replace("_", "-"))
    if not response.content:
        return out
    payload = response.json()
    if isinstance(payload, list):
        return payload
    return {**out, **(payload or {})}
