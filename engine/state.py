"""The stack's state between runs: one JSON file, created with mode 0600 since it holds
secrets (the real engine encrypts them; the bundled engine runs only against a local emulator).

Every resource the engine knows, components included, in the order they were registered:
its URN, type, parent, dependencies, provider id, inputs and outputs in wire form (secrets
marked, see props.py), and the options that matter after the program is gone. `pending_deletes`
holds resources a create-before-delete replace left behind, not yet deleted (Pulumi's
`delete: true` entries): the next `up` or `destroy` deletes them.

The engine checkpoints while it works (`Checkpoints`): after every step, as Pulumi's engine
does, so a killed run loses at most the steps in flight. Every write goes through
`components/files.py`: a new file created beside the state (mkstemp: O_CREAT|O_EXCL|O_NOFOLLOW,
mode 0600 from the first byte) and renamed over it, so a reader sees the old file or the new
one, and a symlink at the state's path is replaced, never followed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from components.files import write_file
from engine.props import Props

VERSION = 1


@dataclass
class ResourceState:
    """One resource in state. Treat as immutable once recorded: a checkpoint serializes it
    outside the engine's lock (and keeps its JSON text), so a change is a new object."""

    urn: str
    type: str
    custom: bool
    id: str = ""
    parent: str = ""
    dependencies: list[str] = field(default_factory=list)
    inputs: Props = field(default_factory=dict)
    outputs: Props = field(default_factory=dict)
    additional_secret_outputs: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[1]

    def as_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def json_text(self) -> str:
        """This resource as one line of JSON, computed once (a checkpoint writes every
        resource; re-encoding each one at every step would make a run quadratic)."""
        text = self.__dict__.get("_json_text")
        if text is None:
            text = json.dumps(self.as_json(), separators=(",", ":"))
            self.__dict__["_json_text"] = text
        return text


def _load_resource(data: dict[str, Any]) -> ResourceState:
    known = {f.name for f in fields(ResourceState)}
    return ResourceState(**{k: v for k, v in data.items() if k in known})


@dataclass
class StackState:
    project: str
    stack: str
    resources: dict[str, ResourceState] = field(default_factory=dict)  # by URN, in order
    outputs: Props = field(default_factory=dict)  # the stack's exports, wire form
    pending_deletes: list[ResourceState] = field(default_factory=list)  # replaced, not yet deleted

    @classmethod
    def load(cls, path: Path | None, project: str, stack: str) -> StackState:
        if path is None or not path.exists():
            return cls(project, stack)
        data = json.loads(path.read_text())
        if data.get("version") != VERSION:
            raise ValueError(f"{path}: state version {data.get('version')!r}, expected {VERSION}")
        resources = [_load_resource(r) for r in data["resources"]]
        return cls(data["project"], data["stack"], {r.urn: r for r in resources},
                   data.get("outputs", {}),
                   [_load_resource(r) for r in data.get("pending_deletes", [])])

    def text(self) -> str:
        """The file's text: one resource a line, each line computed once per resource."""
        return render(self.project, self.stack, list(self.resources.values()),
                      list(self.pending_deletes), self.outputs)

    def save(self, path: Path) -> None:
        """Write atomically, 0600 from the first byte, never through a symlink."""
        write_file(path, self.text())


def render(project: str, stack: str, resources: list[ResourceState],
           pending: list[ResourceState], outputs: Props) -> str:
    head = json.dumps({"version": VERSION, "project": project, "stack": stack})[:-1]
    body = ",\n".join(r.json_text() for r in resources)
    doomed = ",\n".join(r.json_text() for r in pending)
    return (f'{head}, "resources": [\n{body}\n], "pending_deletes": [\n{doomed}\n],\n'
            f'"outputs": {json.dumps(outputs)}}}\n')


class Checkpoints:
    """Group commit of the state while a command runs.

    `commit()` returns once a write holding every change made before the call is on disk.
    One writer at a time; the changes of the steps that finished while a write ran go out
    together in the next one, so a step waits for at most two writes, however many resources
    run at once, and the number of writes adapts to how fast steps finish.
    """

    def __init__(self, path: Path | None, lock: threading.Lock,
                 snapshot: Callable[[], StackState]) -> None:
        self.path = path
        self.lock = lock  # the engine's lock over the state; snapshot() runs under it
        self.snapshot = snapshot  # a shallow copy of the state, taken under `lock`
        self._write_lock = threading.Lock()
        self._changes = 0  # bumped under `lock` by every change
        self._written = 0  # the last change on disk
        self.writes = 0

    @property
    def changes(self) -> int:
        """How many changes were made since the command began."""
        return self._changes

    def changed(self) -> int:
        """Call under `lock` after changing the state: the change's sequence number."""
        self._changes += 1
        return self._changes

    def commit(self, upto: int | None = None) -> None:
        if self.path is None:
            return
        if upto is None:
            with self.lock:
                upto = self._changes
        with self._write_lock:
            if self._written >= upto:
                return  # another step's write already held this change
            with self.lock:
                target, state = self._changes, self.snapshot()
            write_file(self.path, state.text())
            self._written = target
            self.writes += 1
