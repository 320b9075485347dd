"""Pauses that give their worker back, and calls paced per workspace (issue 21).

Pulumi's dynamic provider serves its gRPC calls from a pool of four threads
(`pulumi/dynamic/__main__.py`: `grpc.server(futures.ThreadPoolExecutor(max_workers=4))`), one
resource operation per thread. A call that sleeps a `Retry-After` holds its thread, and every
other resource queues behind it: an `up` of 120 endpoints with every fifth call answered 429
took 2.7x its fault-free time (`python -m bench.state`).

`lent_worker()` wraps such a pause (BoundedApi's Retry-After and backoff, the grant's
attempts, and every wait's poll interval in `_wait.wait_for`): while it lasts the pool may run one more thread, so the
queued resources go on; the pool never grows past its four plus the pauses in progress
(at most MAX_LENT). The pool is reached through the current thread, a worker of that pool
(`concurrent.futures.thread._worker` holds a weak reference to its executor as its first
argument): private attributes of CPython 3.11's ThreadPoolExecutor (`_max_workers`,
`_adjust_thread_count`). Where they are not there (another runtime, a call outside the pool),
the pause simply holds its worker, as before.

A grown pool is still paced per workspace: `in_flight(host)` lets at most PER_WORKSPACE
requests be in flight to one workspace from this process (twice what four workers could send:
threads started for a pause stay in the pool afterwards, and under the GIL a thread holding a
place is often not sending; four places measured slower than eight), whatever the pool's size.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

PER_WORKSPACE = 8  # requests in flight to one workspace at once (twice the pool's own size)
MAX_LENT = 64  # extra threads at most, whatever the number of pauses
MIN_PAUSE = 0.2  # shorter pauses are not worth a thread

_LOCK = threading.Lock()
_lent = 0
_SLOTS: dict[str, threading.BoundedSemaphore] = {}


def _executor() -> ThreadPoolExecutor | None:
    args = getattr(threading.current_thread(), "_args", None)
    if not isinstance(args, tuple) or not args:
        return None
    ref = args[0]
    executor = ref() if callable(ref) else None
    if not isinstance(executor, ThreadPoolExecutor):
        return None
    if not hasattr(executor, "_max_workers") or not hasattr(executor, "_adjust_thread_count"):
        return None
    return executor


@contextmanager
def lent_worker(seconds: float) -> Iterator[None]:
    """Around a pause of `seconds`: the pool may start one more thread meanwhile."""
    global _lent
    executor = _executor() if seconds >= MIN_PAUSE else None
    if executor is not None:
        with _LOCK:
            if _lent >= MAX_LENT:
                executor = None
            else:
                _lent += 1
                executor._max_workers += 1
                _spawn(executor)
    try:
        yield
    finally:
        if executor is not None:
            with _LOCK:
                _lent -= 1
                executor._max_workers -= 1


def _spawn(executor: ThreadPoolExecutor) -> None:
    """Start one more thread now (the pool is under its raised maximum). The pool counts idle
    threads with a semaphore every finished task releases, so it usually believes one is idle
    and starts none; when tasks are queued, none is: set those permits aside for the call."""
    idle = getattr(executor, "_idle_semaphore", None)
    stale = 0
    while idle is not None and idle.acquire(timeout=0):
        stale += 1
    try:
        executor._adjust_thread_count()
    finally:
        for _ in range(stale):
            idle.release()  # type: ignore[union-attr]


def _slots(host: str) -> threading.BoundedSemaphore:
    with _LOCK:
        slots = _SLOTS.get(host)
        if slots is None:
            slots = _SLOTS[host] = threading.BoundedSemaphore(PER_WORKSPACE)
        return slots


@contextmanager
def in_flight(host: str, timeout: float) -> Iterator[bool]:
    """One of PER_WORKSPACE places for a request to `host`; yields False (and holds nothing)
    when none came free within `timeout` seconds."""
    slots = _slots(host)
    got = slots.acquire(timeout=max(0.0, timeout))
    try:
        yield got
    finally:
        if got:
            slots.release()
