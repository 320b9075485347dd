"""The executor the engine gives the program (engine.engine.BatchingExecutor): it only changes
when the event loop sees answers, never which answers: each call gets its own result or error,
and a lone call is answered although nothing else arrives to fill a batch."""

from __future__ import annotations

import asyncio

import pytest

from engine.engine import BatchingExecutor


def _fail(i: int) -> int:
    raise ValueError(f"call {i}")


def test_each_call_gets_its_own_result_or_error() -> None:
    loop = asyncio.new_event_loop()
    executor = BatchingExecutor(max_workers=8)
    loop.set_default_executor(executor)

    async def calls() -> list[object]:
        futures = [loop.run_in_executor(None, (lambda i=i: i * i) if i % 7 else (lambda i=i: _fail(i)))
                   for i in range(200)]
        return await asyncio.gather(*futures, return_exceptions=True)

    try:
        results = loop.run_until_complete(calls())
    finally:
        executor.shutdown(wait=True)
        loop.close()
    for i, got in enumerate(results):
        if i % 7:
            assert got == i * i
        else:
            assert isinstance(got, ValueError) and str(got) == f"call {i}"


def test_a_lone_call_is_answered_and_shutdown_stops_the_flusher() -> None:
    executor = BatchingExecutor(max_workers=2, window=3600.0)  # a window that never ends
    assert executor.submit(lambda: "alone").result(timeout=60) == "alone"
    executor.shutdown(wait=True)
    assert not executor._flusher.is_alive()
    with pytest.raises(RuntimeError):
        executor.submit(lambda: None)
