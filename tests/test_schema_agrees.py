"""The editor's JSON Schema and `validate` agree: the schema never refuses a file validate
accepts, and refuses every structurally wrong file (unknown key, wrong type, missing field).
Everything else is validate-only, as docs/stack-file.md lists."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.spec import PROJECT, Stack, StackError, load_stack_file, spec_json_schema, validate_document
from components.spec.yamlfile import YamlProblem, read_yaml

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "stacks").glob("Pulumi.*.yaml"))
BROKEN = sorted((ROOT / "tests" / "broken_stacks").glob("*/Pulumi.*.yaml"))
SCHEMA = jsonschema.Draft202012Validator(spec_json_schema())
DEV = yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())

# The messages validate gives for a structural defect: the schema must refuse those files too.
STRUCTURAL = (
    "is required (add it)",
    "is not a known field",
    "does not apply",
    "check the YAML value's type",
    "where text belongs (quote it)",
    "is empty (write a value",
    "(use one of those)",
    "an endpoint needs exactly one of",
    "belongs to namespace",
    "is not a stack file key",
    "must list at least one endpoint",
    "is written in plain text",
    "where a number belongs",
    "must be a map",
    "must be text, as Pulumi writes it",
)


def schema_errors(document: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in SCHEMA.iter_errors(document)]


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(spec_json_schema())


def test_the_schema_command_prints_the_same_schema() -> None:
    import json

    result = subprocess.run([sys.executable, "-m", "components", "schema"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and json.loads(result.stdout) == spec_json_schema()


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_both_accept_every_shipped_stack(path: Path) -> None:
    assert isinstance(load_stack_file(path), Stack)
    assert schema_errors(yaml.safe_load(path.read_text())) == []


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.parent.name)
def test_both_refuse_every_structurally_wrong_broken_stack(path: Path) -> None:
    with pytest.raises(StackError) as info:
        load_stack_file(path)
    text = path.read_text()
    try:
        read_yaml(text)
    except (YamlProblem, yaml.YAMLError):
        return  # refused while reading the YAML: validate-only, and no editor would parse it alike
    messages = [p.message for p in info.value.problems]
    if any(marker in message for message in messages for marker in STRUCTURAL):
        assert schema_errors(yaml.safe_load(text)), f"the schema accepts a structural defect: {messages}"


def mutated(mutate: Any) -> dict[str, Any]:
    document = copy.deepcopy(DEV)
    mutate(document["config"])
    return document


def unqualified(config: dict[str, Any]) -> None:
    for key in list(config):
        config[key.removeprefix(f"{PROJECT}:")] = config.pop(key)


ACCEPTED = {
    "unqualified keys": unqualified,
    "numbers as text": lambda c: (c.update({f"{PROJECT}:readiness_timeout_minutes": " 45 "}),
                                  c[f"{PROJECT}:principal"].update(secret_lifetime_days="60"),
                                  c[f"{PROJECT}:endpoints"][0].update(throughput={"min": "0", "max": "+1240"})),
    "integral floats": lambda c: c[f"{PROJECT}:principal"].update(secret_lifetime_days=60.0),
    "booleans as text": lambda c: (c[f"{PROJECT}:braintrust"].update(publish="no", supports_streaming="On"),
                                   c[f"{PROJECT}:endpoints"][2].update(scale_to_zero="YES")),
    "booleans as 0/1": lambda c: c[f"{PROJECT}:braintrust"].update(publish=0),
    "pay_per_token as 1": lambda c: c[f"{PROJECT}:endpoints"][3].update(pay_per_token=1),
    "version as a number": lambda c: c[f"{PROJECT}:endpoints"][2]["model"].update(version=3),
    "entity_version as a number": lambda c: c[f"{PROJECT}:endpoints"][0].update(entity_version=4),
    "nulls for optional fields": lambda c: (c[f"{PROJECT}:braintrust"].update(org_name=None),
                                            c[f"{PROJECT}:endpoints"][0].update(flavor=None),
                                            c.update({f"{PROJECT}:policy": None})),
    "pulumi namespace": lambda c: c.update({"pulumi:template": "x", "pulumi:tags": {"a": "b"}}),
    "secure values": lambda c: c.update({f"{PROJECT}:braintrust_api_key": {"secure": "v1:abc"}}),
    "every optional field": lambda c: (
        c[f"{PROJECT}:endpoints"][0].update(rate_limits=[{"calls": "100", "key": "user"}], usage_tracking="true",
                                            route_optimized=False, tags={"x": "y"}),
        c[f"{PROJECT}:principal"].update(entitlements=["workspace-access"], scopes=["all-apis", "sql"]),
        c[f"{PROJECT}:braintrust"].update(api_url="https://bt.example.com/api", org_name="acme")),
}


@pytest.mark.parametrize("name", ACCEPTED)
def test_the_schema_accepts_what_validate_accepts(name: str) -> None:
    document = mutated(ACCEPTED[name])
    assert isinstance(validate_document(document, stack="dev", file="Pulumi.dev.yaml"), Stack)
    assert schema_errors(document) == []


REFUSED = {
    "unknown key": lambda c: c[f"{PROJECT}:principal"].update(colour="red"),
    "unknown config key": lambda c: c.update({f"{PROJECT}:endpoint": []}),
    "foreign namespace": lambda c: c.update({"aws:region": "us-east-1"}),
    "wrong type: list for map": lambda c: c.update({f"{PROJECT}:tags": ["a"]}),
    "wrong type: text for number": lambda c: c[f"{PROJECT}:principal"].update(secret_lifetime_days="ninety"),
    "wrong type: boolean for number": lambda c: c[f"{PROJECT}:principal"].update(secret_lifetime_days=True),
    "wrong type: number for text": lambda c: c[f"{PROJECT}:tags"].update({"cost-center": 1234}),
    "wrong type: text for boolean": lambda c: c[f"{PROJECT}:braintrust"].update(publish="sometimes"),
    "missing field": lambda c: c[f"{PROJECT}:principal"].pop("display_name"),
    "missing key": lambda c: c.pop(f"{PROJECT}:workspace"),
    "missing unqualified key": lambda c: (unqualified(c), c.pop("braintrust")),
    "two kinds": lambda c: c[f"{PROJECT}:endpoints"][0].update(pay_per_token=True),
    "plain-text secret": lambda c: c.update({f"{PROJECT}:braintrust_api_key": "sk-" + "x" * 20}),
}


@pytest.mark.parametrize("name", REFUSED)
def test_both_refuse_structurally_wrong_files(name: str) -> None:
    document = mutated(REFUSED[name])
    with pytest.raises(StackError):
        validate_document(document, stack="dev", file="Pulumi.dev.yaml")
    assert schema_errors(document)


def test_top_level_pulumi_keys_must_be_text_for_both() -> None:
    document = {**copy.deepcopy(DEV), "encryptionsalt": 42}
    with pytest.raises(StackError):
        validate_document(document, stack="dev", file="Pulumi.dev.yaml")
    assert schema_errors(document)


# Any node of a valid stack replaced by something else: whenever validate accepts the result, so
# must the schema.
leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 5000), st.sampled_from(
        ["", "x", "45", " 7 ", "yes", "Off", "1", "0", "true", "3", "Small", "GPU_SMALL", "chat", "completion",
         "minute", "user", "endpoint", "pat", "production", "standard", "all-apis", "workspace-access",
         "https://acme.cloud.databricks.com", "http://127.0.0.1:8787", "main.ml.m"]),
)
values = st.recursive(leaves, lambda kids: st.one_of(st.lists(kids, max_size=3),
                                                     st.dictionaries(st.sampled_from(["secure", "min", "max", "x"]),
                                                                     kids, max_size=2)), max_leaves=6)


def node_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, item in node.items():
            found += node_paths(item, (*prefix, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found += node_paths(item, (*prefix, index))
    return found


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), replacement=values)
def test_the_schema_never_refuses_a_mutation_validate_accepts(data: st.DataObject, replacement: Any) -> None:
    document = copy.deepcopy(DEV)
    target = data.draw(st.sampled_from(node_paths(document["config"])))
    node = document["config"]
    for part in target[:-1]:
        node = node[part]
    if data.draw(st.booleans()) and isinstance(node, dict):
        node.pop(target[-1])
    else:
        node[target[-1]] = replacement
    try:
        validate_document(document, stack="dev", file="Pulumi.dev.yaml")
    except StackError:
        return
    assert schema_errors(document) == [], target
