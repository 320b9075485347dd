"""One provider process for the tests that need not start their own (one `pulumi up` has one
per command; these tests run many commands against the same emulator)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testing.emulator import EmulatorClient
from testing.provider import ProviderProcess


def configured_process(emulator: EmulatorClient) -> ProviderProcess:
    """A provider process configured for the emulator as the engine would configure it."""
    proc = ProviderProcess(env={"BRAINTRUST_API_KEY": "", "BRAINTRUST_BASE_URL": ""})
    proc.configure({"workspace": {"host": emulator.url}, "databricks_token": emulator.admin_token,
                    "braintrust_api_key": emulator.braintrust_api_key},
                   secret_keys=("databricks_token", "braintrust_api_key"))
    return proc


@pytest.fixture(scope="session")
def shared_proc(emulator_server: EmulatorClient) -> Iterator[ProviderProcess]:
    proc = configured_process(emulator_server)
    yield proc
    proc.close()
