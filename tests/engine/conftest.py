"""One provider process for the tests that need not start their own (one `pulumi up` has one
per command; these tests run many commands against the same emulator)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testing.deployment import provider_for
from testing.emulator import EmulatorClient
from testing.provider import ProviderProcess


@pytest.fixture(scope="session")
def shared_proc(emulator_server: EmulatorClient) -> Iterator[ProviderProcess]:
    proc = provider_for(emulator_server)
    yield proc
    proc.close()
