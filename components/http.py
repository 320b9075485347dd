"""One HTTP call with bounded timeouts and bounded retries, stdlib only.

Shared by `python -m components verify` (which must run with nothing but the record and the
standard library) and the Braintrust API client of the AiSecret provider. It imports neither
pulumi nor databricks-sdk.

A call is retried only for the statuses the caller names (and connection errors and
timeouts), at most ``retries`` times, sleeping ``Retry-After`` seconds when the server sends
it (capped) or an exponential backoff otherwise. The result says how many attempts it took.
Nothing here logs or formats headers, so a bearer token or a Basic credential never leaves
the request it was put in. A server may still echo one in its answer: `error_summary` takes
the caller's `Secrets` and removes them before it cuts the answer to one line, so a secret is
never left half-shown by the cut.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from components.braintrust import REDACTED

BACKOFF_START = 0.5
RETRY_AFTER_CAP = 30.0
MAX_BODY = 1 << 20


@dataclass
class Result:
    """What came back: a status (0 when no answer), the parsed JSON body if any, the raw text."""

    status: int
    body: Any = None
    text: str = ""
    attempts: int = 1
    error: str | None = None  # a connection error or timeout, one line
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class Secrets:
    """Everything that must never be shown; `scrub` removes it from a text."""

    values: set[str] = field(default_factory=set)

    def add(self, *values: str | None) -> None:
        self.values.update(v for v in values if isinstance(v, str) and len(v) >= 4)

    def add_credential(self, secret: Any) -> None:
        """A record's `secret`: a PAT, or the JSON of {client_id, client_secret}; the whole
        string and every string inside it."""
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


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to the backoff


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
    hdrs = {"Accept": "application/json", "User-Agent": "databricks-braintrust/0.1"}
    hdrs.update(headers or {})
    if json_body is not None:
        data = json.dumps(json_body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    attempts = 0
    while True:
        attempts += 1
        result = _send(method, url, hdrs, data, timeout)
        result.attempts = attempts
        retryable = result.status in retry_statuses or (result.status == 0 and result.error is not None
                                                         and not result.error.startswith(("not an", "bad URL")))
        if not retryable or attempts > retries:
            return result
        wait = _retry_after(result.headers.get("retry-after"))
        if wait is None:
            wait = BACKOFF_START * (2 ** (attempts - 1))
        sleep(min(wait, retry_after_cap))


def _send(method: str, url: str, headers: dict[str, str], data: bytes | None, timeout: float) -> Result:
    if not url.startswith(("https://", "http://")):
        return Result(status=0, error=f"not an http(s) URL: {url}")
    try:
        req = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    except ValueError as exc:
        return Result(status=0, error=f"bad URL: {_one_line(str(exc))}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - checked above
            return _result(resp.status, resp.read(MAX_BODY), resp.headers)
    except urllib.error.HTTPError as exc:
        try:
            raw = exc.read(MAX_BODY)
        except OSError:
            raw = b""
        return _result(exc.code, raw, exc.headers)
    except TimeoutError:
        return Result(status=0, error=f"timed out after {timeout:g} s")
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            return Result(status=0, error=f"timed out after {timeout:g} s")
        return Result(status=0, error=f"connection failed: {_one_line(str(exc.reason))}")
    except (ConnectionError, OSError) as exc:
        return Result(status=0, error=f"connection failed: {type(exc).__name__}: {_one_line(str(exc))}")


def _result(status: int, raw: bytes, headers: Any) -> Result:
    text = raw.decode("utf-8", errors="replace")
    body = None
    if text.strip():
        try:
            body = json.loads(text)
        except ValueError:
            body = None
    hdrs = {k.lower(): v for k, v in (headers.items() if headers is not None else [])}
    return Result(status=status, body=body, text=text, headers=hdrs)


def error_summary(result: Result, secrets: Secrets | None = None) -> str:
    """One line saying what the server answered: Databricks' {error_code, message}, OAuth's
    {error, error_description}, Braintrust's {Code, Message}, or the first text of the body;
    `secrets` are removed before the line is cut, so none is left half-shown."""
    scrub = secrets.scrub if secrets is not None else str
    if result.status == 0:
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
