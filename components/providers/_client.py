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

import configparser
import hashlib
import http.client
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import requests
import urllib3.exceptions
from pulumi.dynamic import ConfigureRequest, ResourceProvider

from components import transport
from components.backoff import backoff, retry_pause
from components.spec.constants import PROJECT as PRODUCT

from . import _auth, _clock, _workers
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
T = TypeVar("T")
# The largest answer a provider reads: far above any workspace answer it expects (a list of a
# thousand endpoints is a few MB), far below what could exhaust the provider's memory.
MAX_ANSWER = 16 << 20


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
            value = transport.loads(value, "the stack config databricks-braintrust:workspace")
        except ValueError as exc:  # not JSON, or nested too deeply
            raise ProviderError(
                "reading stack config failed", f"{PRODUCT}:workspace",
                "set it to an object such as {host: https://<workspace>.cloud.databricks.com}",
            ) from exc
    if not isinstance(value, dict):
        raise ProviderError(
            "reading stack config failed", f"{PRODUCT}:workspace",
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
    transport.remember(token)
    return Credentials(host=host, token=token)


def same_host(a: str, b: str) -> bool:
    """Two workspace URLs name one host: scheme (https when missing, as the SDK assumes), host
    and port compared, case and a trailing slash or path ignored."""
    return transport.origin(_with_scheme(a)).lower() == transport.origin(_with_scheme(b)).lower()


def _with_scheme(url: str) -> str:
    url = url.strip()
    return url if "://" in url else f"https://{url}"


def ambient_credential_problem(stack_host: str | None, environ: dict[str, str] | None = None) -> str | None:
    """One line when the credential the SDK would take from the environment or a profile was
    configured for a host other than the stack's; None when it may be used.

    With the stack's host given, databricks-sdk (0.162, config.py `_load_from_env`,
    `_known_file_config_loader`) still takes DATABRICKS_TOKEN, DATABRICKS_CLIENT_ID/SECRET (and
    the other credential variables) from the environment and, when DATABRICKS_CONFIG_PROFILE
    names one, the profile's credential, and sends it to the stack's host, whatever host they
    came with. A credential with no host of its own (CI sets only a client id and secret, or
    only a token) belongs to the stack's host."""
    if not stack_host:
        return None  # the SDK finds the host where it finds the credential
    env = os.environ if environ is None else environ
    from databricks.sdk.config import Config

    credential_vars = [a.env for a in Config.attributes() if a.auth and a.env and env.get(a.env)]
    env_host = env.get("DATABRICKS_HOST", "").strip()
    if credential_vars and env_host and not same_host(env_host, stack_host):
        return (f"the Databricks credential in {credential_vars[0]} is for {transport.origin(_with_scheme(env_host))} "
                f"(DATABRICKS_HOST), not this stack's workspace {transport.origin(_with_scheme(stack_host))}: unset "
                "DATABRICKS_HOST or the credential, or set DATABRICKS_HOST to the stack's workspace.host")
    profile = env.get("DATABRICKS_CONFIG_PROFILE", "").strip()
    if not profile:
        return None  # with a host given, the SDK reads no profile unless one is named
    path = Path(env.get("DATABRICKS_CONFIG_FILE") or "~/.databrickscfg").expanduser()
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path)
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None  # the SDK reports an unreadable file itself
    section = parser.defaults() if profile == "DEFAULT" else (
        parser[profile] if parser.has_section(profile) else None)
    profile_host = (section or {}).get("host", "").strip()
    if profile_host and not same_host(profile_host, stack_host):
        return (f"the Databricks profile {profile!r} (DATABRICKS_CONFIG_PROFILE, in {path}) is for "
                f"{transport.origin(_with_scheme(profile_host))}, not this stack's workspace "
                f"{transport.origin(_with_scheme(stack_host))}: name a profile for the stack's host, or unset "
                "DATABRICKS_CONFIG_PROFILE")
    return None


def workspace_client(creds: Credentials | None) -> WorkspaceClient:
    """The process-wide client for these credentials, built on first use (thread-safe)."""
    creds = creds or Credentials()
    if not creds.token:
        problem = ambient_credential_problem(creds.host)
        if problem is not None:
            raise ProviderError("connecting to Databricks refused", creds.host or "the workspace", problem)
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
                config_class = _bounded_probe_config()
                # Building the config authenticates: for OAuth that is the SDK's own OIDC
                # discovery and token requests, which cannot use this module's session; they
                # are bounded by abandoning them at CLIENT_BUDGET (see `within`).
                client = within(CLIENT_BUDGET, lambda: WorkspaceClient(config=config_class(**kwargs)),
                                f"connecting to {creds.host or 'the workspace'}")
            except Exception as exc:  # noqa: BLE001 - the SDK raises ValueError and friends
                raise ProviderError(
                    "connecting to Databricks failed",
                    creds.host or "workspace from the environment",
                    f"set {PRODUCT}:workspace.host and a token "
                    "(`pulumi config set --secret databricks_token ...`) or DATABRICKS_* variables",
                    f"{type(exc).__name__}: {exc}",
                ) from None
            _CLIENTS[key] = client
    return client


# How long building the client (its host probe and, for OAuth, its first token) may take.
CLIENT_BUDGET = 60.0
# How long building the client may spend probing the host's /.well-known/databricks-config.
HOST_PROBE_TIMEOUT = 5.0


def _bounded_probe_config() -> type:
    """databricks-sdk's `Config`, with its host-metadata probe bounded.

    `Config()` fetches `/.well-known/databricks-config` through a client that retries for
    300 s, sleeps a whole `Retry-After` first, and bounds each read rather than the request: a
    workspace answering 503, holding the connection or dribbling its answer would hold the first
    call of a provider process (a readiness gate with a deadline of minutes included) for
    minutes. So this subclass makes the probe itself: one GET through components/transport.py
    (one deadline of HOST_PROBE_TIMEOUT for the whole request, a 64 KiB cap, a nesting limit,
    never ~/.netrc), and fills in what the SDK's own probe does (databricks-sdk 0.162
    config.py `_resolve_host_metadata`: account and workspace ids, the OIDC discovery URL,
    the cloud, the token audience). Any failure leaves the SDK's fallbacks, as its own does.
    """
    from databricks.sdk.config import Config
    from databricks.sdk.oauth import HostMetadata

    class BoundedProbeConfig(Config):
        # Config finds its settings in its own class __dict__: hand the subclass Config's list.
        _attributes = Config.attributes()

        def _resolve_host_metadata(self) -> None:
            if not self.host:
                return
            meta = _probe_host(self.host)
            if meta is None:
                return
            try:
                found = HostMetadata.from_dict(meta)
            except (ValueError, TypeError, AttributeError):
                return
            if not self.account_id and found.account_id:
                self.account_id = found.account_id
            if not self.workspace_id and found.workspace_id:
                self.workspace_id = found.workspace_id
            if not self.discovery_url and found.oidc_endpoint and isinstance(found.oidc_endpoint, str):
                if "{account_id}" in found.oidc_endpoint and not self.account_id:
                    return
                base = found.oidc_endpoint.replace("{account_id}", self.account_id or "").rstrip("/")
                self.discovery_url = f"{base}/.well-known/oauth-authorization-server"
            if not self.cloud and found.cloud:
                self.cloud = found.cloud
            audiences = found.token_federation_default_oidc_audiences
            if not self.token_audience and isinstance(audiences, list) and audiences:
                self.token_audience = audiences[0]
            if not self.token_audience and not found.workspace_id and self.account_id:
                self.token_audience = self.account_id

    return BoundedProbeConfig


HOST_PROBE_MAX = 64 << 10


def _probe_host(host: str) -> dict[str, Any] | None:
    """The host's /.well-known/databricks-config, or None on any failure (bounded as above)."""
    url = f"{host.rstrip('/')}/.well-known/databricks-config"
    with transport.new_session() as session, \
            transport.deadline(time.monotonic() + HOST_PROBE_TIMEOUT) as watch:
        try:
            answer = session.get(url, timeout=HOST_PROBE_TIMEOUT, allow_redirects=False, stream=True)
            with answer:
                if answer.status_code != 200:
                    return None
                raw = transport.read_capped(answer, HOST_PROBE_MAX, f"GET {url}")
        except (requests.RequestException, ValueError):
            return None
        if watch.fired:
            return None
    try:
        meta = transport.loads(raw, f"GET {url}")
    except ValueError:
        return None
    return meta if isinstance(meta, dict) else None


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
        call = f"{method} {path}".strip()
        super().__init__(f"{call} got no answer within {budget:.0f}s{detail}")


class AnswerRefused(ValueError):
    """An answer the provider will not read: larger than MAX_ANSWER, nested too deeply, or not
    JSON; the message names the call."""


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
    # transport.new_session(): never ~/.netrc, and every read under a whole-request deadline.
    session = _SESSIONS.get(key)
    if session is None:
        with _LOCK:
            session = _SESSIONS.get(key) or _SESSIONS.setdefault(key, transport.new_session())
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
            secrets = _sent_secrets(hdrs, self._cfg)
            if body is not None:
                hdrs.setdefault("Content-Type", "application/json")
            sent = time.time()
            try:
                # At most _workers.PER_WORKSPACE requests in flight to one workspace: a pool
                # grown by pauses (below) never sends more at once than four workers did.
                with _workers.in_flight(self._cfg.host or "", self.remaining()) as placed:
                    if not placed:
                        raise DeadlineExceeded(method, where, budget, last)
                    response = self._send(method, url, where, query, body, hdrs,
                                          min(ATTEMPT_TIMEOUT, self.remaining()), secrets)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ContentDecodingError) as exc:
                # A connect timeout means nothing was sent: any method may go again. Anything
                # later (reset, closed, read timeout, an answer cut off mid-body) may follow a
                # request the server handled.
                if not self._retry or (method not in SAFE_TO_REPEAT
                                       and not isinstance(exc, requests.ConnectTimeout)):
                    raise AnswerLost(method, where, exc) from None
                last, pause = exc, backoff(attempt)
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
                    return _decode(response, response_headers, f"{method} {where}")
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
                pause = pause_for(error, attempt)
            left = self.remaining()
            if pause >= left:
                # The pause the server asks for does not fit: give up now rather than
                # sleep past the deadline.
                raise DeadlineExceeded(method, where, budget, last)
            with _workers.lent_worker(pause):  # the other resources go on meanwhile
                self._sleep(pause)


    def _send(self, method: str, url: str, where: str, query: dict[str, Any] | None, body: Any,
              hdrs: dict[str, str], seconds: float, secrets: transport.Secrets) -> requests.Response:
        """One attempt whose whole request (connect, headers, body) ends within `seconds`: a
        server dribbling its answer a byte at a time is cut at the deadline (components/
        transport.py), and raises ReadTimeout like a silent one. The body is read whole, up to
        MAX_ANSWER, and the secrets this request sent are removed from it before anything
        (the SDK's error parser, an error message, state) sees it."""
        what = f"{method} {where}"
        if seconds <= 0:  # the time went waiting for a place: nothing was sent
            raise requests.ConnectTimeout(f"{what}: no time left to send it")
        with transport.deadline(time.monotonic() + seconds) as watch:
            try:
                response = self._session.request(
                    method, url, params=_query(query),
                    data=json.dumps(body) if body is not None else None,
                    headers=hdrs, timeout=seconds, allow_redirects=False, stream=True)
                with response:
                    raw = transport.read_capped(response, MAX_ANSWER, what)
            except transport.AnswerTooLarge as exc:
                raise AnswerRefused(str(exc)) from None
            except (requests.RequestException, http.client.HTTPException, urllib3.exceptions.HTTPError) as exc:
                if watch.fired:
                    raise requests.ReadTimeout(f"{what}: no complete answer within {seconds:.0f}s") from None
                if isinstance(exc, _LOST):
                    raise
                # A malformed answer (two different Content-Lengths, say: requests'
                # InvalidHeader) is handled as an answer lost on the way (a GET goes again, a
                # POST is reconciled), never an unnamed exception out of the provider.
                raise requests.ConnectionError(f"{what}: a malformed answer ({type(exc).__name__})") from None
            if watch.fired:  # an answer read "to its end" may have ended at the shut-down socket
                raise requests.ReadTimeout(f"{what}: no complete answer within {seconds:.0f}s")
        text = raw.decode("utf-8", errors="replace")
        if transport.json_depth(text) > transport.MAX_DEPTH:
            raise AnswerRefused(str(transport.TooDeeplyNested(what)))
        response._content = secrets.scrub(text).encode() if secrets.values else raw
        return response


_LOST = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
         requests.exceptions.ContentDecodingError)


def _sent_secrets(headers: dict[str, str], cfg: Any) -> transport.Secrets:
    """What this request sent that must never come back out: the Authorization value (and its
    token alone), and the configured token or client secret."""
    secrets = transport.Secrets()
    for name, sent in headers.items():
        if name.lower() == "authorization":
            secrets.add(sent, sent.partition(" ")[2])
    for attr in ("token", "client_secret", "password"):
        value = getattr(cfg, attr, None)
        secrets.add(value if isinstance(value, str) else None)
    transport.remember(*secrets.values)  # for errors raised later about this call
    return secrets


def within(seconds: float, fn: Callable[[], T], what: str) -> T:
    """`fn()`, or DeadlineExceeded after `seconds`. For databricks-sdk's own requests that
    cannot go through this module's session (its token requests in oauth.py use bare
    `requests.post` without a timeout; its OIDC discovery retries for 300 s): `fn` runs on a
    daemon thread that is abandoned at the deadline, so the call returns on time; the thread
    ends with its socket, or with the provider process."""
    box: list[Any] = []

    def run() -> None:
        try:
            box.append((True, fn()))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as it is
            box.append((False, exc))

    thread = threading.Thread(target=run, name=what[:60], daemon=True)
    thread.start()
    thread.join(max(0.0, seconds))
    if not box:
        raise DeadlineExceeded(what, "", seconds, None)
    ok, value = box[0]
    if not ok:
        raise value
    return value


def pause_for(error: BaseException | None, attempt: int) -> float:
    """How long to wait before attempt `attempt + 1`: the Retry-After the SDK parsed from the
    answer (`retry_after_secs`), else backoff (components/backoff.py)."""
    return retry_pause(getattr(error, "retry_after_secs", None), attempt)


def _decode(response: requests.Response, response_headers: list[str] | None, what: str = "the answer") -> Any:
    out: dict[str, Any] = {}
    for header in response_headers or []:
        out[header] = response.headers.get(header.replace("_", "-"))
    if not response.content:
        return out
    try:
        payload = transport.loads(response.content, what)
    except ValueError:
        raise AnswerRefused(f"{what}: the answer is not JSON (check that the host is the workspace URL)") from None
    if isinstance(payload, list):
        return payload
    return {**out, **(payload or {})}
