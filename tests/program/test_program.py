"""`__main__.py`'s program under Pulumi's mocks, for every stack file: the resources, their
parents and dependencies, the grants matching the endpoints, and secret outputs kept secret."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime import settings

from components.braintrust import validate_record
from components.spec import PROJECT, SECRET_KEYS

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


class Mocks(pulumi.runtime.Mocks):
    """Answers for each dynamic resource what its provider would output."""

    def __init__(self) -> None:
        self.resources: list[Registered] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        name, inputs = args.name, dict(args.inputs)
        self.resources.append(Registered(args.typ, name, inputs))
        outs = dict(inputs)
        outs.pop("__provider", None)
        if "served_entities" in inputs:
            outs.update(endpoint_id=f"id-{name}", url=f"https://ws/serving-endpoints/{name}/invocations",
                        revision=f"rev-{name}", task="llm/v1/chat")
        elif "display_name" in inputs:
            outs.update(principal_id="1001", application_id="00000000-0000-4000-8000-000000000001")
        elif "lifetime_days" in inputs:
            # additional_secret_outputs is not applied under mocks: mark it as the engine would.
            outs.update(secret_id="s-1", client_id=inputs["application_id"],
                        client_secret=CLIENT_SECRET, expire_time="2027-01-01T00:00:00Z", status="ACTIVE")
        elif "timeout_seconds" in inputs:
            outs["ready"] = {n: {"state": "READY", "config_version": 1} for n in inputs["endpoints"]}
        elif "record_hash" in inputs:
            outs.update(secret_id="bt-1", preview_secret="****", updated_at="now")
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


@pytest.fixture
def program(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """Run the program for one stack file under mocks; yield (mocks, exports, stack file dict)."""
    path: Path = request.param
    stack = path.name.split(".")[1]
    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False)
    monitor = settings.SETTINGS.monitor
    original = monitor.RegisterResource

    def register(req: Any) -> Any:  # record what only the engine sees: parent and dependencies
        resp = original(req)
        for r in reversed(mocks.resources):
            if r.name == req.name and r.typ == req.type and not r.urn:
                r.urn, r.parent, r.dependencies = resp.urn, req.parent, list(req.dependencies)
                break
        else:
            mocks.resources.append(Registered(req.type, req.name, {}, resp.urn, req.parent,
                                              list(req.dependencies)))
        return resp

    monkeypatch.setattr(monitor, "RegisterResource", register)
    flat, secret_keys = stack_config(path)
    pulumi.runtime.set_all_config(flat, secret_keys)
    from components import program as prog

    exports = prog.build(prog.load_stack())
    yield mocks, exports, yaml.safe_load(path.read_text())["config"]
    pulumi.runtime.set_all_config({}, [])


@pytest.mark.parametrize("program", STACKS, indirect=True, ids=lambda p: p.name)
@pulumi.runtime.test
def test_program_declares_endpoints_gate_principal_and_a_grant_per_endpoint(program):
    mocks, exports, config = program
    declared = sorted(e["name"] for e in config[f"{PROJECT}:endpoints"])

    def check(_: Any) -> None:
        components = {r.typ for r in mocks.resources if not r.typ.startswith("pulumi-python:dynamic")}
        assert {"databricks-braintrust:serving:ServingEndpoint", "databricks-braintrust:serving:ReadinessGate",
                "databricks-braintrust:principal:QueryPrincipal",
                "databricks-braintrust:braintrust:BraintrustRecord"} <= components
        endpoints = [r for r in mocks.resources if "served_entities" in r.inputs]
        assert sorted(r.inputs["name"] for r in endpoints) == declared
        # Every endpoint resource is the child of its ServingEndpoint component.
        for r in endpoints:
            assert "databricks-braintrust:serving:ServingEndpoint$" in r.urn, r.urn
        grants = [r for r in mocks.resources if "service_principal_name" in r.inputs]
        assert sorted(g.inputs["endpoint_name"] for g in grants) == declared
        assert all(g.inputs["permission_level"] == "CAN_QUERY" for g in grants)
        assert all("databricks-braintrust:principal:QueryPrincipal$" in g.urn for g in grants)
        # The gate waits on every endpoint: it depends on each endpoint resource.
        (gate,) = [r for r in mocks.resources if "timeout_seconds" in r.inputs]
        assert {e.urn for e in endpoints} <= set(gate.dependencies)
        assert sorted(gate.inputs["endpoints"]) == declared
        (sp,) = [r for r in mocks.resources if "display_name" in r.inputs]
        assert sp.inputs["entitlements"] == [] or config[f"{PROJECT}:principal"].get("entitlements")
        assert sp.inputs["external_id"].startswith(f"{PROJECT}/")

    return pulumi.Output.all(exports["endpoints"], exports["braintrust_provider_redacted"]).apply(check)


@pytest.mark.parametrize("program", STACKS, indirect=True, ids=lambda p: p.name)
@pulumi.runtime.test
def test_braintrust_provider_is_secret_valid_and_lists_exactly_the_stack_endpoints(program):
    mocks, exports, config = program
    declared = sorted(e["name"] for e in config[f"{PROJECT}:endpoints"])

    def check(args: list[Any]) -> None:
        record, is_secret, redacted, redacted_secret, client_secret_is_secret = args
        assert is_secret and client_secret_is_secret and not redacted_secret
        parsed, errors = validate_record(record)
        assert errors == [] and parsed is not None
        assert parsed.metadata.models == declared
        assert sorted(parsed.metadata.customModels) == declared
        assert parsed.metadata.api_base == config[f"{PROJECT}:workspace"]["host"].rstrip("/")
        assert json.loads(record["secret"])["client_secret"] == CLIENT_SECRET
        assert CLIENT_SECRET not in json.dumps(redacted) and PAT not in json.dumps(redacted)
        assert redacted["metadata"] == record["metadata"]

    record = exports["braintrust_provider"]
    redacted = exports["braintrust_provider_redacted"]
    return pulumi.Output.all(record, record.is_secret(), redacted, redacted.is_secret(),
                             exports["principal_client_secret"].is_secret()).apply(check)


@pytest.mark.parametrize("program", [p for p in STACKS if "publish: true" in p.read_text()], indirect=True,
                         ids=lambda p: p.name)
@pulumi.runtime.test
def test_publishing_stacks_upsert_the_record_after_the_gate(program):
    mocks, exports, _ = program

    def check(_: Any) -> None:
        (published,) = [r for r in mocks.resources if "record_hash" in r.inputs]
        (gate,) = [r for r in mocks.resources if "timeout_seconds" in r.inputs]
        grants = [r for r in mocks.resources if "service_principal_name" in r.inputs]
        assert gate.urn in published.dependencies
        assert {g.urn for g in grants} <= set(published.dependencies)
        assert CLIENT_SECRET not in published.inputs["record_hash"]

    return exports["braintrust_ai_secret_id"].apply(check)


def test_invalid_config_stops_the_program_with_the_validate_message(monkeypatch: pytest.MonkeyPatch) -> None:
    pulumi.runtime.set_mocks(Mocks(), project=PROJECT, stack="dev", preview=False)
    flat, secret_keys = stack_config(ROOT / "stacks" / "Pulumi.dev.yaml")
    flat[f"{PROJECT}:principal"] = json.dumps({"display_name": "x", "secret_lifetime_days": 0})
    pulumi.runtime.set_all_config(flat, secret_keys)
    from components import program as prog

    with pytest.raises(pulumi.RunError) as info:
        prog.load_stack()
    assert "stacks/Pulumi.dev.yaml: principal.secret_lifetime_days" in str(info.value)
    pulumi.runtime.set_all_config({}, [])


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_secret_config_given_in_plain_text_is_refused(key: str) -> None:
    pulumi.runtime.set_mocks(Mocks(), project=PROJECT, stack="dev", preview=False)
    flat, _ = stack_config(ROOT / "stacks" / "Pulumi.dev.yaml")
    flat[f"{PROJECT}:{key}"] = "plain-text-credential-value"
    pulumi.runtime.set_all_config(flat, [])
    from components import program as prog

    with pytest.raises(pulumi.RunError) as info:
        prog.load_stack()
    assert f"{key}: is written in plain text" in str(info.value)
    assert "plain-text-credential-value" not in str(info.value)
    pulumi.runtime.set_all_config({}, [])


@pytest.mark.parametrize("program", STACKS[:1], indirect=True, ids=lambda p: p.name)
@pulumi.runtime.test
def test_principal_resources_are_named_independently_of_display_name(program):
    # A rename in the stack file must be an in-place update, so no URN may carry display_name.
    mocks, exports, config = program
    display_name = config[f"{PROJECT}:principal"]["display_name"]

    def check(_: Any) -> None:
        principal_side = [r for r in mocks.resources
                          if "display_name" in r.inputs or "lifetime_days" in r.inputs
                          or r.typ.endswith("QueryPrincipal")]
        assert len(principal_side) == 3
        assert all(display_name not in r.urn for r in principal_side)

    return exports["secret_expire_time"].apply(check)
