"""Pulumi mocks that need no knowledge of the program: every output of a dynamic resource's
contract (components/args.py CONTRACTS, by type token) gets a placeholder value, so the whole
program resolves. For measuring the program itself (bench/program.py), not for checking its wiring."""

from __future__ import annotations

from typing import Any

import pulumi

from components.args import contract_of


def declared_outputs(type_token: str) -> list[str]:
    """The outputs of the dynamic resource registered as `type_token`, from its contract."""
    contract = contract_of(type_token)
    return list(contract.output_keys()) if contract is not None else []


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
