"""QueryGrant: one ACL entry (the principal may query one endpoint), and only that entry.

Inputs: QueryGrantArgs (components/args.py). While principal_created_at is recent, a
  "principal not known yet" refusal is retried, for at most 120 s.
Outputs: every input, plus governed_by: "acl" (our entry is in the endpoint's ACL) or
  "workspace" (a pay-per-token endpoint whose ACL the workspace would not let us write: access
  to it is governed by Unity Catalog EXECUTE on its system.ai model).

Diff rules: endpoint_id, service_principal_name -> replace (new entry first, then the old one
removed); permission_level -> update in place (our entry swapped for the new level in one PUT:
PATCH never lowers a level, and a replace would then remove the principal's only entry);
endpoint_name alone -> no change. In a preview, an unknown endpoint_id with the same
endpoint_name and endpoint_identity (the endpoint updated in place), or an unknown principal
(renamed in place: it has no replace keys) is no change: `up` keeps both ids.

Create adds the entry with the PATCH API (update_permissions), which never touches other
entries; when the principal already holds another direct level on the endpoint (someone raised
it out of band, and refresh found our entry gone), that entry is swapped for ours in one PUT, as
an update does: PATCH never lowers a level, and the principal is this stack's alone.
The API has no per-entry delete, so delete reads the ACL and PUTs back every other direct
entry exactly as it was, without ours. Inherited entries (from the workspace's serving
endpoints root) are not sent: they are not part of the endpoint's own ACL, and sending them
would turn them into direct ones. The permissions API has no compare-and-set, so an entry
someone else adds between our GET and our PUT would be lost: within this process every ACL
change to one endpoint runs under that endpoint's lock, and every attempt (after a 429's
Retry-After, a 503 or a lost answer too) is built from a GET made right before it, so the
remaining window is the one GET-to-PUT round trip against changes from outside
(docs/reliability.md gives the measured figure).

Read after write. No step ends on a write alone: a GET of the ACL must show our entry at our
level (create, update) or without it (delete) before state records anything; a write answered
200 that no read confirms is sent again (after a fresh read) and fails the step after
UNCONFIRMED_WRITES.

Pay-per-token endpoints (Databricks' own `databricks-*`; the plan says which, as the input
endpoint_pay_per_token) are shared by the whole workspace and
owned by Databricks. A 403 PERMISSION_DENIED on writing their ACL, after the GET of that ACL
succeeded in the same operation, means access is governed by the workspace (Unity Catalog
EXECUTE on system.ai, which users hold by default): `up` succeeds, the grant records
governed_by "workspace", and neither refresh nor delete writes anything for it. Nothing else
counts: a 401 (an expired token), another 403, a 429 or a 5xx fails the step or is retried.
When the write is accepted, delete writes only if our entry is still there, and writes every
other entry exactly as read (a principal holding two levels gets its highest last, since a PUT
keeps the last level it names), so the owner loses nothing.

Retries. Writes go through a BoundedApi that never re-sends by itself (`retry=False`): 429,
503 and a lost answer come back here, and the next attempt reads the ACL first. Every call of
one operation ends by its deadline (`_ops`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pulumi
from databricks.sdk.errors import (
    DatabricksError,
    NotFound,
    PermissionDenied,
    TemporarilyUnavailable,
    TooManyRequests,
)
from databricks.sdk.service.serving import (
    ServingEndpointAccessControlRequest,
    ServingEndpointPermissions,
)
from pulumi.dynamic import CheckFailure, DiffResult

from components.args import ENDPOINT, QUERY_GRANT, QueryGrantArgs, QueryGrantOutputs
from components.backoff import backoff

from ._client import DatabricksProvider, pause_for
from ._contract import ContractProvider, Stored, resource_class
from ._errors import ProviderError, api_error, describe
from ._ops import OPERATION_BUDGET, READ_BUDGET, AnswerLost, DeadlineExceeded, Ops
from ._propagation import (
    PROPAGATION_POLL_CAP,
    PROPAGATION_TIMEOUT,
    created_at_of,
    is_recent,
    is_unknown_principal,
)
from ._props import diff_result, is_unknown
from ._workers import lent_worker

State = Stored[QueryGrantArgs, QueryGrantOutputs]
DEFAULT_LEVEL = "CAN_QUERY"
PRINCIPAL_KINDS = ("user_name", "group_name", "service_principal_name")
LEVEL_RANK = {"CAN_VIEW": 1, "CAN_QUERY": 2, "CAN_MANAGE": 3}
PAY_PER_TOKEN_PREFIX = "databricks-"  # Databricks' own endpoints, in every workspace
BY_ACL, BY_WORKSPACE = "acl", "workspace"
GONE = "gone"  # the endpoint does not exist (any more)
# Writes answered 200 that a read does not confirm before the step fails.
UNCONFIRMED_WRITES = 3
# (kind, principal, level): one direct ACL entry.
Entry = tuple[str, str, str]

_LOCKS_GUARD = threading.Lock()
_LOCKS: dict[str, threading.Lock] = {}


def _endpoint_lock(endpoint_id: str) -> threading.Lock:
    """One lock per endpoint: a PATCH must never land between our GET and our PUT."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(endpoint_id, threading.Lock())


def same_endpoint(old: QueryGrantArgs, new: QueryGrantArgs) -> bool:
    """In a preview, whether an endpoint whose id is unknown is the one in state, updated in
    place: same name, and the same values of the endpoint's replace keys (those both sides
    know: state written before endpoint_identity holds none, and the table may have grown)."""
    if is_unknown(new.endpoint_name) or old.endpoint_name != new.endpoint_name:
        return False
    before, after = old.endpoint_identity or {}, new.endpoint_identity or {}
    if is_unknown(after):
        return False
    if "mode" in before and "mode" in after and \
            (before["mode"] == "pay_per_token") != (after["mode"] == "pay_per_token"):
        return False  # another endpoint: Databricks' own, or one of ours (endpoint_rules.SWITCHES)
    return all(before[k] == after[k] for k in ENDPOINT.replace_keys if k in before and k in after)


def unchanged_in_preview(old: QueryGrantArgs, new: QueryGrantArgs, key: str) -> bool:
    """An input unknown only because a preview of a dynamic provider hands no output on (Pulumi
    passes no `stables` to it), where `up` keeps the value: an endpoint updated in place keeps
    its id; the principal has no replace keys, so an unknown application id is a principal being
    updated (a rename), which keeps it."""
    if not is_unknown(getattr(new, key)):
        return False
    if key == "endpoint_id":
        return same_endpoint(old, new)
    return key == "service_principal_name" and bool(old.service_principal_name)


def diff_grant(old: QueryGrantArgs, new: QueryGrantArgs) -> DiffResult:
    """endpoint_name, principal_created_at, endpoint_pay_per_token and endpoint_identity are
    never a change (QUERY_GRANT.inert_keys)."""
    replaces = [k for k in QUERY_GRANT.replace_keys if not unchanged_in_preview(old, new, k)
                and (is_unknown(getattr(new, k)) or getattr(old, k) != getattr(new, k))]
    changed = list(replaces)
    if is_unknown(new.permission_level) or _level(old) != _level(new):
        changed.append("permission_level")
    return diff_result(changed, replaces, delete_before_replace=False)


def _level(args: QueryGrantArgs) -> str:
    return str(args.permission_level or DEFAULT_LEVEL)


def direct_entries(acl: ServingEndpointPermissions) -> list[Entry]:
    """Every direct (non-inherited) entry of an ACL, in the order the API gave them."""
    entries: list[Entry] = []
    for item in acl.access_control_list or []:
        kind, who = next(((k, getattr(item, k)) for k in PRINCIPAL_KINDS if getattr(item, k)),
                         (None, None))
        if kind is None or who is None:
            continue
        for perm in item.all_permissions or []:
            if perm.inherited or perm.permission_level is None:
                continue
            entries.append((kind, str(who), perm.permission_level.value))
    return entries


def without(entries: list[Entry], ours: Entry) -> list[Entry]:
    return [e for e in entries if e != ours]


def put_order(entries: list[Entry]) -> list[Entry]:
    """Entries as read, each principal's highest level last: a PUT keeps the last level it
    names for a principal, so nobody is lowered."""
    return sorted(entries, key=lambda e: LEVEL_RANK.get(e[2], 0))


def is_pay_per_token(args: QueryGrantArgs) -> bool:
    """As the plan says; for state written before the plan said it, from the name."""
    if args.endpoint_pay_per_token is not None:
        return bool(args.endpoint_pay_per_token)
    return str(args.endpoint_name or "").startswith(PAY_PER_TOKEN_PREFIX)


def _levels_of(entries: list[Entry], ours: Entry) -> set[str]:
    """The levels our principal holds directly."""
    return {e[2] for e in entries if e[:2] == ours[:2]}


def _request(entry: Entry) -> ServingEndpointAccessControlRequest:
    kind, who, level = entry
    return ServingEndpointAccessControlRequest.from_dict({kind: who, "permission_level": level})


class QueryGrantProvider(DatabricksProvider, ContractProvider[QueryGrantArgs, QueryGrantOutputs]):
    """update_permissions to add, get + set_permissions (ours removed) to delete."""

    CONTRACT = QUERY_GRANT

    def validate(self, args: QueryGrantArgs) -> list[CheckFailure]:
        failures = []
        for key in ("endpoint_id", "service_principal_name"):
            v = getattr(args, key)
            if v is None or (not is_unknown(v) and not str(v)):
                failures.append(CheckFailure(key, "is required"))
        return failures

    def compare(self, id_: str, old: State, new: QueryGrantArgs) -> DiffResult:
        return diff_grant(old.args, new)

    def make(self, args: QueryGrantArgs) -> tuple[str, State]:
        ours = self._ours(args)

        def entries(current: list[Entry]) -> list[Entry] | None:
            # The principal is this stack's: another level it holds here (raised or lowered
            # out of band) is swapped for ours by a PUT, since PATCH never lowers a level.
            stale = [e for e in current if e[:2] == ours[:2] and e != ours]
            if stale:
                return [e for e in current if e not in stale and e != ours] + [ours]
            return None  # PATCH of our one entry

        outcome = self._converge(args, "granting query access",
                                 done=lambda cur: ours in cur and _levels_of(cur, ours) == {ours[2]},
                                 entries=entries)
        if outcome == GONE:
            raise ProviderError("granting query access failed", self._obj(args),
                                "the endpoint is gone: run `pulumi refresh`, then `pulumi up`")
        return (f"{args.endpoint_id}/{ours[1]}/{ours[2]}",
                Stored(args, QueryGrantOutputs(governed_by=outcome)))

    def refresh(self, id_: str, old: State) -> State | None:
        args = old.args
        try:
            acl = Ops(self.bounded(READ_BUDGET)).serving.get_permissions(str(args.endpoint_id))
        except NotFound:
            return None  # the endpoint is gone, and its ACL with it
        except (DatabricksError, DeadlineExceeded) as exc:
            raise api_error("reading permissions", self._obj(args), exc) from None
        if old.outs.governed_by == BY_WORKSPACE:
            return old  # no entry to find
        if self._ours(args) not in direct_entries(acl):
            return None  # our entry was removed out of band
        return Stored(args, QueryGrantOutputs(governed_by=BY_ACL))

    def change(self, id_: str, old: State, new: QueryGrantArgs) -> State:
        """Only the level changes here (same endpoint, same principal): swap our entry."""
        was, now = self._ours(old.args), self._ours(new)
        if was == now or old.outs.governed_by == BY_WORKSPACE:
            return Stored(new, QueryGrantOutputs(governed_by=old.outs.governed_by or BY_ACL))

        def entries(current: list[Entry]) -> list[Entry] | None:
            if any(e[:2] == now[:2] and e != now for e in current):
                return [e for e in current if e[:2] != now[:2]] + [now]
            return None  # our principal holds nothing here any more: PATCH the new level

        outcome = self._converge(new, "changing query access",
                                 done=lambda cur: _levels_of(cur, now) == {now[2]},
                                 entries=entries)
        if outcome == GONE:
            raise ProviderError("changing query access failed", self._obj(new),
                                "the endpoint is gone: run `pulumi refresh`, then `pulumi up`")
        return Stored(new, QueryGrantOutputs(governed_by=outcome))

    def remove(self, id_: str, old: State) -> None:
        args = old.args
        if old.outs.governed_by == BY_WORKSPACE:
            return  # we never wrote an entry there
        ours = self._ours(args)
        outcome = self._converge(args, "removing query access",
                                 done=lambda cur: ours not in cur,
                                 entries=lambda cur: without(cur, ours))
        if outcome == BY_WORKSPACE:
            # The workspace took our entry once and now keeps this ACL to itself: nothing we
            # send can remove it, and failing would block every destroy.
            pulumi.log.warn(
                f"{self._obj(args)}: the workspace refused removing this entry "
                f"(403 PERMISSION_DENIED); access to Databricks' pay-per-token endpoints is "
                f"governed by Unity Catalog EXECUTE on system.ai, so the entry is left as it is: "
                f"remove it in the workspace if it matters (deleting the principal removes it "
                f"too)")

    # ------------------------------------------------------------ helpers

    def _converge(self, args: QueryGrantArgs, action: str, *,
                  done: Callable[[list[Entry]], bool],
                  entries: Callable[[list[Entry]], list[Entry] | None]) -> str:
        """Read the ACL, write, and read it again, until `done(acl)` holds; what state records.

        Every attempt is built from a read made right before it (never from one made before
        a Retry-After, a 503 or a lost answer), and no step ends before a read confirms what
        it wrote. `entries(acl)` is the whole ACL to PUT, or None to PATCH our one entry.
        Answers BY_ACL (confirmed), GONE (the endpoint is gone) or BY_WORKSPACE: a 403
        PERMISSION_DENIED to the write, on a pay-per-token endpoint, after the GET of that same
        ACL succeeded in this operation. A 401, any other 403, and every other refusal fail
        the step; 429, 503 and a lost answer are retried after a fresh read."""
        endpoint_id = str(args.endpoint_id)
        ours = self._ours(args)
        obj = self._obj(args)
        deadline = time.monotonic() + OPERATION_BUDGET
        reads = Ops(self.bounded(deadline=deadline))
        writes = Ops(self.bounded(deadline=deadline, retry=False))
        recent = is_recent(created_at_of(args.principal_created_at, args.service_principal_name))
        known_by = time.monotonic() + PROPAGATION_TIMEOUT
        attempt = confirmed_misses = 0
        last: BaseException | None = None
        with _endpoint_lock(endpoint_id):
            while True:
                try:
                    current = self._direct(reads, endpoint_id)
                except (DatabricksError, DeadlineExceeded) as exc:
                    raise api_error(action, obj, exc) from None
                if current is None:
                    return GONE
                if done(current):
                    return BY_ACL
                if confirmed_misses >= UNCONFIRMED_WRITES:
                    raise ProviderError(
                        f"{action} failed", obj,
                        "the workspace accepted the permissions write, but reading the ACL "
                        "back does not show it; nothing is recorded: run `pulumi up` again",
                        f"{UNCONFIRMED_WRITES} writes answered 200, none confirmed by a read")
                attempt += 1
                whole = entries(current)
                try:
                    if whole is None:
                        writes.serving.update_permissions(
                            endpoint_id, access_control_list=[_request(ours)])
                    else:
                        writes.serving.set_permissions(
                            endpoint_id,
                            access_control_list=[_request(e) for e in put_order(whole)])
                    confirmed_misses += 1  # until the next read shows it
                    pause = 0.0 if confirmed_misses == 1 else pause_for(None, attempt)
                except NotFound:
                    return GONE  # the endpoint went away between the two calls
                except (TooManyRequests, TemporarilyUnavailable, AnswerLost) as exc:
                    pause = pause_for(exc, attempt)  # the next attempt reads again first
                    last = exc
                except DatabricksError as exc:
                    if self._governed_by_workspace(args, exc):
                        return BY_WORKSPACE
                    if not (recent and is_unknown_principal(exc) and time.monotonic() < known_by
                            and reads.listed_principal(application_id=ours[1]) is not None):
                        raise api_error(action, obj, exc) from None
                    # A new principal the ACL API lacks yet: as `until_known` paces it.
                    pause = backoff(attempt, cap=PROPAGATION_POLL_CAP, jitter=False)
                except DeadlineExceeded as exc:
                    raise api_error(action, obj, exc) from None
                if pause >= deadline - time.monotonic():
                    raise ProviderError(
                        f"{action} failed", obj,
                        f"the workspace asked to wait {pause:.0f}s, past this step's deadline; "
                        f"nothing is recorded: run `pulumi up` again later",
                        f"the last write was answered {describe(last) if last else 'late'}")
                if pause:
                    with lent_worker(pause):  # the other resources go on meanwhile
                        time.sleep(pause)

    def _direct(self, ops: Ops, endpoint_id: str) -> list[Entry] | None:
        try:
            return direct_entries(ops.serving.get_permissions(endpoint_id))
        except NotFound:
            return None

    def _governed_by_workspace(self, args: QueryGrantArgs, exc: Exception) -> bool:
        """The workspace keeps this pay-per-token endpoint's ACL to itself: our write got 403
        PERMISSION_DENIED (the caller has just read that ACL). Never a 401 (an expired token),
        another 403, a 429 or a 5xx: those say nothing about who governs the endpoint."""
        if not (is_pay_per_token(args) and isinstance(exc, PermissionDenied)
                and getattr(exc, "error_code", None) == "PERMISSION_DENIED"):
            return False
        pulumi.log.info(
            f"{self._obj(args)}: the workspace refused the ACL write (403 PERMISSION_DENIED); "
            f"access to Databricks' pay-per-token endpoints is governed by Unity Catalog "
            f"EXECUTE on their system.ai model, which workspace users hold by default. "
            f"Recorded as governed by the workspace; `python -m components verify` proves the "
            f"principal can query it")
        return True

    @staticmethod
    def _ours(args: QueryGrantArgs) -> Entry:
        return ("service_principal_name", str(args.service_principal_name), _level(args))

    @staticmethod
    def _obj(args: QueryGrantArgs) -> str:
        return (f"{_level(args)} for {args.service_principal_name} on endpoint "
                f"{args.endpoint_name or args.endpoint_id}")


QueryGrant = resource_class(QueryGrantProvider)
