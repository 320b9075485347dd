"""The typed provider base and the one factory of the Pulumi Resource classes.

Each provider declares its resource's contract (components/args.py: Args, Outputs, secret
outputs, replace keys) as the class attribute CONTRACT, and implements typed hooks:

    validate(args)                      -> check failures
    compare(id, old: Stored, new: Args) -> DiffResult (pure: no write, no process state)
    make(args)                          -> (id, Stored): create
    refresh(id, old: Stored)            -> Stored, or None when the object is gone: read
    change(id, old: Stored, new: Args)  -> Stored: update
    remove(id, old: Stored)             -> None: delete

`ContractProvider` implements Pulumi's dict methods on top: it turns the wire props into the
contract's classes (`from_wire`) and back (`to_wire`). The wire form is what earlier code wrote:
outputs are every input plus the Outputs' fields, None fields of nested values left out. State
written by earlier code may lack an output or an input added since: `from_wire` gives the
field's default (None when it has none), so Read and Delete work with the old outputs.

Deployed state holds each provider pickled (dill) by its module path, e.g.
`components.providers.endpoint.EndpointProvider`, and the dynamic provider host unpickles it
without calling `__init__` (pulumi/dynamic/__main__.py `get_provider`, then `configure`). So the
contract lives in class attributes, never in attributes set by `__init__`, and those class
paths stay importable.

`resource_class(Provider)` is the only way a dynamic Resource class is made: its type token is
the contract's (`pulumi-python:dynamic/databricks-braintrust:<TYPE_NAME>`), its outputs are
registered as None inputs (so the engine returns them), and its secret outputs go to
`additional_secret_outputs`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar, Union

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)
from pulumi.output import Unknown

from components import transport
from components.args import (
    DYNAMIC_MODULE,
    Args,
    Contract,
    Outputs,
    Ref,
    RolloutRef,
    SecretConfig,
    _plain,
)

from ._props import inputs_only

A = TypeVar("A", bound=Args)
Out = TypeVar("Out", bound=Outputs)
T = TypeVar("T")

# A delete the remote answered but a read still shows is sent again at most this many times in
# all before the step fails (read after write, issue 21; the grant's writes use the same 3).
DELETE_TRIES = 3

_REFERENCES = (Ref, RolloutRef, SecretConfig)  # never on the wire: the program resolved them


# ---------------------------------------------------------------- wire <-> typed


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def from_wire(cls: type[T], props: Mapping[str, Any]) -> T:
    """The dataclass `cls` from wire props: numbers as the field's type (protobuf sends every
    number as a double), nested dataclasses built, keys `cls` does not know ignored, a key
    missing from older state given its default (None when it has none). A value not known yet
    (preview) is kept as it is, at any depth."""
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in props:
            kwargs[f.name] = _convert(hints[f.name], props[f.name])
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            kwargs[f.name] = None
    return cls(**kwargs)


def to_wire(obj: Any) -> dict[str, Any]:
    """The wire form of a contract dataclass: every field, tuples as lists, None fields of
    nested values left out (as Args.inputs() sends them)."""
    return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def _convert(tp: Any, value: Any) -> Any:
    if value is None or isinstance(value, Unknown):
        return value
    origin, params = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        members = [m for m in params if m is not type(None) and m not in _REFERENCES]
        for member in members:
            if _fits(member, value):
                return _convert(member, value)
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp) and isinstance(value, Mapping):
        return from_wire(tp, value)
    if origin is tuple and isinstance(value, list | tuple):
        item = params[0] if params else Any
        return tuple(_convert(item, v) for v in value)
    if origin in (Mapping, dict) and isinstance(value, Mapping):
        item = params[1] if len(params) == 2 else Any
        return {k: _convert(item, v) for k, v in value.items()}
    if tp is int and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _fits(tp: Any, value: Any) -> bool:
    origin = typing.get_origin(tp)
    if tp is Any:
        return True
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return isinstance(value, Mapping)
    if origin is tuple:
        return isinstance(value, list | tuple)
    if origin in (Mapping, dict):
        return isinstance(value, Mapping)
    if tp is int or tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is bool:
        return isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    return True  # Literal and the like: as given


# ---------------------------------------------------------------- the typed provider


@dataclass(frozen=True)
class Stored(Generic[A, Out]):
    """What state holds for one resource: its inputs and its outputs."""

    args: A
    outs: Out


class ContractProvider(ResourceProvider, Generic[A, Out]):
    """Pulumi's dict-based provider methods over the typed hooks of a contract."""

    CONTRACT: ClassVar[Contract[Any, Any]]

    # -------------------------------------------------------- conversions

    @classmethod
    def args_of(cls, props: Mapping[str, Any]) -> A:
        return from_wire(cls.CONTRACT.args, props)

    @classmethod
    def stored_of(cls, props: Mapping[str, Any]) -> Stored[A, Out]:
        # The secret outputs in state (an OAuth secret made by an earlier run) are removed from
        # any server text this process shows from now on (components/transport.py `remember`).
        for name in cls.CONTRACT.secret_outputs:
            value = props.get(name)
            if isinstance(value, Mapping):  # a record: its secret, not its names
                transport.remember(*transport.credential_secrets(value.get("secret")))
            elif name != "preview_secret":  # a preview is not the secret (and is itself redacted)
                transport.remember(value)
        return Stored(from_wire(cls.CONTRACT.args, props),
                      from_wire(cls.CONTRACT.outputs, props))

    @staticmethod
    def wire(stored: Stored[Any, Any]) -> dict[str, Any]:
        """State's form: every input, then every output."""
        return {**to_wire(stored.args), **to_wire(stored.outs)}

    # -------------------------------------------------------- Pulumi's methods

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs = inputs_only(news, self.CONTRACT.input_keys())
        return CheckResult(inputs, self.validate(self.args_of(inputs)))

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return self.compare(id_, self.stored_of(olds), self.args_of(news))

    def create(self, props: dict[str, Any]) -> CreateResult:
        id_, stored = self.make(self.args_of(props))
        return CreateResult(id_, self.wire(stored))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        stored = self.refresh(id_, self.stored_of(props))
        if stored is None:
            return ReadResult("", {})  # gone: the engine drops it from state
        return ReadResult(id_, self.wire(stored))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self.wire(self.change(id_, self.stored_of(olds), self.args_of(news))))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        self.remove(id_, self.stored_of(props))

    # -------------------------------------------------------- the typed hooks

    def validate(self, args: A) -> list[CheckFailure]:
        return []

    def compare(self, id_: str, old: Stored[A, Out], new: A) -> DiffResult:
        raise NotImplementedError

    def make(self, args: A) -> tuple[str, Stored[A, Out]]:
        raise NotImplementedError

    def refresh(self, id_: str, old: Stored[A, Out]) -> Stored[A, Out] | None:
        return old

    def change(self, id_: str, old: Stored[A, Out], new: A) -> Stored[A, Out]:
        raise NotImplementedError

    def remove(self, id_: str, old: Stored[A, Out]) -> None:
        return None


# ---------------------------------------------------------------- the Resource classes


class ContractResource(Resource):
    """Base of the classes `resource_class` makes: `Cls(name, props, opts)`."""

    PROVIDER: ClassVar[type[ResourceProvider]]
    CONTRACT: ClassVar[Contract[Any, Any]]

    def __init__(self, resource_name: str, props: Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        contract = self.CONTRACT
        if contract.secret_outputs:
            opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
                additional_secret_outputs=list(contract.secret_outputs)))
        # A required input left out is sent as null; outputs are registered as null inputs so
        # the engine hands them back.
        required = {f.name: None for f in dataclasses.fields(contract.args)
                    if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING}
        full = {**required, **props, **{k: None for k in contract.output_keys()}}
        super().__init__(self.PROVIDER(), resource_name, full, opts)


def resource_class(provider: type[ContractProvider[Any, Any]]) -> type[ContractResource]:
    """The dynamic Resource class of `provider`'s contract: the one place a type token is made."""
    contract = provider.CONTRACT
    namespace: dict[str, Any] = {
        "PROVIDER": provider,
        "CONTRACT": contract,
        "__doc__": f"The {contract.type_name} dynamic resource ({provider.__module__}).",
        "__module__": provider.__module__,
        "__annotations__": {k: "pulumi.Output[Any]" for k in contract.output_keys()},
    }
    return types.new_class(contract.type_name, (ContractResource,),
                           {"module": DYNAMIC_MODULE, "name": contract.type_name},
                           lambda ns: ns.update(namespace))
