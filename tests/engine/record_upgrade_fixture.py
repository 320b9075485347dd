"""Record the "existing stack" fixture for test_upgrade.py: the local stack deployed by the code
of the day into a fresh emulator, both states kept (the engine's and the emulator's), with the
emulator's URL replaced by {{HOST}} so a test can load them into an emulator on any port.

    .venv/bin/python -m tests.engine.record_upgrade_fixture tests/engine/fixtures/upgrade-<date>

Recorded once per layout worth keeping: a later `up` by newer code must replace nothing and
write nothing (resource renames need aliases).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from testing.emulator import EmulatorProcess
from testing.engine import StackEngine
from testing.stacks import ADMIN_TOKEN, BRAINTRUST_API_KEY, MODELS, ROOT, emulator_config

HOST = "{{HOST}}"
# Over the local stack: a secret that lives two years, so the fixture does not need rotating
# (which writes) for as long; the test sets the same.
OVERRIDES = {"principal": {"display_name": "braintrust-local", "secret_lifetime_days": 730,
                           "rotate_before_days": 7}}
# The emulator keeps only a hash of the OAuth secret; the record and the state hold it in plain.
# It is replaced by a placeholder in both, so no minted credential sits in the repository.
SECRET_PLACEHOLDER = "fixture-client-secret-not-a-credential"


def record(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        emulator_state = Path(tmp) / "emulator.json"
        stack_file = ROOT / "stacks" / "Pulumi.local.yaml"
        with EmulatorProcess(ADMIN_TOKEN, ready_after=0.2, models=MODELS,
                             braintrust_api_key=BRAINTRUST_API_KEY,
                             extra_args=["--state", str(emulator_state)]) as emulator:
            config, secrets = emulator_config(stack_file, emulator, **OVERRIDES)
            engine = StackEngine(stack_file, Path(tmp) / "state.json", config=config, secrets=secrets)
            result = engine.up()
            url = emulator.url
            client_secret = result.export("principal_client_secret")
        for name, path in (("state.json", Path(tmp) / "state.json"), ("emulator.json", emulator_state)):
            text = path.read_text().replace(url, HOST).replace(client_secret, SECRET_PLACEHOLDER)
            (out / name).write_text(text)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                            check=False).stdout.strip()
    (out / "recorded.json").write_text(json.dumps(
        {"stack_file": "stacks/Pulumi.local.yaml", "overrides": OVERRIDES, "commit": commit}, indent=1) + "\n")


if __name__ == "__main__":
    record(Path(sys.argv[1]))
