"""Fault rules for the admin `faults` route (like the CLI test server's fault.go): keyed by
method and path pattern, with a count, an offset, and `every` (every n-th match only)."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from .errors import FAULT_CODES, ApiError
from .routing import Response

FAULT_KINDS = ("status", "lost-answer", "swallowed")


@dataclass
class Fault:
    """`status`: answer `status` instead of handling the request (with `error_code` in the
    body when given, else the status's usual code). `lost-answer`: handle the request fully
    (state changes included), then close the connection without answering, as a network drop
    after the workspace committed does; the client sees a connection error. `swallowed`: answer
    200 `{}` without handling the request: a write the workspace acknowledged but never applied
    (what only a read after the write can catch)."""

    method: str
    path: re.Pattern[str]
    status: int
    retry_after: int | None
    count: int
    offset: int
    kind: str = "status"
    error_code: str | None = None
    every: int = 1  # only every `every`-th matching request (after the offset) is faulted
    seen: int = 0

    def response(self) -> Response:
        if self.kind == "swallowed":
            return Response(status=200, body={})
        code = self.error_code or FAULT_CODES.get(self.status, "INTERNAL_ERROR")
        err = ApiError(self.status, code, f"Injected fault: {self.status} {code}")
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return Response(status=self.status, body=err.body(), headers=headers)


class Faults:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rules: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self.lock:
            self.rules.append(fault)

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()

    def take(self, method: str, path: str) -> Fault | None:
        """The first matching rule: skip while it has an offset, then answer `count` times."""
        with self.lock:
            for rule in self.rules:
                if rule.method not in ("*", method) or not rule.path.search(path):
                    continue
                if rule.offset > 0:
                    rule.offset -= 1
                    continue
                rule.seen += 1
                if rule.seen % rule.every:
                    continue
                if rule.count > 0:
                    rule.count -= 1
                    return rule
            self.rules = [r for r in self.rules if r.count > 0]
        return None
