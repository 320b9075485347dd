"""How long to wait before trying again: the one statement of backoff and Retry-After.

Two shapes, for two kinds of waiting:
- `retry_pause(retry_after, attempt)`: between attempts at one request (a 429, a 503, a lost
  connection). The server's Retry-After when it sends one (RFC 9110 10.2.3: delay-seconds;
  an HTTP-date falls back to backoff), else exponential backoff from BACKOFF_START doubling
  up to BACKOFF_CAP, with jitter so that many clients do not come back in step.
- `wait_delay(elapsed)`: between polls of a long wait (a rollout, a principal propagating):
  the time waited so far divided by GROWTH, between BACKOFF_START and BACKOFF_CAP, so a wait
  overshoots the moment the thing is done by at most an eighth.

Callers decide whether a pause fits their deadline; nothing here sleeps. No pulumi, no
databricks-sdk: the transport of `verify` and Braintrust imports it too.
"""

from __future__ import annotations

import random
from typing import Any

BACKOFF_START = 0.5
BACKOFF_CAP = 10.0
GROWTH = 8.0  # a wait's delay is the time waited so far divided by this


def backoff(attempt: int, *, start: float = BACKOFF_START, cap: float = BACKOFF_CAP,
            jitter: bool = True) -> float:
    """The pause after failed attempt number `attempt` (1, 2, ...): start * 2^(attempt-1),
    at most `cap`, scaled by a random 0.5-1.0 unless `jitter` is False."""
    pause = min(cap, start * 2 ** max(0, attempt - 1))
    return pause * (0.5 + random.random() / 2) if jitter else pause  # noqa: S311 - not crypto


def retry_after(value: Any) -> float | None:
    """A Retry-After value in seconds (header text or a number already parsed, as the SDK's
    `retry_after_secs`), or None when there is none or it is not delay-seconds."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None  # an HTTP-date: the caller backs off instead
    return max(0.0, seconds) if seconds == seconds else None  # NaN is no answer


def retry_pause(retry_after_value: Any, attempt: int, *, cap: float | None = None,
                jitter: bool = True) -> float:
    """The pause before the next attempt: the server's Retry-After, else backoff; at most
    `cap` when given (a client that will not sleep longer than that whatever it is told)."""
    asked = retry_after(retry_after_value)
    pause = asked if asked is not None and asked > 0 else backoff(attempt, jitter=jitter)
    return min(pause, cap) if cap is not None else pause


def wait_delay(elapsed: float, *, start: float = BACKOFF_START, cap: float = BACKOFF_CAP) -> float:
    """The delay before the next poll of a wait that has run `elapsed` seconds."""
    return min(cap, max(start, elapsed / GROWTH))
