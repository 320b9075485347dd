"""A pause that gives its worker back (issue 21): while a call of the provider's thread pool
sleeps a Retry-After, a queued call runs; the pool's maximum comes back afterwards; requests to
one workspace stay paced whatever the pool's size."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from components.providers import _workers


def test_a_queued_call_runs_while_the_only_worker_pauses() -> None:
    pool = ThreadPoolExecutor(max_workers=1)  # the dynamic provider's pool, with one worker
    queued_ran = threading.Event()

    def pausing() -> bool:
        with _workers.lent_worker(1.0):
            return queued_ran.wait(30)  # the pause: ends as soon as the other call has run

    try:
        for _ in range(3):  # the pool's idle count is stale after the first round
            queued_ran.clear()
            first = pool.submit(pausing)
            second = pool.submit(queued_ran.set)
            assert first.result(60) is True  # the queued call ran during the pause
            second.result(60)
        assert pool._max_workers == 1  # given back after each pause
    finally:
        pool.shutdown()


def test_outside_a_pool_or_for_a_short_pause_nothing_is_lent() -> None:
    with _workers.lent_worker(5.0):
        assert _workers._lent == 0  # the test's own thread belongs to no pool
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        def short() -> int:
            with _workers.lent_worker(_workers.MIN_PAUSE / 2):
                return _workers._lent

        assert pool.submit(short).result(60) == 0
    finally:
        pool.shutdown()


def test_requests_to_one_workspace_are_paced() -> None:
    held = [_workers.in_flight("https://paced.example", 1.0) for _ in range(_workers.PER_WORKSPACE)]
    assert all(h.__enter__() for h in held)
    with _workers.in_flight("https://paced.example", 0.0) as placed:
        assert placed is False  # every place taken: none within the time left
    with _workers.in_flight("https://other.example", 0.0) as placed:
        assert placed is True  # another workspace has its own places
    for h in held:
        h.__exit__(None, None, None)
    with _workers.in_flight("https://paced.example", 0.0) as placed:
        assert placed is True
