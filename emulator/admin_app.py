"""What the admin routes need of the server's App, as a protocol: admin.py and federation.py
type against it, so neither imports server.py (which imports them)."""

from __future__ import annotations

from typing import Any, Protocol

from .faults import Faults
from .models import Workspace


class AdminApp(Protocol):
    ws: Workspace
    faults: Faults

    def reset(self) -> None: ...

    def request_log(self) -> list[dict[str, Any]]: ...

    def clear_request_log(self) -> None: ...
