"""EndpointsReady: one gate for the whole stack that waits for every endpoint at once.

Inputs: ReadinessArgs (components/args.py): endpoints {name: revision@endpoint_id},
  timeout_seconds (default: the stack's readiness_timeout_minutes default, 45 minutes).
Outputs: every input, plus ready {name: {state, config_version}}.

Why one resource: the provider process has four workers for the whole stack; waiting inside
each endpoint's create would hold one worker per endpoint for minutes. Here one worker polls
all endpoints in one loop (GateWait). An endpoint is ready when its config_update is
NOT_UPDATING and its ready state READY. A failed rollout (UPDATE_FAILED / UPDATE_CANCELED) is
logged as soon as it is seen and reported, with each served entity's own
deployment_state_message, when the gate gives up: once every endpoint has settled, or at the
deadline together with every endpoint still pending. Every call is bounded by the deadline
(BoundedApi), so the gate returns by deadline + POLL_GRACE whatever the workspace answers.

Diff rules: a changed revision or a changed set of endpoints -> update (wait again);
timeout_seconds alone changes nothing remote.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pulumi
from databricks.sdk.errors import DatabricksError, NotFound
from databricks.sdk.service.serving import (
    EndpointState,
    EndpointStateConfigUpdate,
    EndpointStateReady,
    ServedModelStateDeployment,
    ServingEndpointDetailed,
    ServingEndpointsAPI,
)
from pulumi.dynamic import CheckFailure, DiffResult

from components.args import READINESS, ReadinessArgs, ReadinessOutputs
from components.backoff import BACKOFF_CAP, wait_delay
from components.spec.constants import READINESS_TIMEOUT_MINUTES

from ._client import POLL_BUDGET, TRANSIENT, DatabricksProvider, poll_deadline
from ._contract import ContractProvider, Stored, resource_class
from ._errors import ProviderError, WaitTimeout, describe
from ._props import diff_result, is_unknown, stable_hash

State = Stored[ReadinessArgs, ReadinessOutputs]
DEFAULT_TIMEOUT = READINESS_TIMEOUT_MINUTES * 60.0
FAILED_UPDATES = (EndpointStateConfigUpdate.UPDATE_FAILED, EndpointStateConfigUpdate.UPDATE_CANCELED)
FAILED_DEPLOYMENTS = (ServedModelStateDeployment.DEPLOYMENT_FAILED,
                      ServedModelStateDeployment.DEPLOYMENT_ABORTED)
# Unsettled endpoints are logged at least this often, even when nothing changed (issue 14).
LOG_EVERY = 60.0
# Logs happen only after a poll, and polls are at most POLL_BUDGET + BACKOFF_CAP apart: logging
# once this much has passed keeps the gap between two lines under LOG_EVERY whatever a poll takes.
SUMMARY_AFTER = LOG_EVERY - (POLL_BUDGET + BACKOFF_CAP)


def diff_ready(old: ReadinessArgs, new: ReadinessArgs) -> DiffResult:
    """Only the endpoints' rollout identities count: timeout_seconds alone changes nothing."""
    endpoints = new.endpoints
    changed = ["endpoints"] if is_unknown(endpoints) or dict(old.endpoints or {}) != dict(
        endpoints or {}) else []
    return diff_result(changed, [])


@dataclass(frozen=True)
class EndpointStatus:
    """One poll of one endpoint, reduced to what the gate decides on."""

    name: str
    ready: bool
    failed: bool
    state: str
    config_version: int | None
    messages: tuple[str, ...] = ()
    note: str = ""  # why this state may be stale (the last poll got no answer)

    def describe(self) -> str:
        return f"{self.state} ({self.note})" if self.note else self.state


def state_status(name: str, state: EndpointState | None, version: int | None = None) -> EndpointStatus:
    """Ready or still rolling out, from an endpoint's state alone (a list entry carries it)."""
    ready = state.ready if state else None
    update = state.config_update if state else None
    text = f"ready={ready.value if ready else '?'} config_update={update.value if update else '?'}"
    done = update == EndpointStateConfigUpdate.NOT_UPDATING and ready == EndpointStateReady.READY
    return EndpointStatus(name, done, update in FAILED_UPDATES, text, version)


def endpoint_status(name: str, ep: ServingEndpointDetailed) -> EndpointStatus:
    """Ready, failed or still rolling out; a failure carries each served entity's message."""
    status = state_status(name, ep.state, ep.config.config_version if ep.config else None)
    if status.failed:
        return replace(status, messages=_entity_messages(ep))
    return status


def _entity_messages(ep: ServingEndpointDetailed) -> tuple[str, ...]:
    """The failing served entities' own messages, from the rollout first, then what serves."""
    entities = []
    for cfg in (ep.pending_config, ep.config):
        if cfg is not None:
            entities.extend(cfg.served_entities or [])
    failed: list[str] = []
    other: list[str] = []
    for e in entities:
        st = e.state
        if st is None or not st.deployment_state_message:
            continue
        line = f"{e.name}: {st.deployment_state_message}"
        (failed if st.deployment in FAILED_DEPLOYMENTS else other).append(line)
    chosen = failed or other
    return tuple(dict.fromkeys(chosen)) or ("no message from Databricks",)


def _failed_lines(failed: list[EndpointStatus]) -> list[str]:
    lines = []
    for s in failed:
        lines.append(f"- endpoint {s.name} ({s.state}):")
        lines.extend(f"    {m}" for m in s.messages)
    return lines


def failure_error(failed: list[EndpointStatus]) -> ProviderError:
    lines = _failed_lines(failed)
    return ProviderError(
        f"{len(failed)} serving endpoint(s) failed to roll out",
        ", ".join(s.name for s in failed),
        "fix the served entity named below in the stack file (or the workspace), "
        "then run `pulumi up --refresh` (the refresh marks a failed endpoint for another rollout)",
        "\n".join(lines),
    )


Poll = Callable[[list[str], float], dict[str, EndpointStatus]]


class GateWait:
    """The gate's wait: poll every unsettled endpoint until all are settled or the deadline.

    - Every poll gets a deadline: at most POLL_BUDGET from now and never past the gate's own,
      so the gate returns by its deadline plus one attempt's slack, whatever the workspace
      answers (503 streams, any Retry-After). An endpoint a poll could not read keeps its
      last known state, marked as not answered.
    - Ready and failed are settled: neither is asked again during this wait.
    - Each endpoint's state is logged when it changes, and all unsettled ones at least every
      LOG_EVERY seconds, so `pulumi up` is never silent; a failure is logged as a warning the
      moment it is seen.
    - When the gate gives up (deadline, or everything settled with a failure) the error lists
      every failed endpoint with its entities' own messages and every pending one with its state.
    """

    def __init__(self, names: list[str], poll: Poll, *, log: Callable[[str, str], None],
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.names = names
        self.poll = poll
        self.log = log
        self.clock = clock
        self.sleep = sleep
        self.statuses: dict[str, EndpointStatus] = {
            n: EndpointStatus(n, False, False, "not read yet", None) for n in names}
        self._logged: dict[str, str] = {}
        self._last_summary = float("-inf")

    def pending(self) -> list[str]:
        return [n for n in self.names if not (self.statuses[n].ready or self.statuses[n].failed)]

    def run(self, timeout: float) -> dict[str, EndpointStatus]:
        started = self.clock()
        deadline = started + timeout
        while True:
            pending = self.pending()
            if pending:
                fresh = self.poll(pending, poll_deadline(deadline, self.clock))
                for name in pending:
                    if name in fresh:
                        self.statuses[name] = fresh[name]
                    elif not self.statuses[name].note:
                        self.statuses[name] = replace(self.statuses[name],
                                                      note="the workspace did not answer")
                self._report(started)
            pending = self.pending()
            if not pending:
                break
            remaining = deadline - self.clock()
            if remaining <= 0:
                break
            delay = wait_delay(self.clock() - started)
            self.sleep(min(delay, remaining))
        failed = [self.statuses[n] for n in self.names if self.statuses[n].failed]
        pending_st = [self.statuses[n] for n in self.pending()]
        if failed or pending_st:
            raise gate_error(failed, pending_st, timeout)
        return self.statuses

    def _report(self, started: float) -> None:
        now = self.clock()
        changed = []
        for name in self.names:
            st = self.statuses[name]
            text = st.describe()
            if self._logged.get(name) != text:
                self._logged[name] = text
                changed.append(st)
        for st in changed:
            self.log("info", f"endpoint {st.name}: {st.describe()}")
            if st.failed:
                # Said at once, not only when the gate gives up, which may be much later.
                self.log("warn", f"endpoint {st.name}: rollout failed ({st.state}): "
                         + "; ".join(st.messages))
        if changed:
            self._last_summary = now
        elif now - self._last_summary >= SUMMARY_AFTER:
            self._last_summary = now
            waiting = [self.statuses[n] for n in self.pending()]
            self.log("info", f"still waiting after {now - started:.0f}s for "
                     f"{len(waiting)} serving endpoint(s): "
                     + "; ".join(f"{s.name}: {s.describe()}" for s in waiting))


def gate_error(failed: list[EndpointStatus], pending: list[EndpointStatus],
               timeout: float) -> ProviderError:
    """The gate's one error: every failed endpoint with its messages, every pending one."""
    if not pending:
        return failure_error(failed)
    what = (f"timed out after {timeout:.0f}s waiting for {len(pending)} serving endpoint(s) "
            "to be ready")
    if failed:
        what += f", and {len(failed)} failed to roll out"
    lines = []
    if failed:
        lines.append("failed:")
        lines.extend(_failed_lines(failed))
    lines.append("still pending:")
    lines.extend(f"- endpoint {s.name}: {s.describe()}" for s in pending)
    todo = ("nothing was changed; run `pulumi up` again to resume waiting, or raise the timeout"
            if not failed else
            "fix the failed served entities named below in the stack file (or the workspace), "
            "then run `pulumi up --refresh`; the pending ones resume waiting on that run")
    return WaitTimeout(what, ", ".join(s.name for s in failed + pending), todo, "\n".join(lines))


class EndpointsReadyProvider(DatabricksProvider, ContractProvider[ReadinessArgs, ReadinessOutputs]):
    """Waits for every endpoint of the stack in one call."""

    CONTRACT = READINESS

    def validate(self, args: ReadinessArgs) -> list[CheckFailure]:
        t = args.timeout_seconds
        if t is not None and not is_unknown(t) and (not isinstance(t, int | float) or t <= 0):
            return [CheckFailure("timeout_seconds", "must be a positive number of seconds")]
        return []

    def compare(self, id_: str, old: State, new: ReadinessArgs) -> DiffResult:
        return diff_ready(old.args, new)

    def make(self, args: ReadinessArgs) -> tuple[str, State]:
        return (f"ready-{stable_hash(sorted(args.endpoints or {}))}",
                Stored(args, ReadinessOutputs(ready=self._wait_all(args))))

    def change(self, id_: str, old: State, new: ReadinessArgs) -> State:
        return Stored(new, ReadinessOutputs(ready=self._wait_all(new)))

    # refresh and remove: the base's (nothing remote belongs to the gate; a refresh keeps what
    # it recorded, and there is nothing to delete).

    def _wait_all(self, args: ReadinessArgs) -> dict[str, dict[str, Any]]:
        names = sorted(args.endpoints or {})
        timeout = float(args.timeout_seconds or DEFAULT_TIMEOUT)
        statuses = GateWait(names, self._poll, log=_log).run(timeout)
        pulumi.log.info(f"{len(names)} serving endpoint(s) ready")
        return {s.name: {"state": "READY", "config_version": s.config_version}
                for s in statuses.values()}

    def _poll(self, pending: list[str], deadline: float) -> dict[str, EndpointStatus]:
        """The current status of each pending endpoint, every call ending by `deadline`.

        One list call answers for every endpoint still rolling out; a GET is spent only on an
        endpoint that failed (for its entities' messages) or that the list lacks. An endpoint
        the workspace did not answer for (503s, a lost connection, the deadline) is left out.
        """
        api = ServingEndpointsAPI(self.bounded(deadline=deadline))
        listed: dict[str, EndpointState | None] = {}
        if len(pending) > 1:
            try:
                listed = {ep.name: ep.state for ep in api.list() if ep.name}
            except TRANSIENT:
                pass  # fall back to one GET each, under the same deadline
            except DatabricksError as exc:
                raise ProviderError("listing serving endpoints failed", self.host(),
                                    "check the identity's permissions, then run `pulumi up` "
                                    "again to resume waiting", describe(exc)) from None
        out: dict[str, EndpointStatus] = {}
        for name in pending:
            status = state_status(name, listed[name]) if name in listed else None
            if status is None or status.failed:
                try:
                    status = self._status(api, name)
                except TRANSIENT:
                    continue
            out[name] = status
        return out

    def _status(self, api: ServingEndpointsAPI, name: str) -> EndpointStatus:
        try:
            ep = api.get(name)
        except NotFound:
            return EndpointStatus(name, False, True, "missing", None,
                                  ("the endpoint does not exist (deleted out of band?); "
                                   "run `pulumi refresh` then `pulumi up`",))
        except TRANSIENT:
            raise
        except DatabricksError as exc:
            raise ProviderError("reading the serving endpoint failed", f"endpoint {name}",
                                "check the identity's permissions, then run `pulumi up` again "
                                "to resume waiting", describe(exc)) from None
        return endpoint_status(name, ep)


def _log(level: str, message: str) -> None:
    (pulumi.log.warn if level == "warn" else pulumi.log.info)(message)


EndpointsReady = resource_class(EndpointsReadyProvider)
