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
change to one endpoint runs under that endpoint's lock, and the GET is made right before the
PUT, so the remaining window is one round trip against changes from outside.

Pay-per-token endpoints (Databricks' own `databricks-*`) are shared by the whole workspace and
owned by Databricks. Any 4xx on writing their ACL means access is governed by the workspace
(Unity Catalog EXECUTE on system.ai, which users hold by default): `up` succeeds, the grant
records governed_by "workspace", and neither refresh nor delete writes anything for it. When
the write is accepted, delete re-reads the ACL right before its PUT, writes only if our entry is
still there, and writes every other entry exactly as read (a principal holding two levels gets
its highest last, since a PUT keeps the last level it names), so the owner loses nothing.

Retries. PATCH of our one entry and PUT of a whole ACL are idempotent, so sending one again
after a lost answer (BoundedApi does, for these methods) writes the same thing again. Every
call of one operation ends by its deadline (`_ops`).
"""

from __future__ import annotations

import threading
from typing import Any

import pulumi
from databricks.sdk.errors import (
    BadRequest,
    Cancelled,
    DatabricksError,
    NotFound,
    PermissionDenied,
    ResourceConflict,
    Unauthenticated,
)
from databricks.sdk.service.serving import (
    ServingEndpointAccessControlRequest,
    ServingEndpointPermissions,
)
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    UpdateResult,
)

from components.args import EndpointArgs, QueryGrantArgs

from ._client import DatabricksProvider
from ._errors import ProviderError, api_error
from ._ops import OPERATION_BUDGET, READ_BUDGET, DeadlineExceeded, Ops
from ._propagation import (
    PROPAGATION_TIMEOUT,
    created_at_of,
    is_recent,
    is_unknown_principal,
    until_known,
)
from ._props import diff_result, inputs_only, is_unknown

INPUT_KEYS = QueryGrantArgs.keys()  # the inputs: components/args.py
REPLACE_KEYS = QueryGrantArgs.REPLACE_KEYS  # the one table: components/args.py
DEFAULT_LEVEL = "CAN_QUERY"
PRINCIPAL_KINDS = ("user_name", "group_name", "service_principal_name")
LEVEL_RANK = {"CAN_VIEW": 1, "CAN_QUERY": 2, "CAN_MANAGE": 3}
PAY_PER_TOKEN_PREFIX = "databricks-"  # Databricks' own endpoints, in every workspace
BY_ACL, BY_WORKSPACE = "acl", "workspace"
_CLIENT_ERRORS = (BadRequest, Unauthenticated, PermissionDenied, NotFound, ResourceConflict,
                  Cancelled)
# (kind, principal, level): one direct ACL entry.
Entry = tuple[str, str, str]

_LOCKS_GUARD = threading.Lock()
_LOCKS: dict[str, threading.Lock] = {}


def _endpoint_lock(endpoint_id: str) -> threading.Lock:
    """One lock per endpoint: a PATCH must never land between our GET and our PUT."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(endpoint_id, threading.Lock())


def same_endpoint(olds: dict[str, Any], news: dict[str, Any]) -> bool:
    """In a preview, whether an endpoint whose id is unknown is the one in state, updated in
    place: same name, and the same values of the endpoint's replace keys (those both sides
    know: state written before endpoint_identity holds none, and the table may have grown)."""
    if is_unknown(news.get("endpoint_name")) or olds.get("endpoint_name") != news.get("endpoint_name"):
        return False
    old, new = olds.get("endpoint_identity") or {}, news.get("endpoint_identity") or {}
    if is_unknown(new):
        return False
    return all(old[k] == new[k] for k in EndpointArgs.REPLACE_KEYS if k in old and k in new)


def unchanged_in_preview(olds: dict[str, Any], news: dict[str, Any], key: str) -> bool:
    """An input unknown only because a preview of a dynamic provider hands no output on (Pulumi
    passes no `stables` to it), where `up` keeps the value: an endpoint updated in place keeps
    its id; the principal has no replace keys, so an unknown application id is a principal being
    updated (a rename), which keeps it."""
    if not is_unknown(news.get(key)):
        return False
    if key == "endpoint_id":
        return same_endpoint(olds, news)
    return key == "service_principal_name" and bool(olds.get(key))


def diff_grant(olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
    def level(p: dict[str, Any]) -> Any:
        return p.get("permission_level") or DEFAULT_LEVEL

    replaces = [k for k in REPLACE_KEYS if not unchanged_in_preview(olds, news, k)
                and (is_unknown(news.get(k)) or olds.get(k) != news.get(k))]
    changed = list(replaces)
    if is_unknown(news.get("permission_level")) or level(olds) != level(news):
        changed.append("permission_level")
    return diff_result(changed, replaces, delete_before_replace=False)


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


def is_pay_per_token(inputs: dict[str, Any]) -> bool:
    return str(inputs.get("endpoint_name") or "").startswith(PAY_PER_TOKEN_PREFIX)


def _request(entry: Entry) -> ServingEndpointAccessControlRequest:
    kind, who, level = entry
    return ServingEndpointAccessControlRequest.from_dict({kind: who, "permission_level": level})


class QueryGrantProvider(DatabricksProvider):
    """update_permissions to add, get + set_permissions (ours removed) to delete."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs = inputs_only(news, INPUT_KEYS)
        inputs.setdefault("permission_level", DEFAULT_LEVEL)
        failures = []
        for key in ("endpoint_id", "service_principal_name"):
            v = inputs.get(key)
            if v is None or (not is_unknown(v) and not str(v)):
                failures.append(CheckFailure(key, "is required"))
        return CheckResult(inputs, failures)

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff_grant(olds, news)

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = inputs_only(props, INPUT_KEYS)
        ours = self._ours(inputs)
        endpoint_id = inputs["endpoint_id"]
        governed_by = BY_ACL
        ops = Ops(self.bounded(OPERATION_BUDGET))
        with _endpoint_lock(endpoint_id):
            try:
                current = self._direct(ops, endpoint_id) or []
                # The principal is this stack's: another level it holds here (raised or lowered
                # out of band) is swapped for ours, since PATCH never lowers a level.
                stale = [e for e in current if e[:2] == ours[:2] and e != ours]
                if stale:
                    entries = [e for e in current if e not in stale and e != ours] + [ours]
                    self._write(ops, inputs, lambda: ops.serving.set_permissions(
                        endpoint_id, access_control_list=[_request(e) for e in put_order(entries)]))
                else:
                    self._write(ops, inputs, lambda: ops.serving.update_permissions(
                        endpoint_id, access_control_list=[_request(ours)]))
            except (DatabricksError, DeadlineExceeded) as exc:
                if not self._governed_by_workspace(inputs, exc):
                    raise api_error("granting query access", self._obj(inputs), exc) from None
                governed_by = BY_WORKSPACE
        return CreateResult(f"{endpoint_id}/{ours[1]}/{ours[2]}",
                            {**inputs, "governed_by": governed_by})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        inputs = inputs_only(props, INPUT_KEYS)
        try:
            acl = Ops(self.bounded(READ_BUDGET)).serving.get_permissions(inputs["endpoint_id"])
        except NotFound:
            return ReadResult("", {})  # the endpoint is gone, and its ACL with it
        except (DatabricksError, DeadlineExceeded) as exc:
            raise api_error("reading permissions", self._obj(inputs), exc) from None
        if props.get("governed_by") == BY_WORKSPACE:
            return ReadResult(id_, {**inputs, "governed_by": BY_WORKSPACE})  # no entry to find
        if self._ours(inputs) not in direct_entries(acl):
            return ReadResult("", {})  # our entry was removed out of band
        return ReadResult(id_, {**inputs, "governed_by": BY_ACL})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Only the level changes here (same endpoint, same principal): swap our entry."""
        inputs = inputs_only(news, INPUT_KEYS)
        old, new = self._ours(olds), self._ours(inputs)
        if old == new or olds.get("governed_by") == BY_WORKSPACE:
            return UpdateResult({**inputs, "governed_by": olds.get("governed_by") or BY_ACL})
        endpoint_id = inputs["endpoint_id"]
        ops = Ops(self.bounded(OPERATION_BUDGET))
        with _endpoint_lock(endpoint_id):
            try:
                current = self._direct(ops, endpoint_id)
                if current is None:
                    raise ProviderError("changing query access failed", self._obj(inputs),
                                        "the endpoint is gone: run `pulumi refresh`, then "
                                        "`pulumi up`")
                if old in current:
                    entries = [e for e in without(current, old) if e != new] + [new]
                    self._write(ops, inputs, lambda: ops.serving.set_permissions(
                        endpoint_id, access_control_list=[_request(e) for e in put_order(entries)]))
                else:
                    self._write(ops, inputs, lambda: ops.serving.update_permissions(
                        endpoint_id, access_control_list=[_request(new)]))
            except (DatabricksError, DeadlineExceeded) as exc:
                if not self._governed_by_workspace(inputs, exc):
                    raise api_error("changing query access", self._obj(inputs), exc) from None
                return UpdateResult({**inputs, "governed_by": BY_WORKSPACE})
        return UpdateResult({**inputs, "governed_by": BY_ACL})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        inputs = inputs_only(props, INPUT_KEYS)
        if props.get("governed_by") == BY_WORKSPACE:
            return  # we never wrote an entry there
        endpoint_id = inputs["endpoint_id"]
        ours = self._ours(inputs)
        obj = self._obj(inputs)
        ops = Ops(self.bounded(OPERATION_BUDGET))
        with _endpoint_lock(endpoint_id):
            try:
                # Read right before the PUT, so the window for an outside change is one
                # round trip; inside this process the lock closes it.
                current = self._direct(ops, endpoint_id)
                if current is None or ours not in current:
                    return  # endpoint or entry already gone: nothing to write
                rest = put_order(without(current, ours))
                ops.serving.set_permissions(
                    endpoint_id, access_control_list=[_request(e) for e in rest])
            except NotFound:
                return  # the endpoint went away between the two calls
            except (DatabricksError, DeadlineExceeded) as exc:
                if self._refused_on_shared(inputs, exc):
                    # The workspace took our entry once and now keeps this ACL to itself:
                    # nothing we send can remove it, and failing would block every destroy.
                    pulumi.log.warn(
                        f"{obj}: the workspace refused removing this entry "
                        f"({type(exc).__name__}); access to Databricks' pay-per-token endpoints "
                        f"is governed by Unity Catalog EXECUTE on system.ai, so the entry is "
                        f"left as it is: remove it in the workspace if it matters (deleting the "
                        f"principal removes it too)")
                    return
                raise api_error("removing query access", obj, exc) from None

    # ------------------------------------------------------------ helpers

    def _direct(self, ops: Ops, endpoint_id: str) -> list[Entry] | None:
        try:
            return direct_entries(ops.serving.get_permissions(endpoint_id))
        except NotFound:
            return None

    def _write(self, ops: Ops, inputs: dict[str, Any], call: Any) -> None:
        """An ACL write, retried while the workspace does not know a just-created principal."""
        recent = is_recent(created_at_of(inputs, "service_principal_name"))
        app_id = str(inputs.get("service_principal_name"))
        until_known(call, recent=recent, principal=f"service principal {app_id}",
                    listed=lambda: self._principal_listed(ops, app_id),
                    timeout=ops.left(PROPAGATION_TIMEOUT))

    def _principal_listed(self, ops: Ops, app_id: str) -> bool:
        try:
            found = list(ops.scim.list(filter=f'applicationId eq "{app_id}"'))
        except (DatabricksError, DeadlineExceeded) as exc:
            raise api_error("listing service principals", f"service principal {app_id}",
                            exc) from None
        return any(sp.application_id == app_id for sp in found)

    @staticmethod
    def _refused_on_shared(inputs: dict[str, Any], exc: Exception) -> bool:
        """A 4xx to an ACL write on a pay-per-token endpoint that is not about our principal:
        the workspace keeps that shared endpoint's ACL to itself."""
        if not is_pay_per_token(inputs) or not isinstance(exc, _CLIENT_ERRORS):
            return False
        return not is_unknown_principal(exc)  # a missing principal is an error anywhere

    def _governed_by_workspace(self, inputs: dict[str, Any], exc: Exception) -> bool:
        """A pay-per-token endpoint refused our ACL write: the workspace governs its access."""
        if not self._refused_on_shared(inputs, exc):
            return False
        pulumi.log.info(
            f"{self._obj(inputs)}: the workspace refused the ACL write ({type(exc).__name__}); "
            f"access to Databricks' pay-per-token endpoints is governed by Unity Catalog "
            f"EXECUTE on their system.ai model, which workspace users hold by default. "
            f"Recorded as governed by the workspace; `python -m components verify` proves the "
            f"principal can query it")
        return True

    @staticmethod
    def _ours(inputs: dict[str, Any]) -> Entry:
        return ("service_principal_name", str(inputs["service_principal_name"]),
                str(inputs.get("permission_level") or DEFAULT_LEVEL))

    @staticmethod
    def _obj(inputs: dict[str, Any]) -> str:
        return (f"{inputs.get('permission_level') or DEFAULT_LEVEL} for "
                f"{inputs.get('service_principal_name')} on endpoint "
                f"{inputs.get('endpoint_name') or inputs.get('endpoint_id')}")


class QueryGrant(Resource, module="databricks-braintrust", name="QueryGrant"):
    """One permission entry on one endpoint for the query principal."""

    def __init__(self, resource_name: str, props: dict[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(QueryGrantProvider(), resource_name, dict(props), opts)
