"""A dynamic resource that writes nothing anywhere, for the engine stand-in's replace rules:
a change of `value` replaces it (create before delete), and its create or update fails while
`fail` is set. Made by `resource_class` from a contract of its own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pulumi.dynamic import DiffResult

from components.args import Args, Contract, Outputs
from components.providers._contract import ContractProvider, Stored, resource_class


@dataclass(frozen=True)
class ThingArgs(Args):
    TYPE_NAME: ClassVar[str] = "Thing"

    value: str
    fail: str = ""
    after: str | None = None


@dataclass(frozen=True)
class ThingOutputs(Outputs):
    pass


class ThingProvider(ContractProvider[ThingArgs, ThingOutputs]):
    CONTRACT = Contract(ThingArgs, ThingOutputs)

    def compare(self, id_: str, old: Stored[ThingArgs, ThingOutputs], new: ThingArgs
                ) -> DiffResult:
        replaces = ["value"] if old.args.value != new.value else []
        changed = replaces + [k for k in ("fail", "after") if getattr(old.args, k) != getattr(new, k)]
        return DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=False)

    def make(self, args: ThingArgs) -> tuple[str, Stored[ThingArgs, ThingOutputs]]:
        self._fail_if_asked(args)
        return f"thing-{args.value}", Stored(args, ThingOutputs())

    def change(self, id_: str, old: Stored[ThingArgs, ThingOutputs], new: ThingArgs
               ) -> Stored[ThingArgs, ThingOutputs]:
        self._fail_if_asked(new)
        return Stored(new, old.outs)

    @staticmethod
    def _fail_if_asked(args: ThingArgs) -> None:
        if args.fail:
            raise RuntimeError(f"thing {args.value} fails, as config engine-test:fail asks")


Thing = resource_class(ThingProvider)
