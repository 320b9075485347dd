"""No input crashes validation: whatever a stack file holds, the answer is a valid Stack or a
StackError whose problems name a file — never another exception, never a traceback."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.spec import PROJECT, Stack, StackError, load_stack_file, validate_document

ROOT = Path(__file__).resolve().parent.parent
BASE = yaml.safe_load((ROOT / "stacks" / "Pulumi.prod.yaml").read_text())

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=80),
    st.sampled_from(["Small", "CPU", "pat", "https://x.cloud.databricks.com/", "main.ml.m", "3",
                     "meta-llama-3.1-8b-instruct", "mpt-7b-instruct", "databricks-mpt-7b-instruct"]),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.one_of(st.text(max_size=20), st.integers(), st.booleans()),
                                               children, max_size=4)),
    max_leaves=12,
)


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(node, dict):
        for key, item in node.items():
            found += paths(item, (*prefix, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found += paths(item, (*prefix, index))
    return found


def assert_refused_cleanly_or_valid(document: Any) -> None:
    try:
        result = validate_document(document, stack="prod", file="Pulumi.prod.yaml")
    except StackError as exc:
        assert exc.problems and all(str(p).startswith("Pulumi.prod.yaml") for p in exc.problems)
    else:
        assert isinstance(result, Stack)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), replacement=values)
def test_replacing_any_node_of_a_valid_stack_never_crashes(data: st.DataObject, replacement: Any) -> None:
    document = copy.deepcopy(BASE)
    target = data.draw(st.sampled_from(paths(document["config"])))
    if not target:
        document["config"] = replacement
    else:
        node = document["config"]
        for part in target[:-1]:
            node = node[part]
        node[target[-1]] = replacement
    assert_refused_cleanly_or_valid(document)


@settings(max_examples=150, deadline=None)
@given(key=st.text(max_size=30), value=values)
def test_adding_any_key_never_crashes(key: str, value: Any) -> None:
    document = copy.deepcopy(BASE)
    document["config"][f"{PROJECT}:{key}"] = value
    assert_refused_cleanly_or_valid(document)


@settings(max_examples=150, deadline=None)
@given(document=values)
def test_any_document_shape_never_crashes(document: Any) -> None:
    assert_refused_cleanly_or_valid(document)


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=300))
def test_any_bytes_in_a_stack_file_never_crash(tmp_path_factory, raw: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "Pulumi.dev.yaml"
    path.write_bytes(raw)
    try:
        load_stack_file(path)
    except StackError as exc:
        assert exc.problems
