"""Fixtures of the reliability suite: the real program through the stand-in engine
(testing.deployment), one provider process for the session (as one `pulumi up` has one),
state per test in its own file, the emulator reset per test (tests/conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from testing.deployment import Deployment, provider_for
from testing.provider import ProviderProcess


@pytest.fixture(scope="session")
def shared_proc(emulator_server: Any) -> Iterator[ProviderProcess]:
    proc = provider_for(emulator_server)
    yield proc
    proc.close()


@pytest.fixture
def make_run(emulator: Any, shared_proc: ProviderProcess, tmp_path: Path) -> Callable[..., Deployment]:
    """make_run(proc=None, base="local", stack="local", **config): a Deployment of
    stacks/Pulumi.<base>.yaml as `stack`, its state in the test's own folder."""

    def make(proc: ProviderProcess | None = None, base: str = "local", stack: str = "local",
             **config: Any) -> Deployment:
        return Deployment(emulator, tmp_path / f"{stack}.state.json", base=base, stack=stack,
                          proc=proc or shared_proc, **config)

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
