"""A workspace-level OAuth secret of the query principal (machine-to-machine credentials).

Inputs: OAuthSecretArgs (components/args.py). While principal_created_at is recent, a
  "principal not known yet" refusal is retried.
Outputs: every input, plus secret_id, client_id (= application_id), client_secret (SECRET: the
  resource registers it in additional_secret_outputs), expire_time, status, and
  unmanaged_secret_ids (the principal's other secrets, which this stack never touches: in
  state as well as in a warning, which a CI log may scroll past; the warning is the provider
  process's stderr, which the Pulumi CLI shows for dynamic providers).

Diff rules (terraform's databricks_service_principal_secret, plus rotation):
  service_principal_id, application_id, lifetime_days, scopes (a set) -> replace
  expire_time within rotate_before_days of now, or status no longer ACTIVE -> replace
  rotate_before_days alone -> no change
"Now" is the workspace's clock (`_clock`: the Date header of its answers), never the
deployer's: expire_time is the workspace's time, and a machine clock days off would rotate on
every `up` or too late. A diff costs at most one read per provider process for that.
Every replacement creates the new secret first and deletes the old one after
(delete_before_replace False), so Braintrust is never left without a working secret.
`read` finding the secret gone reports it deleted: the next `pulumi up` creates a new one.

Lost answers. A secret has no name and its value is only in the create's answer, so a secret
whose answer was lost can never be used: create lists the principal's secrets before the
attempt, sends through BoundedApi, which never re-sends a POST (`_ops`), and after a lost
answer deletes every secret that appeared since (logging their ids, never a value) before
sending again.

Orphans of a run that died (issue 21). A run killed between the secret's create and its state
being saved leaves a secret on the stack's own principal (proven by the principal's marker)
that state does not know. Its value was only in that run's memory, so it cannot be adopted.
Every secret this project makes is signed: it lives SIGNATURE seconds less than whole days,
and the workspace reports that lifetime back (expire_time minus create_time). A secret made by
hand (whole days or hours, the 730-day default) has no signature and is never removed, only
reported in unmanaged_secret_ids.
Which signed secret is an orphan only state can say, and create is handed none of it (a
rotation's old secret is signed too, and still in use). So orphans are removed by the stack's
OAuthSecretSweep resource, below: its inputs are the principal and the live secret's id, it
runs after the readiness gate, the grants and the Braintrust record (so after Braintrust has
switched to the live secret), and it deletes every signed secret of the principal except the
live one and, in an update, the one its previous run kept (a rotation's old secret, which the
replace's own delete step removes). Every successful `up` therefore ends with no orphan: any
signed secret present at a later create was made after the one state holds. No provider keeps
anything in process memory between calls, and every diff is pure.

The five-secret cap. Databricks allows five secrets per principal; the stack holds at most two
(old and new, during a rotation). A create that finds five fails before writing: it names the
hand-made ones, and the signed ones (the secret state holds, exported as principal_secret_id,
and orphans), with how to delete one. It never makes room itself: which signed secret is in
use only state can say (a failed rotation leaves the live secret newer than an orphan), and
deleting the one Braintrust uses would stop every query. Orphans reach the cap only when
several runs died with no successful `up` between them, since each one ends with the sweep.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

import pulumi
from databricks.sdk.errors import DatabricksError, NotFound
from databricks.sdk.service.oauth2 import (
    CreateServicePrincipalSecretResponse,
    SecretInfo,
)
from pulumi.dynamic import CheckFailure, DiffResult

from components import transport
from components.args import (
    OAUTH_SECRET,
    SECRET_SWEEP,
    OAuthSecretArgs,
    OAuthSecretOutputs,
    SecretSweepArgs,
    SecretSweepOutputs,
)

from ._client import DatabricksProvider
from ._clock import host_of, workspace_now
from ._contract import DELETE_TRIES, ContractProvider, Stored, resource_class
from ._errors import ProviderError, api_error
from ._ops import MAX_ATTEMPTS, OPERATION_BUDGET, READ_BUDGET, AnswerLost, DeadlineExceeded, Ops
from ._propagation import (
    PROPAGATION_TIMEOUT,
    created_at_of,
    is_recent,
    is_unknown_principal,
    until_known,
)
from ._props import diff_result, is_unknown, whole

State = Stored[OAuthSecretArgs, OAuthSecretOutputs]
DAY = 86400
MAX_SECRETS = 5  # per principal (Databricks' OAuth docs)
# The project's secrets live SIGNATURE seconds (1 h 10 min 42 s) less than lifetime_days: a
# signature in the secret itself, read back from create_time and expire_time, that tells an
# orphan of a run that died (removed by the stack's sweep) from a secret made by hand (never
# touched). SLACK allows for the two times being stamped a moment apart.
SIGNATURE = 4242
SLACK = 2.0

def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_time(value: Any) -> dt.datetime | None:
    """expire_time as the API gives it: RFC 3339 text, or epoch seconds / milliseconds."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        seconds = float(value)
        if seconds > 1e11:  # milliseconds
            seconds /= 1000
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _canonical(args: OAuthSecretArgs, key: str) -> Any:
    value = getattr(args, key)
    if key == "scopes" and not is_unknown(value):
        return sorted(set(value or []))  # None and [] both mean unrestricted
    return whole(value)


def due_for_rotation(old: State, new: OAuthSecretArgs,
                     now: dt.datetime | Callable[[], dt.datetime]) -> bool:
    """True when the stored secret expires within rotate_before_days, or is not usable.

    `now` is the workspace's time (`_clock`): expire_time is on its clock. A callable is only
    called when the answer depends on it, so a secret not due asks nothing else."""
    if old.outs.status not in (None, "", "ACTIVE"):
        return True
    expires = parse_time(old.outs.expire_time)
    if expires is None:
        return False  # unknown expiry: never rotate on a guess
    window = new.rotate_before_days
    if is_unknown(window):
        return False
    span = dt.timedelta(days=float(window or 0))
    lifetime = new.lifetime_days
    if isinstance(lifetime, int | float) and not isinstance(lifetime, bool):
        # A new secret lives SIGNATURE seconds less than lifetime_days: a window within an
        # hour of the whole lifetime would find every new secret due, and rotate on every up.
        span = min(span, dt.timedelta(seconds=lifetime_seconds(lifetime) - 3600))
    current = now() if callable(now) else now
    return expires - current <= span


# The principal's ids: unknown in a preview only while the principal is updated (a rename),
# since it has no replace keys (SERVICE_PRINCIPAL.replace_keys is empty); `up` keeps them.
# Pulumi passes no `stables` to a dynamic provider, so the preview cannot know it otherwise.
PRINCIPAL_IDS = ("service_principal_id", "application_id")


def _kept_in_preview(old: State, new: OAuthSecretArgs, key: str) -> bool:
    return key in PRINCIPAL_IDS and is_unknown(getattr(new, key)) and bool(getattr(old.args, key))


def diff_secret(old: State, new: OAuthSecretArgs,
                now: Callable[[], dt.datetime] = _now) -> DiffResult:
    replaces = [k for k in OAUTH_SECRET.replace_keys if not _kept_in_preview(old, new, k)
                and (is_unknown(getattr(new, k)) or _canonical(old.args, k) != _canonical(new, k))]
    if due_for_rotation(old, new, now):
        replaces.append("expire_time")
    return diff_result(replaces, replaces, delete_before_replace=False)


def lifetime_seconds(lifetime_days: float) -> int:
    """What create asks for: the lifetime, less SIGNATURE seconds (see `is_signed`)."""
    return max(1, int(float(lifetime_days) * DAY) - SIGNATURE)


def is_signed(info: SecretInfo) -> bool:
    """Made by this project's create: its lifetime, as the workspace reports it (expire_time
    minus create_time), is a whole number of days less SIGNATURE seconds, within SLACK. A
    secret made by hand (the UI, the CLI, the API with the default or a lifetime of whole
    days or hours) never has that lifetime."""
    created, expires = parse_time(info.create_time), parse_time(info.expire_time)
    if created is None or expires is None:
        return False
    past_days = (expires - created).total_seconds() % DAY
    return abs(past_days - (DAY - SIGNATURE)) <= SLACK


class _PrincipalSecrets(DatabricksProvider):
    """The calls on a principal's secrets both providers below make."""

    def _delete(self, ops: Ops, sp_id: str, secret_id: str, recent: bool) -> None:
        obj = f"secret {secret_id} of service principal {sp_id}"
        # Read after write (issue 21): a delete answered but never applied would leave an
        # active secret (one of the principal's five) that state no longer knows. The list
        # must no longer show it; the DELETE is sent again at most DELETE_TRIES times.
        for _ in range(DELETE_TRIES):
            try:
                # A 404 for a principal still unknown to this API is not "already deleted".
                until_known(lambda: ops.secrets.delete(sp_id, secret_id),
                            recent=recent, principal=f"service principal {sp_id}",
                            listed=lambda: self._principal_listed(ops, sp_id),
                            timeout=ops.left(PROPAGATION_TIMEOUT))
                if secret_id not in {str(s.id) for s in ops.secrets.list(sp_id)}:
                    return
            except NotFound:
                return
            except (DatabricksError, DeadlineExceeded) as exc:
                raise api_error("deleting an OAuth secret", obj, exc) from None
        raise ProviderError(
            "OAuth secret not deleted", obj,
            f"the workspace answered {DELETE_TRIES} deletes but still lists it; delete it in the "
            "workspace (the principal's Secrets tab) or run `pulumi destroy` again")

    def _list(self, ops: Ops, sp_id: str, recent: bool) -> list[SecretInfo]:
        try:
            return until_known(lambda: list(ops.secrets.list(sp_id)),
                               recent=recent, principal=f"service principal {sp_id}",
                               listed=lambda: self._principal_listed(ops, sp_id),
                               timeout=ops.left(PROPAGATION_TIMEOUT))
        except (DatabricksError, DeadlineExceeded) as exc:
            raise api_error("listing OAuth secrets", f"service principal {sp_id}", exc) from None

    def _sweep(self, ops: Ops, sp_id: str, before: set[str], keep: str | None) -> None:
        """Delete the secrets that appeared since `before`, except `keep`: this operation made
        them, and their values were lost with the answers."""
        for s in self._list(ops, sp_id, recent=False):
            if s.id and str(s.id) not in before and str(s.id) != keep:
                self._delete(ops, sp_id, str(s.id), recent=False)
                pulumi.log.info(f"deleted OAuth secret {s.id} of service principal {sp_id}: made "
                                f"by a create whose answer was lost")

    def _remove_orphans(self, ops: Ops, sp_id: str, orphans: list[str]) -> None:
        """Delete secrets of this stack's principal that carry the project's signature and
        that state does not know: made by a create whose run died before its state was saved.
        Their values were only in that run's memory, so they cannot be adopted, and nobody
        can be using them; a hand-made secret carries no signature and is never touched."""
        for secret_id in orphans:
            self._delete(ops, sp_id, secret_id, recent=False)
            pulumi.log.warn(f"deleted OAuth secret {secret_id} of service principal {sp_id}: "
                            f"made by this stack in a run that died before saving its state")

    @staticmethod
    def _principal_listed(ops: Ops, sp_id: str) -> bool:
        return ops.listed_principal(scim_id=sp_id) is not None


class OAuthSecretProvider(_PrincipalSecrets, ContractProvider[OAuthSecretArgs, OAuthSecretOutputs]):
    """create / list / delete through w.service_principal_secrets_proxy."""

    CONTRACT = OAUTH_SECRET

    def validate(self, args: OAuthSecretArgs) -> list[CheckFailure]:
        failures = []
        lifetime, rotate = args.lifetime_days, args.rotate_before_days
        if rotate is None:
            rotate = 0
        if not is_unknown(lifetime) and (not isinstance(lifetime, int | float) or lifetime <= 0):
            failures.append(CheckFailure("lifetime_days", "must be a positive number of days"))
        elif (not is_unknown(rotate) and not is_unknown(lifetime)
              and (not isinstance(rotate, int | float) or not isinstance(lifetime, int | float)
                   or not 0 <= rotate < lifetime)):
            failures.append(CheckFailure("rotate_before_days",
                                         "must be at least 0 and less than lifetime_days"))
        return failures

    def compare(self, id_: str, old: State, new: OAuthSecretArgs) -> DiffResult:
        host = host_of(self._creds.host if self._creds else None)
        return diff_secret(old, new, now=lambda: workspace_now(host))

    def make(self, args: OAuthSecretArgs) -> tuple[str, State]:
        sp_id = str(_canonical(args, "service_principal_id"))
        obj = f"service principal {sp_id}"
        ops = Ops(self.bounded(OPERATION_BUDGET))
        recent = is_recent(created_at_of(args.principal_created_at, sp_id))
        seconds = lifetime_seconds(args.lifetime_days)
        listed = self._list(ops, sp_id, recent)
        before = {str(s.id) for s in listed if s.id}
        if len(before) >= MAX_SECRETS:
            # Never make room by deleting: a signed secret may be the one state holds, which
            # Braintrust uses, and only state (which a create is not handed) can tell.
            raise self._cap_error(sp_id, [s for s in listed if str(s.id) in before])

        def send() -> CreateServicePrincipalSecretResponse:
            return until_known(
                lambda: ops.secrets.create(sp_id, lifetime=f"{seconds}s",
                                           scopes=list(args.scopes or ()) or None),
                recent=recent, principal=obj, listed=lambda: self._principal_listed(ops, sp_id),
                timeout=ops.left(PROPAGATION_TIMEOUT))

        res: CreateServicePrincipalSecretResponse | None = None
        lost = False
        try:
            for _ in range(MAX_ATTEMPTS):
                try:
                    res = send()
                    break
                except AnswerLost:
                    # Its value was only in the lost answer: a secret made now is useless.
                    lost = True
                    self._sweep(ops, sp_id, before, keep=None)
                except (DatabricksError, DeadlineExceeded) as exc:
                    now = self._list(ops, sp_id, recent)
                    if len(now) >= MAX_SECRETS:
                        raise self._cap_error(sp_id, now) from None
                    raise api_error("creating an OAuth secret", obj, exc) from None
            if res is None:
                raise ProviderError(
                    "creating an OAuth secret failed", obj,
                    "the workspace never answered; no secret was left behind: check the "
                    "network to the workspace, then run `pulumi up` again",
                    f"{MAX_ATTEMPTS} attempts, every answer lost")
        finally:
            if lost:
                self._sweep(ops, sp_id, before, keep=str(res.id) if res is not None else None)
        outs = OAuthSecretOutputs(
            secret_id=res.id, client_id=str(args.application_id), client_secret=_remembered(res.secret),
            expire_time=res.expire_time, status=res.status or "ACTIVE",
            # Those this project did not make: a rotation's old secret and an orphan are signed.
            unmanaged_secret_ids=tuple(sorted(str(s.id) for s in listed
                                              if str(s.id) in before and not is_signed(s))))
        pulumi.log.info(f"OAuth secret {res.id} created for service principal {sp_id}")
        return str(res.id), Stored(args, outs)

    def refresh(self, id_: str, old: State) -> State | None:
        sp_id = str(_canonical(old.args, "service_principal_id"))
        ops = Ops(self.bounded(READ_BUDGET))
        try:
            secrets = list(ops.secrets.list(sp_id))
        except (DatabricksError, DeadlineExceeded) as exc:
            if is_unknown_principal(exc):
                if self._principal_listed(ops, sp_id):
                    # Known to SCIM, not yet to the secrets API: nothing to say about it yet.
                    return old
                return None  # the principal is gone, and its secrets with it
            raise api_error("listing OAuth secrets", f"service principal {sp_id}", exc) from None
        found = [s for s in secrets if s.id == id_]
        others = sorted(str(s.id) for s in secrets if s.id != id_)
        if others:
            # Not ours to delete: made by hand, or left by a crash before state was saved.
            pulumi.log.warn(
                f"service principal {sp_id} has OAuth secrets this stack does not manage: "
                f"{', '.join(others)}; left alone (delete those nobody uses: `databricks "
                f"service-principal-secrets-proxy delete {sp_id} <secret-id>`)")
        if not found:
            return None  # gone: dropped from state, the next up creates one
        outs = dataclasses.replace(
            old.outs, expire_time=found[0].expire_time or old.outs.expire_time,
            status=found[0].status or old.outs.status, unmanaged_secret_ids=tuple(others))
        return Stored(old.args, outs)

    def change(self, id_: str, old: State, new: OAuthSecretArgs) -> State:
        # Only non-replacing inputs (rotate_before_days) reach here: nothing remote changes.
        return Stored(new, old.outs)

    def remove(self, id_: str, old: State) -> None:
        sp_id = str(_canonical(old.args, "service_principal_id"))
        self._delete(Ops(self.bounded(OPERATION_BUDGET)), sp_id, id_,
                     recent=is_recent(created_at_of(old.args.principal_created_at, sp_id)))

    def _cap_error(self, sp_id: str, present: Iterable[SecretInfo]) -> ProviderError:
        secrets = list(present)
        by_hand = sorted(str(s.id) for s in secrets if not is_signed(s))
        ours = sorted(str(s.id) for s in secrets if is_signed(s))

        def named(ids: list[str], what: str) -> str:
            return f"; {', '.join(ids)} {'is' if len(ids) == 1 else 'are'} {what}" if ids else ""

        return ProviderError(
            "creating an OAuth secret failed", f"service principal {sp_id}",
            f"it already has {len(secrets)} OAuth secrets, the most Databricks allows"
            + named(by_hand, "not this stack's (made by hand)")
            + named(ours, "this stack's: the one its state holds (stack output "
                          "`principal_secret_id`, in use by Braintrust), or left by a run that "
                          "died before saving its state (nobody can use those)")
            + f": delete those nobody uses (`databricks service-principal-secrets-proxy delete "
              f"{sp_id} <secret-id>`), then run `pulumi up` again",
        )


OAuthSecret = resource_class(OAuthSecretProvider)


SweepState = Stored[SecretSweepArgs, SecretSweepOutputs]


class OAuthSecretSweepProvider(_PrincipalSecrets,
                               ContractProvider[SecretSweepArgs, SecretSweepOutputs]):
    """Deletes the stack's orphan OAuth secrets once the live one is in use (module doc).

    Create and update list the principal's secrets and delete each signed one but the live
    secret (and, in an update, the secret its previous run kept: during a rotation the old one
    is still in state, and its replace's delete removes it). Read and delete touch nothing: the
    sweep owns no remote object."""

    CONTRACT = SECRET_SWEEP

    def compare(self, id_: str, old: SweepState, new: SecretSweepArgs) -> DiffResult:
        # The principal or the live secret: a change of either is a sweep, in place.
        changed = [k for k in SECRET_SWEEP.input_keys() if k not in SECRET_SWEEP.inert_keys
                   and (is_unknown(getattr(new, k)) or str(getattr(old.args, k)) != str(getattr(new, k)))]
        return diff_result(changed, [])

    def make(self, args: SecretSweepArgs) -> tuple[str, SweepState]:
        return str(args.service_principal_id), self._swept(args, keep={str(args.live_secret_id)})

    def change(self, id_: str, old: SweepState, new: SecretSweepArgs) -> SweepState:
        keep = {str(new.live_secret_id)}
        if str(old.args.service_principal_id) == str(new.service_principal_id):
            keep.add(str(old.args.live_secret_id))
        return self._swept(new, keep)

    def _swept(self, args: SecretSweepArgs, keep: set[str]) -> SweepState:
        sp_id = str(args.service_principal_id)
        ops = Ops(self.bounded(OPERATION_BUDGET))
        recent = is_recent(created_at_of(args.principal_created_at, sp_id))
        orphans = sorted(str(s.id) for s in self._list(ops, sp_id, recent)
                         if s.id and is_signed(s) and str(s.id) not in keep)
        self._remove_orphans(ops, sp_id, orphans)
        return Stored(args, SecretSweepOutputs(removed_secret_ids=tuple(orphans)))


OAuthSecretSweep = resource_class(OAuthSecretSweepProvider)


def _remembered(secret: str | None) -> str | None:
    """A new secret's value, from now on removed from any server text this process shows."""
    transport.remember(secret)
    return secret
