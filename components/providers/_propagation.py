"""A principal the workspace does not know yet: retry that one refusal, for a new principal only.

A service principal just created through SCIM may be refused for a while by the permissions and
OAuth-secrets APIs, which answer as for a principal that does not exist (Terraform users report
it: terraform-provider-databricks #4788, #5827). `until_known` retries exactly that refusal,
with backoff, for at most PROPAGATION_TIMEOUT seconds, and only when the principal was created
recently (its creation time is kept in the principal's state and handed to the secret and the
grants). Every other error, and that refusal for an older principal, is reported at once.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any, TypeVar

from databricks.sdk.errors import BadRequest, DatabricksError, NotFound

from ._wait import Done, Pending, wait_for

T = TypeVar("T")

PROPAGATION_TIMEOUT = 120.0
# Polls for a principal the workspace does not know yet come at most this far apart.
PROPAGATION_POLL_CAP = 5.0
# A principal older than this is not propagating any more: a refusal then means it is gone.
RECENT = dt.timedelta(minutes=30)
# Matched with str.find, never a `principal.*(...)` regex: the message is server text (up to
# the provider's MAX_ANSWER), and such a regex backtracks over it from every "principal" in it,
# quadratic or worse (a 80 kB message of "principal principal ..." took 47 s of CPU, which no
# request deadline can cut). Real refusals say it in their first sentence.
_UNKNOWN_AFTER = ("does not exist", "doesn't exist", "not found", "unknown")
_UNKNOWN_BEFORE = ("unknown", "nonexistent", "non-existent")
_MESSAGE_LOOKED_AT = 4096


def _names_unknown_principal(message: str) -> bool:
    text = message[:_MESSAGE_LOOKED_AT].lower()
    first = text.find("principal")
    if first < 0:
        return False
    last = text.rfind("principal")
    return (any(w in text[first + len("principal"):] for w in _UNKNOWN_AFTER)
            or any(w in text[:last] for w in _UNKNOWN_BEFORE))


# Creation times of the principals this process created or adopted, by SCIM id and by
# application id: the fallback when a secret or grant is not handed `principal_created_at`.
_CREATED: dict[str, str] = {}


def remember_created(principal_id: str, application_id: str | None, created_at: str) -> None:
    _CREATED[principal_id] = created_at
    if application_id:
        _CREATED[application_id] = created_at


def created_at_of(given: Any, principal: Any) -> Any:
    """The principal's creation time: the input `principal_created_at` (`given`), else what this
    process remembers of `principal` (its SCIM id or application id)."""
    return given or _CREATED.get(str(principal))


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_recent(created_at: Any, now: dt.datetime | None = None) -> bool:
    """True when `created_at` (RFC 3339, as the principal's state keeps it) is recent."""
    if not isinstance(created_at, str) or not created_at:
        return False
    try:
        created = dt.datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return False
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    return (now or dt.datetime.now(dt.UTC)) - created <= RECENT


def is_unknown_principal(exc: BaseException) -> bool:
    """The refusal the workspace gives for a principal it does not know (a 400 from the
    permissions API, a 404 from the secrets API); a missing endpoint is not one."""
    return isinstance(exc, BadRequest | NotFound) and _names_unknown_principal(str(exc))


def until_known(call: Callable[[], T], *, recent: bool, principal: str,
                listed: Callable[[], bool] | None = None,
                timeout: float = PROPAGATION_TIMEOUT,
                clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], None] = time.sleep) -> T:
    """`call()`, retried while the workspace does not know `principal` yet and it is recent.

    `listed` says whether SCIM lists the principal (it does at once after a create): when it
    does not, the principal was deleted, and the refusal is raised at once."""

    def poll() -> Done[T] | Pending:
        try:
            return Done(call())
        except DatabricksError as exc:
            if not recent or not is_unknown_principal(exc):
                raise
            if listed is not None and not listed():
                raise
            return Pending(f"the workspace does not know {principal} yet ({exc})")

    return wait_for(poll, what=f"the workspace to know the new {principal}", obj=principal,
                    timeout=timeout, cap=PROPAGATION_POLL_CAP, clock=clock, sleep=sleep)
