"""Shared fixtures: one emulator per test session on a free loopback port, reset per test
through its admin path (never by reaching into its memory)."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import engine.provider  # noqa: E402
from testing.emulator import EmulatorClient  # noqa: E402 - after the path is set

# Provider processes started by the tests themselves are forks of one that imported the
# providers once (engine/forked.py): about 2 s of CPU less each, over a hundred per run. What
# the tests start through make, `python -m testing.engine` or `python -m engine` still starts
# real `python -m pulumi.dynamic` processes. TEST_PROVIDER_FORK=0 starts real ones everywhere.
engine.provider.FORK = os.environ.get("TEST_PROVIDER_FORK", "1") != "0"

ADMIN_TOKEN = "dapi-test-admin-0123456789abcdef"
BRAINTRUST_API_KEY = "sk-bt-test-key-0123456789"
# Rollouts long enough to observe IN_PROGRESS, short enough to keep the suite fast.
READY_AFTER = 0.3
# The emulator answers ACL entries in an order drawn from this seed: a run that fails because
# something depended on that order repeats with EMULATOR_SEED=<the seed in the header>.
EMULATOR_SEED = int(os.environ.get("EMULATOR_SEED") or secrets.randbelow(2**31))


# The test layers (docs/architecture.md, "Test layers"), one marker each, given by where a test
# lives: `pytest -m unit` runs the offline layer alone, `-m "not program"` skips the slowest.
# A top-level file is unit unless named here.
LAYER_BY_FOLDER = {"emulator": "emulator", "lifecycle": "process", "engine": "program",
                   "reliability": "program", "e2e": "program", "program": "unit", "providers": "unit"}
LAYER_BY_FILE = {"test_verify.py": "emulator", "test_catalog_in_workspace.py": "emulator",
                 "test_make_up.py": "process", "test_pulumi_install.py": "process",
                 "test_bench_smoke.py": "process"}
LAYERS = ("unit", "emulator", "process", "program")


def layer_of(path: Path) -> str:
    relative = path.relative_to(ROOT / "tests")
    if len(relative.parts) > 1:
        return LAYER_BY_FOLDER.get(relative.parts[0], "unit")
    return LAYER_BY_FILE.get(relative.name, "unit")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not any(item.get_closest_marker(layer) for layer in LAYERS):
            item.add_marker(layer_of(Path(str(item.path))))


def pytest_report_header() -> str:
    return f"emulator seed: {EMULATOR_SEED} (EMULATOR_SEED={EMULATOR_SEED} repeats this run's ACL order)"


# The admin client lives in testing/ (shared with bench/); the old name stays for fixtures.
EmulatorHandle = EmulatorClient


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorHandle]:
    from emulator.server import EmulatorServer

    server = EmulatorServer(host="127.0.0.1", port=0, admin_token=ADMIN_TOKEN,
                            ready_after=READY_AFTER, braintrust_api_key=BRAINTRUST_API_KEY,
                            models=["main.ml.churn_scorer:3"], seed=EMULATOR_SEED)
    server.start()
    try:
        yield EmulatorHandle(server.url, ADMIN_TOKEN, BRAINTRUST_API_KEY)
    finally:
        server.stop()


@pytest.fixture
def emulator(emulator_server: EmulatorHandle) -> EmulatorHandle:
    emulator_server.reset()
    return emulator_server
