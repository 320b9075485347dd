"""A dynamic resource that writes nothing anywhere: its outputs are its inputs. For testing the
engine stand-in's own rules (aliases, secrets) apart from the project's providers. Its class is
made as every dynamic Resource class is, by `resource_class`, from a contract of its own (not
one of the project's CONTRACTS)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pulumi.dynamic import CreateResult, DiffResult, UpdateResult

from components.args import Args, Contract, Outputs
from components.providers._contract import ContractProvider, resource_class


@dataclass(frozen=True)
class EchoArgs(Args):
    TYPE_NAME: ClassVar[str] = "Echo"

    value: str
    token: str | None = None


@dataclass(frozen=True)
class EchoOutputs(Outputs):
    derived: str | None = None


class EchoProvider(ContractProvider[EchoArgs, EchoOutputs]):
    CONTRACT = Contract(EchoArgs, EchoOutputs)

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in ("value", "token") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = {k: v for k, v in props.items() if k != "__provider"}
        return CreateResult(f"echo-{props['value']}", {**outs, "derived": f"from-{props.get('token')}"})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        outs = {k: v for k, v in news.items() if k != "__provider"}
        return UpdateResult({**outs, "derived": f"from-{news.get('token')}"})


Echo = resource_class(EchoProvider)
