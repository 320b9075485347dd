"""The program under Pulumi's mocks: a recording of every registration (type, name, parent,
dependencies, aliases, inputs) for one stack file, as a fixture."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime import settings

from components.args import contract_of
from components.spec import PROJECT

ROOT = Path(__file__).resolve().parents[2]
STACKS = sorted(p for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))
CLIENT_SECRET = "mock-client-secret-do-not-print"
PAT = "mock-pat-do-not-print"


@dataclass
class Registered:
    typ: str
    name: str
    inputs: dict[str, Any]
    urn: str = ""
    parent: str = ""
    dependencies: list[str] = field(default_factory=list)
    aliases: list[Any] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)


# What each dynamic resource's provider would output, by the contract's type name: every output
# key of the contract (components/args.py), checked on use.
SAMPLE_OUTPUTS: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
    "Endpoint": lambda name, inputs: dict(
        endpoint_id=f"id-{name}", url=f"https://ws/serving-endpoints/{name}/invocations",
        revision=f"rev-{name}", task="llm/v1/chat"),
    "ServicePrincipal": lambda name, inputs: dict(
        principal_id="1001", application_id="00000000-0000-4000-8000-000000000001",
        created_at="2026-11-26T06:00:00Z", not_adopted_ids=[]),
    # additional_secret_outputs is not applied under mocks: mark it as the engine would.
    "OAuthSecret": lambda name, inputs: dict(
        secret_id="s-1", client_id=inputs["application_id"], client_secret=CLIENT_SECRET,
        expire_time="2027-01-01T00:00:00Z", status="ACTIVE", unmanaged_secret_ids=[]),
    "EndpointsReady": lambda name, inputs: dict(
        ready={n: {"state": "READY", "config_version": 1} for n in inputs["endpoints"]}),
    "OAuthSecretSweep": lambda name, inputs: dict(removed_secret_ids=[]),
    "QueryGrant": lambda name, inputs: dict(governed_by="acl"),
    "AiSecret": lambda name, inputs: dict(secret_id="bt-1", preview_secret="****", updated_at="now"),
}


class Mocks(pulumi.runtime.Mocks):
    """Answers for each dynamic resource what its provider would output."""

    def __init__(self) -> None:
        self.resources: list[Registered] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        name, inputs = args.name, dict(args.inputs)
        registered = Registered(args.typ, name, inputs)
        self.resources.append(registered)
        outs = dict(inputs)
        outs.pop("__provider", None)
        contract = contract_of(args.typ)
        if contract is not None:
            sample = SAMPLE_OUTPUTS[contract.type_name](name, inputs)
            assert set(sample) == set(contract.output_keys()), contract.type_name
            outs.update(sample)
        registered.outputs = outs
        return f"{name}-id", outs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list]:
        return {}, []


def stack_config(path: Path) -> tuple[dict[str, str], list[str]]:
    config = yaml.safe_load(path.read_text())["config"]
    flat: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in config.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            flat[key] = PAT
            secret_keys.append(key)
        else:
            flat[key] = value if isinstance(value, str) else json.dumps(value)
    return flat, secret_keys


def install(path: Path, monkeypatch: pytest.MonkeyPatch) -> Mocks:
    """Mocks for one stack file's program, recording what only the engine sees: each
    registration's parent, dependencies and aliases."""
    stack = path.name.split(".")[1]
    mocks = Mocks()
    # Pulumi's test runner awaits on the current event loop; a test before may have closed it
    # (asyncio.run leaves none set), so each program gets a fresh one.
    asyncio.set_event_loop(asyncio.new_event_loop())
    # set_mocks keeps a root stack resource another test left behind, and its futures belong to
    # that test's (closed) loop: awaiting them fails with "await wasn't used with future", which
    # showed only when an earlier test in the same process (another xdist worker's order) had
    # loaded the program under mocks.
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False)
    monitor = settings.SETTINGS.monitor
    original = monitor.RegisterResource

    def register(req: Any) -> Any:
        resp = original(req)
        for r in reversed(mocks.resources):
            if r.name == req.name and r.typ == req.type and not r.urn:
                r.urn, r.parent, r.dependencies = resp.urn, req.parent, list(req.dependencies)
                r.aliases = list(req.aliases)
                break
        else:
            mocks.resources.append(Registered(req.type, req.name, {}, resp.urn, req.parent,
                                              list(req.dependencies), list(req.aliases)))
        return resp

    monkeypatch.setattr(monitor, "RegisterResource", register)
    flat, secret_keys = stack_config(path)
    pulumi.runtime.set_all_config(flat, secret_keys)
    return mocks


def run_program(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Mocks, dict[str, Any], dict[str, bool]]:
    """Run the program for one stack file to the end: every registration answered and every
    export resolved (a check inside an apply may run before the last registration returns).
    Returns the mocks, the exports' values and whether each export is secret."""
    mocks = install(path, monkeypatch)
    exports: dict[str, Any] = {}
    secret: dict[str, bool] = {}

    @pulumi.runtime.test
    def run() -> Any:
        from components import program as prog

        outputs = {k: pulumi.Output.from_input(v) for k, v in prog.build(prog.load_stack()).items()}
        return pulumi.Output.all(
            pulumi.Output.all(**outputs).apply(exports.update),
            pulumi.Output.all(**{k: v.is_secret() for k, v in outputs.items()}).apply(secret.update),
        )

    try:
        run()
    finally:
        pulumi.runtime.set_all_config({}, [])
    return mocks, exports, secret
