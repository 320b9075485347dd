"""Creates that are not idempotent, made safe against a lost answer.

databricks-sdk re-sends every request after a connection error or a read timeout, POST
included (`_BaseClient._is_retryable`), and 0.162 has no per-call switch for it. When the
workspace did the work but the answer never arrived, that re-send makes a second object: a
second service principal of the same name, a second OAuth secret nobody knows.

So a create goes through `no_resend_client`, a client that does not re-send after a connection
error or a timeout (429 and 503 are still retried: the workspace refused those before doing
anything), and `send_once` turns the lost answer into `AnswerLost`. The caller then lists what
exists, compares with what it listed before the attempt, and adopts or removes what the attempt
made before it sends again. Nothing depends on a marker the workspace might not keep.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import requests

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.core import ApiClient

T = TypeVar("T")

# Attempts at one create whose answers are lost before giving up: each attempt is preceded by
# a listing, so more attempts never make more objects, only more requests.
MAX_ATTEMPTS = 5

_LOCK = threading.Lock()
_CLIENTS: dict[int, ApiClient] = {}


class AnswerLost(Exception):
    """The request may have been done by the workspace, but no answer came back."""


def _never_after_sending(base: Callable[[BaseException], str | None]
                         ) -> Callable[[BaseException], str | None]:
    def is_retryable(err: BaseException) -> str | None:
        if isinstance(err, requests.ConnectionError | requests.Timeout):
            return None  # maybe done: the caller lists before sending again
        return base(err)
    return is_retryable


def no_resend_client(w: WorkspaceClient) -> ApiClient:
    """An ApiClient on `w`'s config (same host, same credentials) that never re-sends a request
    after a connection error or a timeout. One per WorkspaceClient, built on first use."""
    key = id(w)
    with _LOCK:
        api = _CLIENTS.get(key)
        if api is None:
            from databricks.sdk.core import ApiClient

            api = ApiClient(w.config)
            inner = api._api_client  # noqa: SLF001 - 0.162 offers no public retry switch
            # `do` reads self._is_retryable on every call: an instance attribute overrides it.
            inner._is_retryable = _never_after_sending(inner._is_retryable)  # type: ignore[method-assign,assignment]  # noqa: SLF001
            _CLIENTS[key] = api
    return api


def send_once(call: Callable[[], T]) -> T:
    """Run `call` (built on `no_resend_client`); a lost answer raises AnswerLost."""
    try:
        return call()
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise AnswerLost(type(exc).__name__) from None
