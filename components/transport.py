"""One HTTP call with one deadline per attempt, bounded retries and no redirects, on `requests`.

Shared by `python -m components verify` and the Braintrust API client of the AiSecret
provider. It imports neither pulumi nor databricks-sdk.

A call is retried only for the statuses the caller names (and connection errors and
timeouts), at most ``retries`` times, sleeping ``Retry-After`` seconds when the server sends
it (capped) or an exponential backoff otherwise. The result says how many attempts it took.

Each attempt has one deadline for the whole request, headers and body (`deadline` below: a
server sending a byte at a time is cut), a size cap (`max_body`) and a JSON nesting limit
(`loads`); the provider's `BoundedApi` uses the same pieces.

Credentials never leave their origin:
- a redirect is never followed: a 3xx answer is an error naming the origin it pointed to, so
  neither the Authorization header nor a body holding a client secret reaches another server;
- the Authorization header is attached through a `requests` auth object, so `requests` never
  replaces it with a ~/.netrc entry for the host;
- nothing here logs or formats headers. A server may still echo a credential in its answer:
  `error_summary` takes the caller's `Secrets` and removes them before it cuts the answer to
  one line, so a secret is never left half-shown by the cut.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
import requests.adapters
import requests.auth
import urllib3.connection
import urllib3.connectionpool

from components.backoff import retry_pause
from components.braintrust import REDACTED
from components.spec.constants import PROJECT

RETRY_AFTER_CAP = 30.0
MAX_BODY = 1 << 20
# JSON nested deeper than this is refused by name before it is parsed: no answer the project
# reads nests past a dozen levels, and Python's parser (and every walk over its result) would
# otherwise end in a bare RecursionError at about a thousand.
MAX_DEPTH = 64
REDIRECTS = frozenset({301, 302, 303, 307, 308})
USER_AGENT = f"{PROJECT}/0.1"


@dataclass
class Result:
    """What came back: a status (0 when no answer), the parsed JSON body if any, the raw text."""

    status: int
    body: Any = None
    text: str = ""
    attempts: int = 1
    error: str | None = None  # no usable answer (connection error, timeout, redirect), one line
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300 and self.error is None


# Every secret this process has seen (credentials it was configured with, tokens it sent,
# secrets it created or published): no server text reaches an error, a log, an output or state
# with one of them in it. Filled by `remember`; read by `Secrets.scrub` and `redact`.
_SEEN_SECRETS: set[str] = set()
_SEEN_SECRETS_LOCK = threading.Lock()


REMEMBER_MIN = 8  # every real credential is far longer; shorter text is too common to remove everywhere


def remember(*values: Any) -> None:
    """Secrets to remove from any server text from now on (strings of REMEMBER_MIN characters
    or more)."""
    found = {v for v in values if isinstance(v, str) and len(v) >= REMEMBER_MIN}
    if found:
        with _SEEN_SECRETS_LOCK:
            _SEEN_SECRETS.update(found)


def credential_secrets(secret: Any) -> list[str]:
    """The secret parts of a record's `secret` (a PAT, or {client_id, client_secret} as JSON or
    an object): the whole and the client secret, never the client id, which is a public name
    that workspace answers carry (redacting it would hide the principal it names)."""
    fields: Any = secret
    if isinstance(secret, str):
        try:
            fields = json.loads(secret)
        except (ValueError, RecursionError):
            return [secret]
    if isinstance(fields, dict):
        value = fields.get("client_secret")
        return [v for v in (secret if isinstance(secret, str) else None, value) if isinstance(v, str)]
    return [secret] if isinstance(secret, str) else []


def redact(text: str) -> str:
    """`text` without any secret `remember`ed in this process."""
    return Secrets().scrub(text)


@dataclass
class Secrets:
    """Everything that must never be shown; `scrub` removes it from a text."""

    values: set[str] = field(default_factory=set)

    def add(self, *values: str | None) -> None:
        self.values.update(v for v in values if isinstance(v, str) and len(v) >= 4)

    def add_credential(self, secret: Any) -> None:
        """A record's `secret`: a PAT, the JSON of {client_id, client_secret}, or that object
        itself; the whole and every string inside it."""
        if isinstance(secret, dict):
            self.add(*(v for v in secret.values() if isinstance(v, str)))
            return
        if not isinstance(secret, str):
            return
        self.add(secret)
        try:
            fields = json.loads(secret)
        except (ValueError, RecursionError):
            return
        if isinstance(fields, dict):
            self.add(*(v for v in fields.values() if isinstance(v, str)))

    def scrub(self, text: str) -> str:
        """`text` without any secret (these, and every one `remember`ed in this process),
        written as it is or as a JSON string escapes it (a server echoing the JSON body it was
        sent)."""
        with _SEEN_SECRETS_LOCK:
            values = self.values | _SEEN_SECRETS
        forms = {f for v in values for f in (v, json.dumps(v)[1:-1]) if f}
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, REDACTED)
        return text


class _Authorization(requests.auth.AuthBase):
    """The caller's Authorization header, set as `auth` so that ~/.netrc never overrides it."""

    def __init__(self, value: str) -> None:
        self._value = value

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = self._value
        return r

    def __repr__(self) -> str:
        return "_Authorization(<redacted>)"


# ---------------------------------------------------------------- whole-request deadlines
#
# `requests` bounds each socket read, not the request: a server that sends its headers or its
# body a byte at a time, each byte inside the read timeout, holds a call for ever. Every call of
# the project therefore runs under a `Deadline`: a watchdog thread that, at the deadline, shuts
# down the socket of every connection the call used (a blocked read then returns at once), and
# the call reports the deadline, not whatever error the shut-down socket produced. Connections
# register with the deadline of the thread that uses them (sessions from `new_session()` use
# the tracked connection classes below).

_ACTIVE = threading.local()


class RequestDeadline(TimeoutError):
    """A whole request (connect, headers and body) did not end by its deadline."""

    def __init__(self, what: str, seconds: float) -> None:
        self.what, self.seconds = what, seconds
        super().__init__(f"{what}: no complete answer within {seconds:g} s (the whole request, "
                         "headers and body, has one deadline)")


class AnswerTooLarge(ValueError):
    """An answer larger than the caller's cap: refused, never held whole."""

    def __init__(self, what: str, cap: int) -> None:
        self.what, self.cap = what, cap
        super().__init__(f"{what}: the answer is larger than {_size(cap)}, more than any answer this "
                         "call expects; not read (check that the URL is the service's API)")


class TooDeeplyNested(ValueError):
    """JSON nested deeper than MAX_DEPTH: refused by name, never a RecursionError."""

    def __init__(self, what: str, limit: int = MAX_DEPTH) -> None:
        self.what = what
        super().__init__(f"{what}: the answer is JSON nested more than {limit} levels deep, which no "
                         "answer of this service is; not parsed")


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 and not n % (1 << 20) else f"{n} bytes"


class Deadline:
    """Shuts down, at `at` (time.monotonic), the socket of every connection attached to it."""

    _TICK = 0.05  # after firing, how often a connection attached late is shut down too

    def __init__(self, at: float) -> None:
        self.at = at
        self.fired = False
        self._conns: list[Any] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="request-deadline", daemon=True)
        self._thread.start()

    def attach(self, conn: Any) -> None:
        with self._lock:
            self._conns.append(conn)
        if self.fired:
            _shut(conn)

    def stop(self) -> None:
        self._done.set()

    def _watch(self) -> None:
        if self._done.wait(max(0.0, self.at - time.monotonic())):
            return
        self.fired = True
        while True:  # a connection still connecting when the deadline came is shut once it has a socket
            with self._lock:
                conns = list(self._conns)
            for conn in conns:
                _shut(conn)
            if self._done.wait(self._TICK):
                return


def _shut(conn: Any) -> None:
    sock = getattr(conn, "sock", None)
    if sock is None:
        return
    with contextlib.suppress(OSError, ValueError):
        # The plain socket's shutdown, also under TLS: it only ends the file descriptor's
        # traffic, so the reading thread's blocked recv returns, whatever wraps the socket.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


@contextlib.contextmanager
def deadline(at: float) -> Iterator[Deadline]:
    """Every request this thread makes inside the block, through a `new_session()` session,
    ends by `at` (time.monotonic): its sockets are shut down then."""
    watch = Deadline(at)
    outer = getattr(_ACTIVE, "deadline", None)
    _ACTIVE.deadline = watch
    try:
        yield watch
    finally:
        _ACTIVE.deadline = outer
        watch.stop()


def _register(conn: Any) -> None:
    watch = getattr(_ACTIVE, "deadline", None)
    if watch is not None:
        watch.attach(conn)


class _HTTPConnection(urllib3.connection.HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _register(self)  # before the request: connecting, sending and reading are all watched
        super().request(*args, **kwargs)


class _HTTPSConnection(urllib3.connection.HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _register(self)
        super().request(*args, **kwargs)


class _HTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _DeadlineAdapter(requests.adapters.HTTPAdapter):
    """An HTTPAdapter whose connections register with the calling thread's deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        # Through an HTTP(S) proxy (HTTPS_PROXY) too; a SOCKS proxy keeps urllib3's own classes.
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
        return manager


class _NoNetrc(requests.auth.AuthBase):
    """A session's default auth that adds nothing. `requests` consults ~/.netrc only when a
    request has no auth at all, and then replaces the Authorization header with the file's
    Basic credentials: with this default it never does, while proxies and CA bundles from the
    environment still apply (requests/sessions.py, `prepare_request`)."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r


def new_session(*, netrc: bool = False) -> requests.Session:
    """A `requests` session whose calls obey `deadline()` and that never reads ~/.netrc (with
    `netrc=True`, only for a request that carries no Authorization of its own)."""
    session = requests.Session()
    if not netrc:
        session.auth = _NoNetrc()
    adapter = _DeadlineAdapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def read_capped(resp: requests.Response, cap: int, what: str) -> bytes:
    """The whole body of a streamed response, or AnswerTooLarge as soon as it passes `cap`
    (a Content-Length over the cap is refused before a byte is read)."""
    length = resp.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > cap:
        raise AnswerTooLarge(what, cap)
    chunks, size = [], 0
    for chunk in resp.iter_content(chunk_size=65536):
        size += len(chunk)
        if size > cap:
            raise AnswerTooLarge(what, cap)
        chunks.append(chunk)
    return b"".join(chunks)


# A string, or an unterminated one to the end of the text: every quote that starts a match
# consumes to its close or to the end, so the scan is linear. Without the `\Z` branch, an answer
# of escaped quotes with no close (`"\"\"\"...`) is rescanned to its end from every quote:
# quadratic, hours of CPU for a 1 MiB answer, with no socket left for a deadline to cut.
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def json_depth(text: str) -> int:
    """How deep the arrays and objects of a JSON text nest (strings skipped), without parsing it."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    depth = peak = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            peak = max(peak, depth)
        else:
            depth -= 1
    return peak


def loads(text: str | bytes, what: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """json.loads, but JSON nested deeper than `max_depth` raises TooDeeplyNested naming `what`
    (ValueError otherwise, as json.loads)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if json_depth(text) > max_depth:
        raise TooDeeplyNested(what, max_depth)
    try:
        return json.loads(text)
    except RecursionError:  # not reached under max_depth; named all the same
        raise TooDeeplyNested(what, max_depth) from None


def origin(url: str) -> str:
    """scheme://host[:port] of `url`, without any user information or path."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "an unparsable URL"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    json_body: Any = None,
    data: bytes | None = None,
    timeout: float = 30.0,
    retries: int = 2,
    retry_statuses: frozenset[int] = frozenset({429, 503}),
    retry_after_cap: float = RETRY_AFTER_CAP,
    sleep: Callable[[float], None] = time.sleep,
    max_body: int = MAX_BODY,
) -> Result:
    """Send one request, retrying as described above; never raises for HTTP or network errors.
    `timeout` bounds each attempt whole (connect, headers and body); an answer larger than
    `max_body` is an error, never read whole."""
    hdrs = {"Accept": "application/json", "User-Agent": USER_AGENT}
    hdrs.update(headers or {})
    auth = None
    for name in [k for k in hdrs if k.lower() == "authorization"]:
        auth = _Authorization(hdrs.pop(name))
    if json_body is not None:
        data = json.dumps(json_body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    attempts = 0
    with new_session(netrc=True) as session:  # the caller's Authorization is never replaced (above)
        while True:
            attempts += 1
            result = _send(session, method, url, hdrs, auth, data, timeout, max_body)
            result.attempts = attempts
            retryable = result.status in retry_statuses or (result.status == 0 and result.error is not None
                                                             and result.error.startswith(("connection", "timed")))
            if not retryable or attempts > retries:
                return result
            sleep(retry_pause(result.headers.get("retry-after"), attempts, cap=retry_after_cap))


def _send(session: requests.Session, method: str, url: str, headers: dict[str, str],
          auth: requests.auth.AuthBase | None, data: bytes | None, timeout: float, max_body: int) -> Result:
    if not url.startswith(("https://", "http://")):
        return Result(status=0, error=f"not an http(s) URL: {origin(url)}")
    timed_out = Result(status=0, error=f"timed out after {timeout:g} s (the whole request, headers and body)")
    with deadline(time.monotonic() + timeout) as watch:

        def failed(exc: Exception) -> Result:
            # A socket shut down by the deadline fails as a connection error: say the deadline.
            if watch.fired:
                return timed_out
            return Result(status=0, error=f"connection failed: {origin(url)}: {_root_cause(exc)}")

        try:
            resp = session.request(method, url, headers=headers, auth=auth, data=data,
                                   timeout=timeout, allow_redirects=False, stream=True)
        except requests.Timeout:
            return timed_out
        except requests.ConnectionError as exc:
            return failed(exc)
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader, ValueError) as exc:
            return Result(status=0, error=f"bad URL or header: {type(exc).__name__}")
        except requests.RequestException as exc:
            return failed(exc)
        with resp:
            if resp.status_code in REDIRECTS:
                target = urllib.parse.urljoin(url, resp.headers.get("Location", ""))
                return Result(status=resp.status_code, headers=_headers(resp),
                              error=(f"{origin(url)} redirected to {origin(target)} (HTTP {resp.status_code}), not "
                                     f"followed: credentials stay with {origin(url)}"))
            try:
                raw = read_capped(resp, max_body, f"{method} {origin(url)}")
            except AnswerTooLarge:
                return Result(status=resp.status_code, headers=_headers(resp),
                              error=f"the answer is larger than {_size(max_body)}: not read")
            except requests.Timeout:
                return timed_out
            except requests.RequestException as exc:
                return failed(exc)
            if watch.fired:  # a body read "to the end" may have ended at the shut-down socket
                return timed_out
            return _result(resp.status_code, raw, _headers(resp), f"{method} {origin(url)}")


def _root_cause(exc: BaseException) -> str:
    """The innermost reason ('Connection refused'), not urllib3's pool and object addresses."""
    seen: set[int] = set()
    cause: BaseException = exc
    while id(cause) not in seen:
        seen.add(id(cause))
        nxt = cause.__cause__ or cause.__context__
        if nxt is None and cause.args and isinstance(cause.args[0], BaseException):
            nxt = cause.args[0]
        reason = getattr(cause, "reason", None)
        if nxt is None and isinstance(reason, BaseException):
            nxt = reason
        if nxt is None:
            break
        cause = nxt
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    text = str(cause)
    if ": " in text and "object at 0x" in text:  # urllib3's "<HTTPConnection object at 0x..>: reason"
        text = text.split(": ", 1)[1]
    return _one_line(text, 200) or type(cause).__name__


def _headers(resp: requests.Response) -> dict[str, str]:
    return {k.lower(): v for k, v in resp.headers.items()}


def _result(status: int, raw: bytes, headers: dict[str, str], what: str = "the answer") -> Result:
    text = raw.decode("utf-8", errors="replace")
    body = None
    if text.strip():
        try:
            body = loads(text, what)
        except TooDeeplyNested as exc:
            return Result(status=status, text="", headers=headers, error=str(exc))
        except ValueError:
            body = None
    return Result(status=status, body=body, text=text, headers=headers)


def error_summary(result: Result, secrets: Secrets | None = None) -> str:
    """One line saying what went wrong: our own error (no answer, a redirect), Databricks'
    {error_code, message}, OAuth's {error, error_description}, Braintrust's {Code, Message},
    or the first text of the body; `secrets` are removed before the line is cut, so none is
    left half-shown."""
    scrub = secrets.scrub if secrets is not None else str
    if result.error is not None or result.status == 0:
        return scrub(result.error or "no answer")
    body = result.body
    if isinstance(body, dict):
        code = body.get("error_code") or body.get("error") or body.get("Code")
        message = body.get("message") or body.get("error_description") or body.get("Message")
        if isinstance(code, dict):  # some APIs nest {"error": {"message": ...}}
            message, code = code.get("message"), code.get("type")
        parts = [str(p) for p in (code, message) if p]
        if parts:
            return _one_line(scrub(": ".join(parts)))
    return _one_line(scrub(result.text)) or "empty body"
