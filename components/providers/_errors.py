"""Errors the providers raise: the first line says what failed, on which object and what to do.

The engine shows a provider error as the full traceback text, so the message is the only
part a user reads; it never carries a secret (tokens, client secrets), only names and ids.
"""

from __future__ import annotations

from databricks.sdk.errors import DatabricksError

from components.transport import redact

# A workspace may answer an error of any size (up to the provider's 16 MiB answer cap) and of
# any bytes: `up` prints the start of it, never a screenful of server text or a terminal escape.
SERVER_TEXT_LIMIT = 2000


def quoted_server_text(text: str, limit: int = SERVER_TEXT_LIMIT) -> str:
    """Server text as an error may quote it: control characters escaped (newlines and tabs
    kept), at most `limit` characters, and how much more there was."""
    shown = "".join(c if c in "\n\t" or c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256
                    else f"\\u{ord(c):04x}" for c in text[:limit])
    return shown if len(text) <= limit else f"{shown}… ({len(text) - limit} more characters not shown)"


class ProviderError(Exception):
    """One failed provider operation, phrased for the person running `pulumi up`."""

    def __init__(self, what: str, obj: str, todo: str, detail: str | None = None) -> None:
        # The last line of defence: server text quoted in any part loses every secret this
        # process knows (components/transport.py `remember`).
        what, obj, todo = redact(what), redact(obj), redact(todo)
        detail = redact(detail) if detail else detail
        self.what = what
        self.obj = obj
        self.todo = todo
        self.detail = detail
        first = f"{what} ({obj}): {todo}"
        super().__init__(first if not detail else f"{first}\n{detail}")


class WaitTimeout(ProviderError):
    """A wait ran past its deadline; the remote object is left as it is."""


def describe(exc: BaseException) -> str:
    """A short, secret-free description of an SDK error: its class and Databricks' message."""
    if isinstance(exc, DatabricksError):
        code = getattr(exc, "error_code", None)
        prefix = f"{type(exc).__name__}" + (f" [{code}]" if code else "")
        return quoted_server_text(redact(f"{prefix}: {exc}"))
    return quoted_server_text(redact(f"{type(exc).__name__}: {exc}"))


def api_error(action: str, obj: str, exc: BaseException, todo: str | None = None) -> ProviderError:
    """Wrap an SDK error raised while doing `action` on `obj`."""
    return ProviderError(
        f"{action} failed",
        obj,
        todo or "check the message below and the identity's permissions, then run `pulumi up` again",
        describe(exc),
    )
