"""The one wait helper every provider uses: poll with exponential backoff, capped, under a deadline.

A wait always says what it is waiting for, so a timeout tells the user which object was
still not done and in which state, and that running `pulumi up` again resumes the wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from components.backoff import BACKOFF_CAP, BACKOFF_START, wait_delay

from ._errors import WaitTimeout
from ._workers import lent_worker

T = TypeVar("T")

__all__ = ["BACKOFF_CAP", "BACKOFF_START", "Done", "Pending", "wait_for"]


@dataclass(frozen=True)
class Pending:
    """Returned by a poll that is not done yet; `status` describes the current state."""

    status: str


@dataclass(frozen=True)
class Done(Generic[T]):
    value: T


def wait_for(
    poll: Callable[[], Done[T] | Pending],
    *,
    what: str,
    obj: str,
    timeout: float,
    start: float = BACKOFF_START,
    cap: float = BACKOFF_CAP,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `poll` until it returns Done, sleeping `wait_delay` (components/backoff.py: the time
    already waited / 8, between `start` and `cap`) between polls, so the wait overshoots the
    moment the thing is done by at most an eighth (a doubling delay overshoots by up to as much
    again).

    `poll` raises to fail at once. Past `timeout` seconds, raise WaitTimeout naming `what`,
    `obj` and the last status; nothing remote is changed by the timeout.

    The deadline holds only if each poll is bounded too: make its calls through
    `DatabricksProvider.bounded(deadline=poll_deadline(deadline))` (_client.py) and return
    Pending on `TRANSIENT` errors, as endpoint.py's wait for a rollout does.
    """
    started = clock()
    deadline = started + timeout
    while True:
        result = poll()
        if isinstance(result, Done):
            return result.value
        remaining = deadline - clock()
        if remaining <= 0:
            raise WaitTimeout(
                f"timed out after {timeout:.0f}s waiting for {what}",
                obj,
                "nothing was changed; run `pulumi up` again to resume waiting, or raise the timeout",
                f"last state: {result.status}",
            )
        delay = wait_delay(clock() - started, start=start, cap=cap)
        # Never sleep past the deadline: the last poll happens right at it. The pause gives
        # its worker back (`_workers`): a wait never starves the other resources.
        pause = min(delay, remaining)
        with lent_worker(pause):
            sleep(pause)
