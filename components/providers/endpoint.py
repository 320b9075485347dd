"""A Model Serving endpoint: created (provisioned / custom) or only referenced (pay_per_token).

Inputs: EndpointArgs (components/args.py), plain values the spec layer already validated. An
  omitted entity_version is the newest the workspace serves, resolved at create and recorded
  in the outputs.
Outputs: every input, plus endpoint_id (Databricks' id, keys the permissions API), url,
  revision (hash of the desired served entities + traffic), task.

Diff rules (terraform-provider-databricks' model serving resource, plus its users' complaints;
the replace and refuse rules are components/endpoint_rules.py, which `diff` reads too):
  name, route_optimized           -> replace (same name: delete first, the name is unique)
  mode                            -> by endpoint_rules.SWITCHES: tokens-per-second <-> custom is
                                     an update through the config API (no downtime); into or out
                                     of model units is refused in Check (do it with a new name)
  description, budget_policy_id   -> set at create only; a change is refused in Check
  served_entities, traffic        -> update through the config API; compared as sets by name
  tags                            -> update through the tags API; compared as a map
  rate_limits, usage_tracking,    -> update through the AI Gateway API (one PUT of the whole
  guardrails, inference_table        gateway; what the stack omits is off); order-insensitive;
                                     moving the inference table disables it first (two PUTs)
  email_notifications             -> update through the notifications API (PATCH)
  pay_per_token                   -> never ours: only name/mode matter, nothing is ever written
  entity_version omitted          -> the version recorded in state (never drifts to a newer one)
  burst_scaling_enabled           -> never echoed on GET: the value in state stands (no drift)
Create returns as soon as Databricks accepted the endpoint; EndpointsReady waits for rollouts.

Two APIs, picked from the served entities (the catalog chose the shape in the plan): an entity
with provisioned_model_units is a unit model, created with POST /api/2.0/serving-endpoints/pt
and changed with PUT /pt/{name}/config (body wrapped as {"config": ...}; databricks-sdk
create_provisioned_throughput_endpoint / update_provisioned_throughput_endpoint_config, which
take no description, rate_limits or route_optimized); every other endpoint uses the ordinary
create and the flat PUT /{name}/config. Tags and the AI Gateway use the same routes for both
(terraform-provider-databricks resource_model_serving_provisioned_throughput.go).

Before any write (create, or an update of served entities) the throughput is checked against
the workspace's live chunk, and model units against its live unit step where it answers one
(get-model-optimization-info). Every call goes through BoundedApi
(_client.py): bounded in time, and a create whose answer was lost is sent again, which the
unique name makes safe (RESOURCE_ALREADY_EXISTS -> adopt ours).
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

import pulumi
from databricks.sdk.errors import DatabricksError, NotFound, ResourceAlreadyExists, ResourceConflict
from databricks.sdk.service.catalog import ModelVersionInfoStatus
from databricks.sdk.service.serving import (
    AiGatewayConfig,
    AiGatewayGuardrails,
    AiGatewayInferenceTableConfig,
    AiGatewayRateLimit,
    AiGatewayUsageTrackingConfig,
    EmailNotifications,
    EndpointCoreConfigInput,
    EndpointStateConfigUpdate,
    EndpointTag,
    PtEndpointCoreConfig,
    PtServedModel,
    ServedEntityInput,
    ServingEndpointDetailed,
    TrafficConfig,
)
from pulumi.dynamic import CheckFailure, CheckResult, DiffResult

from components import catalog, endpoint_rules
from components.args import (
    ENDPOINT,
    EmailNotificationsArgs,
    EndpointArgs,
    EndpointOutputs,
    GuardrailsArgs,
    InferenceTableArgs,
    RateLimitArgs,
    ServedEntity,
    TrafficRoute,
)
from components.spec.constants import MANAGED_BY_TAG as OWNER_TAG
from components.spec.constants import MODES, READINESS_TIMEOUT_MINUTES

from ._client import TRANSIENT, AnswerLost, DatabricksProvider, DeadlineExceeded, poll_deadline
from ._contract import DELETE_TRIES, ContractProvider, Stored, from_wire, resource_class
from ._errors import ProviderError, api_error, describe
from ._ops import OPERATION_BUDGET, READ_BUDGET, Ops
from ._props import diff_result, inputs_only, is_unknown, stable_hash, whole
from ._wait import Done, Pending, wait_for

PAY_PER_TOKEN = "pay_per_token"
State = Stored[EndpointArgs, EndpointOutputs]
ENTITY_KEYS = tuple(f.name for f in dataclasses.fields(ServedEntity))
NOTIFICATION_LISTS = ("on_update_success", "on_update_failure")
GATEWAY_KEYS = ("rate_limits", "usage_tracking", "guardrails", "inference_table")
# The keys of a /pt served entity (PtServedModel): what a unit model's entity is sent with.
PT_ENTITY_KEYS = tuple(f.name for f in dataclasses.fields(PtServedModel))
# How long an update waits for a rollout already in progress before changing the endpoint.
ROLLOUT_WAIT_SECONDS = READINESS_TIMEOUT_MINUTES * 60.0
# A create whose answer was lost is sent again at most this often in total.
CREATE_ATTEMPTS = 3


# ---------------------------------------------------------------- canonical forms (pure)

def canonical_entity(entity: ServedEntity | Mapping[str, Any]) -> dict[str, Any]:
    """One served entity (ours, or the API's dict) with only the keys we manage, None dropped,
    versions as strings."""
    get = entity.get if isinstance(entity, Mapping) else (lambda k: getattr(entity, k, None))
    out: dict[str, Any] = {}
    for key in ENTITY_KEYS:
        value = get(key)
        if value is None:
            continue
        if key == "entity_version":
            value = str(whole(value))
        out[key] = whole(value)
    return out


def canonical_entities(entities: Iterable[ServedEntity | Mapping[str, Any]] | None
                       ) -> dict[str, dict[str, Any]]:
    """Served entities as a map keyed by name: order never shows as a change."""
    result = {}
    for entity in entities or []:
        e = canonical_entity(entity)
        result[e["name"]] = e
    return result


def canonical_traffic(traffic: Iterable[TrafficRoute] | None,
                      entities: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Routes as {served_entity_name: percentage}; None sends everything to the one entity."""
    if traffic is None:
        return {name: 100 for name in entities} if len(entities) == 1 else {}
    return {r.served_entity_name: int(whole(r.traffic_percentage)) for r in traffic}


RateLimitKey = tuple[str, str, int | None, int | None, str]


def _count(value: Any) -> int | None:
    return None if value is None else int(whole(value))


def canonical_rate_limits(limits: Iterable[RateLimitArgs] | None) -> list[RateLimitKey]:
    """(key, period, calls, tokens, principal), sorted: order never shows as a change. A limit
    of 0 stays 0 (it blocks; it is never read as "no limit")."""
    return sorted(((str(r.key or "user"), str(r.renewal_period or "minute"), _count(r.calls),
                    _count(r.tokens), str(r.principal or "")) for r in limits or []), key=_limit_order)


def _limit_order(limit: RateLimitKey) -> tuple[str, str, bool, int, bool, int, str]:
    """A sort key: two limits of one key may set calls in one and tokens in the other, and
    None never compares with a number."""
    key, period, calls, tokens, principal = limit
    return (key, period, calls is not None, calls or 0, tokens is not None, tokens or 0, principal)


def _plain(value: Any) -> Any:
    """A typed setting as the dict the API and the comparisons use."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def _side(side: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """One guardrail side; a side that sets nothing is no side."""
    if not side:
        return None
    pii = side.get("pii")
    if isinstance(pii, Mapping):  # the API's shape, {behavior: ...}
        pii = pii.get("behavior")
    out = {"safety": bool(side.get("safety")), "pii": pii or None}
    return out if out["safety"] or out["pii"] else None


def canonical_guardrails(value: Any) -> dict[str, Any] | None:
    value = _plain(value)
    if not value:
        return None
    sides = {k: _side(value.get(k)) for k in ("input", "output")}
    return sides if any(sides.values()) else None


def canonical_table(value: Any) -> dict[str, Any] | None:
    """The inference table where it logs; None when off (a disabled table logs nowhere)."""
    value = _plain(value)
    if not value or value.get("enabled") is False:
        return None
    return {k: value.get(k) for k in ("catalog_name", "schema_name", "table_name_prefix")}


def canonical_notifications(value: Any) -> dict[str, list[str]]:
    value = _plain(value) or {}
    return {k: sorted({str(a) for a in value.get(k) or []}) for k in NOTIFICATION_LISTS}


def canonical(args: EndpointArgs, key: str) -> Any:
    """The comparable form of one input; unknown values stay unknown."""
    value = getattr(args, key)
    if is_unknown(value):
        return value
    if key == "served_entities":
        return canonical_entities(value)
    if key == "traffic":
        if is_unknown(args.served_entities):
            return args.served_entities
        return canonical_traffic(value, canonical_entities(args.served_entities))
    if key == "tags":
        return {str(k): str(v) for k, v in (value or {}).items()}
    if key == "rate_limits":
        return canonical_rate_limits(value)
    if key in ("usage_tracking", "route_optimized"):
        return bool(value)
    if key == "guardrails":
        return canonical_guardrails(value)
    if key == "inference_table":
        return canonical_table(value)
    if key == "email_notifications":
        return canonical_notifications(value)
    if key in ("description", "budget_policy_id"):
        return value or ""
    return value


def canonical_gateway(args: EndpointArgs) -> tuple[Any, ...]:
    """Everything the AI Gateway PUT sets, in comparable form."""
    return tuple(canonical(args, k) for k in GATEWAY_KEYS)


def revision(args: EndpointArgs) -> str:
    """A stable hash of the desired config (served entities + traffic), order-insensitive."""
    if args.mode == PAY_PER_TOKEN:
        return stable_hash({"pay_per_token": args.name})
    return stable_hash({"served_entities": canonical(args, "served_entities"),
                        "traffic": canonical(args, "traffic")})


def serves_units(args: EndpointArgs) -> bool:
    """Whether the endpoint is bought in model units (the /pt API)."""
    entities = args.served_entities
    return not is_unknown(entities) and any(
        e.provisioned_model_units is not None for e in entities or ())


def pt_config(entities: dict[str, dict[str, Any]], routes: dict[str, int]) -> PtEndpointCoreConfig:
    """The /pt config (PtEndpointCoreConfig) of canonical entities and routes."""
    return PtEndpointCoreConfig(
        served_entities=[PtServedModel.from_dict({k: v for k, v in e.items() if k in PT_ENTITY_KEYS})
                         for e in entities.values()],
        traffic_config=_traffic(routes))


def diff_endpoint(old: EndpointArgs, new: EndpointArgs) -> DiffResult:
    """The endpoint's diff rules; `old` the inputs state holds, `new` the checked inputs."""
    pay_per_token = new.mode == PAY_PER_TOKEN and old.mode == PAY_PER_TOKEN
    # A pay-per-token endpoint belongs to Databricks: nothing but its name and mode matter.
    keys = ("name", "mode") if pay_per_token else tuple(
        k for k in ENDPOINT.input_keys() if k not in ENDPOINT.inert_keys)
    changed = [k for k in keys
               if is_unknown(getattr(new, k)) or canonical(old, k) != canonical(new, k)]
    # ENDPOINT.replace_keys is endpoint_rules.REPLACE_KEYS; a change of mode replaces only
    # where endpoint_rules.SWITCHES says so.
    replaces = endpoint_rules.replace_keys(old, new, changed)
    # Same name: the old endpoint must go before the new one can take the name.
    same_name = not is_unknown(new.name) and old.name == new.name
    return diff_result(changed, replaces, delete_before_replace=same_name)


def with_recorded_versions(new: EndpointArgs, old: EndpointArgs) -> EndpointArgs:
    """`new` with each entity that omits `entity_version` given the one recorded in state for
    the same name and model: a version resolved at create never shows as a change, and a newer
    one published later is never picked up by itself."""
    entities = new.served_entities
    if is_unknown(entities) or not entities or is_unknown(old.served_entities):
        return new
    recorded = {e.name: e for e in old.served_entities or ()}
    filled = []
    for entity in entities:
        before = recorded.get(entity.name)
        if (entity.entity_version in (None, "") and before
                and before.entity_name == entity.entity_name
                and before.entity_version not in (None, "")):
            entity = dataclasses.replace(entity,
                                         entity_version=str(whole(before.entity_version)))
        filled.append(entity)
    return dataclasses.replace(new, served_entities=tuple(filled))


def check_endpoint(args: EndpointArgs) -> list[CheckFailure]:
    """Rules the engine can check before any call (the spec layer already did most)."""
    failures: list[CheckFailure] = []
    mode = args.mode
    if not is_unknown(mode) and mode not in MODES:
        failures.append(CheckFailure("mode", f"must be one of {', '.join(MODES)}, not {mode!r}"))
    if is_unknown(args.served_entities) or is_unknown(args.traffic):
        return failures
    entities = args.served_entities or ()
    names = [canonical_entity(e).get("name") for e in entities]
    if not all(names):
        # Diffs key entities by name: Databricks' default name would only appear after create.
        failures.append(CheckFailure("served_entities", "every served entity needs a name"))
        return failures
    if len(set(names)) != len(names):
        failures.append(CheckFailure("served_entities", "served entity names must be unique"))
    if mode != PAY_PER_TOKEN and not is_unknown(mode) and not entities:
        failures.append(CheckFailure("served_entities", "needs at least one served entity"))
    if mode != PAY_PER_TOKEN and entities:
        routes = canonical(args, "traffic")
        if not routes:
            failures.append(CheckFailure("traffic", "give traffic when serving several entities"))
        elif set(routes) - set(names) or sum(routes.values()) != 100:
            failures.append(CheckFailure(
                "traffic", "routes must name served entities and add up to 100"))
    return failures


# ---------------------------------------------------------------- remote shapes

def _remote_config(ep: ServingEndpointDetailed) -> dict[str, Any]:
    """What the endpoint is configured to serve: the pending config if one rolls out."""
    cfg = ep.pending_config or ep.config
    return cfg.as_dict() if cfg is not None else {}


def remote_entities(ep: ServingEndpointDetailed, wanted: dict[str, dict[str, Any]]
                    ) -> dict[str, dict[str, Any]]:
    """Remote served entities in canonical form, limited to the keys we set on each.

    A key the API does not echo (a default it fills or drops) is not drift: keep ours.
    """
    result: dict[str, dict[str, Any]] = {}
    for raw in _remote_config(ep).get("served_entities") or []:
        remote = canonical_entity(raw)
        name = str(remote.get("name"))
        ours = wanted.get(name)
        if ours is None:
            result[name] = remote
        else:
            result[name] = {k: remote.get(k, v) for k, v in ours.items()}
    return result


def remote_traffic(ep: ServingEndpointDetailed, fallback: dict[str, int]) -> dict[str, int]:
    routes = (_remote_config(ep).get("traffic_config") or {}).get("routes") or []
    if not routes:
        return fallback
    return {r.get("served_entity_name") or r.get("served_model_name"):
            int(r.get("traffic_percentage") or 0) for r in routes}


def remote_tags(ep: ServingEndpointDetailed) -> dict[str, str]:
    return {t.key: t.value or "" for t in ep.tags or []}


def remote_gateway(ep: ServingEndpointDetailed, args: EndpointArgs) -> dict[str, Any]:
    """The AI Gateway as read, as typed arguments. A table prefix Databricks chose is not drift
    when the stack leaves it to Databricks."""
    gw = ep.ai_gateway.as_dict() if ep.ai_gateway is not None else {}
    table = canonical_table(gw.get("inference_table_config"))
    if table is not None and not (args.inference_table and args.inference_table.table_name_prefix):
        table["table_name_prefix"] = None
    guardrails = canonical_guardrails(gw.get("guardrails"))
    return {
        "rate_limits": tuple(from_wire(RateLimitArgs, r) for r in gw.get("rate_limits") or []),
        "usage_tracking": bool((gw.get("usage_tracking_config") or {}).get("enabled")),
        "guardrails": None if guardrails is None else from_wire(GuardrailsArgs, guardrails),
        "inference_table": None if table is None else from_wire(InferenceTableArgs, table),
    }


def remote_settings(ep: ServingEndpointDetailed, args: EndpointArgs) -> dict[str, Any]:
    """description and email_notifications as read. GET never returns budget_policy_id (only
    effective_budget_policy_id: databricks/cli resources.yml), so the input stands."""
    notes = canonical_notifications(ep.email_notifications.as_dict() if ep.email_notifications else {})
    return {"description": ep.description or None,
            "email_notifications": EmailNotificationsArgs(
                tuple(notes["on_update_success"]), tuple(notes["on_update_failure"]))
            if any(notes.values()) else None,
            "budget_policy_id": args.budget_policy_id}


def as_remote(args: EndpointArgs, ep: ServingEndpointDetailed) -> EndpointArgs:
    """`args` as the workspace has them, for refresh: only what we manage is compared, so
    someone else's tags or an echoed default are not drift."""
    wanted = canonical(args, "served_entities")
    entities = remote_entities(ep, wanted) or wanted
    if _rollout_failed(ep):
        # The last rollout failed: what is configured is not what serves. Recording no
        # entities makes the next `up` send the config again (a retry after a fix).
        entities = {}
    routes = remote_traffic(ep, canonical(args, "traffic"))
    tags = remote_tags(ep)
    return dataclasses.replace(
        args,
        served_entities=tuple(from_wire(ServedEntity, entities[k]) for k in sorted(entities)),
        traffic=tuple(TrafficRoute(k, v) for k, v in sorted(routes.items())),
        tags={k: tags[k] for k in canonical(args, "tags") if k in tags},
        route_optimized=bool(ep.route_optimized),
        **remote_gateway(ep, args), **remote_settings(ep, args))


# ---------------------------------------------------------------- the provider

class EndpointProvider(DatabricksProvider, ContractProvider[EndpointArgs, EndpointOutputs]):
    """Create, read, update and delete one serving endpoint through databricks-sdk. Each
    operation's calls share one deadline (`Ops`); a wait for a rollout has its own."""

    CONTRACT = ENDPOINT

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """The contract's Check, plus the changes no API makes (endpoint_rules.refusals):
        they need the inputs in state, so preview fails before anything is written."""
        result = super().check(olds, news)
        old = inputs_only(olds or {}, ENDPOINT.input_keys())
        refused = [CheckFailure(f, m) for f, m in endpoint_rules.refusals(old, result.inputs)]
        return CheckResult(result.inputs, [*(result.failures or []), *refused])

    def validate(self, args: EndpointArgs) -> list[CheckFailure]:
        return check_endpoint(args)

    def compare(self, id_: str, old: State, new: EndpointArgs) -> DiffResult:
        return diff_endpoint(old.args, with_recorded_versions(new, old.args))

    def make(self, args: EndpointArgs) -> tuple[str, State]:
        name = args.name
        ops = self._ops(OPERATION_BUDGET)
        if args.mode == PAY_PER_TOKEN:
            return name, self._stored(args, self._get_existing(ops, name))
        # Before anything is written: pin omitted versions to the newest the workspace serves
        # (recorded in state, so it never drifts) and check throughput against the live chunk.
        args = self._resolve_versions(ops, args)
        self._check_throughput(ops, args)
        entities = canonical(args, "served_entities")
        routes = canonical(args, "traffic")
        gateway = _gateway_config(args) if any(canonical_gateway(args)) or _disabled_table(args) else None
        notes = canonical(args, "email_notifications")
        emails = EmailNotifications.from_dict(notes) if any(notes.values()) else None
        # The name is unique in the workspace, so sending the create again after a lost answer
        # is safe: the second one answers RESOURCE_ALREADY_EXISTS and the endpoint the first one
        # made is adopted (it carries our tag and our config).
        tags = [EndpointTag(key=k, value=v) for k, v in canonical(args, "tags").items()] or None
        ep: ServingEndpointDetailed | None = None
        for attempt in range(CREATE_ATTEMPTS):
            try:
                if serves_units(args):
                    # /pt takes no description, rate_limits or route_optimized (the spec refuses
                    # route_optimized on every endpoint).
                    waiter = ops.serving.create_provisioned_throughput_endpoint(
                        name, config=pt_config(entities, routes), tags=tags, ai_gateway=gateway,
                        budget_policy_id=canonical(args, "budget_policy_id") or None,
                        email_notifications=emails)
                else:
                    waiter = ops.serving.create(
                        name,
                        config=EndpointCoreConfigInput(
                            name=name,
                            served_entities=[ServedEntityInput.from_dict(e)
                                             for e in entities.values()],
                            traffic_config=_traffic(routes),
                        ),
                        tags=tags,
                        ai_gateway=gateway,
                        route_optimized=canonical(args, "route_optimized") or None,
                        description=canonical(args, "description") or None,
                        budget_policy_id=canonical(args, "budget_policy_id") or None,
                        email_notifications=emails,
                    )
                ep = waiter.response  # accepted; do not wait for the rollout here
                break
            except AnswerLost as exc:
                # Look before sending again: if the lost create made the endpoint, adopt it in
                # this operation, so a failed `up` never leaves one that state does not know.
                ep = self._made_by_lost_create(ops, args, exc)
                if ep is not None:
                    break
                if attempt + 1 == CREATE_ATTEMPTS:
                    raise ProviderError(
                        "creating the serving endpoint failed", f"endpoint {name}",
                        "the workspace never answered; run `pulumi up` again (a re-sent create "
                        "adopts the endpoint if the workspace made it)") from None
                pulumi.log.info(f"endpoint {name}: the answer to its create was lost; "
                                "sending it again (a second create cannot duplicate it)")
            except (ResourceAlreadyExists, ResourceConflict) as exc:
                ep = self._adopt(ops, args, exc)
                break
            except DeadlineExceeded as exc:
                raise _timed_out("creating the serving endpoint", name, exc) from None
            except DatabricksError as exc:
                if "already exists" in str(exc).lower():
                    ep = self._adopt(ops, args, exc)
                    break
                raise self._write_error("creating the serving endpoint", args, exc) from None
        if ep is None or ep.id is None:
            ep = self._get_existing(ops, name)
        return name, self._stored(args, ep)

    def refresh(self, id_: str, old: State) -> State | None:
        name = old.args.name or id_
        try:
            ep = self._ops(READ_BUDGET).serving.get(name)
        except NotFound:
            return None  # gone: the engine drops it from state
        except DeadlineExceeded as exc:
            raise _timed_out("reading the serving endpoint", name, exc) from None
        except DatabricksError as exc:
            raise api_error("reading the serving endpoint", f"endpoint {name}", exc) from None
        args = old.args if old.args.mode == PAY_PER_TOKEN else as_remote(old.args, ep)
        return self._stored(args, ep)

    def change(self, id_: str, old: State, new: EndpointArgs) -> State:
        if new.mode == PAY_PER_TOKEN:
            # Not ours: record the new inputs, write nothing.
            return Stored(new, dataclasses.replace(old.outs, revision=revision(new)))
        ops = self._ops(OPERATION_BUDGET)
        # The version recorded at create stays; only an entity new to the endpoint (or now
        # serving another model) without one is resolved, as at create.
        args = self._resolve_versions(ops, with_recorded_versions(new, old.args))
        ep = self._reconcile(ops, args, self._get_existing(ops, args.name),
                             previous_tags=canonical(old.args, "tags"))
        return self._stored(args, ep)

    def remove(self, id_: str, old: State) -> None:
        if old.args.mode == PAY_PER_TOKEN:
            return  # referenced, never created: never deleted
        name = old.args.name or id_
        ops = self._ops(OPERATION_BUDGET)
        # Read after write (issue 21): a delete answered 200 but never applied would let state
        # forget an endpoint the workspace still holds (and bills). A GET confirms it gone;
        # the DELETE is sent again (a 404 then means done) at most DELETE_TRIES times.
        # Whether the real service can still show an endpoint just after a 200 is not
        # documented; that a second DELETE is harmless there is a GUESS.
        for _ in range(DELETE_TRIES):
            try:
                ops.serving.delete(name)
                ops.serving.get(name)
            except NotFound:
                return
            except DeadlineExceeded as exc:
                raise _timed_out("deleting the serving endpoint", name, exc) from None
            except DatabricksError as exc:
                raise api_error("deleting the serving endpoint", f"endpoint {name}", exc) from None
        raise ProviderError(
            "serving endpoint not deleted", f"endpoint {name} in {self.host()}",
            f"the workspace answered {DELETE_TRIES} deletes but still lists it; delete it in the "
            "workspace (Serving) or run `pulumi destroy` again")

    # ------------------------------------------------------------ helpers

    def _ops(self, budget: float, deadline: float | None = None) -> Ops:
        """One operation's services over one bounded transport (no 300 s SDK retry, no blind
        re-send of a create): every call of the operation ends by the same deadline."""
        if deadline is not None:
            return Ops(self.bounded(deadline=deadline))
        return Ops(self.bounded(budget))

    def _stored(self, args: EndpointArgs, ep: ServingEndpointDetailed) -> State:
        return Stored(args, EndpointOutputs(
            endpoint_id=ep.id, url=f"{self.host()}/serving-endpoints/{args.name}/invocations",
            revision=revision(args), task=ep.task))

    def _get_existing(self, ops: Ops, name: str) -> ServingEndpointDetailed:
        try:
            return ops.serving.get(name)
        except NotFound:
            raise ProviderError(
                "serving endpoint not found", f"endpoint {name} in {self.host()}",
                "check the name (pay-per-token endpoints must already exist in the workspace; "
                "pick one the workspace serves) or remove it from the stack file",
            ) from None
        except DeadlineExceeded as exc:
            raise _timed_out("reading the serving endpoint", name, exc) from None
        except DatabricksError as exc:
            raise api_error("reading the serving endpoint", f"endpoint {name}", exc) from None

    def _made_by_lost_create(self, ops: Ops, args: EndpointArgs, exc: Exception
                             ) -> ServingEndpointDetailed | None:
        """The endpoint a create whose answer was lost made, adopted; None when it does not
        exist (or cannot be read now): the caller sends the create again."""
        try:
            ops.serving.get(args.name)
        except NotFound:
            return None
        except TRANSIENT:
            return None
        except DatabricksError as err:
            raise api_error("reading the serving endpoint", f"endpoint {args.name}",
                            err) from None
        return self._adopt(ops, args, exc)

    def _adopt(self, ops: Ops, args: EndpointArgs, exc: Exception) -> ServingEndpointDetailed:
        """An endpoint of this name exists. If it carries this stack's ownership tag, a run died
        after creating it: make it ours. Anyone else's endpoint is never taken over."""
        name = args.name
        ep = self._get_existing(ops, name)
        marker = canonical(args, "tags").get(OWNER_TAG)
        remote_marker = remote_tags(ep).get(OWNER_TAG)
        if marker or remote_marker:
            ours = remote_marker == marker
        else:
            # No marker either side (inputs not built by the spec): only an endpoint configured
            # exactly as we would have created it can be the one a crashed run left behind.
            wanted = canonical(args, "served_entities")
            ours = remote_entities(ep, wanted) == wanted
        if not ours:
            raise ProviderError(
                "a serving endpoint with this name already exists and is not this stack's",
                f"endpoint {name}",
                f"choose another name in the stack file (its {OWNER_TAG} tag is "
                f"{remote_marker!r}, not {marker!r}), or delete that endpoint",
            ) from exc
        if bool(ep.route_optimized) != canonical(args, "route_optimized"):
            raise ProviderError(
                "an endpoint with this name already exists with another route_optimized",
                f"endpoint {name}",
                "delete it or choose another name in the stack file, then run `pulumi up` again",
            ) from exc
        pulumi.log.info(f"endpoint {name} already exists: adopting it")
        return self._reconcile(ops, args, ep, previous_tags={})

    def _reconcile(self, ops: Ops, args: EndpointArgs, ep: ServingEndpointDetailed,
                   previous_tags: dict[str, str]) -> ServingEndpointDetailed:
        """Bring `ep` to `args`: tags, then AI Gateway, then the config (returns once accepted).

        The config goes last so this call never waits for the rollout it starts itself.
        """
        name = args.name
        entities = canonical(args, "served_entities")
        routes = canonical(args, "traffic")
        tags = canonical(args, "tags")

        current_tags = remote_tags(ep)
        add = {k: v for k, v in tags.items() if current_tags.get(k) != v}
        # Remove only tags we set before and no longer want; never someone else's.
        drop = sorted(k for k in previous_tags if k not in tags and k in current_tags)
        remote = dataclasses.replace(args, **remote_gateway(ep, args), **remote_settings(ep, args))
        gateway_changed = canonical_gateway(remote) != canonical_gateway(args)
        # Databricks changes an inference table's catalog, schema or prefix only while it is
        # disabled (databricks-sdk AiGatewayInferenceTableConfig): moving it takes two PUTs.
        was_table, want_table = canonical(remote, "inference_table"), canonical(args, "inference_table")
        table_moves = was_table is not None and want_table is not None and was_table != want_table
        notes = canonical(args, "email_notifications")
        notes_changed = canonical(remote, "email_notifications") != notes
        config_changed = (_rollout_failed(ep) or remote_entities(ep, entities) != entities
                          or remote_traffic(ep, routes) != routes)
        if not (add or drop or gateway_changed or notes_changed or config_changed):
            return ep

        if config_changed:
            # Before anything is written: a throughput the workspace would refuse fails here.
            self._check_throughput(ops, args)
        if _rolling_out(ep):
            ep = self._wait_not_updating(name)
            # The wait had its own deadline: the writes after it are an operation of their own.
            ops = self._ops(OPERATION_BUDGET)
        try:
            if add or drop:
                ops.serving.patch(
                    name, add_tags=[EndpointTag(key=k, value=v) for k, v in add.items()] or None,
                    delete_tags=drop or None)
            if gateway_changed:
                # PUT replaces the whole gateway, and the stack file is authoritative for the
                # endpoints it creates: what it omits is off.
                if table_moves:
                    _put_gateway(ops, name, _gateway_config(dataclasses.replace(
                        args, inference_table=dataclasses.replace(remote.inference_table, enabled=False)
                        if remote.inference_table else None), was=remote))
                _put_confirmed_gateway(ops, args, _gateway_config(args, was=remote))
            if notes_changed:
                # The SDK's EmailNotifications drops empty lists, so `{}` could read as "change
                # nothing"; both lists are sent as written, an empty one clearing its list
                # (databricks/cli's test server stores the object whole; either reading clears).
                ops.api.do("PATCH", f"/api/2.0/serving-endpoints/{name}/notifications",
                           body={"email_notifications": notes})
            if config_changed and serves_units(args):
                # The /pt PUT wraps its body as {"config": ...}; the SDK builds it.
                waiter = ops.serving.update_provisioned_throughput_endpoint_config(
                    name, pt_config(entities, routes))
            elif config_changed:
                waiter = ops.serving.update_config(
                    name,
                    served_entities=[ServedEntityInput.from_dict(e) for e in entities.values()],
                    traffic_config=_traffic(routes),
                )
            if config_changed:
                if waiter.response is not None and waiter.response.id:
                    ep = waiter.response
        except DeadlineExceeded as exc:
            raise _timed_out("updating the serving endpoint", name, exc) from None
        except DatabricksError as exc:
            raise self._write_error("updating the serving endpoint", args, exc) from None
        return ep

    def _wait_not_updating(self, name: str) -> ServingEndpointDetailed:
        """Databricks refuses changes while a config update rolls out: wait for it first. Every
        read is bounded by the wait's deadline, so the wait ends by it whatever the workspace
        answers."""
        deadline = time.monotonic() + ROLLOUT_WAIT_SECONDS
        pulumi.log.info(f"endpoint {name}: waiting for the rollout in progress before updating")

        def poll() -> Done[ServingEndpointDetailed] | Pending:
            try:
                ep = self._ops(0, deadline=poll_deadline(deadline)).serving.get(name)
            except TRANSIENT as exc:
                return Pending(f"config_update IN_PROGRESS (the workspace did not answer: "
                               f"{describe(exc)})")
            except NotFound:
                raise ProviderError("serving endpoint not found", f"endpoint {name}",
                                    "it was deleted while rolling out; run `pulumi refresh`, "
                                    "then `pulumi up`") from None
            except DatabricksError as exc:
                raise api_error("reading the serving endpoint", f"endpoint {name}", exc) from None
            return Pending("config_update IN_PROGRESS") if _rolling_out(ep) else Done(ep)

        return wait_for(poll, what="the rollout in progress to finish before updating",
                        obj=f"endpoint {name}", timeout=ROLLOUT_WAIT_SECONDS)

    # ------------------------------------------------------------ versions, chunks, retirement

    def _resolve_versions(self, ops: Ops, args: EndpointArgs) -> EndpointArgs:
        """Entities without `entity_version` get the newest version the workspace serves.

        Called at create (and at an update of an endpoint recorded without one); the result is
        recorded in state, and `with_recorded_versions` keeps it from then on, so the version
        never drifts when the workspace publishes a newer one. No request when all are given.
        """
        entities = args.served_entities or ()
        if all(e.entity_version not in (None, "") for e in entities):
            return args
        resolved = []
        for entity in entities:
            if entity.entity_version in (None, ""):
                entity = dataclasses.replace(entity, entity_version=self._newest_version(
                    ops, args.name, str(entity.entity_name)))
            resolved.append(entity)
        return dataclasses.replace(args, served_entities=tuple(resolved))

    def _newest_version(self, ops: Ops, endpoint: str, model: str) -> str:
        try:
            found = [v for v in ops.model_versions.list(model)
                     if v.version is not None and v.status != ModelVersionInfoStatus.FAILED_REGISTRATION]
        except NotFound:
            found = []
        except DeadlineExceeded as exc:
            raise _timed_out(f"listing the versions of {model}", endpoint, exc) from None
        except DatabricksError as exc:
            raise api_error(f"listing the versions of {model}", f"endpoint {endpoint}",
                            exc) from None
        if not found:
            raise ProviderError(
                "no version of the model is served in this workspace",
                f"endpoint {endpoint}, model {model}",
                "set entity_version in the stack file to a version the workspace serves, or "
                "choose another model" + _others_hint(model))
        newest = str(max(int(v.version or 0) for v in found))
        pulumi.log.info(f"endpoint {endpoint}: serving {model} version {newest}, the newest the "
                        "workspace serves (recorded in state; set entity_version to pin another)")
        return newest

    def _check_throughput(self, ops: Ops, args: EndpointArgs) -> None:
        """Refuse, before any write, a throughput that is not a multiple of the workspace's own
        chunk for that model version, and model units that are not a multiple of its unit step
        where it answers one (GET get-model-optimization-info; the SDK has no method). Then the
        stack's budget, with the workspace's own DBU rate where it answers one."""
        live: list[float | None] = []
        for entity in canonical_entities(args.served_entities).values():
            bounds = {k: entity[k] for k in ("min_provisioned_throughput",
                                             "max_provisioned_throughput",
                                             "provisioned_model_units") if k in entity}
            if not bounds or "entity_version" not in entity:
                continue
            model, version = entity["entity_name"], entity["entity_version"]
            chunk, dbus = self._live_chunk(ops, args.name, model, version)
            live.append(self._live_cost(args.name, entity, chunk, dbus))
            if not chunk:
                continue
            wrong = {k: v for k, v in bounds.items() if int(v) % chunk}
            if wrong:
                field, value = next(iter(wrong.items()))
                lower = int(value) // chunk * chunk
                what, unit = (("model units", "unit step") if field == "provisioned_model_units"
                              else ("throughput", "chunk"))
                per = "model units" if field == "provisioned_model_units" else "tokens/s"
                first = chunk if field == "provisioned_model_units" else 0
                raise ProviderError(
                    f"{what} {value} is not a multiple of the workspace's {unit} of {chunk} {per}",
                    f"endpoint {args.name}, model {model} version {version}, "
                    f"served entity {entity.get('name')}: {field}",
                    f"use a multiple of {chunk}: {first}, {first + chunk}, {first + 2 * chunk}, ... "
                    f"(nearest: {' or '.join(str(n) for n in (lower, lower + chunk) if n > 0)}); "
                    "nothing was written")
        self._check_budget(args, live)

    def _live_cost(self, endpoint: str, entity: dict[str, Any], chunk: int | None,
                   dbus: float | None) -> float | None:
        """One served entity's DBUs per hour at max, by the workspace's rate (`dbus` per chunk,
        or per model unit), else the catalog's; None when neither is known. A workspace rate
        that differs from the catalog's is a warning: the catalog is what review showed."""
        model, version = entity["entity_name"], entity["entity_version"]
        rate = catalog.dbu_rate(model, version)
        units = entity.get("provisioned_model_units")
        if dbus is not None and rate is not None and float(dbus) != rate.dbu_per_hour:
            pulumi.log.warn(
                f"endpoint {endpoint}: the workspace's rate for {model} version {version} is {dbus:g} "
                f"DBU/h per {'model unit' if units is not None else 'chunk'}, the catalog's "
                f"{rate.dbu_per_hour:g} ({rate.source}); the budget uses the workspace's, and the "
                "cost shown in review was the catalog's (correct components/catalog.py)")
        if units is not None:
            per_unit = dbus if dbus is not None else (rate.dbu_per_hour if rate else None)
            return None if per_unit is None else int(units) * float(per_unit)
        high = int(entity.get("max_provisioned_throughput") or 0)
        if dbus is not None and chunk:
            return high / chunk * float(dbus)
        return high / rate.size * rate.dbu_per_hour if rate is not None else None

    def _check_budget(self, args: EndpointArgs, live: list[float | None]) -> None:
        """Refuse, before the write, an endpoint whose live DBUs per hour at max put the stack
        over max_dbu_per_hour (the rest of the stack counted at the catalog's known part)."""
        budget = args.dbu_budget
        if budget is None:
            return
        known = [c for c in live if c is not None]
        if len(known) < len(live):
            pulumi.log.warn(f"endpoint {args.name}: its DBU rate is unknown here too, so "
                            f"max_dbu_per_hour {budget.max_dbu_per_hour:g} could not be checked for it")
        total = sum(known) + budget.others_max_dbu_per_hour
        if total > budget.max_dbu_per_hour:
            raise ProviderError(
                f"the stack would cost {total:g} DBU/h at max, over max_dbu_per_hour "
                f"{budget.max_dbu_per_hour:g}",
                f"endpoint {args.name}: {sum(known):g} DBU/h at max by the workspace's rate, the rest of "
                f"the stack {budget.others_max_dbu_per_hour:g}",
                "lower a max throughput or model units, or raise max_dbu_per_hour; nothing was written")

    def _live_chunk(self, ops: Ops, endpoint: str, model: str, version: str
                    ) -> tuple[int | None, float | None]:
        path = f"/api/2.0/serving-endpoints/get-model-optimization-info/{model}/{version}"
        try:
            info = ops.api.do("GET", path)
        except NotFound:
            # The workspace does not know this version: the create itself reports that, in the
            # workspace's own words.
            return None, None
        except DeadlineExceeded as exc:
            raise _timed_out(f"reading the throughput chunk of {model}", endpoint, exc) from None
        except DatabricksError as exc:
            raise api_error(f"reading the throughput chunk of {model} version {version}",
                            f"endpoint {endpoint}", exc) from None
        if isinstance(info, dict) and info.get("optimizable") is False:
            raise ProviderError(
                "the model cannot be served with provisioned throughput in this workspace",
                f"endpoint {endpoint}, model {model} version {version}",
                "serve another version or model" + _others_hint(model))
        chunk = info.get("throughput_chunk_size") if isinstance(info, dict) else None
        # `dbus`: DBU per hour for one chunk (or model unit), next to the chunk (a 2024 capture).
        dbus = info.get("dbus") if isinstance(info, dict) else None
        return (int(chunk) if chunk else None,
                float(dbus) if isinstance(dbus, int | float) and not isinstance(dbus, bool) else None)

    def _write_error(self, action: str, args: EndpointArgs, exc: DatabricksError
                     ) -> ProviderError:
        """An error the workspace answered to a create or update; a retired model says which
        model, and what the catalog serves instead."""
        text = str(exc).lower()
        if "not eligible for provisioned throughput" in text:
            models = [str(e.entity_name) for e in args.served_entities or ()]
            return ProviderError(
                f"{action} failed: the workspace sells this model in model units",
                f"endpoint {args.name}, model {', '.join(models)}",
                "write `model_units: N` instead of throughput in the stack file (and report the "
                "catalog entry in components/catalog.py, which lists it as a tokens-per-second "
                "model)", describe(exc))
        if "retired" in text:
            models = [str(e.entity_name) for e in args.served_entities or ()]
            named = [m for m in models if m.lower() in text] or models
            return ProviderError(
                f"{action} failed: the workspace has retired the model",
                f"endpoint {args.name}, model {', '.join(named)}",
                "serve another model in the stack file" + _replacement_hint(named[0] if named
                                                                            else ""),
                describe(exc))
        missing = re.search(r"model version (\S+) of '([^']+)' does not exist", text)
        if missing is not None or "registered model" in text and "does not exist" in text:
            # The version (or model) is named first: a permission hint in front of it sends the
            # reader after the wrong cause (the workspace says "or you do not have permission").
            models = [f"{e.entity_name} version {e.entity_version}" for e in args.served_entities or ()]
            named = [m for m in models if m.split(" version ")[0].lower() in text] or models
            return ProviderError(
                f"{action} failed: the workspace has no {', '.join(named) or 'such model version'}",
                f"endpoint {args.name}",
                "set the model's version (model.version, or entity_version) in the stack file to one "
                "the workspace has; if it does have it, check that the identity may read the model "
                "(USE CATALOG, USE SCHEMA, EXECUTE on it)", describe(exc))
        return api_error(action, f"endpoint {args.name}", exc)


def _replacement_hint(model: str) -> str:
    """`; the catalog's replacement for <key> is foundation_model: <key> (system.ai.<...>)`,
    from components/catalog.py: the provisioned replacement, else the model that replaced it on
    pay-per-token (the same retirement), else the models the catalog serves."""
    from components import catalog

    for m in catalog.MODELS:
        if m.provisioned is None or m.provisioned.entity_name != model:
            continue
        key = m.provisioned.replacement
        if key is None and m.pay_per_token is not None and m.pay_per_token.replacement:
            successor = catalog.BY_PAY_PER_TOKEN_ENDPOINT.get(m.pay_per_token.replacement)
            if successor is not None and successor.provisioned is not None:
                key = successor.key
        repl = catalog.BY_KEY.get(key) if key else None
        if repl is not None and repl.provisioned is not None:
            return (f"; the catalog's replacement for {m.key} is foundation_model: {repl.key} "
                    f"({repl.provisioned.entity_name})")
        others = [k for k in catalog.provisioned_keys() if k != m.key]
        return (f"; the catalog names no replacement for {m.key}; models it serves: "
                + ", ".join(others))
    return ""


def _others_hint(model: str) -> str:
    """`; other models in the catalog: ...` (the model is not retired, only unavailable here)."""
    from components import catalog

    own = next((m.key for m in catalog.MODELS
                if m.provisioned is not None and m.provisioned.entity_name == model), None)
    others = [k for k in catalog.provisioned_keys() if k != own]
    return "; other models in the catalog: " + ", ".join(others) if others else ""


def _timed_out(action: str, endpoint: str, exc: DeadlineExceeded) -> ProviderError:
    return ProviderError(f"{action} failed: the workspace did not answer in time",
                         f"endpoint {endpoint}",
                         "run `pulumi up` again; it resumes where this run stopped", str(exc))


def _rolling_out(ep: ServingEndpointDetailed) -> bool:
    return bool(ep.state and ep.state.config_update == EndpointStateConfigUpdate.IN_PROGRESS)


def _rollout_failed(ep: ServingEndpointDetailed) -> bool:
    update = ep.state.config_update if ep.state else None
    return update in (EndpointStateConfigUpdate.UPDATE_FAILED, EndpointStateConfigUpdate.UPDATE_CANCELED)


def _traffic(routes: dict[str, int]) -> TrafficConfig | None:
    if not routes:
        return None
    return TrafficConfig.from_dict({"routes": [
        {"served_entity_name": k, "traffic_percentage": v} for k, v in sorted(routes.items())]})


def _rate_limits(limits: list[RateLimitKey]) -> list[AiGatewayRateLimit]:
    return [AiGatewayRateLimit.from_dict({k: v for k, v in (
        ("key", key), ("renewal_period", period), ("calls", calls), ("tokens", tokens),
        ("principal", who or None)) if v is not None}) for key, period, calls, tokens, who in limits]


def _gateway_config(args: EndpointArgs, was: EndpointArgs | None = None) -> AiGatewayConfig:
    """The whole AI Gateway the arguments ask for. An inference table the stack turns off is
    sent disabled (where it was) rather than left out, so "off" never depends on how the
    service reads an omitted field."""
    guardrails = canonical(args, "guardrails")
    table = canonical(args, "inference_table")
    table_config = None
    if table is not None:
        table_config = AiGatewayInferenceTableConfig.from_dict(
            {**{k: v for k, v in table.items() if v is not None}, "enabled": True})
    elif was is not None and canonical(was, "inference_table") is not None:
        table_config = AiGatewayInferenceTableConfig(enabled=False)
    elif _disabled_table(args):
        # A table the stack writes disabled, with nothing logging now: stored where the stack
        # says, disabled, so what the workspace holds reads as the stack file does (a location
        # changes freely while the table is disabled, databricks-sdk AiGatewayInferenceTableConfig).
        written = _plain(args.inference_table)
        table_config = AiGatewayInferenceTableConfig.from_dict(
            {**{k: v for k, v in written.items() if v is not None and k != "enabled"}, "enabled": False})
    return AiGatewayConfig(
        rate_limits=_rate_limits(canonical(args, "rate_limits")),
        usage_tracking_config=AiGatewayUsageTrackingConfig(enabled=canonical(args, "usage_tracking")),
        guardrails=None if guardrails is None else AiGatewayGuardrails.from_dict({
            side: {"safety": g["safety"], **({"pii": {"behavior": g["pii"]}} if g["pii"] else {})}
            for side, g in guardrails.items() if g is not None}),
        inference_table_config=table_config,
    )


def _disabled_table(args: EndpointArgs) -> bool:
    table = args.inference_table
    return not is_unknown(table) and table is not None and _plain(table).get("enabled") is False


def _put_confirmed_gateway(ops: Ops, args: EndpointArgs, config: AiGatewayConfig) -> None:
    """PUT the gateway, then read it back (issue 21: state never records a write the workspace
    did not apply). An answer of 200 for a write that was never applied is sent again, at most
    DELETE_TRIES times in all; compared in the same canonical form the diff uses, so defaults
    the workspace fills in are not a mismatch."""
    want = canonical_gateway(args)
    for _ in range(DELETE_TRIES):
        _put_gateway(ops, args.name, config)
        now = dataclasses.replace(args, **remote_gateway(ops.serving.get(args.name), args))
        if canonical_gateway(now) == want:
            return
    raise ProviderError(
        "the AI Gateway was not applied", f"endpoint {args.name}",
        f"the workspace accepted {DELETE_TRIES} writes of it but still reads something else; "
        "check the endpoint's AI Gateway in the workspace, then run `pulumi up` again")


def _put_gateway(ops: Ops, name: str, config: AiGatewayConfig) -> None:
    ops.serving.put_ai_gateway(name, rate_limits=config.rate_limits or [],
                               usage_tracking_config=config.usage_tracking_config,
                               guardrails=config.guardrails,
                               inference_table_config=config.inference_table_config)


Endpoint = resource_class(EndpointProvider)
