"""Pydantic's errors, reworded for the person editing the YAML file: the field path as they
wrote it, what is wrong, and how to fix it (always last, in parentheses)."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping, Sequence
from typing import Any

from components.spec.constants import MODES, SECRET_KEYS, is_endpoint_name
from components.spec.credentials import WHERE_SECRETS_GO, looks_like_credential_key
from components.spec.endpoints import (
    CustomModelEndpoint,
    EmailNotifications,
    FoundationModelEndpoint,
    Guardrail,
    Guardrails,
    InferenceTable,
    PayPerTokenEndpoint,
    RateLimit,
    ServedVersion,
    Throughput,
    UnityCatalogModel,
)
from components.spec.stack import BraintrustSettings, PrincipalSettings, StackSpec, WorkspaceSettings

_MODE_NAMES = {"provisioned": "a foundation_model", "custom": "a custom model", "pay_per_token": "a pay-per-token"}
# A field of one kind of endpoint written on another that says the same thing under its own key:
# the fix is that key, not removing the setting (a version pinned with `version:` on a
# foundation_model endpoint is `entity_version:` there).
_COUNTERPARTS = {
    ("provisioned", "version"): "entity_version",
    ("custom", "entity_version"): "model: {name, version}",
    ("custom", "throughput"): "workload_size",
    ("custom", "model_units"): "workload_size",
}


_MODELS = (StackSpec, WorkspaceSettings, PrincipalSettings, BraintrustSettings, Throughput, RateLimit,
           UnityCatalogModel, FoundationModelEndpoint, CustomModelEndpoint, PayPerTokenEndpoint,
           Guardrails, Guardrail, InferenceTable, EmailNotifications, ServedVersion)


@functools.cache
def all_field_names() -> frozenset[str]:
    names: set[str] = set()
    for model in _MODELS:
        names.update(model.model_fields)
    return frozenset(names)


# Fields whose text a YAML number keeps exactly as written (`version: 3` is "3").
VERSION_FIELDS = frozenset({"version", "entity_version"})


@functools.cache
def boolean_field_names() -> frozenset[str]:
    """Fields where a YAML boolean (including yes/no/on/off) belongs."""
    names: set[str] = set()
    for model in _MODELS:
        for name, info in model.model_fields.items():
            if info.annotation is bool or name == "pay_per_token":
                names.add(name)
    return frozenset(names)


def endpoint_labels(endpoints: Any) -> list[str | None]:
    """How messages name each endpoint entry: its name where that is valid and unique in the
    list, else None (the index is used)."""
    if not isinstance(endpoints, list):
        return []
    names = [e.get("name") if isinstance(e, dict) else None for e in endpoints]
    valid = [n if is_endpoint_name(n) else None for n in names]
    return [n if n is not None and valid.count(n) == 1 else None for n in valid]


def field_path(loc: tuple[Any, ...], *, tagged: bool = True, labels: Sequence[str | None] = ()) -> str:
    """`endpoints[bt-dev-llama].throughput.max` from a location: an endpoint by its name when
    ``labels`` has one for its index, else by index. ``tagged`` for pydantic's locations, which
    carry the endpoint union's tag (a mode) right after the index."""
    text = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            label = labels[part] if i == 1 and loc[0] == "endpoints" and 0 <= part < len(labels) else None
            text += f"[{label}]" if label else f"[{part}]"
        elif tagged and part in MODES and i == 2 and loc[0] == "endpoints":
            continue  # the union's tag, not a key the user wrote
        else:
            text += f".{part}" if text else str(part)
    return text


def document_path(path: tuple[Any, ...], endpoints: Any = None) -> str:
    """A field path from a path in the raw file (``config``, ``<project>:endpoints``, 0, ...);
    ``endpoints``, the raw endpoint list, names endpoints by name."""
    if len(path) >= 2 and path[0] == "config":
        key = str(path[1]).rpartition(":")[2]
        labels = endpoint_labels(endpoints) if key == "endpoints" else []
        return field_path((key, *path[2:]), tagged=False, labels=labels)
    return field_path(path, tagged=False)


def message_for(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    msg = str(err["msg"]).removeprefix("Value error, ")
    loc = err["loc"]
    field = str(loc[-1]) if loc else ""
    if kind == "missing":
        return "is required (add it)"
    if kind == "extra_forbidden":
        if "guardrails" in loc[:-1]:
            side = loc[-2] if loc[-2] in ("input", "output") else None
            takes = "safety and pii" if side else "input and output"
            return f"is not a guardrail setting (guardrails{'.' + side if side else ''} takes {takes}; remove it)"
        if field in SECRET_KEYS or looks_like_credential_key(field, all_field_names()):
            return f"looks like a credential written in plain text (remove it; {WHERE_SECRETS_GO})"
        if field in all_field_names():
            # A real field of another kind of entry, e.g. throughput on a custom model.
            where = _MODE_NAMES.get(loc[2]) if len(loc) > 3 and loc[0] == "endpoints" else None
            instead = _COUNTERPARTS.get((loc[2], field)) if where and len(loc) == 4 else None
            if instead:
                return f"does not apply to {where} endpoint (write {instead} instead)"
            return (f"does not apply to {where} endpoint (remove it)" if where
                    else "does not apply here (remove it or move it to where it belongs)")
        close = difflib.get_close_matches(field, all_field_names(), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "remove it or fix its spelling"
        return f"is not a known field ({hint})"
    if kind == "literal_error" and field == "pay_per_token":
        return ("can only be true (to serve the model yourself, replace it with foundation_model "
                "and throughput)")
    if kind in ("literal_error", "enum"):
        return f"{msg} (use one of those)"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{msg} (change the value)"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return f"{msg} (check the YAML value's type)"
    if kind == "too_short" and field == "endpoints":
        return "must list at least one endpoint (add one)"
    if kind in ("string_too_short", "too_short"):
        return f"{msg} (give a value)"
    if kind in ("string_too_long", "too_long"):
        return f"{msg} (shorten it)"
    if not msg.endswith(")"):
        return f"{msg} (see `python -m components schema` for what the field takes)"
    return msg
