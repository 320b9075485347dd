"""The workspace's clock, which decides rotation (issue 21), not the deployer's.

A secret's `expire_time` is the workspace's time; comparing it with the machine's clock rotates
on every `up` when the machine is ahead by more than the rotation window, and too late when it
is behind. Every HTTP answer carries a `Date` header (RFC 9110 section 6.6.1: the origin's
clock). Every answer a provider gets anyway updates how far the workspace's clock is from ours
(`observe`, called by BoundedApi; the newest wins); a process that has made no call yet (a
no-op `up`) learns it with one read per host: an unauthenticated GET of
`/.well-known/databricks-config` (the path databricks-sdk itself probes; any status will do,
only the header is read), bounded by a few seconds, never sending a credential. A skew over
a minute is reported once. When no `Date` comes back, the machine's clock is used and that is
said.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import os
import threading
import time
from collections.abc import Callable

import pulumi
import requests

from components import transport

SKEW_REPORTED = 60.0  # seconds
PROBE_TIMEOUT = 5.0
PROBE_PATH = "/.well-known/databricks-config"

_LOCK = threading.Lock()
_PROBE_LOCK = threading.Lock()
_OFFSETS: dict[str, float | None] = {}  # host -> workspace time minus machine time, seconds
_REPORTED: set[str] = set()  # hosts whose skew (or missing Date) was reported


def _date_of(answer: requests.Response) -> float | None:
    raw = answer.headers.get("Date")
    if not raw:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def _probe(host: str) -> float | None:
    sent = time.time()
    # components/transport.py: one deadline for the whole request (a server dribbling its
    # headers is cut), never ~/.netrc (which would add a credential), and the body never read.
    with transport.new_session() as session, transport.deadline(time.monotonic() + PROBE_TIMEOUT) as watch:
        try:
            answer = session.get(f"{host.rstrip('/')}{PROBE_PATH}", timeout=PROBE_TIMEOUT,
                                 allow_redirects=False, stream=True)
            answer.close()
        except requests.RequestException:
            return None
        if watch.fired:
            return None
    received = time.time()
    date = _date_of(answer)
    if date is None:
        return None
    # The header has one-second resolution and was stamped between sending and receiving.
    return date - (sent + received) / 2


def observe(host: str | None, sent: float, received: float, date_header: str | None) -> None:
    """Learn the offset from an answer the provider got anyway (BoundedApi calls this): the
    newest answer wins, so a clock moved while the process runs is followed, and a no-op run
    that made no call yet is the only one that probes."""
    if not host or not date_header:
        return
    try:
        parsed = email.utils.parsedate_to_datetime(date_header)
    except (TypeError, ValueError):
        return
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    offset = parsed.timestamp() - (sent + received) / 2
    key = host.rstrip("/")
    with _LOCK:
        _OFFSETS[key] = offset
    _report(key, offset)


def _report(key: str, offset: float | None) -> None:
    with _LOCK:
        if key in _REPORTED:
            return
        _REPORTED.add(key)
    if offset is None:
        pulumi.log.warn(f"{key} sent no Date header: secret rotation is decided on this "
                        f"machine's clock")
    elif abs(offset) > SKEW_REPORTED:
        pulumi.log.warn(
            f"this machine's clock is {_span(abs(offset))} {'behind' if offset > 0 else 'ahead of'} "
            f"the workspace's ({key}); secret rotation follows the workspace's clock: fix this "
            f"machine's clock (NTP)")


def host_of(configured: str | None) -> str | None:
    """The workspace to ask: the stack's host, else the SDK's environment variable (building a
    client only to learn the host would probe it twice more)."""
    return configured or os.environ.get("DATABRICKS_HOST") or None


def workspace_offset(host: str | None,
                     probe: Callable[[str], float | None] = _probe) -> float | None:
    """Seconds the workspace's clock is ahead of this machine's (negative: behind); None when
    it cannot be learnt. One read per host per process; later calls answer from memory."""
    if not host:
        return None
    key = host.rstrip("/")
    with _PROBE_LOCK:  # one probe at a time; the others then answer from memory
        with _LOCK:
            if key in _OFFSETS:
                return _OFFSETS[key]
        offset = probe(key)
        with _LOCK:
            _OFFSETS.setdefault(key, offset)
            offset = _OFFSETS[key]
    _report(key, offset)
    return offset


def workspace_now(host: str | None,
                  probe: Callable[[str], float | None] = _probe) -> dt.datetime:
    """The workspace's time now, as best known (the machine's when it cannot be learnt)."""
    offset = workspace_offset(host, probe) or 0.0
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset)


def _span(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 60:.0f} minutes"


def forget() -> None:
    """Tests: learn the offsets again."""
    with _LOCK:
        _OFFSETS.clear()
        _REPORTED.clear()
