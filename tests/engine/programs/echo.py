"""A dynamic resource that writes nothing anywhere: its outputs are its inputs. For testing the
engine stand-in's own rules (aliases, secrets) apart from the project's providers."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult


class EchoProvider(ResourceProvider):
    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in ("value", "token") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = {k: v for k, v in props.items() if k != "__provider"}
        return CreateResult(f"echo-{props['value']}", {**outs, "derived": f"from-{props.get('token')}"})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        outs = {k: v for k, v in news.items() if k != "__provider"}
        return UpdateResult({**outs, "derived": f"from-{news.get('token')}"})


class Echo(pulumi.dynamic.Resource, module="engine-test", name="Echo"):
    value: pulumi.Output[str]
    token: pulumi.Output[str]
    derived: pulumi.Output[str]

    def __init__(self, name: str, props: dict[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(EchoProvider(), name, {"token": None, **props, "derived": None}, opts)
