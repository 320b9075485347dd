"""What a refused stack file reports: one Problem per defect, naming the file and the field."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from components.spec.credentials import redact

_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def printable(text: str) -> str:
    """``text`` with each control or invisible character escaped (``\\n``, ``\\u202e``), so a key
    or file name a user wrote can never start a new output line or reorder what a reader sees."""
    if all(unicodedata.category(c) not in _INVISIBLE for c in text):
        return text
    return "".join(c.encode("unicode_escape", "backslashreplace").decode("ascii")
                   if unicodedata.category(c) in _INVISIBLE else c for c in text)


@dataclass(frozen=True)
class Problem:
    """One defect. Every part is shown escaped and redacted: the path holds keys as the user wrote
    them (a tag key may hold a newline or a URL's password), the file a name they chose."""

    file: str
    path: str
    message: str

    def __post_init__(self) -> None:
        for name in ("file", "path", "message"):
            object.__setattr__(self, name, printable(redact(getattr(self, name))))

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
