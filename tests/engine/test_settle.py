"""How the engine waits for a program's outputs (engine.engine._settle, before Pulumi's own
`wait_for_rpcs`): the work grows linearly with the number of outputs, every output has resolved
when it returns, and a failed output still reaches the runtime, which re-raises it.

The work is counted, not timed: the futures each `asyncio.wait` call is handed (each one gets a
done-callback added and removed)."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from typing import Any

import pulumi
import pytest
from pulumi.runtime import settings
from pulumi.runtime.stack import wait_for_rpcs

from engine.engine import _settle

N = 300


def _run(body: Callable[[], Awaitable[Any]]) -> Any:
    """`body` on a fresh loop, in a context of its own with the runtime's settings reset."""

    def inside() -> Any:
        settings.configure(settings.Settings(project="p", stack="s", organization="o",
                                             root_directory="."))
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            return loop.run_until_complete(body())
        finally:
            loop.close()
            asyncio.set_event_loop(asyncio.new_event_loop())

    return contextvars.Context().run(inside)


def _outputs_resolved_one_by_one(n: int, fail_at: int | None = None
                                 ) -> tuple[list[pulumi.Output[int]], Awaitable[None]]:
    """n outputs whose values arrive one at a time, as registrations' answers do."""
    loop = asyncio.get_running_loop()
    futures = [loop.create_future() for _ in range(n)]
    known = loop.create_future()
    known.set_result(True)
    outputs = [pulumi.Output(set(), f, known) for f in futures]

    async def feed() -> None:
        for i, f in enumerate(futures):
            await asyncio.sleep(0)
            if i == fail_at:
                f.set_exception(ValueError(f"output {i} failed"))
            else:
                f.set_result(i)

    return outputs, feed()


@pytest.fixture
def handed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many futures each asyncio.wait call is handed."""
    sizes: list[int] = []
    real = asyncio.wait

    async def counting(fs: Any, *args: Any, **kwargs: Any) -> Any:
        fs = list(fs)
        sizes.append(len(fs))
        return await real(fs, *args, **kwargs)

    monkeypatch.setattr(asyncio, "wait", counting)
    return sizes


def test_waiting_for_n_outputs_is_linear_and_leaves_none_unresolved(handed: list[int]) -> None:
    async def body() -> list[int | None]:
        outputs, feed = _outputs_resolved_one_by_one(N)
        feeder = asyncio.ensure_future(feed)
        await _settle()
        assert not [t for t in settings.SETTINGS.outputs if not t.done()]
        await wait_for_rpcs()
        await feeder
        return [await o.future() for o in outputs]

    assert _run(body) == list(range(N))
    assert sum(handed) <= 3 * N, handed


def test_the_runtime_alone_waits_quadratically(handed: list[int]) -> None:
    # Why _settle exists: the same outputs through wait_for_rpcs alone.
    async def body() -> None:
        _, feed = _outputs_resolved_one_by_one(N)
        feeder = asyncio.ensure_future(feed)
        await wait_for_rpcs()
        await feeder

    _run(body)
    assert sum(handed) > N * N // 4, sum(handed)


def test_a_failed_output_still_reaches_the_runtime_which_raises_it(handed: list[int]) -> None:
    async def body() -> None:
        _, feed = _outputs_resolved_one_by_one(N, fail_at=N // 2)
        feeder = asyncio.ensure_future(feed)
        await _settle()  # returns at the failure, raising nothing itself
        try:
            await wait_for_rpcs()
        finally:
            await feeder

    with pytest.raises(ValueError, match=f"output {N // 2} failed"):
        _run(body)
