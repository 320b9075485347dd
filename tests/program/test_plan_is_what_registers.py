"""The program registers exactly the plan's declarations: the same types and names, parents,
inputs (every reference resolved to the output it names) and dependencies, and the former
identities of renamed components as aliases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.args import Ref, Reference, RolloutRef, SecretConfig, rollout_id, substitute
from components.braintrust import record_config
from components.plan import BRAINTRUST_RECORD, FORMER_TYPES, Plan, build_plan, key_of
from components.providers.ai_secret import record_hash
from components.spec import load_stack_file
from tests.program.conftest import CLIENT_SECRET, PAT, STACKS, Mocks, Registered, run_program

PUBLISHING = [p for p in STACKS if "publish: true" in p.read_text()]


def plan_of(path: Path) -> Plan:
    return build_plan(load_stack_file(path))


ROOT_STACK = "pulumi:pulumi:Stack"
SECRET_SIG = ("4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270")  # pulumi's wire marker


def unwrap(value: Any) -> tuple[Any, bool]:
    """A secret input arrives under mocks as {sig: secret, value: ...}."""
    if isinstance(value, dict) and value.get(SECRET_SIG[0]) == SECRET_SIG[1]:
        return value["value"], True
    return value, False


def by_key(mocks: Mocks) -> dict[str, Registered]:
    return {key_of(r.typ, r.name): r for r in mocks.resources if r.typ != ROOT_STACK}


def expected_inputs(plan: Plan, registered: dict[str, Registered], key: str) -> dict[str, Any]:
    """The declaration's inputs with each reference replaced by what the mocks answered."""

    def resolve(ref: Reference) -> Any:
        if isinstance(ref, SecretConfig):
            return PAT
        if isinstance(ref, RolloutRef):
            revision, endpoint_id = (resolve(part) for part in ref.parts())
            return rollout_id(revision, endpoint_id)
        assert isinstance(ref, Ref)
        target = plan[ref.key]
        if target.type == BRAINTRUST_RECORD:
            args = target.args
            client_id = resolve(args.client_id)  # type: ignore[union-attr]
            record = record_config(args, client_id, resolve(args.secret)).to_record()  # type: ignore[arg-type]
            return record if ref.output == "record" else record_hash(record)
        if ref.output == "id":
            return f"{target.name}-id"
        return registered[ref.key].outputs[ref.output]

    args = plan[key].args
    assert args is not None
    return substitute(args.inputs(), resolve)


@pytest.mark.parametrize("path", STACKS, ids=lambda p: p.name)
def test_program_registers_exactly_the_plans_declarations(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mocks, _, _ = run_program(path, monkeypatch)
    plan = plan_of(path)
    registered = by_key(mocks)
    assert sorted(registered) == sorted(d.key for d in plan)
    urns: dict[str, str | None] = {r.urn: key for key, r in registered.items()}
    urns.update({r.urn: None for r in mocks.resources if r.typ == ROOT_STACK})
    for decl in plan:
        r = registered[decl.key]
        assert (r.typ, r.name) == (decl.type, decl.name)
        assert urns.get(r.parent) == decl.parent, decl.key
        if not decl.custom:
            continue
        sent = {k: unwrap(v)[0] for k, v in r.inputs.items() if k != "__provider" and v is not None}
        secret = sorted(k for k, v in r.inputs.items() if k != "__provider" and unwrap(v)[1])
        # Only what carries a credential travels as a secret: the record and its hash.
        assert secret == (["record", "record_hash"] if decl.key.startswith("AiSecret/") else []), decl.key
        wanted = {k: v for k, v in expected_inputs(plan, registered, decl.key).items() if v is not None}
        assert sent == wanted, decl.key
        assert sorted(urns[u] for u in r.dependencies) == list(plan.dependencies(decl.key)), decl.key


@pytest.mark.parametrize("path", PUBLISHING, ids=lambda p: p.name)
def test_renamed_components_and_their_children_carry_their_former_identity(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mocks, _, _ = run_program(path, monkeypatch)
    plan = plan_of(path)
    stack = plan.stack.name
    registered = by_key(mocks)
    renamed = [d for d in plan if d.type in FORMER_TYPES]
    assert {d.type for d in renamed} == set(FORMER_TYPES)
    for decl in renamed:
        (alias,) = registered[decl.key].aliases
        assert alias.spec.type == FORMER_TYPES[decl.type]
        for child in (d for d in plan if d.parent == decl.key):
            (alias,) = registered[child.key].aliases
            old_parent = f"urn:pulumi:{stack}::databricks-braintrust::{FORMER_TYPES[decl.type]}::{decl.name}"
            assert alias.spec.parentUrn == old_parent
    unchanged = [r for key, r in registered.items() if plan[key].type not in FORMER_TYPES
                 and plan[key].parent not in {d.key for d in renamed}]
    assert all(not r.aliases for r in unchanged)


def test_secret_never_appears_in_the_plan() -> None:
    # The plan names secret config; its value only ever reaches the program as an Output.
    for path in STACKS:
        text = repr(plan_of(path))
        assert CLIENT_SECRET not in text and PAT not in text
