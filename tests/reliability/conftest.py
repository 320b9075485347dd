"""Fixtures of the reliability suite: one provider process for the session (as one `pulumi up`
has one), configured with every stack config key; a `StackRun` factory over a fresh engine
state per test; the emulator reset per test (tests/conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from testing.provider import Engine, ProviderProcess
from tests.stackrun import StackRun, load, new_process, stack_document


@pytest.fixture(scope="session")
def shared_proc(emulator_server: Any) -> Iterator[ProviderProcess]:
    proc = new_process(emulator_server)
    yield proc
    proc.close()


@pytest.fixture
def make_run(emulator: Any, shared_proc: ProviderProcess) -> Callable[..., StackRun]:
    """make_run(proc=None, base="local", stack="local", pat=None, gate_timeout=None, **config)."""

    def make(proc: ProviderProcess | None = None, base: str = "local", stack: str = "local",
             pat: str | None = None, gate_timeout: float | None = None, **config: Any) -> StackRun:
        doc = stack_document(base, host=emulator.url, braintrust_url=emulator.braintrust_url, **config)
        return StackRun(Engine(proc or shared_proc), load(doc, stack), pat=pat, gate_timeout=gate_timeout)

    return make


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, every: float = 0.02) -> Any:
    """Poll until `predicate()` is truthy; fail with a clear message past the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(every)
