"""Small helpers shared by the providers' diff rules: unknowns, the `__provider` key, hashing."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from pulumi.dynamic import DiffResult
from pulumi.output import Unknown

PROVIDER_KEY = "__provider"


def is_unknown(value: Any) -> bool:
    """A value not known yet (a preview with a dependency being created or replaced)."""
    if isinstance(value, Unknown):
        return True
    if isinstance(value, dict):
        return any(is_unknown(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(is_unknown(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(is_unknown(getattr(value, f.name)) for f in dataclasses.fields(value))
    return False


def whole(value: Any) -> Any:
    """Protobuf Structs carry every number as a double: 1240 arrives as 1240.0."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def inputs_only(props: dict[str, Any], input_keys: tuple[str, ...]) -> dict[str, Any]:
    """The resource's own inputs: never `__provider`, never computed outputs."""
    return {k: props[k] for k in input_keys if k in props}


def stable_hash(value: Any) -> str:
    """A short hash of a JSON-able value, independent of dict order."""
    raw = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def diff_result(changed: list[str], replaces: list[str], delete_before_replace: bool = False
                ) -> DiffResult:
    """Always an explicit answer: `changes=None` would make the engine diff `__provider` itself."""
    changed = sorted(set(changed) | set(replaces))
    return DiffResult(
        changes=bool(changed),
        replaces=sorted(set(replaces)),
        stables=[],
        delete_before_replace=delete_before_replace if replaces else False,
    )
