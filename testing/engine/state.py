"""The stack's state between runs: one JSON file, created with mode 0600 since it holds
secrets (the real engine encrypts them; this file is only ever on the test machine).

Every resource the engine knows, components included, in the order they were registered:
its URN, type, parent, dependencies, provider id, inputs and outputs in wire form (secrets
marked, see props.py), and the options that matter after the program is gone.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from components.files import write_file
from testing.engine.props import Props

VERSION = 1


@dataclass
class ResourceState:
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


@dataclass
class StackState:
    project: str
    stack: str
    resources: dict[str, ResourceState] = field(default_factory=dict)  # by URN, in order
    outputs: Props = field(default_factory=dict)  # the stack's exports, wire form

    @classmethod
    def load(cls, path: Path | None, project: str, stack: str) -> StackState:
        if path is None or not path.exists():
            return cls(project, stack)
        data = json.loads(path.read_text())
        if data.get("version") != VERSION:
            raise ValueError(f"{path}: state version {data.get('version')!r}, expected {VERSION}")
        resources = [ResourceState(**r) for r in data["resources"]]
        return cls(data["project"], data["stack"], {r.urn: r for r in resources},
                   data.get("outputs", {}))

    def save(self, path: Path) -> None:
        """Write atomically, 0600 from the first byte: never a moment where others may read it."""
        data: dict[str, Any] = {"version": VERSION, "project": self.project, "stack": self.stack,
                                "resources": [asdict(r) for r in self.resources.values()],
                                "outputs": self.outputs}
        # Beside the file, then renamed over it (components/files.py): a symlink is replaced.
        write_file(path, json.dumps(data, indent=1) + "\n")
