"""One HTTP call with bounded timeouts, bounded retries and no redirects, on `requests`.

Shared by `python -m components verify` and the Braintrust API client of the AiSecret
provider. It imports neither pulumi nor databricks-sdk.

A call is retried only for the statuses the caller names (and connection errors and
timeouts), at most ``retries`` times, sleeping ``Retry-After`` seconds when the server sends
it (capped) or an exponential backoff otherwise. The result says how many attempts it took.

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

import json
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
import requests.auth

from components.backoff import retry_pause
from components.braintrust import REDACTED
from components.spec.constants import PROJECT

RETRY_AFTER_CAP = 30.0
MAX_BODY = 1 << 20
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
        """`text` without any secret, written as it is or as a JSON string escapes it (a
        server echoing the JSON body it was sent)."""
        forms = {f for v in self.values for f in (v, json.dumps(v)[1:-1]) if f}
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
) -> Result:
    """Send one request, retrying as described above; never raises for HTTP or network errors."""
    hdrs = {"Accept": "application/json", "User-Agent": USER_AGENT}
    hdrs.update(headers or {})
    auth = None
    for name in [k for k in hdrs if k.lower() == "authorization"]:
        auth = _Authorization(hdrs.pop(name))
    if json_body is not None:
        data = json.dumps(json_body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    attempts = 0
    with requests.Session() as session:
        while True:
            attempts += 1
            result = _send(session, method, url, hdrs, auth, data, timeout)
            result.attempts = attempts
            retryable = result.status in retry_statuses or (result.status == 0 and result.error is not None
                                                             and result.error.startswith(("connection", "timed")))
            if not retryable or attempts > retries:
                return result
            sleep(retry_pause(result.headers.get("retry-after"), attempts, cap=retry_after_cap))


def _send(session: requests.Session, method: str, url: str, headers: dict[str, str],
          auth: requests.auth.AuthBase | None, data: bytes | None, timeout: float) -> Result:
    if not url.startswith(("https://", "http://")):
        return Result(status=0, error=f"not an http(s) URL: {origin(url)}")
    try:
        resp = session.request(method, url, headers=headers, auth=auth, data=data, timeout=timeout,
                               allow_redirects=False, stream=True)
    except requests.Timeout:
        return Result(status=0, error=f"timed out after {timeout:g} s")
    except requests.ConnectionError as exc:
        return Result(status=0, error=f"connection failed: {origin(url)}: {_root_cause(exc)}")
    except (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader, ValueError) as exc:
        return Result(status=0, error=f"bad URL or header: {type(exc).__name__}")
    except requests.RequestException as exc:
        return Result(status=0, error=f"connection failed: {origin(url)}: {_root_cause(exc)}")
    with resp:
        if resp.status_code in REDIRECTS:
            target = urllib.parse.urljoin(url, resp.headers.get("Location", ""))
            return Result(status=resp.status_code, headers=_headers(resp),
                          error=(f"{origin(url)} redirected to {origin(target)} (HTTP {resp.status_code}), not "
                                 f"followed: credentials stay with {origin(url)}"))
        try:
            raw = _read(resp)
        except requests.Timeout:
            return Result(status=0, error=f"timed out after {timeout:g} s")
        except requests.RequestException as exc:
            return Result(status=0, error=f"connection failed: {origin(url)}: {_root_cause(exc)}")
        return _result(resp.status_code, raw, _headers(resp))


def _read(resp: requests.Response) -> bytes:
    """At most MAX_BODY bytes of the body: a huge answer is cut, never held whole."""
    chunks, size = [], 0
    for chunk in resp.iter_content(chunk_size=65536):
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_BODY:
            break
    return b"".join(chunks)[:MAX_BODY]


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


def _result(status: int, raw: bytes, headers: dict[str, str]) -> Result:
    text = raw.decode("utf-8", errors="replace")
    body = None
    if text.strip():
        try:
            body = json.loads(text)
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
