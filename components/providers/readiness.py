"""EndpointsReady: one gate for the whole stack that waits for every endpoint at once.

Inputs: endpoints {name: revision}, timeout_seconds (default 2700).
Outputs: every input, plus ready {name: {state, config_version}}.

Why one resource: the provider process has four workers for the whole stack; waiting inside
each endpoint's create would hold one worker per endpoint for minutes. Here one worker polls
all endpoints in one loop. An endpoint is ready when its config_update is NOT_UPDATING and
its ready state READY. A failed rollout (UPDATE_FAILED / UPDATE_CANCELED) is reported with
each served entity's own deployment_state_message, once no endpoint is still rolling out.

Diff rules: a changed revision or a changed set of endpoints -> update (wait again);
timeout_seconds alone changes nothing remote.
"""

from __future__ import annotations

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

from components.args import ReadinessArgs

from ._client import DatabricksProvider
from ._errors import ProviderError, describe
from ._props import diff_result, inputs_only, is_unknown, stable_hash
from ._wait import Done, Pending, wait_for

INPUT_KEYS = ReadinessArgs.keys()  # the inputs: components/args.py
OUTPUT_KEYS = ("ready",)
DEFAULT_TIMEOUT = 2700.0
FAILED_UPDATES = (EndpointStateConfigUpdate.UPDATE_FAILED, EndpointStateConfigUpdate.UPDATE_CANCELED)
FAILED_DEPLOYMENTS = (ServedModelStateDeployment.DEPLOYMENT_FAILED,
                      ServedModelStateDeployment.DEPLOYMENT_ABORTED)


def diff_ready(olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
    new = news.get("endpoints")
    changed = ["endpoints"] if is_unknown(new) or dict(olds.get("endpoints") or {}) != dict(
        new or {}) else []
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
    failed, other = [], []
    for e in entities:
        st = e.state
        if st is None or not st.deployment_state_message:
            continue
        line = f"{e.name}: {st.deployment_state_message}"
        (failed if st.deployment in FAILED_DEPLOYMENTS else other).append(line)
    chosen = failed or other
    return tuple(dict.fromkeys(chosen)) or ("no message from Databricks",)


def failure_error(failed: list[EndpointStatus]) -> ProviderError:
    lines = []
    for s in failed:
        lines.append(f"- endpoint {s.name} ({s.state}):")
        lines.extend(f"    {m}" for m in s.messages)
    return ProviderError(
        f"{len(failed)} serving endpoint(s) failed to roll out",
        ", ".join(s.name for s in failed),
        "fix the served entity named below in the stack file (or the workspace), "
        "then run `pulumi up --refresh` (the refresh marks a failed endpoint for another rollout)",
        "\n".join(lines),
    )


class EndpointsReadyProvider(DatabricksProvider):
    """Waits for every endpoint of the stack in one call."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs = inputs_only(news, INPUT_KEYS)
        inputs.setdefault("timeout_seconds", DEFAULT_TIMEOUT)
        failures = []
        t = inputs["timeout_seconds"]
        if not is_unknown(t) and (not isinstance(t, int | float) or t <= 0):
            failures.append(CheckFailure("timeout_seconds", "must be a positive number of seconds"))
        return CheckResult(inputs, failures)

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff_ready(olds, news)

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = inputs_only(props, INPUT_KEYS)
        ready = self._wait_all(inputs)
        return CreateResult(f"ready-{stable_hash(sorted(inputs['endpoints']))}",
                            {**inputs, "ready": ready})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        inputs = inputs_only(news, INPUT_KEYS)
        return UpdateResult({**inputs, "ready": self._wait_all(inputs)})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        # Nothing remote belongs to the gate; a refresh keeps what it recorded.
        return ReadResult(id_, dict(props))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        return  # nothing remote to delete

    def _wait_all(self, inputs: dict[str, Any]) -> dict[str, dict[str, Any]]:
        names = sorted(inputs.get("endpoints") or {})
        timeout = float(inputs.get("timeout_seconds") or DEFAULT_TIMEOUT)
        done: dict[str, EndpointStatus] = {}

        def poll() -> Done[dict[str, EndpointStatus]] | Pending:
            # One list call answers for every endpoint still rolling out; a GET is spent only on
            # an endpoint that failed (for its entities' messages) or that the list lacks.
            pending = [n for n in names if n not in done]
            listed = self._listed_states() if len(pending) > 1 else {}
            statuses = {}
            for name in names:
                if name in done:  # ready stays ready for this wait: no need to ask again
                    statuses[name] = done[name]
                    continue
                status = state_status(name, listed[name]) if name in listed else None
                if status is None or status.failed:
                    status = self._status(name)
                statuses[name] = status
                if status.ready:
                    done[name] = status
            waiting = [s for s in statuses.values() if not s.ready and not s.failed]
            if waiting:
                return Pending("; ".join(f"{s.name}: {s.state}" for s in waiting))
            return Done(statuses)

        what = f"{len(names)} serving endpoint(s) to be ready"
        statuses = wait_for(poll, what=what, obj=", ".join(names) or "no endpoints",
                            timeout=timeout)
        failed = [s for s in statuses.values() if s.failed]
        if failed:
            raise failure_error(failed)
        pulumi.log.info(f"{len(names)} serving endpoint(s) ready")
        return {s.name: {"state": "READY", "config_version": s.config_version}
                for s in statuses.values()}

    def _listed_states(self) -> dict[str, EndpointState | None]:
        try:
            return {ep.name: ep.state for ep in self.w.serving_endpoints.list() if ep.name}
        except DatabricksError as exc:
            raise ProviderError("listing serving endpoints failed", self.host(),
                                "run `pulumi up` again to resume waiting", describe(exc)) from None

    def _status(self, name: str) -> EndpointStatus:
        try:
            ep = self.w.serving_endpoints.get(name)
        except NotFound:
            return EndpointStatus(name, False, True, "missing", None,
                                  ("the endpoint does not exist (deleted out of band?); "
                                   "run `pulumi refresh` then `pulumi up`",))
        except DatabricksError as exc:
            raise ProviderError("reading the serving endpoint failed", f"endpoint {name}",
                                "run `pulumi up` again to resume waiting", describe(exc)) from None
        return endpoint_status(name, ep)


class EndpointsReady(Resource, module="databricks-braintrust", name="EndpointsReady"):
    """The stack's readiness gate; output `ready`: {name: {state, config_version}}."""

    ready: pulumi.Output[dict]

    def __init__(self, resource_name: str, props: dict[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(EndpointsReadyProvider(), resource_name,
                         {**props, **{k: None for k in OUTPUT_KEYS}}, opts)
