"""Every shipped stack file converges in the emulator: its host pointed at the emulator (and
its Braintrust API, when it publishes), the production policy lifted for the run (a stack
named for the emulator, `policy: standard`), then `up` twice: the second changes nothing and
sends no request."""

from __future__ import annotations

from pathlib import Path

import pytest

from testing.emulator import EmulatorClient
from testing.engine import StackEngine
from testing.provider import ProviderProcess
from testing.stacks import STACKS, emulator_config


@pytest.mark.parametrize("stack_file", STACKS, ids=lambda p: p.name)
def test_shipped_stack_converges_in_the_emulator(stack_file: Path, emulator: EmulatorClient,
                                                 shared_proc: ProviderProcess, tmp_path: Path) -> None:
    config, secrets = emulator_config(stack_file, emulator, policy="standard")
    stack = f"emulated-{stack_file.name.split('.')[1]}"

    def engine() -> StackEngine:
        return StackEngine(stack_file, tmp_path / "state.json", config=config, secrets=secrets,
                           stack=stack, proc=shared_proc)

    first = engine().up()
    assert set(first.ops().values()) == {"create"}
    emulator.clear_requests()
    again = engine().up()
    assert set(again.ops().values()) == {"same"}
    assert emulator.requests() == []
    engine().destroy()
