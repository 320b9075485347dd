"""What-if, for comparison only: the project's readiness gate with another polling schedule.

The gate's wait (components/providers/_wait.py) doubles its delay from 0.5 s up to 10 s, so its
last poll can land up to one delay (as long as everything waited so far, until the cap) after
the endpoints are ready. Here the delay is instead an eighth of the time waited so far (at
least 0.25 s, at most the same 10 s cap), so the overshoot stays under about 12.5 %. Nothing
else changes: same provider, same polls. Importing this module (the provider process does,
when it unpickles the provider) switches the schedule for the gate in that process only.
"""

from __future__ import annotations

import time
from typing import Any

from components.providers import _wait, readiness
from components.providers.readiness import EndpointsReadyProvider

FRACTION = 0.125
FLOOR = 0.25


def wait_proportionally(poll: Any, **kwargs: Any) -> Any:
    started = time.monotonic()

    def sleep(delay: float) -> None:
        # `delay` is what the doubling schedule asks for; never sleep longer than that.
        time.sleep(min(delay, max(FLOOR, FRACTION * (time.monotonic() - started))))

    return _wait.wait_for(poll, sleep=sleep, start=FLOOR, **kwargs)


readiness.wait_for = wait_proportionally  # type: ignore[assignment]


class ProportionalGateProvider(EndpointsReadyProvider):
    """EndpointsReadyProvider, unchanged; only the schedule above differs."""
