"""Drive the real dynamic-provider process over gRPC, the way the Pulumi engine does.

`ProviderProcess` (in `engine/provider.py`, the bundled engine's, re-exported here) starts
`python -m pulumi.dynamic` and speaks the ResourceProvider protocol. `Engine` keeps a tiny
state (id, inputs, outputs per URN) and plays the engine's steps one resource at a time:
check -> create, or check -> diff -> same / update / replace (create-before-delete or
delete-before-replace as the provider asked), refresh (read; an empty id drops the resource),
and destroy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime.proto import provider_pb2

from engine.provider import (
    PROJECT,
    PROVIDER_KEY,
    ROOT,
    ProviderCallError,
    ProviderProcess,
    _deserialize,
    _serialize,
    first_line,
    stop_process,
)

STACK = "lifecycle"

__all__ = ["PROJECT", "PROVIDER_KEY", "ROOT", "STACK", "Engine", "ProviderCallError", "ProviderProcess",
           "State", "Step", "_deserialize", "_serialize", "first_line", "provider_string", "stop_process"]


def provider_string(provider_cls: type) -> str:
    """`__provider` exactly as a program registering the resource would produce it."""
    return serialize_provider(provider_cls())

@dataclass
class State:
    type_name: str
    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]


@dataclass
class Step:
    """What the engine did for one registration: create, same, update or replace."""

    op: str
    outputs: dict[str, Any]
    diff: provider_pb2.DiffResponse | None = None


@dataclass
class Engine:
    """The engine's bookkeeping for one stack, over one provider process."""

    proc: ProviderProcess
    state: dict[str, State] = field(default_factory=dict)

    @staticmethod
    def urn(resource_cls: type, name: str) -> str:
        token = f"pulumi-python:{resource_cls._resource_type_name}"  # type: ignore[attr-defined]
        return f"urn:pulumi:{STACK}::{PROJECT}::{token}::{name}"

    def register(self, resource_cls: type, provider_cls: type, name: str,
                 inputs: dict[str, Any]) -> Step:
        """`pulumi up` for one resource: check, then create / diff -> same, update, replace."""
        urn = self.urn(resource_cls, name)
        news = {**inputs, PROVIDER_KEY: provider_string(provider_cls)}
        old = self.state.get(urn)
        checked, failures = self.proc.check(urn, old.inputs if old else {}, news)
        if failures:
            raise AssertionError(f"check failed for {urn}: {failures}")
        if old is None:
            id_, outs = self.proc.create(urn, checked)
            self.state[urn] = State(resource_cls.__name__, id_, checked, outs)
            return Step("create", outs)
        diff = self.proc.diff(old.id, urn, old.outputs, checked)
        if diff.changes == provider_pb2.DiffResponse.DIFF_NONE:
            old.inputs = checked
            return Step("same", old.outputs, diff)
        if diff.changes != provider_pb2.DiffResponse.DIFF_SOME:
            raise AssertionError(f"provider answered an unknown diff for {urn}")
        if list(diff.replaces):
            if diff.deleteBeforeReplace:
                self.proc.delete(old.id, urn, old.outputs)
                id_, outs = self.proc.create(urn, checked)
            else:
                id_, outs = self.proc.create(urn, checked)
                self.proc.delete(old.id, urn, old.outputs)
            self.state[urn] = State(resource_cls.__name__, id_, checked, outs)
            return Step("replace", outs, diff)
        outs = self.proc.update(old.id, urn, old.outputs, checked)
        self.state[urn] = State(resource_cls.__name__, old.id, checked, outs)
        return Step("update", outs, diff)

    def diff(self, resource_cls: type, provider_cls: type, name: str,
             inputs: dict[str, Any]) -> provider_pb2.DiffResponse:
        """`pulumi preview` for one resource: check and diff, nothing applied."""
        urn = self.urn(resource_cls, name)
        old = self.state[urn]
        news = {**inputs, PROVIDER_KEY: provider_string(provider_cls)}
        checked, _ = self.proc.check(urn, old.inputs, news)
        return self.proc.diff(old.id, urn, old.outputs, checked)

    def refresh(self, resource_cls: type, name: str) -> State | None:
        """`pulumi refresh` for one resource; an empty id from read drops it from state."""
        urn = self.urn(resource_cls, name)
        old = self.state[urn]
        id_, outs = self.proc.read(old.id, urn, old.outputs, old.inputs)
        if not id_:
            del self.state[urn]
            return None
        old.id, old.outputs = id_, outs
        return old

    def destroy(self, resource_cls: type, name: str) -> None:
        urn = self.urn(resource_cls, name)
        old = self.state.pop(urn)
        self.proc.delete(old.id, urn, old.outputs)

    def outputs(self, resource_cls: type, name: str) -> dict[str, Any]:
        return self.state[self.urn(resource_cls, name)].outputs
