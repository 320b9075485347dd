"""What a refused stack file reports: one Problem per defect, naming the file and the field."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    file: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message}" if self.path else f"{self.file}: {self.message}"


class StackError(Exception):
    """Invalid stack config; ``str()`` is the list of problems, one per line."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


class FieldError(ValueError):
    """A cross-field rule's error, carrying the path (below the model that raised it) of the
    field the user must change."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
