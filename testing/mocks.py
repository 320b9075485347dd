"""Pulumi mocks that need no knowledge of the program: every output a dynamic resource class
declares (its `pulumi.Output` annotations) gets a placeholder value, so the whole program
resolves. For measuring the program itself (bench/program.py), not for checking its wiring."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import Resource


def _subclasses(cls: type) -> list[type]:
    out: list[type] = []
    sub: type
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


def declared_outputs(type_token: str) -> list[str]:
    """The output attributes of the dynamic resource class registered as `type_token`."""
    for cls in _subclasses(Resource):
        if f"pulumi-python:{getattr(cls, '_resource_type_name', '')}" == type_token:
            names: list[str] = []
            for klass in cls.__mro__:
                names += [k for k, v in getattr(klass, "__annotations__", {}).items()
                          if "Output" in str(v) and k not in names]
            return names
    return []


class PlaceholderMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[tuple[str, str]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append((args.typ, args.name))
        outs = {k: v for k, v in args.inputs.items() if k != "__provider"}
        for key in declared_outputs(args.typ):
            outs.setdefault(key, f"mock-{args.name}-{key}")
        return f"{args.name}-id", outs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        return {}, []
