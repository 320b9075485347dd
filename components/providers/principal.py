"""The service principal Braintrust queries as, created through the workspace SCIM API.

Inputs: ServicePrincipalArgs (components/args.py).
Outputs: every input, plus principal_id (numeric SCIM id), application_id (a UUID),
  created_at (RFC 3339: when this stack created or adopted it; the secret and the grants retry
  a "principal not known yet" refusal only while it is recent) and not_adopted_ids (principals
  of the same name create found and could not prove its own: also in state, not only in a
  warning a CI log may scroll past).

Diff rules: display_name, external_id, entitlements (a set) -> update in place through SCIM
PATCH; nothing forces a replacement (a new principal would need new grants and secret).

Ownership. Create adopts an existing principal of the same display name only when it carries
our marker as externalId (of several, the one in use: it has secrets; an orphan never got
one). One with another marker is someone else's: create fails and says so.
One with no externalId at all cannot be proven ours (made by hand, or a workspace that does not
store externalId): it is never adopted; create makes a new principal and warns with its id.

Lost answers. SCIM allows two principals of one name, and databricks-sdk re-sends a POST whose
answer was lost, so the create goes through BoundedApi, which does not (`_ops`): before each
attempt the principals of that name are listed, and a principal that appeared since the first
listing was made by this operation: it is kept instead of sending again, and any other one
that appeared is deleted, so exactly one remains whatever number of answers was lost.

Propagation. Right after a create, SCIM get by id may answer 404 and omit displayName while
the list already shows the principal: read checks the list before declaring it gone, and a
missing displayName (or externalId) is not drift.
"""

from __future__ import annotations

import dataclasses

import pulumi
from databricks.sdk.errors import DatabricksError, NotFound
from databricks.sdk.service.iam import ComplexValue, Patch, PatchOp, PatchSchema
from databricks.sdk.service.iam import ServicePrincipal as ScimPrincipal
from pulumi.dynamic import (
    CheckFailure,
    DiffResult,
)

from components.args import SERVICE_PRINCIPAL, ServicePrincipalArgs, ServicePrincipalOutputs

from ._client import DatabricksProvider
from ._contract import DELETE_TRIES, ContractProvider, Stored, resource_class
from ._errors import ProviderError, api_error
from ._ops import (
    MAX_ATTEMPTS,
    OPERATION_BUDGET,
    READ_BUDGET,
    AnswerLost,
    DeadlineExceeded,
    Ops,
    scim_string,
)
from ._propagation import (
    PROPAGATION_TIMEOUT,
    is_recent,
    now_rfc3339,
    remember_created,
    until_known,
)
from ._props import diff_result, is_unknown
from ._wait import Done, Pending, wait_for

State = Stored[ServicePrincipalArgs, ServicePrincipalOutputs]
PATCH_SCHEMA = [PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP]


def diff_principal(old: ServicePrincipalArgs, new: ServicePrincipalArgs) -> DiffResult:
    changed = []
    for key in SERVICE_PRINCIPAL.input_keys():
        value = getattr(new, key)
        if is_unknown(value):
            changed.append(key)
        elif key == "entitlements":
            if set(old.entitlements or ()) != set(value or ()):
                changed.append(key)
        elif getattr(old, key) != value:
            changed.append(key)
    return diff_result(changed, [])


def _entitlements(sp: ScimPrincipal) -> set[str]:
    return {e.value for e in sp.entitlements or [] if e.value}


def _by_id(sps: list[ScimPrincipal]) -> list[ScimPrincipal]:
    return sorted(sps, key=lambda sp: (len(str(sp.id)), str(sp.id)))


class ServicePrincipalProvider(DatabricksProvider, ContractProvider[ServicePrincipalArgs, ServicePrincipalOutputs]):
    """SCIM create / get / patch / delete of one service principal."""

    CONTRACT = SERVICE_PRINCIPAL

    def validate(self, args: ServicePrincipalArgs) -> list[CheckFailure]:
        failures = []
        for key in ("display_name", "external_id"):
            v = getattr(args, key)
            if not is_unknown(v) and (not isinstance(v, str) or not v.strip()):
                failures.append(CheckFailure(key, "must be a non-empty string"))
        return failures

    def compare(self, id_: str, old: State, new: ServicePrincipalArgs) -> DiffResult:
        return diff_principal(old.args, new)

    def make(self, args: ServicePrincipalArgs) -> tuple[str, State]:
        name, marker = args.display_name, args.external_id
        obj = f"service principal {name!r}"
        ops = Ops(self.bounded(OPERATION_BUDGET))
        named = self._named(ops, name)
        ours = _by_id([sp for sp in named if sp.external_id == marker])
        if ours:
            # A run died after creating it: adopt it and bring it to the inputs.
            sp = self._in_use(ops, ours) if len(ours) > 1 else ours[0]
            pulumi.log.info(f"{obj} already exists with marker {marker!r}: adopting {sp.id}")
            if len(ours) > 1:
                rest = ", ".join(str(o.id) for o in ours if o.id != sp.id)
                pulumi.log.warn(f"{obj}: more principals carry this stack's marker ({rest}); "
                                f"adopted {sp.id}, the one in use, and left the others alone: "
                                f"delete them if nothing uses them")
            current = ServicePrincipalArgs(
                display_name=sp.display_name or "", external_id=sp.external_id or "",
                entitlements=tuple(sorted(_entitlements(sp) & set(args.entitlements or ()))))
            # Adopted after a crash, so it may be new enough to be unknown by id for a while.
            self._patch(ops, str(sp.id), current, args, recent=True)
        else:
            foreign = [o for o in named if o.external_id]
            if foreign:
                raise ProviderError(
                    "a service principal with this display name exists without this stack's "
                    "marker", f"service principal {name!r} (id {foreign[0].id})",
                    f"choose another principal.display_name in the stack file, or, if it is "
                    f"this stack's, set its externalId to {marker!r}; it is never taken over",
                )
            sp = self._create_once(ops, args, {str(o.id) for o in named})
            if named:
                # No externalId: nothing proves it is ours (made by hand, or a workspace that
                # does not keep externalId and a state lost in a crash). Never adopted.
                pulumi.log.warn(
                    f"{obj}: created a new one ({sp.id}); the existing "
                    f"{', '.join(str(o.id) for o in named)} of the same name carries no "
                    f"externalId, so nothing proves it is this stack's and it was left alone: "
                    f"delete it if it is a leftover of this stack")
        created_at = now_rfc3339()
        remember_created(str(sp.id), sp.application_id, created_at)
        outs = ServicePrincipalOutputs(
            principal_id=str(sp.id), application_id=sp.application_id, created_at=created_at,
            not_adopted_ids=tuple(sorted(str(o.id) for o in named
                                         if o.id != sp.id and o.external_id != marker)))
        return str(sp.id), Stored(args, outs)

    def refresh(self, id_: str, old: State) -> State | None:
        propagating = False
        ops = Ops(self.bounded(READ_BUDGET))
        try:
            sp = ops.scim.get(id_)
        except NotFound:
            # Just created, SCIM get may still answer 404 while the list shows it.
            listed = self._listed(ops, id_, old.outs.application_id)
            if listed is None:
                return None
            sp, propagating = listed, True
        except (DatabricksError, DeadlineExceeded) as exc:
            raise api_error("reading the service principal", f"service principal {id_}",
                            exc) from None
        args = old.args
        # Missing is not changed: a new principal's answer may lack displayName, and a workspace
        # may not store externalId at all; neither is drift to "repair" forever.
        if sp.display_name:
            args = dataclasses.replace(args, display_name=sp.display_name)
        if sp.external_id:
            args = dataclasses.replace(args, external_id=sp.external_id)
        if not propagating:
            # Only the entitlements we manage; someone else's are not drift.
            have = _entitlements(sp)
            args = dataclasses.replace(
                args, entitlements=tuple(e for e in args.entitlements or () if e in have))
        outs = dataclasses.replace(old.outs, principal_id=str(sp.id),
                                   application_id=sp.application_id or old.outs.application_id)
        return Stored(args, outs)

    def change(self, id_: str, old: State, new: ServicePrincipalArgs) -> State:
        self._patch(Ops(self.bounded(OPERATION_BUDGET)), id_, old.args, new,
                    recent=is_recent(old.outs.created_at))
        return Stored(new, old.outs)

    def remove(self, id_: str, old: State) -> None:
        self._delete(Ops(self.bounded(OPERATION_BUDGET)), id_,
                     f"service principal {old.args.display_name!r} ({id_})")

    # ------------------------------------------------------------ helpers

    def _named(self, ops: Ops, name: str) -> list[ScimPrincipal]:
        """Principals of this display name (exactly; SCIM compares it case-insensitively). One
        without displayName is included: a principal just created may be listed without it."""
        try:
            found = list(ops.scim.list(filter=f"displayName eq {scim_string(name)}"))
        except (DatabricksError, DeadlineExceeded) as exc:
            raise api_error("listing service principals", f"service principal {name!r}",
                            exc, "the identity running `pulumi up` must be a workspace admin"
                            ) from None
        return [sp for sp in found if sp.display_name in (name, None)]

    def _in_use(self, ops: Ops, candidates: list[ScimPrincipal]) -> ScimPrincipal:
        """Of several principals with our marker (left by an older version after a lost
        answer), the one the stack used: an orphan never got a secret, the one in state did.
        Ties go to the lowest id."""
        def secrets(sp: ScimPrincipal) -> int:
            try:
                return len(list(ops.secrets.list(str(sp.id))))
            except (DatabricksError, DeadlineExceeded):
                return 0  # unknown to the secrets API (yet): it has none we could use
        return max(_by_id(candidates), key=secrets)  # max keeps the first of equals

    @staticmethod
    def _listed(ops: Ops, id_: str, application_id: str | None) -> ScimPrincipal | None:
        return ops.listed_principal(scim_id=id_, application_id=application_id or None)

    def _create_once(self, ops: Ops, args: ServicePrincipalArgs, before: set[str]) -> ScimPrincipal:
        """POST, never re-sent blindly; after a lost answer, list before sending again."""
        name = args.display_name
        obj = f"service principal {name!r}"
        kept: ScimPrincipal | None = None
        lost = 0
        try:
            for _ in range(MAX_ATTEMPTS):
                try:
                    kept = ops.scim.create(
                        display_name=name,
                        external_id=args.external_id,
                        active=True,
                        # No entitlements unless the stack asks: the principal only queries.
                        entitlements=[ComplexValue(value=e) for e in args.entitlements or ()] or None,
                    )
                    break
                except AnswerLost:
                    lost += 1
                    made = self._made_since(ops, name, before)
                    if made:
                        kept = made[0]
                        pulumi.log.info(f"{obj}: the answer to its create was lost; the "
                                        f"workspace had made it ({kept.id}): kept")
                        break
                    # Nothing appeared: the request never reached the workspace. Send again.
                except (DatabricksError, DeadlineExceeded) as exc:
                    raise api_error("creating the service principal", obj, exc,
                                    "the identity running `pulumi up` must be a workspace admin"
                                    ) from None
            if kept is None:
                raise ProviderError(
                    "creating the service principal failed", obj,
                    "the workspace did not answer and made nothing; check the network to "
                    "the workspace, then run `pulumi up` again",
                    f"{MAX_ATTEMPTS} attempts, every answer lost")
        finally:
            if lost:
                # Whatever else this operation made (a re-send the workspace did handle) goes;
                # after a failure, everything it made goes: the next run starts clean.
                keep = str(kept.id) if kept is not None else None
                for extra in self._made_since(ops, name, before):
                    if str(extra.id) != keep:
                        self._delete(ops, str(extra.id), f"{obj} ({extra.id})")
                        pulumi.log.info(f"{obj}: deleted {extra.id}, a duplicate made by a "
                                        f"create whose answer was lost")
        return kept

    def _made_since(self, ops: Ops, name: str, before: set[str]) -> list[ScimPrincipal]:
        return _by_id([sp for sp in self._named(ops, name) if str(sp.id) not in before])

    def _delete(self, ops: Ops, id_: str, obj: str) -> None:
        """Delete, also when SCIM still answers 404 for a principal it has just made."""
        unconfirmed = 0

        def attempt() -> Done[None] | Pending:
            nonlocal unconfirmed
            try:
                ops.scim.delete(id_)
                # Read after write (issue 21): a delete answered but never applied would let
                # state forget a principal the workspace still holds. The list (which shows
                # a new principal SCIM does not know by id yet) must no longer show it.
                if self._listed(ops, id_, None) is None:
                    return Done(None)
            except NotFound:
                if self._listed(ops, id_, None) is None:
                    return Done(None)  # already gone
                return Pending("the workspace lists it but does not know it by id yet")
            except (DatabricksError, DeadlineExceeded) as exc:
                raise api_error("deleting the service principal", obj, exc) from None
            unconfirmed += 1
            if unconfirmed >= DELETE_TRIES:
                raise ProviderError(
                    "service principal not deleted", obj,
                    f"the workspace answered {DELETE_TRIES} deletes but still lists it; delete it "
                    "in the workspace (Settings, Identity and access) or run `pulumi destroy` "
                    "again")
            return Pending("the workspace answered the delete but still lists it")

        wait_for(attempt, what="the workspace to delete the new principal", obj=obj,
                 timeout=ops.left(PROPAGATION_TIMEOUT))

    def _patch(self, ops: Ops, id_: str, old: ServicePrincipalArgs, new: ServicePrincipalArgs,
               recent: bool) -> None:
        changes: list[Patch] = []
        if old.display_name != new.display_name:
            changes.append(Patch(op=PatchOp.REPLACE, path="displayName", value=new.display_name))
        if old.external_id != new.external_id:
            changes.append(Patch(op=PatchOp.REPLACE, path="externalId", value=new.external_id))
        old_e, new_e = set(old.entitlements or ()), set(new.entitlements or ())
        if new_e - old_e:
            changes.append(Patch(op=PatchOp.ADD, path="entitlements",
                             value=[{"value": e} for e in sorted(new_e - old_e)]))
        for e in sorted(old_e - new_e):  # only ones we set before
            changes.append(Patch(op=PatchOp.REMOVE, path=f"entitlements[value eq {scim_string(e)}]"))
        if not changes:
            return
        obj = f"service principal {new.display_name!r} ({id_})"
        # Read after write (issue 21): a rename answered but never applied would leave state
        # naming the principal as the workspace does not. A GET must show the new name (one
        # without a displayName, or a 404, is a principal still propagating: not a refusal);
        # the PATCH (idempotent: replace, add, remove) is sent again at most DELETE_TRIES times.
        for _ in range(DELETE_TRIES):
            try:
                until_known(
                    lambda: ops.scim.patch(id_, operations=changes, schemas=PATCH_SCHEMA),
                    recent=recent, principal=f"service principal {id_}",
                    listed=lambda: self._listed(ops, id_, None) is not None,
                    timeout=ops.left(PROPAGATION_TIMEOUT))
                if old.display_name == new.display_name:
                    return
                try:
                    shown = ops.scim.get(id_).display_name
                except NotFound:
                    return
                if shown in (None, new.display_name):
                    return
            except (DatabricksError, DeadlineExceeded) as exc:
                raise api_error("updating the service principal", obj, exc) from None
        raise ProviderError(
            "service principal not renamed", obj,
            f"the workspace answered {DELETE_TRIES} renames but still names it {old.display_name!r}; "
            "run `pulumi up` again")


ServicePrincipal = resource_class(ServicePrincipalProvider)
