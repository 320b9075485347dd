"""Property values in their wire form, as the engine holds them: plain JSON, where a secret is
`{SIG: SECRET_SIG, "value": v}` and an unknown (preview only) is the UNKNOWN string. The
engine's rules for secrets live here: what a provider that answers `acceptSecrets: false`
is sent (secrets stripped), and how an output takes its secretness back from the input of the
same key (`annotateSecrets` in pulumi's `sdk/go/common/resource/plugin/provider_plugin.go`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf import json_format, struct_pb2  # type: ignore[import-untyped]
from pulumi.output import Unknown
from pulumi.runtime import rpc

SIG = rpc._special_sig_key  # "4dabf18193072939515e22adb298388d"
SECRET_SIG = rpc._special_secret_sig
UNKNOWN = rpc.UNKNOWN
REDACTED = "[secret]"

Props = dict[str, Any]


def from_struct(struct: struct_pb2.Struct) -> Props:
    return dict(json_format.MessageToDict(struct))


def to_struct(props: Props) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(props)
    return struct


def known_or_sentinel(value: Any) -> Any:
    """The SDK's deserializer turns unknowns into `pulumi.output.Unknown`: back to UNKNOWN."""
    if isinstance(value, Unknown):
        return UNKNOWN
    if isinstance(value, dict):
        return {k: known_or_sentinel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [known_or_sentinel(v) for v in value]
    return value


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SIG) == SECRET_SIG


def secret(value: Any) -> Any:
    return value if is_secret(value) else {SIG: SECRET_SIG, "value": value}


def contains_secrets(value: Any) -> bool:
    if is_secret(value):
        return True
    if isinstance(value, dict):
        return any(contains_secrets(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_secrets(v) for v in value)
    return False


def contains_unknowns(value: Any) -> bool:
    if value == UNKNOWN:
        return True
    if isinstance(value, dict):
        return any(contains_unknowns(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_unknowns(v) for v in value)
    return False


def strip_secrets(value: Any) -> Any:
    """What a provider that does not accept secrets is sent: every secret by its plain value."""
    if is_secret(value):
        return strip_secrets(value["value"])
    if isinstance(value, dict):
        return {k: strip_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strip_secrets(v) for v in value]
    return value


def redact(value: Any) -> Any:
    """For anything a person or a log may read: every secret replaced by "[secret]"."""
    if is_secret(value):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def annotate_secrets(outs: Props, ins: Props) -> Props:
    """Copy secretness from `ins` to the same keys of `outs`: objects on both sides recurse,
    otherwise an output whose input held a secret becomes a secret as a whole."""
    result = dict(outs)
    for key, in_value in ins.items():
        if key not in result:
            continue
        out_value = result[key]
        if isinstance(out_value, dict) and not is_secret(out_value) and isinstance(in_value, dict) \
                and not is_secret(in_value):
            result[key] = annotate_secrets(out_value, in_value)
        elif not is_secret(out_value) and contains_secrets(in_value):
            result[key] = secret(out_value)
    return result


def mark_secret_outputs(outs: Props, names: Iterable[str]) -> Props:
    """`additional_secret_outputs`: these top-level outputs are secrets whatever their input."""
    result = dict(outs)
    for name in names:
        if name in result:
            result[name] = secret(result[name])
    return result
