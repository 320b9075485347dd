"""`__main__.py`'s program under Pulumi's mocks, for every stack file: the resources, their
parents and dependencies, the grants matching the endpoints, and secret outputs kept secret."""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pytest
import yaml

from components.args import AI_SECRET, ENDPOINT, OAUTH_SECRET, QUERY_GRANT, READINESS, SERVICE_PRINCIPAL
from components.braintrust import validate_record
from components.spec import PROJECT, SECRET_KEYS
from tests.program.conftest import CLIENT_SECRET, PAT, ROOT, STACKS, Mocks, run_program, stack_config


def declared_endpoints(path: Path) -> list[str]:
    config = yaml.safe_load(path.read_text())["config"]
    return sorted(e["name"] for e in config[f"{PROJECT}:endpoints"])


@pytest.mark.parametrize("path", STACKS, ids=lambda p: p.name)
def test_program_declares_endpoints_gate_principal_and_a_grant_per_endpoint(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mocks, exports, _ = run_program(path, monkeypatch)
    declared = declared_endpoints(path)
    config = yaml.safe_load(path.read_text())["config"]
    components = {r.typ for r in mocks.resources if not r.typ.startswith("pulumi-python:dynamic")}
    assert {"databricks-braintrust:serving:ServingEndpoint", "databricks-braintrust:serving:ReadinessGate",
            "databricks-braintrust:principal:QueryPrincipal",
            "databricks-braintrust:braintrust:BraintrustRecord"} <= components
    endpoints = [r for r in mocks.resources if r.typ == ENDPOINT.type_token]
    assert sorted(r.inputs["name"] for r in endpoints) == declared
    # Every endpoint resource is the child of its ServingEndpoint component.
    for r in endpoints:
        assert "databricks-braintrust:serving:ServingEndpoint$" in r.urn, r.urn
    grants = [r for r in mocks.resources if r.typ == QUERY_GRANT.type_token]
    assert sorted(g.inputs["endpoint_name"] for g in grants) == declared
    assert all(g.inputs["permission_level"] == "CAN_QUERY" for g in grants)
    assert all("databricks-braintrust:principal:QueryPrincipal$" in g.urn for g in grants)
    # The gate waits on every endpoint: it depends on each endpoint resource.
    (gate,) = [r for r in mocks.resources if r.typ == READINESS.type_token]
    assert {e.urn for e in endpoints} <= set(gate.dependencies)
    assert sorted(gate.inputs["endpoints"]) == declared
    (sp,) = [r for r in mocks.resources if r.typ == SERVICE_PRINCIPAL.type_token]
    assert sp.inputs["entitlements"] == [] or config[f"{PROJECT}:principal"].get("entitlements")
    assert sp.inputs["external_id"].startswith(f"{PROJECT}/")
    assert sorted(exports["endpoints"]) == declared


@pytest.mark.parametrize("path", STACKS, ids=lambda p: p.name)
def test_braintrust_provider_is_secret_valid_and_lists_exactly_the_stack_endpoints(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, exports, secret = run_program(path, monkeypatch)
    declared = declared_endpoints(path)
    config = yaml.safe_load(path.read_text())["config"]
    record, redacted = exports["braintrust_provider"], exports["braintrust_provider_redacted"]
    assert secret["braintrust_provider"] and secret["principal_client_secret"]
    assert not secret["braintrust_provider_redacted"]
    parsed, errors = validate_record(record)
    assert errors == [] and parsed is not None
    assert parsed.metadata.models == declared
    assert sorted(parsed.metadata.customModels) == declared
    assert parsed.metadata.api_base == config[f"{PROJECT}:workspace"]["host"].rstrip("/")
    assert json.loads(record["secret"])["client_secret"] == CLIENT_SECRET
    assert CLIENT_SECRET not in json.dumps(redacted) and PAT not in json.dumps(redacted)
    assert redacted["metadata"] == record["metadata"]


@pytest.mark.parametrize("path", [p for p in STACKS if "publish: true" in p.read_text()], ids=lambda p: p.name)
def test_publishing_stacks_upsert_the_record_after_the_gate(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mocks, exports, _ = run_program(path, monkeypatch)
    (published,) = [r for r in mocks.resources if r.typ == AI_SECRET.type_token]
    (gate,) = [r for r in mocks.resources if r.typ == READINESS.type_token]
    grants = [r for r in mocks.resources if r.typ == QUERY_GRANT.type_token]
    assert gate.urn in published.dependencies
    assert {g.urn for g in grants} <= set(published.dependencies)
    assert CLIENT_SECRET not in json.dumps(published.inputs["record_hash"])
    assert exports["braintrust_ai_secret_id"] == "bt-1"


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


@pytest.mark.parametrize(("old", "new", "words"), [
    ('version: "3"', "version: 010", "quote it"),  # Pulumi's reader (yaml.v3) hands the program 8
    ("    environment: dev\n", "    environment: dev\n    team: search\n", "written twice"),
    ('version: "3"', 'version: !!int "010"', "YAML tag !!int"),
], ids=["octal-version", "repeated-key", "explicit-tag"])
def test_what_only_the_stack_files_text_shows_stops_the_program_too(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old: str, new: str, words: str) -> None:
    text = (ROOT / "stacks" / "Pulumi.dev.yaml").read_text()
    assert old in text
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.dev.yaml").write_text(text.replace(old, new, 1))
    monkeypatch.chdir(tmp_path)  # the program runs in the project folder, as under `pulumi up`
    pulumi.runtime.set_mocks(Mocks(), project=PROJECT, stack="dev", preview=False)
    flat, secret_keys = stack_config(ROOT / "stacks" / "Pulumi.dev.yaml")  # the values are fine
    pulumi.runtime.set_all_config(flat, secret_keys)
    from components import program as prog

    try:
        with pytest.raises(pulumi.RunError) as info:
            prog.load_stack()
        assert "stacks/Pulumi.dev.yaml: " in str(info.value) and words in str(info.value)
    finally:
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


def test_principal_resources_are_named_independently_of_display_name(monkeypatch: pytest.MonkeyPatch) -> None:
    # A rename in the stack file must be an in-place update, so no URN may carry display_name.
    path = STACKS[0]
    mocks, _, _ = run_program(path, monkeypatch)
    display_name = yaml.safe_load(path.read_text())["config"][f"{PROJECT}:principal"]["display_name"]
    principal_side = [r for r in mocks.resources
                      if r.typ == SERVICE_PRINCIPAL.type_token or r.typ == OAUTH_SECRET.type_token
                      or r.typ.endswith("QueryPrincipal")]
    assert len(principal_side) == 3
    assert all(display_name not in r.urn for r in principal_side)
