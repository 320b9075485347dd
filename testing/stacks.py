"""Shipped stack files pointed at an emulator: the config a test or a benchmark sets over a
stack file so that everything it declares lands in the emulator (the workspace host, the
Braintrust API URL) and the credentials the emulator accepts."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from components.spec.constants import PROJECT
from testing.emulator import EmulatorClient

ROOT = Path(__file__).resolve().parents[1]
STACKS = sorted((ROOT / "stacks").glob("Pulumi.*.yaml"))
ADMIN_TOKEN = "dapi-engine-admin-0123456789abcdef"
BRAINTRUST_API_KEY = "sk-bt-engine-0123456789"
# The Unity Catalog models the shipped stacks serve.
MODELS = ["main.ml.churn_scorer:3"]


def stack_config(stack_file: Path) -> dict[str, Any]:
    """The stack file's config, keys without the project's namespace."""
    raw = yaml.safe_load(stack_file.read_text())["config"]
    return {k.split(":", 1)[1] if k.startswith(f"{PROJECT}:") else k: v for k, v in raw.items()}


def emulator_config(stack_file: Path, emulator: EmulatorClient, **overrides: Any
                    ) -> tuple[dict[str, Any], dict[str, str]]:
    """(config, secrets) to run `stack_file` against `emulator`: its host, its Braintrust API,
    its tokens. `overrides` replace whole config values (keys without the namespace)."""
    current = stack_config(stack_file)
    config: dict[str, Any] = {"workspace": {**current.get("workspace", {}), "host": emulator.url}}
    if "braintrust" in current:
        config["braintrust"] = {**current["braintrust"], "api_url": emulator.braintrust_url}
    config.update(copy.deepcopy(overrides))
    secrets = {"databricks_token": emulator.admin_token}
    if emulator.braintrust_api_key:
        secrets["braintrust_api_key"] = emulator.braintrust_api_key
    return config, secrets
