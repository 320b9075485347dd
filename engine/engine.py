"""The Pulumi engine, stood in for: the real program (`__main__.py`, hence
`components/program.py`, unchanged) runs on Pulumi's own Python runtime against a resource
monitor of ours, which plays the engine's steps on the real `python -m pulumi.dynamic` process.

What the monitor does with each registration, as the engine does:
- a component is recorded, never sent to a provider;
- a custom resource not in state: Check, then Create;
- a custom resource in state (by URN, or by one of its aliases): Check, then Diff, then
  nothing (same), Update, or a replace: Delete then Create when the provider or the resource
  asks for delete-before-replace, otherwise Create now and Delete the old one at the end;
- its outputs go back into the program, secrets marked: an output copies secretness from the
  input of the same key, and `additional_secret_outputs` are secrets whatever their input;
- after the program: whatever state holds and the program no longer registered is deleted,
  dependants first, independent ones at once.
Every resource is sent as soon as the program registers it (the program's Outputs make the
dependency order); the provider process's four workers are the only limit, as with the
engine's default unbounded parallelism. An error in one resource does not stop the others
(as `pulumi up --continue-on-error`); the command raises `EngineError` at the end, state keeping
what succeeded, and then deletes nothing.

preview: Check and Diff only, never a write; a create or an update hands the checked inputs
back as outputs, so what the provider would compute is unknown downstream, as in a real
preview of a provider without preview support (dynamic providers). refresh: Read of every
custom resource in state; an empty id drops it. destroy: Delete of everything, dependants
first.

Checkpoints: state is written after every step, as the engine writes a checkpoint (a write
groups the steps that finished while the previous one ran: `state.Checkpoints`); a step that
changed nothing (`same`, or a refresh that read what state held) needs no write, as in Pulumi's
snapshot manager (`sameSnapshotMutation.mustWrite`, pkg/backend/snapshot.go). A replaced
resource waiting for its delete is kept in `pending_deletes`, so a killed run loses at most
the steps in flight. Its delete comes at the end of a run with no error; a run that failed or
was killed leaves it pending, and the next up deletes it before the program runs (Pulumi's
retirePendingDeletes and performDeletes, pkg/resource/deploy/deployment_executor.go).
`progress` gets one line per step as it finishes, and the provider process's
`info:`/`warning:` lines (the readiness gate's progress).

Not modelled (see docs/architecture.md): plugin loading and provider versions,
protect/retainOnDelete/ignoreChanges, stack transforms (an optional `transform` hook stands in
for one), the CLI's diff display.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import json
import runpy
import threading
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import empty_pb2  # type: ignore[import-untyped]
from pulumi.runtime import proto, settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.proto import engine_pb2, resource_pb2
from pulumi.runtime.stack import run_in_stack

from components.program import STACK_FILE
from engine.props import (
    UNKNOWN,
    Props,
    annotate_secrets,
    contains_unknowns,
    from_struct,
    is_secret,
    known_or_sentinel,
    mark_secret_outputs,
    redact,
    strip_secrets,
    to_struct,
)
from engine.provider import ProviderCallError, ProviderProcess
from engine.state import Checkpoints, ResourceState, StackState

ROOT = Path(__file__).resolve().parents[1]
ROOT_STACK_TYPE = "pulumi:pulumi:Stack"
PROVIDER_KEY = "__provider"
DIFF_NONE = proto.DiffResponse.DIFF_NONE
DIFF_SOME = proto.DiffResponse.DIFF_SOME
Transform = Callable[[str, str, Props], Props]
Progress = Callable[[str], None]


def project_name(root: Path = ROOT) -> str:
    return str(yaml.safe_load((root / "Pulumi.yaml").read_text())["name"])


class EngineError(Exception):
    """A command failed: the program's own error, or one or more provider errors."""

    def __init__(self, command: str, errors: list[Exception], result: CommandResult | None = None
                 ) -> None:
        self.command = command
        self.errors = errors
        self.result = result  # what was done before and besides the failures
        super().__init__(f"{command} failed:\n{self.message}")

    @property
    def message(self) -> str:
        """Each error as a user would read it: the provider's exception text, no traceback."""
        return "\n".join(e.message if isinstance(e, ProviderCallError) else str(e)
                         for e in self.errors)


class StepError(Exception):
    """A provider call failed for one resource; carries the URN it failed for."""

    def __init__(self, urn: str, error: ProviderCallError) -> None:
        self.urn = urn
        self.error = error
        super().__init__(f"{urn}: {error.message}")


@dataclass
class Registration:
    """One RegisterResource as the program sent it."""

    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    inputs: Props
    aliases: list[str]
    additional_secret_outputs: list[str]
    delete_before_replace: bool

    def as_json(self) -> dict[str, Any]:
        """The registration with every secret value replaced."""
        return {"type": self.type, "name": self.name, "urn": self.urn, "parent": self.parent,
                "custom": self.custom, "dependencies": self.dependencies,
                "property_dependencies": self.property_dependencies,
                "inputs": redact(self.inputs), "aliases": self.aliases,
                "additional_secret_outputs": self.additional_secret_outputs,
                "delete_before_replace": self.delete_before_replace}


@dataclass
class ResourceStep:
    """What the engine did for one custom resource: create, same, update, replace, delete,
    refresh (read, still there) or gone (read found it deleted)."""

    op: str
    urn: str
    outputs: Props = field(default_factory=dict)
    diff: Any = None  # provider_pb2.DiffResponse when Diff was called
    t: float = 0.0  # seconds since the command began, when the step was done
    unknowns: bool = False  # preview: some input was unknown (computed by another step)
    forgotten: bool = False  # a delete that only dropped it from state (nothing of ours to delete)

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[1]

    @property
    def type(self) -> str:
        return self.urn.split("::")[2].split("$")[-1]

    @property
    def plain(self) -> Props:
        """The outputs as the provider gave them, secrets unwrapped (never print these)."""
        return dict(strip_secrets(self.outputs))


@dataclass
class Call:
    method: str
    urn: str


@dataclass
class CommandResult:
    command: str
    steps: dict[str, ResourceStep] = field(default_factory=dict)  # by URN
    registrations: list[Registration] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    exports: Props = field(default_factory=dict)  # wire form: secrets marked
    logs: list[tuple[str, str]] = field(default_factory=list)  # (severity, message)
    wall: float = 0.0

    def by_name(self) -> dict[str, ResourceStep]:
        return {s.name: s for s in self.steps.values()}

    def ops(self) -> dict[str, str]:
        return {s.name: s.op for s in self.steps.values()}

    def changed(self) -> list[str]:
        """Names whose step was anything but `same` (or `refresh`)."""
        return sorted(s.name for s in self.steps.values() if s.op not in ("same", "refresh"))

    def changed_for_certain(self) -> list[str]:
        """In a preview, the names that change whatever the unknowns turn out to be: those whose
        inputs were all known (the others change only if what they wait for changes them)."""
        return sorted(s.name for s in self.steps.values()
                      if s.op not in ("same", "refresh") and not s.unknowns)

    def export(self, name: str) -> Any:
        return strip_secrets(self.exports[name])

    def export_is_secret(self, name: str) -> bool:
        return is_secret(self.exports[name])

    def methods(self) -> set[str]:
        return {c.method for c in self.calls}


FORGOTTEN = "forgotten (Databricks' endpoint, not deleted)"


def step_line(step: ResourceStep, preview: bool = False) -> str:
    """One resource step as the progress shows it: `  3.2 s  create   Endpoint bt-llama`."""
    op = f"{step.op}?" if preview else step.op
    line = f"{step.t:6.1f} s  {op:<8} {step.type.rsplit(':', 1)[-1]} {step.name}"
    return f"{line}: {FORGOTTEN}" if step.forgotten else line


def only_referenced(st: ResourceState) -> bool:
    """A pay-per-token endpoint: Databricks' own, referenced by the stack, never created by it,
    so its delete only forgets it (components/providers/endpoint.py, mode `pay_per_token`)."""
    return st.type.endswith(":Endpoint") and st.inputs.get("mode") == "pay_per_token"


def type_token(resource: type | str) -> str:
    """`pulumi-python:dynamic/<module>:<Name>` for a dynamic resource class, or the token given."""
    if isinstance(resource, str):
        return resource
    return f"pulumi-python:{resource._resource_type_name}"  # type: ignore[attr-defined]


def urn_type(urn: str) -> str:
    return urn.split("::")[2].split("$")[-1]


def urn_name(urn: str) -> str:
    return urn.rsplit("::", 1)[1]


def _normalize_urn(urn: str) -> str:
    # The SDK computes alias URNs of the root stack's children with the stack's type as a
    # parent prefix; the engine never puts the root stack in a child's URN.
    return urn.replace(f"::{ROOT_STACK_TYPE}$", "::")


def run_graph(tasks: dict[Hashable, tuple[tuple[Hashable, ...], Callable[[], Any]]],
              workers: int = 512) -> list[Exception]:
    """Run every task once its dependencies succeeded, all at once otherwise; the errors."""
    futures: dict[Hashable, Future[None]] = {}
    order: list[Hashable] = []
    placed: set[Hashable] = set()

    def visit(key: Hashable) -> None:
        if key in placed:
            return
        placed.add(key)
        for dep in tasks[key][0]:
            visit(dep)
        order.append(key)

    for key in tasks:
        visit(key)
    if not tasks:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(tasks)))) as pool:
        def run(key: Hashable) -> None:
            deps, fn = tasks[key]
            for dep in deps:
                futures[dep].result()  # a failed dependency: this one never runs
            fn()

        for key in order:
            futures[key] = pool.submit(run, key)
    errors: list[Exception] = []
    for f in futures.values():
        exc = f.exception()
        if isinstance(exc, Exception) and not any(exc is e for e in errors):
            errors.append(exc)
    return errors


class _Log:
    """The engine's Log service: the program's pulumi.log messages."""

    def __init__(self, sink: list[tuple[str, str]], echo: Callable[[str, str], None] | None) -> None:
        self.sink = sink
        self.echo = echo

    def Log(self, request: Any) -> empty_pb2.Empty:
        severity = engine_pb2.LogSeverity.Name(request.severity).lower()
        self.sink.append((severity, request.message))
        if self.echo is not None and severity != "debug":
            self.echo(severity, request.message)
        return empty_pb2.Empty()

    def GetRootResource(self, request: Any) -> Any:
        return engine_pb2.GetRootResourceResponse()

    def SetRootResource(self, request: Any) -> Any:
        return engine_pb2.SetRootResourceResponse()


class Monitor:
    """The ResourceMonitor service for one command: registrations in, provider calls out."""

    def __init__(self, engine: StackEngine, result: CommandResult, preview: bool, t0: float) -> None:
        self.engine = engine
        self.result = result
        self.preview = preview
        self.t0 = t0
        self.lock = threading.Lock()
        self.old = dict(engine.state.resources)
        self.new: dict[str, ResourceState] = {}
        self.claimed: set[str] = set()  # URNs of `old` matched by a registration
        self.pending_deletes: list[ResourceState] = []  # replaced by this run, deleted at its end
        self.errors: list[Exception] = []
        self.deleted_for_replace: set[str] = set()
        self.current_inputs: dict[str, Props] = {}
        self.stack_urn = ""
        self.by_alias = {_normalize_urn(u): u for u in self.old}

    # ------------------------------------------------------------ naming

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        qualified = type_
        if parent and urn_type(parent) != ROOT_STACK_TYPE:
            qualified = f"{parent.split('::')[2]}${type_}"
        return f"urn:pulumi:{self.engine.stack}::{self.engine.project}::{qualified}::{name}"

    def _find_old(self, urn: str, aliases: Iterable[str]) -> ResourceState | None:
        with self.lock:
            for candidate in (urn, *aliases):
                key = self.by_alias.get(_normalize_urn(candidate))
                if key is not None and key not in self.claimed:
                    self.claimed.add(key)
                    return self.old[key]
        return None

    # ------------------------------------------------------------ provider calls

    def _call(self, method: str, urn: str, fn: Callable[[], Any]) -> Any:
        with self.lock:
            self.result.calls.append(Call(method, urn))
        try:
            return fn()
        except ProviderCallError as exc:
            raise StepError(urn, exc) from None

    def _outputs(self, outs: Props, ins: Props, secret_outputs: Iterable[str]) -> Props:
        return mark_secret_outputs(annotate_secrets(outs, ins), secret_outputs)

    def _done(self, step: ResourceStep, state: ResourceState | None,
              old: ResourceState | None = None, pending: bool = False) -> None:
        """Record a finished step, and checkpoint it before the program hears of it. `pending`:
        `old` was replaced and waits for its delete (create-before-delete)."""
        step.t = time.monotonic() - self.t0
        step.unknowns = self.preview and contains_unknowns(self.current_inputs.get(step.urn, {}))
        if state is not None and old is not None and state == old:
            state = old  # the very object: its JSON is already known, and nothing changed
        with self.lock:
            self.result.steps[step.urn] = step
            if state is not None:
                self.new[state.urn] = state
        if not self.preview and state is not None and not (step.op == "same" and old == state):
            self.engine.record(put=state, remove=old, pend=old if pending else None)
        self.engine.say(step_line(step, self.preview))

    # ------------------------------------------------------------ the monitor's RPCs

    def SupportsFeature(self, request: Any) -> Any:
        # No outputValues (inputs arrive resolved), no aliasSpecs (the SDK then computes full
        # alias URNs itself, parents' aliases included).
        supported = request.id in ("secrets", "resourceReferences")
        return resource_pb2.SupportsFeatureResponse(hasSupport=supported)

    def GetDeploymentInfo(self, request: Any) -> Any:
        return resource_pb2.DeploymentInfo(supportedFeatures=[
            resource_pb2.RESOURCE_MONITOR_FEATURE_SECRETS,
            resource_pb2.RESOURCE_MONITOR_FEATURE_RESOURCE_REFERENCES])

    def Invoke(self, request: Any) -> Any:
        raise NotImplementedError(f"invoke {request.tok}: the program calls no functions")

    def ReadResource(self, request: Any) -> Any:
        raise NotImplementedError("Resource.get: dynamic resources cannot be read by id")

    def RegisterResourceOutputs(self, request: Any) -> empty_pb2.Empty:
        if request.urn == self.stack_urn:
            self.result.exports = from_struct(request.outputs)
        return empty_pb2.Empty()

    def SignalAndWaitForShutdown(self, request: Any) -> empty_pb2.Empty:
        return empty_pb2.Empty()

    def RegisterResource(self, request: Any) -> Any:
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == ROOT_STACK_TYPE:
            self.stack_urn = urn
            return resource_pb2.RegisterResourceResponse(urn=urn)
        inputs = from_struct(request.object)
        aliases = list(request.aliasURNs)
        reg = Registration(
            type=request.type, name=request.name, urn=urn, parent=request.parent,
            custom=request.custom, dependencies=sorted(set(request.dependencies)),
            property_dependencies={k: sorted(v.urns) for k, v in request.propertyDependencies.items()},
            inputs=inputs, aliases=aliases,
            additional_secret_outputs=list(request.additionalSecretOutputs),
            delete_before_replace=request.deleteBeforeReplace)
        with self.lock:
            self.result.registrations.append(reg)
        old = self._find_old(urn, aliases)
        if not request.custom:
            state = ResourceState(urn, request.type, False, parent=request.parent,
                                  dependencies=reg.dependencies, inputs=inputs)
            if old is not None and old == state:
                state = old
            with self.lock:
                self.new[urn] = state
            if not self.preview and old != state:  # written with the next step's checkpoint
                self.engine.record(put=state, remove=old, write=False)
            return resource_pb2.RegisterResourceResponse(urn=urn, object=to_struct({}))
        try:
            id_, outputs = self._step(reg, old)
        except StepError as exc:
            with self.lock:
                self.errors.append(exc.error)
                if old is not None and urn not in self.deleted_for_replace:  # still there
                    self.new[urn] = dataclasses.replace(old, urn=urn)
            raise
        return resource_pb2.RegisterResourceResponse(urn=urn, id=id_, object=to_struct(outputs))

    # ------------------------------------------------------------ one resource's step

    def _step(self, reg: Registration, old: ResourceState | None) -> tuple[str, Props]:
        urn, proc = reg.urn, self.engine.proc
        news = reg.inputs
        if self.engine.transform is not None:
            news = self.engine.transform(reg.type, reg.name, news)
        olds_in = old.inputs if old is not None else {}
        checked_plain, failures = self._call("Check", urn, lambda: proc.check(
            urn, strip_secrets(olds_in), strip_secrets(news)))
        if failures:
            detail = "; ".join(f"{prop}: {reason}" for prop, reason in failures)
            raise StepError(urn, ProviderCallError("Check", f"check failed: {detail}"))
        checked = annotate_secrets(_to_wire(checked_plain), news)
        with self.lock:
            self.current_inputs[urn] = checked
        secret_outputs = reg.additional_secret_outputs

        def state(id_: str, outputs: Props) -> ResourceState:
            return ResourceState(urn, reg.type, True, id_, reg.parent, reg.dependencies,
                                 checked, outputs, secret_outputs)

        if old is None:
            if self.preview:
                self._done(ResourceStep("create", urn, checked), None)
                return "", checked
            id_, outs = self._call("Create", urn, lambda: proc.create(urn, strip_secrets(checked)))
            outputs = self._outputs(_to_wire(outs), checked, secret_outputs)
            self._done(ResourceStep("create", urn, outputs), state(id_, outputs))
            return id_, outputs

        diff = self._call("Diff", urn, lambda: proc.diff(
            old.id, urn, strip_secrets(old.outputs), strip_secrets(checked)))
        changes = diff.changes
        if changes not in (DIFF_NONE, DIFF_SOME):  # unknown: the engine compares inputs itself
            changes = DIFF_NONE if strip_secrets(old.inputs) == strip_secrets(checked) else DIFF_SOME
        if changes == DIFF_NONE:
            self._done(ResourceStep("same", urn, old.outputs, diff), state(old.id, old.outputs), old)
            return old.id, old.outputs
        if list(diff.replaces):
            if self.preview:
                self._done(ResourceStep("replace", urn, checked, diff), None)
                return "", checked
            pending = not (diff.deleteBeforeReplace or reg.delete_before_replace)
            if not pending:
                self._call("Delete", urn, lambda: proc.delete(old.id, urn, strip_secrets(old.outputs)))
                with self.lock:
                    self.deleted_for_replace.add(urn)
                self.engine.record(remove=old)
                self.engine.say(step_line(ResourceStep("delete", urn, t=time.monotonic() - self.t0))
                                + " (to replace it)")
                id_, outs = self._call("Create", urn, lambda: proc.create(urn, strip_secrets(checked)))
            else:
                id_, outs = self._call("Create", urn, lambda: proc.create(urn, strip_secrets(checked)))
                with self.lock:
                    self.pending_deletes.append(old)
            outputs = self._outputs(_to_wire(outs), checked, secret_outputs)
            self._done(ResourceStep("replace", urn, outputs, diff), state(id_, outputs),
                       None if not pending else old, pending=pending)
            return id_, outputs
        if self.preview:
            self._done(ResourceStep("update", urn, checked, diff), None)
            return old.id, checked
        outs = self._call("Update", urn, lambda: proc.update(
            old.id, urn, strip_secrets(old.outputs), strip_secrets(checked)))
        outputs = self._outputs(_to_wire(outs), checked, secret_outputs)
        self._done(ResourceStep("update", urn, outputs, diff), state(old.id, outputs), old)
        return old.id, outputs


def _to_wire(plain: Props) -> Props:
    """A provider's answer (deserialized by the harness) back into wire form: unknowns as the
    UNKNOWN sentinel, numbers as the protobuf Struct holds them (floats), so state compares
    equal across runs."""
    return from_struct(to_struct(known_or_sentinel(plain)))


def _config_text(value: Any) -> str:
    """Config as the CLI hands it to a program: text; structured values as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def _full_key(project: str, key: str) -> str:
    return key if ":" in key else f"{project}:{key}"


class StackEngine:
    """`pulumi up | preview | refresh | destroy` for one stack file, with state in `state_file`
    (in memory when None). `config` and `secrets` are set over the stack file's config, keys
    with or without the project's namespace, values as text (JSON for structured values) or as
    Python values. `proc`: a configured provider process to use; by default each command
    starts its own, as the engine does, and configures it with the stack's config."""

    def __init__(self, stack_file: Path | str, state_file: Path | str | None = None, *,
                 config: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None,
                 stack: str | None = None, proc: ProviderProcess | None = None,
                 provider_env: dict[str, str] | None = None, transform: Transform | None = None,
                 program: Path | None = None, parallel: int = 512,
                 echo: Callable[[str, str], None] | None = None,
                 progress: Progress | None = None) -> None:
        self.stack_file = Path(stack_file)
        self.stack_display = str(stack_file)  # as the caller named it
        self.state_file = Path(state_file) if state_file is not None else None
        self.project = project_name()
        self.stack = stack or self.stack_file.name.split(".")[1]
        self.config, self.secret_keys = self._read_config(config or {}, secrets or {})
        self.shared_proc = proc
        self._proc_future: Future[ProviderProcess] | None = None
        self._proc_ready: ProviderProcess | None = None  # the future's result, once known
        self._proc_ready_for: Future[ProviderProcess] | None = None
        self.provider_env = provider_env
        self.transform = transform
        self.program = program or ROOT / "__main__.py"
        self.parallel = parallel
        self.echo = echo
        self.progress = progress
        self.state = StackState.load(self.state_file, self.project, self.stack)
        self.state_lock = threading.Lock()  # over self.state while a command runs
        self.checkpoints = Checkpoints(self.state_file, self.state_lock, self._snapshot)

    # ------------------------------------------------------------ state and checkpoints

    def _snapshot(self) -> StackState:
        st = self.state
        return StackState(st.project, st.stack, dict(st.resources), st.outputs,
                          list(st.pending_deletes))

    def record(self, put: ResourceState | None = None, remove: ResourceState | None = None,
               pend: ResourceState | None = None, unpend: ResourceState | None = None,
               write: bool = True) -> None:
        """Change the state as one step did, then (`write`) checkpoint it: return once a
        write holding the change is on disk. `remove` drops that very object (a resource
        replaced under the same URN is not the one to drop); `pend` keeps a replaced resource
        for its delete, `unpend` forgets it once deleted."""
        with self.state_lock:
            resources = self.state.resources
            if remove is not None and resources.get(remove.urn) is remove:
                del resources[remove.urn]
            if put is not None:
                resources[put.urn] = put
            if pend is not None:
                self.state.pending_deletes.append(pend)
            if unpend is not None:
                self.state.pending_deletes = [p for p in self.state.pending_deletes
                                              if p is not unpend]
            seq = self.checkpoints.changed()
        if write:
            self.checkpoints.commit(seq)

    def say(self, line: str) -> None:
        if self.progress is not None:
            self.progress(line)

    # ------------------------------------------------------------ config

    def _read_config(self, config: dict[str, Any], secrets: dict[str, Any]
                     ) -> tuple[dict[str, str], set[str]]:
        raw = yaml.safe_load(self.stack_file.read_text()) or {}
        values: dict[str, str] = {}
        for key, value in (raw.get("config") or {}).items():
            if isinstance(value, dict) and set(value) == {"secure"}:
                continue  # encrypted with the CLI's key: give it with `secrets`
            values[_full_key(self.project, key)] = _config_text(value)
        for key, value in config.items():
            values[_full_key(self.project, key)] = _config_text(value)
        secret_keys = set()
        for key, value in secrets.items():
            values[_full_key(self.project, key)] = _config_text(value)
            secret_keys.add(_full_key(self.project, key))
        return values, secret_keys

    def set_config(self, key: str, value: Any, secret: bool = False) -> None:
        """`pulumi config set [--secret] KEY VALUE`; None removes the key."""
        full = _full_key(self.project, key)
        if value is None:
            self.config.pop(full, None)
            self.secret_keys.discard(full)
            return
        self.config[full] = _config_text(value)
        if secret:
            self.secret_keys.add(full)

    # ------------------------------------------------------------ the commands

    def up(self) -> CommandResult:
        return self._run_program("up", preview=False)

    def preview(self) -> CommandResult:
        return self._run_program("preview", preview=True)

    def refresh(self) -> CommandResult:
        result = CommandResult("refresh")
        t0 = time.monotonic()
        with self._provider():
            proc = self.proc
            errors: list[Exception] = []

            def read(st: ResourceState) -> None:
                result.calls.append(Call("Read", st.urn))
                try:
                    id_, outs, ins = proc.read_with_inputs(
                        st.id, st.urn, strip_secrets(st.outputs), strip_secrets(st.inputs))
                except ProviderCallError as exc:
                    errors.append(exc)
                    return
                if not id_:
                    step = ResourceStep("gone", st.urn, {}, t=time.monotonic() - t0)
                    result.steps[st.urn] = step
                    self.record(remove=st)
                    self.say(step_line(step))
                    return
                fresh = dataclasses.replace(
                    st, id=id_,
                    outputs=mark_secret_outputs(annotate_secrets(_to_wire(outs), st.outputs),
                                                st.additional_secret_outputs),
                    inputs=st.inputs if ins is None else annotate_secrets(_to_wire(ins), st.inputs))
                step = ResourceStep("refresh", st.urn, fresh.outputs, t=time.monotonic() - t0)
                result.steps[st.urn] = step
                if fresh != st:  # a read that found what state holds needs no checkpoint
                    self.record(put=fresh, remove=st)
                self.say(step_line(step))

            customs = [st for st in self.state.resources.values() if st.custom]
            with ThreadPoolExecutor(max_workers=max(1, min(self.parallel, len(customs) or 1))) as pool:
                list(pool.map(read, customs))
        result.wall = time.monotonic() - t0
        self._save()
        if errors:
            raise EngineError("refresh", errors, result)
        return result

    def destroy(self) -> CommandResult:
        result = CommandResult("destroy")
        t0 = time.monotonic()
        with self._provider():
            errors = self._delete(list(self.state.resources.values()) + self.state.pending_deletes,
                                  result, t0)
        result.wall = time.monotonic() - t0
        if not errors:
            self.state.outputs = {}
        self._save()
        if errors:
            raise EngineError("destroy", errors, result)
        return result

    # ------------------------------------------------------------ internals

    def _provider(self) -> _ProviderScope:
        return _ProviderScope(self)

    @property
    def proc(self) -> ProviderProcess:
        """The command's provider process (waits for it to have started)."""
        future = self._proc_future
        if future is not None:
            # Future.result() takes the future's lock: hundreds of steps at once queue on it
            ready = self._proc_ready
            return ready if ready is not None and future is self._proc_ready_for else self._ready(future)
        if self.shared_proc is None:
            raise RuntimeError("no provider process outside a command")
        return self.shared_proc

    def _ready(self, future: Future[ProviderProcess]) -> ProviderProcess:
        proc = future.result()
        self._proc_ready, self._proc_ready_for = proc, future
        return proc

    def start_provider(self) -> ProviderProcess:
        env = {"BRAINTRUST_API_KEY": "", "BRAINTRUST_BASE_URL": ""}
        proc = ProviderProcess(env={**env, **(self.provider_env or {})},
                               on_log=None if self.progress is None else self._provider_log)
        try:
            proc.configure(self.config, secret_keys=tuple(self.secret_keys))
        except BaseException:
            proc.close()
            raise
        return proc

    def abort(self) -> None:
        """Ctrl-C: let a checkpoint being written finish (it is a rename, never half a file),
        then stop the provider process; the caller exits without waiting for the steps."""
        if self.checkpoints._write_lock.acquire(timeout=10):
            pass  # held until exit: no later write starts
        future = self._proc_future
        if future is not None and future.done() and future.exception() is None:
            future.result().kill()

    def _provider_log(self, line: str) -> None:
        self.say(f"          {line}")

    def _save(self) -> None:
        with self.state_lock:
            seq = self.checkpoints.changed()
        self.checkpoints.commit(seq)

    def _run_program(self, command: str, preview: bool) -> CommandResult:
        result = CommandResult(command)
        t0 = time.monotonic()
        with self._provider():
            monitor = Monitor(self, result, preview, t0)
            if preview:  # shown as the deletes the up will start with
                monitor.pending_deletes = list(self.state.pending_deletes)
            elif self.state.pending_deletes:
                # Left by a run that failed or died before deleting them: deleted first, before
                # the program runs, and a failure stops the up there, as Pulumi's
                # retirePendingDeletes does (pkg/resource/deploy/deployment_executor.go).
                errors = self._delete(list(self.state.pending_deletes), result, t0)
                if errors:
                    result.wall = time.monotonic() - t0
                    raise EngineError(command, errors, result)
            # In a thread of its own: the program gets its own event loop, the caller's stays.
            with ThreadPoolExecutor(max_workers=1) as runner:
                program_error = runner.submit(contextvars.Context().run, self._run_in_context,
                                              monitor, result, preview).result()
            errors = list(monitor.errors)
            if program_error is not None:
                error = _program_error(program_error)
                if not any(error is e for e in errors):
                    errors.append(error)
            if preview:
                for st in [*(s for u, s in monitor.old.items() if u not in monitor.claimed),
                           *monitor.pending_deletes]:
                    if st.custom:
                        result.steps[st.urn] = step = ResourceStep("delete", st.urn, {})
                        if not any(st is p for p in monitor.pending_deletes):
                            self.say(step_line(step, preview=True))
            else:
                self._finish_up(monitor, result, errors, t0)
        result.wall = time.monotonic() - t0
        if errors:
            raise EngineError(command, errors, result)
        return result

    def _finish_up(self, monitor: Monitor, result: CommandResult, errors: list[Exception],
                   t0: float) -> None:
        kept = {u: s for u, s in monitor.old.items() if u not in monitor.claimed}
        if not errors:
            errors += self._delete(list(kept.values()) + monitor.pending_deletes, result, t0)
            survivors: dict[str, ResourceState] = {}
        else:
            # Nothing is deleted after a failure, as in Pulumi (its performDeletes runs only
            # once the program ended without one): what was not re-registered stays, and what
            # this run replaced stays in pending_deletes for the next up to delete first.
            survivors = kept
        with self.state_lock:  # the program's order; what failed to delete stays pending
            final = {**monitor.new, **survivors}
            outputs = result.exports if not errors else self.state.outputs
            unchanged = (self.checkpoints.changes == 0 and outputs == self.state.outputs
                         and final.keys() == monitor.old.keys()
                         and all(final[u] is monitor.old[u] for u in final))
            self.state.resources = final
            self.state.outputs = outputs
        if not unchanged:  # a no-op up leaves the file as it was: nothing to write
            self._save()

    def _delete(self, doomed: list[ResourceState], result: CommandResult, t0: float
                ) -> list[Exception]:
        """Delete `doomed`, each after every doomed resource that depends on it (or is its
        child), independent ones at once; each delete is checkpointed as it is done."""
        proc = self.proc
        keys = {id(st): st for st in doomed}
        pending = {id(p) for p in self.state.pending_deletes}
        dependants: dict[int, list[int]] = {k: [] for k in keys}
        by_urn: dict[str, list[int]] = {}
        for k, st in keys.items():
            by_urn.setdefault(st.urn, []).append(k)
        for k, st in keys.items():
            for dep in {*st.dependencies, st.parent}:
                for target in by_urn.get(dep, []):
                    if target != k:
                        dependants[target].append(k)

        def delete(st: ResourceState) -> None:
            if st.custom:
                result.calls.append(Call("Delete", st.urn))
                try:
                    proc.delete(st.id, st.urn, strip_secrets(st.outputs))
                except ProviderCallError as exc:
                    raise StepError(st.urn, exc) from None
                step = ResourceStep("delete", st.urn, {}, t=time.monotonic() - t0,
                                    forgotten=only_referenced(st))
                if st.urn not in result.steps or result.steps[st.urn].op != "replace":
                    result.steps[st.urn] = step
                self.say(step_line(step) + (" (replaced)" if id(st) in pending else ""))
            self.record(remove=st, unpend=st if id(st) in pending else None, write=st.custom)

        tasks: dict[Hashable, tuple[tuple[Hashable, ...], Callable[[], Any]]] = {
            k: (tuple(dependants[k]), functools.partial(delete, st)) for k, st in keys.items()}
        return [e.error if isinstance(e, StepError) else e
                for e in run_graph(tasks, self.parallel)]

    def _run_in_context(self, monitor: Monitor, result: CommandResult, preview: bool
                        ) -> BaseException | None:
        """Run the program on Pulumi's runtime, in a context of its own (the runtime keeps its
        settings in context variables): the error it ended with, if any."""
        STACK_FILE.set(self.stack_display)  # this context only: messages name the file given
        settings.configure(settings.Settings(
            project=self.project, stack=self.stack, monitor=monitor,
            engine=_Log(result.logs, self.echo), dry_run=preview, organization="organization",
            root_directory=str(ROOT)))
        set_all_config(dict(self.config), sorted(self.secret_keys))
        loop = asyncio.new_event_loop()
        executor = ThreadPoolExecutor(max_workers=self.parallel)
        loop.set_default_executor(executor)
        asyncio.set_event_loop(loop)
        program = str(self.program)

        def main() -> Awaitable[None]:
            runpy.run_path(program, run_name="__main__")
            return _settle()

        # The runtime leaves the Outputs of a failed resource unobserved; the language host
        # silences asyncio's reports of them too. The failure itself is the command's error.
        loop.set_exception_handler(lambda _loop, _context: None)
        try:
            loop.run_until_complete(run_in_stack(main))
        except BaseException as exc:  # noqa: BLE001 - reported as the command's error
            return exc
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            executor.shutdown(wait=True)
            loop.close()
            # A fresh loop, not None: once a loop was set, asyncio.get_event_loop() (which
            # pulumi.runtime.test uses) refuses to make one, so None would break later callers.
            asyncio.set_event_loop(asyncio.new_event_loop())
        return None


async def _settle() -> None:
    """Wait until every output the program made has resolved, in passes that each wait for all
    of them at once, before the runtime's own `wait_for_rpcs` (pulumi/runtime/stack.py) runs.

    Why: `wait_for_rpcs` waits on every outstanding output with `asyncio.wait(FIRST_COMPLETED)`
    and starts again after each one resolves, so each wake-up costs O(outputs): O(N^2) for a
    stack of N resources (75% of a no-op up's CPU at N = 400, py-spy --gil). Waiting for all of
    them is one callback per output per pass; passes are as many as the outputs' chains are
    deep. Nothing is awaited here, only waited for, so `wait_for_rpcs` still re-raises the
    first failure as before: it then finds every output done, and its loop ends in one pass."""
    rpc_manager = settings._get_rpc_manager()
    while rpc_manager.unhandled_exception is None:  # a failure: the runtime's path, as before
        with settings.SETTINGS.lock:
            pending = [t for t in settings.SETTINGS.outputs if not t.done()]
        pending += [r for r in rpc_manager.rpcs if isinstance(r, asyncio.Future) and not r.done()]
        if not pending:
            return
        done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
        if any(not t.cancelled() and t.exception() is not None for t in done):
            return


def _program_error(exc: BaseException) -> Exception:
    if isinstance(exc, StepError):
        return exc.error
    if isinstance(exc, Exception):
        return exc
    return RuntimeError(repr(exc))


class _ProviderScope:
    """The provider process for one command: the shared one, or one of its own, started in
    the background while the program starts (the engine too loads a plugin only when the
    first resource needs it) and stopped at the end."""

    def __init__(self, engine: StackEngine) -> None:
        self.engine = engine
        self.pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> None:
        if self.engine.shared_proc is not None:
            self.engine._proc_future = None
            return
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.engine._proc_future = self.pool.submit(self.engine.start_provider)

    def __exit__(self, *exc: object) -> None:
        future, self.engine._proc_future = self.engine._proc_future, None
        if future is None or self.pool is None:
            return
        self.pool.shutdown(wait=True)
        if future.exception() is None:
            future.result().close()


__all__ = ["UNKNOWN", "EngineError", "Registration", "CommandResult", "StackEngine", "ResourceStep", "type_token"]
