"""The resource plan (components/plan.py): what each declaration's arguments hold, what it
depends on, and that the arguments classes are exactly what the providers take."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import catalog
from components.args import (
    AiSecretArgs,
    EndpointArgs,
    OAuthSecretArgs,
    QueryGrantArgs,
    ReadinessArgs,
    ServedEntity,
)
from components.plan import Plan, build_plan, endpoint_key
from components.spec import PROJECT, Stack, validate_document

ROOT = Path(__file__).resolve().parent.parent
DEV = yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())


def stack(mutate: Callable[[dict[str, Any]], Any] | None = None, name: str = "dev") -> Stack:
    document = copy.deepcopy(DEV)
    if mutate is not None:
        mutate(document["config"])
    return validate_document(document, stack=name, file=f"stacks/Pulumi.{name}.yaml")


def endpoints(config: dict[str, Any]) -> list[dict[str, Any]]:
    return config[f"{PROJECT}:endpoints"]


def endpoint_args(s: Stack, index: int) -> EndpointArgs:
    args = build_plan(s)[endpoint_key(s.spec.endpoints[index].name)].args
    assert isinstance(args, EndpointArgs)
    return args


def entity(s: Stack, index: int) -> ServedEntity:
    (served,) = endpoint_args(s, index).served_entities
    return served


def test_throughput_and_scale_to_zero_reach_the_served_entity() -> None:
    served = entity(stack(lambda c: endpoints(c)[0]["throughput"].update(min=1240, max=2480)), 0)
    assert (served.min_provisioned_throughput, served.max_provisioned_throughput) == (1240, 2480)
    assert served.scale_to_zero_enabled is False
    assert entity(stack(), 0).scale_to_zero_enabled is True


def test_an_entity_version_override_reaches_the_served_entity_and_its_name() -> None:
    served = entity(stack(lambda c: endpoints(c)[0].update(entity_version=4)), 0)
    assert (served.entity_name, served.entity_version) == ("system.ai.meta_llama_v3_1_8b_instruct", "4")
    assert served.name == "meta_llama_v3_1_8b_instruct-4"


def test_an_omitted_entity_version_is_left_to_the_provider_under_a_stable_name() -> None:
    # The provider pins the newest version at create; the name is the one deployed stacks hold.
    served = entity(stack(), 0)
    assert served.entity_version is None
    assert "entity_version" not in endpoint_args(stack(), 0).inputs()["served_entities"][0]
    default = catalog.BY_KEY["meta-llama-3.1-8b-instruct"].provisioned
    # The name never follows the catalog's default version (it moved from 1 to 4): deployed
    # stacks keep their served entity, so an upgrade writes nothing.
    assert default is not None and default.default_version != default.name_version
    assert served.name == "meta_llama_v3_1_8b_instruct-1"


def test_a_custom_model_version_written_as_a_number_is_sent_as_text() -> None:
    s = stack(lambda c: endpoints(c)[2]["model"].update(version=3))
    assert entity(s, 2).entity_version == "3" and endpoint_args(s, 2).mode == "custom"


def test_endpoint_tags_merge_over_stack_tags_with_the_stacks_ownership_marker() -> None:
    tags = endpoint_args(stack(lambda c: endpoints(c)[0].update(tags={"team": "search"})), 0).tags
    assert tags["team"] == "search" and tags["cost-center"] == "1234"
    assert tags["managed-by"] == f"{PROJECT}/dev"
    assert endpoint_args(stack(name="dev-2"), 0).tags["managed-by"] == f"{PROJECT}/dev-2"


def test_a_pay_per_token_endpoint_carries_no_tags_and_no_entities() -> None:
    args = endpoint_args(stack(), 3)
    assert (args.mode, args.served_entities, dict(args.tags)) == ("pay_per_token", (), {})


def test_dependencies_follow_the_references_in_the_arguments() -> None:
    plan: Plan = build_plan(stack())
    names = [e.name for e in plan.stack.spec.endpoints]
    (gate,) = plan.of_type(ReadinessArgs)
    assert plan.dependencies(gate.key) == tuple(sorted(endpoint_key(n) for n in names))
    for grant in plan.of_type(QueryGrantArgs):
        assert isinstance(grant.args, QueryGrantArgs)
        assert set(plan.dependencies(grant.key)) == {endpoint_key(grant.args.endpoint_name),
                                                     "ServicePrincipal/query-principal"}
    (secret,) = plan.of_type(OAuthSecretArgs)
    assert plan.dependencies(secret.key) == ("ServicePrincipal/query-principal",)
    assert all(plan.dependencies(d.key) == () for d in plan.of_type(EndpointArgs))


def test_the_record_is_published_only_when_the_stack_says_so() -> None:
    assert build_plan(stack()).of_type(AiSecretArgs) == []
    (published,) = build_plan(stack(lambda c: c[f"{PROJECT}:braintrust"].update(publish=True))).of_type(AiSecretArgs)
    assert published.parent == f"BraintrustRecord/{DEV['config'][f'{PROJECT}:braintrust']['secret_name']}"


@pytest.mark.parametrize("module, resource", [
    ("endpoint", "Endpoint"), ("readiness", "EndpointsReady"), ("principal", "ServicePrincipal"),
    ("oauth_secret", "OAuthSecret"), ("oauth_secret", "OAuthSecretSweep"), ("grant", "QueryGrant"),
    ("ai_secret", "AiSecret"),
])
def test_each_resource_class_is_made_from_its_providers_contract(module: str, resource: str) -> None:
    import importlib

    from components.args import CONTRACTS

    cls = getattr(importlib.import_module(f"components.providers.{module}"), resource)
    assert cls.CONTRACT in CONTRACTS and cls.PROVIDER.CONTRACT is cls.CONTRACT
    # The type token the plan uses is the one pulumi.dynamic forms for the class.
    assert cls.CONTRACT.type_token == "pulumi-python:" + cls._resource_type_name


def test_every_dynamic_resource_class_in_the_repository_is_made_by_resource_class() -> None:
    """One factory: no class statement subclasses a Pulumi Resource with a type (the
    `module=`/`name=` class keywords pulumi.dynamic reads), project code, tests and benches
    alike, and no OUTPUT_KEYS table is left beside the contracts."""
    import ast
    import os

    sources = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "node_modules"]  # .venv, .git
        sources += [Path(folder) / f for f in files if f.endswith(".py")]
    found: list[str] = []
    for path in sorted(sources):
        rel = path.relative_to(ROOT)
        tree = ast.parse(path.read_text(), str(rel))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and {k.arg for k in node.keywords} & {"module", "name"}:
                found.append(f"{rel}:{node.lineno} class {node.name}")
            if isinstance(node, ast.Name | ast.Attribute) and "OUTPUT_KEYS" in ast.unparse(node):
                found.append(f"{rel}:{node.lineno} OUTPUT_KEYS")
    assert found == []


def test_the_plan_imports_neither_pulumi_nor_databricks_sdk() -> None:
    code = ("import sys; from components.plan import build_plan; from components.spec import load_stack_file; "
            "build_plan(load_stack_file('stacks/Pulumi.prod.yaml')); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pulumi' or m.startswith('databricks')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
