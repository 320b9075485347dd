"""Serving endpoints: /api/2.0/serving-endpoints (like the CLI test server's serving_endpoints.go).

Wire shapes are databricks.sdk.service.serving dataclasses: inputs are checked against the
fields of ServedEntityInput / ServedModelInput / EndpointCoreConfigInput, outputs are built with
ServingEndpointDetailed / ServingEndpoint ``from_dict(...).as_dict()``.

Rollouts are asynchronous and computed from the clock on read (Workspace.settle): a new config is
``pending_config`` for ``ready_after`` seconds, then becomes ``config``.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable
from typing import Any

from databricks.sdk.service.serving import (
    AiGatewayConfig,
    AiGatewayGuardrailParameters,
    AiGatewayGuardrailPiiBehaviorBehavior,
    AiGatewayInferenceTableConfig,
    AiGatewayRateLimit,
    AiGatewayRateLimitKey,
    EmailNotifications,
    EndpointCoreConfigInput,
    EndpointTag,
    PtEndpointCoreConfig,
    PtServedModel,
    RateLimit,
    ServedEntityInput,
    ServedModelInput,
    ServingEndpoint,
    ServingEndpointDetailed,
    ServingModelWorkloadType,
)

from .auth import require_admin
from .errors import (
    already_exists,
    conflict,
    invalid_parameter,
    not_found,
    permission_denied,
)
from .models import Principal, Workspace, level_rank
from .routing import Request, Response, Route, ok

BASE = r"/api/2\.0/serving-endpoints"
NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,63}")
ENTITY_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,63}")
WORKLOAD_SIZES = ("Small", "Medium", "Large")
WORKLOAD_TYPES = tuple(t.value for t in ServingModelWorkloadType)
MAX_SERVED_ENTITIES = 15  # what the API accepts in practice; the SDK docstring says 10

ENTITY_FIELDS = {f.name for f in dataclasses.fields(ServedEntityInput)}
MODEL_FIELDS = {f.name for f in dataclasses.fields(ServedModelInput)}
CONFIG_FIELDS = {f.name for f in dataclasses.fields(EndpointCoreConfigInput)}
CREATE_FIELDS = {"name", "config", "ai_gateway", "tags", "rate_limits", "route_optimized",
                 "description", "budget_policy_id", "email_notifications", "telemetry_config"}
AI_GATEWAY_FIELDS = {f.name for f in dataclasses.fields(AiGatewayConfig)}
# The /pt API (databricks-sdk 0.162.0 create_provisioned_throughput_endpoint): its body takes no
# description, rate_limits or route_optimized; its served entities are PtServedModel.
PT_ENTITY_FIELDS = {f.name for f in dataclasses.fields(PtServedModel)}
PT_CONFIG_FIELDS = {f.name for f in dataclasses.fields(PtEndpointCoreConfig)}
PT_CREATE_FIELDS = {"name", "config", "ai_gateway", "budget_policy_id", "email_notifications", "tags"}


# ---- lookups and authorization -------------------------------------------------------------


def get_endpoint(ws: Workspace, name: str) -> dict[str, Any]:
    ep = ws.endpoints.get(name)
    if ep is None:
        raise not_found(f"Endpoint with name '{name}' does not exist.")
    ws.settle(ep)
    return ep


def require_level(ws: Workspace, ep: dict[str, Any], principal: Principal, level: str,
                  action: str) -> None:
    if level_rank(ws.effective_level(ep, principal)) < level_rank(level):
        raise permission_denied(
            f"{principal.label} does not have {level} permission on endpoint '{ep['name']}' "
            f"and may not {action}.")


def _no_rollout_in_progress(ep: dict[str, Any], what: str) -> None:
    if ep.get("pending"):
        raise conflict(f"Endpoint '{ep['name']}' has a config update in progress; "
                       f"wait for it to finish before you {what}.")


# ---- validation ------------------------------------------------------------------------------


def _wire(cls: Any, raw: dict[str, Any], where: str) -> dict[str, Any]:
    """`cls.from_dict(raw).as_dict()`: the SDK's shape, with a field of the wrong type (which
    from_dict meets as a ValueError or TypeError) refused as the client's error."""
    try:
        return dict(cls.from_dict(raw).as_dict())
    except (AttributeError, TypeError, ValueError) as e:
        raise invalid_parameter(f"{where}: a field has the wrong type ({e})") from None


def _check_keys(d: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise invalid_parameter(f"{where} must be an object")
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise invalid_parameter(f"Unknown field(s) in {where}: {', '.join(unknown)}")
    return d


def _int_field(e: dict[str, Any], key: str, where: str) -> int | None:
    v = e.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise invalid_parameter(f"{where}.{key} must be a non-negative integer, got {v!r}")
    return v


def _registered_model(ws: Workspace, e: dict[str, Any], where: str) -> tuple[str, Any, Any]:
    """A served entity's Unity Catalog model: its name, the version asked for, and the model
    (both create APIs refuse a missing name and an unknown model the same way)."""
    name, version = e.get("entity_name"), e.get("entity_version")
    if not name:
        raise invalid_parameter(f"{where}.entity_name is required")
    model = ws.uc_models.get(name)
    if model is None:
        raise not_found(f"Registered model '{name}' does not exist or you do not have "
                        f"permission to access it.")
    return name, version, model


def _entity(ws: Workspace, e: dict[str, Any], where: str) -> tuple[dict[str, Any], str | None]:
    """Validate one served entity; return its normalized input and its task."""
    _check_keys(e, ENTITY_FIELDS, where)
    for key in ("workload_size", "workload_type", "entity_name", "entity_version", "name"):
        if key in e and e[key] is not None and not isinstance(e[key], str):
            raise invalid_parameter(f"{where}.{key} must be a string")
    if "scale_to_zero_enabled" in e and not isinstance(e["scale_to_zero_enabled"], bool):
        raise invalid_parameter(f"{where}.scale_to_zero_enabled must be a boolean")
    if e.get("workload_size") is not None and e["workload_size"] not in WORKLOAD_SIZES:
        raise invalid_parameter(f"{where}.workload_size {e['workload_size']!r} is invalid; "
                                f"expected one of {', '.join(WORKLOAD_SIZES)}")
    if e.get("workload_type") is not None and e["workload_type"] not in WORKLOAD_TYPES:
        raise invalid_parameter(f"{where}.workload_type {e['workload_type']!r} is invalid; "
                                f"expected one of {', '.join(WORKLOAD_TYPES)}")
    lo = _int_field(e, "min_provisioned_throughput", where)
    hi = _int_field(e, "max_provisioned_throughput", where)
    pmu = _int_field(e, "provisioned_model_units", where)
    task: str | None = None
    if e.get("external_model") is not None:
        if e.get("entity_name"):
            raise invalid_parameter(f"{where}: entity_name and external_model are exclusive")
        ext = e["external_model"]
        if not isinstance(ext, dict) or not ext.get("name") or not ext.get("provider") or not ext.get("task"):
            raise invalid_parameter(f"{where}.external_model needs name, provider and task")
        task = ext["task"]
        default_name = ext["name"].replace(".", "-")
    else:
        name, version, model = _registered_model(ws, e, where)
        if not version:
            raise invalid_parameter(f"{where}.entity_version is required for Unity Catalog models")
        if version not in model["versions"]:
            raise not_found(f"Model version {version} of '{name}' does not exist.")
        _deployable(ws, name, where)
        if ws.capacity_of(name) == "units":
            # "not eligible for Provisioned Throughput" is the recorded wording (databricks-sdk-py
            # issue 1081); the rest of the sentence is a GUESS.
            raise invalid_parameter(
                f"{where}: Model '{name}' version {version} is not eligible for Provisioned "
                f"Throughput on this API: it is served in model units; create the endpoint "
                f"through /api/2.0/serving-endpoints/pt with provisioned_model_units.")
        task = model.get("task")
        chunk = ws.chunk_for(name, version)
        if chunk:  # a foundation model eligible for provisioned throughput
            if hi is None and pmu is None:
                raise invalid_parameter(
                    f"{where}: '{name}' is served with provisioned throughput: set "
                    f"max_provisioned_throughput (a multiple of {chunk} tokens per second)")
            if hi is not None:
                lo = lo or 0
                for key, v in (("min_provisioned_throughput", lo), ("max_provisioned_throughput", hi)):
                    if v % chunk:
                        raise invalid_parameter(
                            f"{where}.{key} of '{name}' must be a multiple of {chunk} tokens per "
                            f"second, got {v}")
                if hi == 0 or lo > hi:
                    raise invalid_parameter(
                        f"{where}: need 0 <= min_provisioned_throughput <= "
                        f"max_provisioned_throughput and max > 0, got min={lo} max={hi}")
        else:  # a custom model: CPU/GPU workload, no provisioned throughput
            if lo is not None or hi is not None:
                raise invalid_parameter(f"{where}: model '{name}' is not eligible for provisioned "
                                        f"throughput; set workload_size instead")
            # Emulator defaults where the API docs name none: Small, scale to zero off.
            if not e.get("workload_size") and pmu is None:
                e = {**e, "workload_size": "Small"}
            if e.get("scale_to_zero_enabled") is None:
                e = {**e, "scale_to_zero_enabled": False}
        # Emulator's reading of the default served entity name: `{entity_name}-{version}` with
        # the dots of the three-level name turned into dashes (names may hold no dots).
        default_name = f"{name.replace('.', '-')}-{version}"
    out = _wire(ServedEntityInput, e, where)
    out.pop("burst_scaling_enabled", None)  # not echoed on GET by the backend
    out["name"] = e.get("name") or default_name
    if not ENTITY_NAME_RE.fullmatch(out["name"]):
        raise invalid_parameter(f"{where}.name {out['name']!r} may hold only letters, digits, "
                                f"'-' and '_' (at most 63)")
    return out, task


def _deployable(ws: Workspace, name: str, where: str) -> None:
    """Refuse a retired model, and a legacy or deprecated one in a workspace that did not use it
    lately. The wordings are GUESSES; the rule is Databricks' "AI models maintenance policy"
    (only workspaces that used the model in the 30 days before the announcement keep it)."""
    life = ws.lifecycle_of(name)
    if name in ws.switches.retired or life["state"] == "retired":
        raise invalid_parameter(
            f"{where}: model '{name}' is retired and can no longer be deployed in this "
            f"workspace; serve a newer model instead.")
    if life["state"] in ("legacy", "deprecated") and not life["used_recently"]:
        when = f" and retires on {life['retires_on']}" if life.get("retires_on") else ""
        raise invalid_parameter(
            f"{where}: model '{name}' is {life['state']}{when}; it stays available only to "
            f"workspaces that used it in the 30 days before the announcement. Serve a newer model.")


def _pt_entity(ws: Workspace, e: dict[str, Any], where: str) -> tuple[dict[str, Any], str | None]:
    """Validate one served entity of the /pt API (PtServedModel); return it and its task."""
    _check_keys(e, PT_ENTITY_FIELDS, where)
    for key in ("entity_name", "entity_version", "name"):
        if key in e and e[key] is not None and not isinstance(e[key], str):
            raise invalid_parameter(f"{where}.{key} must be a string")
    if "burst_scaling_enabled" in e and not isinstance(e["burst_scaling_enabled"], bool):
        raise invalid_parameter(f"{where}.burst_scaling_enabled must be a boolean")
    name, version, model = _registered_model(ws, e, where)
    if not version:  # the Terraform resource requires it; the API's default is a GUESS
        raise invalid_parameter(f"{where}.entity_version is required")
    if version not in model["versions"]:
        raise not_found(f"Model version {version} of '{name}' does not exist.")
    _deployable(ws, name, where)
    if ws.capacity_of(name) != "units":
        # The wording is a GUESS: only the status and error code are assumed.
        raise invalid_parameter(
            f"{where}: Model '{name}' version {version} is not served in model units: it is "
            f"bought in tokens per second; create the endpoint through /api/2.0/serving-endpoints "
            f"with min_provisioned_throughput and max_provisioned_throughput.")
    units = e.get("provisioned_model_units")
    if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
        raise invalid_parameter(f"{where}.provisioned_model_units must be a positive integer, got "
                                f"{units!r} (dedicated capacity does not scale to zero)")
    step = ws.chunk_for(name, version)
    if step and units % step:
        # The unit step is a GUESS (seed.UNIT_STEP; no public source gives one).
        raise invalid_parameter(f"{where}.provisioned_model_units of '{name}' must be a multiple "
                                f"of {step} model units, got {units}")
    out = _wire(PtServedModel, e, where)
    out.pop("burst_scaling_enabled", None)  # not echoed on GET by the backend
    out["name"] = e.get("name") or f"{name.replace('.', '-')}-{version}"
    if not ENTITY_NAME_RE.fullmatch(out["name"]):
        raise invalid_parameter(f"{where}.name {out['name']!r} may hold only letters, digits, "
                                f"'-' and '_' (at most 63)")
    return out, model.get("task")


def _served_model_to_entity(m: dict[str, Any], where: str) -> dict[str, Any]:
    _check_keys(m, MODEL_FIELDS, where)
    e = {k: v for k, v in m.items() if k not in ("model_name", "model_version")}
    e["entity_name"] = m.get("model_name")
    e["entity_version"] = m.get("model_version")
    return e


def validate_config(ws: Workspace, cfg: dict[str, Any], where: str) -> tuple[dict[str, Any], str | None]:
    """Validate a core config (create's `config` or update's flat body): normalized + task."""
    entities_in = cfg.get("served_entities")
    models_in = cfg.get("served_models")
    if entities_in and models_in:
        raise invalid_parameter(f"{where}: give served_entities or served_models, not both")
    if models_in:
        if not isinstance(models_in, list):
            raise invalid_parameter(f"{where}.served_models must be a list")
        entities_in = [_served_model_to_entity(m, f"{where}.served_models[{i}]")
                       for i, m in enumerate(models_in)]
    return _with_entities(ws, cfg, entities_in, where, _entity)


def _with_entities(ws: Workspace, cfg: Any, entities_in: Any, where: str,
                   entity: Callable[[Workspace, dict[str, Any], str], tuple[dict[str, Any], str | None]]
                   ) -> tuple[dict[str, Any], str | None]:
    """Both config APIs' served entities, each validated by `entity`, then the routes."""
    if not entities_in or not isinstance(entities_in, list):
        raise invalid_parameter(f"{where}.served_entities must hold at least one served entity")
    if len(entities_in) > MAX_SERVED_ENTITIES:
        raise invalid_parameter(f"{where}: at most {MAX_SERVED_ENTITIES} served entities")
    entities, tasks = [], set()
    for i, e in enumerate(entities_in):
        out, task = entity(ws, e, f"{where}.served_entities[{i}]")
        entities.append(out)
        tasks.add(task)
    return _with_routes(cfg, entities, tasks, where)


def validate_pt_config(ws: Workspace, cfg: Any, where: str) -> tuple[dict[str, Any], str | None]:
    """Validate a /pt config (PtEndpointCoreConfig): normalized + task."""
    _check_keys(cfg, PT_CONFIG_FIELDS, where)
    return _with_entities(ws, cfg, cfg.get("served_entities"), where, _pt_entity)


def _with_routes(cfg: dict[str, Any], entities: list[dict[str, Any]], tasks: set[str | None],
                 where: str) -> tuple[dict[str, Any], str | None]:
    """The validated entities with the config's traffic routes (100% to a lone entity)."""
    names = [e["name"] for e in entities]
    if len(set(names)) != len(names):
        raise invalid_parameter(f"{where}: served entity names must be unique, got {names}")
    if len(tasks) > 1:
        raise invalid_parameter(f"{where}: all served entities must serve the same task, got "
                                f"{sorted(t or 'custom' for t in tasks)}")
    traffic = cfg.get("traffic_config")
    if traffic is not None and (not isinstance(traffic, dict)
                                or not isinstance(traffic.get("routes") or [], list)):
        raise invalid_parameter(f"{where}.traffic_config must be an object with a list of routes")
    if traffic is None or not traffic.get("routes"):
        if len(entities) > 1:
            raise invalid_parameter(f"{where}.traffic_config is required with more than one "
                                    f"served entity")
        routes = [{"served_entity_name": names[0], "traffic_percentage": 100}]
    else:
        routes = []
        for i, r in enumerate(traffic["routes"]):
            _check_keys(r, {"served_entity_name", "served_model_name", "traffic_percentage"},
                        f"{where}.traffic_config.routes[{i}]")
            target = r.get("served_entity_name") or r.get("served_model_name")
            pct = r.get("traffic_percentage")
            if target not in names:
                raise invalid_parameter(f"{where}.traffic_config.routes[{i}] names served entity "
                                        f"{target!r}, which is not in the config ({names})")
            if isinstance(pct, bool) or not isinstance(pct, int) or not 0 <= pct <= 100:
                raise invalid_parameter(f"{where}.traffic_config.routes[{i}].traffic_percentage "
                                        f"must be an integer from 0 to 100")
            routes.append({"served_entity_name": target, "traffic_percentage": pct})
        total = sum(r["traffic_percentage"] for r in routes)
        if total != 100:
            raise invalid_parameter(f"{where}.traffic_config: the traffic percentages must add "
                                    f"up to 100, got {total}")
    normalized = {"served_entities": entities, "traffic_config": {"routes": routes}}
    if cfg.get("auto_capture_config") is not None:
        normalized["auto_capture_config"] = cfg["auto_capture_config"]
    return normalized, next(iter(tasks))


def _tags(raw: Any, where: str) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise invalid_parameter(f"{where} must be a list")
    out: dict[str, dict[str, Any]] = {}
    for i, t in enumerate(raw):
        _check_keys(t, {"key", "value"}, f"{where}[{i}]")
        if not isinstance(t.get("key"), str) or not t["key"]:
            raise invalid_parameter(f"{where}[{i}].key is required")
        if t["key"] in out:
            raise invalid_parameter(f"{where}: duplicate tag key {t['key']!r}")
        out[t["key"]] = _wire(EndpointTag, t, f"{where}[{i}]")
    return list(out.values())


GATEWAY_KEYS = tuple(k.value for k in AiGatewayRateLimitKey)
NEEDS_PRINCIPAL = ("user_group", "service_principal")
PII_BEHAVIORS = tuple(b.value for b in AiGatewayGuardrailPiiBehaviorBehavior)
GUARDRAIL_FIELDS = {f.name for f in dataclasses.fields(AiGatewayGuardrailParameters)}
TABLE_FIELDS = {f.name for f in dataclasses.fields(AiGatewayInferenceTableConfig)}
RATE_LIMIT_FIELDS = {f.name for f in dataclasses.fields(AiGatewayRateLimit)}
TABLE_LOCATION = ("catalog_name", "schema_name", "table_name_prefix")
UC_IDENTIFIER_RE = re.compile(r"[A-Za-z0-9_]{1,255}")
# Loose on purpose (the real check is unknown): one '@' with text either side and a dot after.
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _count_field(rl: dict[str, Any], key: str, where: str) -> None:
    v = rl.get(key)
    if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
        raise invalid_parameter(f"{where}.{key} must be a non-negative integer, got {v!r}")


def _gateway_limits(limits: Any) -> None:
    if not isinstance(limits, list):
        raise invalid_parameter("ai_gateway.rate_limits must be a list")
    for i, rl in enumerate(limits):
        where = f"ai_gateway.rate_limits[{i}]"
        _check_keys(rl, RATE_LIMIT_FIELDS, where)
        if rl.get("renewal_period") != "minute":
            raise invalid_parameter(f"{where}.renewal_period must be 'minute'")
        if rl.get("calls") is None and rl.get("tokens") is None:
            raise invalid_parameter(f"{where} needs calls or tokens")
        _count_field(rl, "calls", where)
        _count_field(rl, "tokens", where)
        key = rl.get("key") or "endpoint"  # the SDK docstring: endpoint is the default
        if key not in GATEWAY_KEYS:
            raise invalid_parameter(f"{where}.key {key!r} is invalid; expected one of "
                                    f"{', '.join(GATEWAY_KEYS)}")
        # The wording, and whether the API checks this at all, are guesses; the SDK docstring
        # says principal names the user, group or service principal a limit applies to.
        if key in NEEDS_PRINCIPAL and not rl.get("principal"):
            raise invalid_parameter(f"{where}: a {key} rate limit needs a principal")
        if key == "endpoint" and rl.get("principal"):
            raise invalid_parameter(f"{where}: an endpoint rate limit takes no principal")


def _gateway_guardrails(raw: Any) -> None:
    _check_keys(raw, {"input", "output"}, "ai_gateway.guardrails")
    for side in ("input", "output"):
        params = raw.get(side)
        if params is None:
            continue
        where = f"ai_gateway.guardrails.{side}"
        _check_keys(params, GUARDRAIL_FIELDS, where)
        if params.get("safety") is not None and not isinstance(params["safety"], bool):
            raise invalid_parameter(f"{where}.safety must be a boolean")
        pii = params.get("pii")
        if pii is not None:
            _check_keys(pii, {"behavior"}, f"{where}.pii")
            if pii.get("behavior") not in PII_BEHAVIORS:
                raise invalid_parameter(f"{where}.pii.behavior {pii.get('behavior')!r} is invalid; "
                                        f"expected one of {', '.join(PII_BEHAVIORS)}")


def _gateway_table(raw: Any, before: dict[str, Any] | None) -> None:
    where = "ai_gateway.inference_table_config"
    _check_keys(raw, TABLE_FIELDS, where)
    if raw.get("enabled") is not None and not isinstance(raw["enabled"], bool):
        raise invalid_parameter(f"{where}.enabled must be a boolean")
    for key in TABLE_LOCATION:
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not UC_IDENTIFIER_RE.fullmatch(value)):
            raise invalid_parameter(f"{where}.{key} {value!r} is not a valid Unity Catalog name")
    if raw.get("enabled") and not (raw.get("catalog_name") and raw.get("schema_name")):
        # databricks-sdk AiGatewayInferenceTableConfig: required when enabling.
        raise invalid_parameter(f"{where}: catalog_name and schema_name are required to enable "
                                "inference tables")
    if before and before.get("enabled") and raw.get("enabled"):
        # databricks-sdk: "On update, you have to disable inference table first in order to
        # change the catalog name" (likewise the schema and the prefix). The wording is a guess.
        moved = [k for k in TABLE_LOCATION if raw.get(k) is not None and raw.get(k) != before.get(k)]
        if moved:
            raise invalid_parameter(f"{where}: disable the inference table before changing "
                                    f"{', '.join(moved)}")


def _ai_gateway(raw: Any, ep: dict[str, Any] | None = None,
                entities: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """A whole AI Gateway, checked field by field against the SDK's dataclasses; ``ep`` the
    endpoint it replaces the gateway of (None at create), ``entities`` what it serves."""
    _check_keys(raw, AI_GATEWAY_FIELDS, "ai_gateway")
    _gateway_limits(raw.get("rate_limits") or [])
    if raw.get("guardrails") is not None:
        _gateway_guardrails(raw["guardrails"])
    before = ((ep or {}).get("ai_gateway") or {}).get("inference_table_config")
    if raw.get("inference_table_config") is not None:
        _gateway_table(raw["inference_table_config"], before)
    fallback = raw.get("fallback_config")
    if fallback is not None:
        _check_keys(fallback, {"enabled"}, "ai_gateway.fallback_config")
        if fallback.get("enabled") and not any(e.get("external_model") for e in entities or []):
            # Databricks' AI Gateway docs offer fallbacks between external models only; the
            # wording of this refusal is a guess.
            raise invalid_parameter("ai_gateway.fallback_config: fallbacks are supported only on "
                                    "endpoints that serve external models")
    cfg = _wire(AiGatewayConfig, raw, "ai_gateway")
    return cfg or None


def _email_notifications(raw: Any, where: str = "email_notifications") -> dict[str, Any] | None:
    """EmailNotifications as stored: each list as sent (the whole object replaces the old one,
    as databricks/cli's test server does); an empty object or empty lists clear it."""
    if raw is None:
        return None
    _check_keys(raw, {"on_update_success", "on_update_failure"}, where)
    for key in ("on_update_success", "on_update_failure"):
        value = raw.get(key)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
            raise invalid_parameter(f"{where}.{key} must be a list of email addresses")
        bad = [a for a in value if not EMAIL_RE.fullmatch(a)]
        if bad:  # the wording is a guess
            raise invalid_parameter(f"{where}.{key}: {bad[0]!r} is not a valid email address")
    return _wire(EmailNotifications, raw, where) or None


def _rate_limits(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise invalid_parameter("rate_limits must be a list")
    out = []
    for i, rl in enumerate(raw):
        _check_keys(rl, {"calls", "key", "renewal_period"}, f"rate_limits[{i}]")
        if not isinstance(rl.get("calls"), int) or rl["calls"] < 0:
            raise invalid_parameter(f"rate_limits[{i}].calls must be a non-negative integer")
        if rl.get("renewal_period") != "minute":
            raise invalid_parameter(f"rate_limits[{i}].renewal_period must be 'minute'")
        if rl.get("key") not in (None, "user", "endpoint"):
            raise invalid_parameter(f"rate_limits[{i}].key must be 'user' or 'endpoint'")
        out.append(_wire(RateLimit, rl, f"rate_limits[{i}]"))
    return out


# ---- rollouts --------------------------------------------------------------------------------


def start_rollout(ws: Workspace, ep: dict[str, Any], cfg: dict[str, Any], creator: str,
                  instant: bool = False) -> None:
    version = max((c["config_version"] for c in (ep.get("config"), ep.get("failed"))
                   if c), default=0) + 1
    now_ms = ws.now_ms()
    for e in cfg["served_entities"]:
        e.setdefault("creation_timestamp", now_ms)
        e.setdefault("creator", creator)
    ep["pending"] = {**cfg, "config_version": version, "start_time": now_ms,
                     "ready_at": ws.now() + (0.0 if instant else ws.ready_after),
                     "fail_message": ws.rollout_failures.pop(ep["name"], None)}
    ep["failed"] = None
    ep["last_updated_timestamp"] = now_ms


# ---- rendering -------------------------------------------------------------------------------


def _entity_out(e: dict[str, Any], deployment: str, message: str) -> dict[str, Any]:
    out = dict(e)
    if out.get("entity_name", "").startswith("system.ai."):
        short = out["entity_name"].split(".")[-1]
        out["foundation_model"] = {"name": short, "display_name": short}
    out["state"] = {"deployment": deployment, "deployment_state_message": message}
    return out


def _served_model(e: dict[str, Any]) -> dict[str, Any]:
    keys = ("name", "workload_size", "workload_type", "scale_to_zero_enabled", "environment_vars",
            "instance_profile_arn", "creator", "creation_timestamp", "provisioned_model_units",
            "min_provisioned_concurrency", "max_provisioned_concurrency", "state")
    out = {k: e[k] for k in keys if k in e}
    out["model_name"], out["model_version"] = e["entity_name"], e["entity_version"]
    return out


def _config_out(c: dict[str, Any], deployment: str, message: str,
                pending: bool = False) -> dict[str, Any]:
    entities = [_entity_out(e, deployment, message) for e in c["served_entities"]]
    out: dict[str, Any] = {"config_version": c["config_version"], "served_entities": entities}
    models = [_served_model(e) for e in entities if e.get("entity_name")]
    if models:  # the deprecated view, still returned
        out["served_models"] = models
    if c.get("traffic_config"):
        out["traffic_config"] = {"routes": [
            {**r, "served_model_name": r["served_entity_name"]} for r in c["traffic_config"]["routes"]]}
    if c.get("auto_capture_config"):
        out["auto_capture_config"] = c["auto_capture_config"]
    if pending:
        out["start_time"] = c["start_time"]
    return out


def render(ws: Workspace, ep: dict[str, Any], principal: Principal | None) -> dict[str, Any]:
    ws.settle(ep)
    pending, failed, live = ep.get("pending"), ep.get("failed"), ep.get("config")
    # budget_policy_id is never echoed on GET, effective_budget_policy_id is (databricks/cli
    # bundle/direct/dresources/resources.yml; the SDK's dataclass drops the latter, raw JSON
    # readers see it). description is always echoed, "" when unset (databricks/cli test server).
    out: dict[str, Any] = {k: ep[k] for k in ("id", "name", "creator", "creation_timestamp",
                                              "last_updated_timestamp", "description",
                                              "route_optimized", "email_notifications")
                           if ep.get(k) is not None}
    if ep.get("task"):
        out["task"] = ep["task"]
    # Tags come back ordered by key, not as sent (clients must compare them as a set).
    out["tags"] = sorted(ep["tags"], key=lambda t: t["key"])
    if ep.get("ai_gateway"):
        out["ai_gateway"] = ep["ai_gateway"]
    if live:
        out["config"] = _config_out(live, "DEPLOYMENT_READY", "")
    if pending:
        out["pending_config"] = _config_out(
            pending, "DEPLOYMENT_CREATING",
            "Creating the served entity: provisioning compute and loading the model.", pending=True)
        update = "IN_PROGRESS"
    elif failed:
        failed_view = _config_out(failed, "DEPLOYMENT_FAILED", failed["fail_message"],
                                  pending=bool(live))
        if live:  # the previous config keeps serving; the failed one stays visible as pending
            out["pending_config"] = failed_view
        else:  # a first rollout failed: nothing serves
            out["config"] = failed_view
        update = "UPDATE_FAILED"
    else:
        update = "NOT_UPDATING"
    out["state"] = {"ready": "READY" if live else "NOT_READY", "config_update": update}
    if principal is not None:
        level = ws.effective_level(ep, principal)
        if level:
            out["permission_level"] = level
    wire = ServingEndpointDetailed.from_dict(out).as_dict()
    for key in ("config", "pending_config"):
        for entity in (wire.get(key) or {}).get("served_entities") or []:
            entity.update(_dbus(ws, entity))
    if ep.get("description") is not None:
        wire["description"] = ep["description"]
    if ep.get("budget_policy_id"):
        wire["effective_budget_policy_id"] = ep["budget_policy_id"]
    return wire


def _dbus(ws: Workspace, e: dict[str, Any]) -> dict[str, float]:
    """`min_dbus`/`max_dbus` (DBU per hour) of a provisioned served entity: fields the real
    service answers and the SDK's dataclasses drop (clients read the raw JSON). A unit model's
    burst is not counted: how burst is billed is not published (a GUESS)."""
    name, version = e.get("entity_name"), e.get("entity_version")
    chunk = ws.chunk_for(name, version) if name and version else None
    rate = ws.dbus_for(name, version) if name and version else None
    if not chunk or rate is None:
        return {}
    units = e.get("provisioned_model_units")
    if units is not None:
        return {"min_dbus": float(units * rate), "max_dbus": float(units * rate)}
    lo, hi = e.get("min_provisioned_throughput"), e.get("max_provisioned_throughput")
    if hi is None:
        return {}
    return {"min_dbus": float((lo or 0) / chunk * rate), "max_dbus": float(hi / chunk * rate)}


def render_summary(ws: Workspace, ep: dict[str, Any]) -> dict[str, Any]:
    full = render(ws, ep, None)
    summary: dict[str, Any] = {k: full[k] for k in ("id", "name", "creator", "creation_timestamp",
                                    "last_updated_timestamp", "state", "tags", "task",
                                    "ai_gateway", "description") if k in full}
    cfg = full.get("config")
    if cfg:
        summary["config"] = {
            "served_entities": [{k: e[k] for k in ("name", "entity_name", "entity_version",
                                                   "foundation_model", "external_model") if k in e}
                                for e in cfg.get("served_entities", [])],
        }
        if cfg.get("served_models"):
            summary["config"]["served_models"] = [
                {k: m[k] for k in ("name", "model_name", "model_version") if k in m}
                for m in cfg["served_models"]]
    return ServingEndpoint.from_dict(summary).as_dict()


# ---- handlers --------------------------------------------------------------------------------


def create(ws: Workspace, req: Request) -> Response:
    require_admin(req, "create serving endpoints")
    body = _check_keys(req.json(), CREATE_FIELDS, "the request")
    name = _new_name(ws, body)
    cfg_in = body.get("config")
    if not cfg_in:
        raise invalid_parameter("config is required: give config.served_entities")
    _check_keys(cfg_in, CONFIG_FIELDS, "config")
    if cfg_in.get("name") not in (None, name):
        raise invalid_parameter(f"config.name {cfg_in.get('name')!r} must equal the endpoint name {name!r}")
    cfg, task = validate_config(ws, cfg_in, "config")
    return _add_endpoint(ws, req, body, name, cfg, task, pt=False,
                         description=_description(body.get("description")),
                         route_optimized=bool(body.get("route_optimized", False)),
                         rate_limits=_rate_limits(body["rate_limits"]) if body.get("rate_limits") else None)


def list_(ws: Workspace, req: Request) -> Response:
    eps = [ep for ep in sorted(ws.endpoints.values(), key=lambda e: e["name"])
           if ws.effective_level(ep, req.caller)]
    return ok({"endpoints": [render_summary(ws, ep) for ep in eps]})


def get(ws: Workspace, req: Request) -> Response:
    ep = get_endpoint(ws, req.params["name"])
    require_level(ws, ep, req.caller, "CAN_VIEW", "view it")
    return ok(render(ws, ep, req.caller))


def delete(ws: Workspace, req: Request) -> Response:
    ep = get_endpoint(ws, req.params["name"])
    require_level(ws, ep, req.caller, "CAN_MANAGE", "delete it")
    if ep.get("pay_per_token"):
        raise permission_denied(f"'{ep['name']}' is a pay-per-token endpoint managed by Databricks.")
    del ws.endpoints[ep["name"]]
    return ok({})


def _manageable(ws: Workspace, req: Request, action: str) -> dict[str, Any]:
    ep = get_endpoint(ws, req.params["name"])
    require_level(ws, ep, req.caller, "CAN_MANAGE", action)
    return ep


def update_config(ws: Workspace, req: Request) -> Response:
    ep = _manageable(ws, req, "update its config")
    if ep.get("pay_per_token"):
        raise invalid_parameter(f"The config of pay-per-token endpoint '{ep['name']}' cannot be changed.")
    cross_api_update(ws, ep, "serving-endpoints")
    body = _check_keys(req.json(), CONFIG_FIELDS | {"name"}, "the request")
    _no_rollout_in_progress(ep, "update its config")
    cfg, task = validate_config(ws, body, "config")
    ep["pt"] = False  # with pt_config_switch=accept, the API that last configured it
    if ep.get("task") != task and ep.get("config"):
        raise invalid_parameter(f"The new config serves task {task!r} but the endpoint serves "
                                f"{ep.get('task')!r}; create a new endpoint instead.")
    ep["task"] = task
    start_rollout(ws, ep, cfg, req.caller.name)
    return ok(render(ws, ep, req.caller))


def create_pt(ws: Workspace, req: Request) -> Response:
    """POST /api/2.0/serving-endpoints/pt: an endpoint of model units (CreatePtEndpointRequest).
    No description, rate_limits or route_optimized: the SDK's request has none, so they are
    refused as unknown fields (whether the service ignores or refuses them is a GUESS)."""
    require_admin(req, "create serving endpoints")
    body = _check_keys(req.json(), PT_CREATE_FIELDS, "the request")
    name = _new_name(ws, body)
    if not body.get("config"):
        raise invalid_parameter("config is required: give config.served_entities")
    cfg, task = validate_pt_config(ws, body["config"], "config")
    return _add_endpoint(ws, req, body, name, cfg, task, pt=True, description="",
                         route_optimized=False, rate_limits=None)


def _new_name(ws: Workspace, body: dict[str, Any]) -> str:
    """A create's endpoint name, checked as both create APIs check it."""
    name = body.get("name")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise invalid_parameter(f"Invalid endpoint name {name!r}: use 1 to 63 letters, digits, "
                                f"'-' and '_'.")
    if name in ws.endpoints:
        raise already_exists(f"Endpoint with name '{name}' already exists.")
    return name


def _add_endpoint(ws: Workspace, req: Request, body: dict[str, Any], name: str, cfg: dict[str, Any],
                  task: str | None, *, pt: bool, description: str, route_optimized: bool,
                  rate_limits: Any) -> Response:
    """A new endpoint from either create API (`pt`: the /pt one), rolling out its config."""
    ep: dict[str, Any] = {
        "id": uuid.uuid4().hex, "name": name, "creator": req.caller.name,
        "creation_timestamp": ws.now_ms(), "last_updated_timestamp": ws.now_ms(),
        "task": task, "pay_per_token": False, **({"pt": True} if pt else {}), "description": description,
        "route_optimized": route_optimized,
        "budget_policy_id": _budget_policy(body.get("budget_policy_id")),
        "email_notifications": _email_notifications(body.get("email_notifications")),
        "tags": _tags(body.get("tags"), "tags"),
        "ai_gateway": (_ai_gateway(body["ai_gateway"], None, cfg["served_entities"])
                       if body.get("ai_gateway") else None),
        "rate_limits": rate_limits,
        "config": None, "pending": None, "failed": None,
        "acl": [{"key": req.caller.acl_key, "name": req.caller.name, "level": "CAN_MANAGE"}],
    }
    start_rollout(ws, ep, cfg, req.caller.name)
    ws.endpoints[name] = ep
    return ok(render(ws, ep, req.caller))


def update_pt_config(ws: Workspace, req: Request) -> Response:
    """PUT /api/2.0/serving-endpoints/pt/{name}/config: the body wraps the config as
    {"config": ...} where the ordinary PUT .../config is flat (UpdateProvisionedThroughput-
    EndpointConfigRequest). The SDK's docstring says such updates are instantaneous, so the new
    config serves at once (no pending rollout)."""
    ep = _manageable(ws, req, "update its config")
    cross_api_update(ws, ep, "pt")
    body = _check_keys(req.json(), {"config", "name"}, "the request")
    if not body.get("config"):
        raise invalid_parameter("config is required: give config.served_entities")
    _no_rollout_in_progress(ep, "update its config")
    cfg, task = validate_pt_config(ws, body["config"], "config")
    ep["pt"] = True
    ep["task"] = task
    start_rollout(ws, ep, cfg, req.caller.name, instant=True)
    return ok(render(ws, ep, req.caller))


def put_ai_gateway(ws: Workspace, req: Request) -> Response:
    """PUT replaces the whole gateway (databricks/cli's test server does the same): a field
    left out is off. The answer is PutAiGatewayResponse, the gateway as stored."""
    ep = _manageable(ws, req, "change its AI Gateway")
    body = req.json()
    _no_rollout_in_progress(ep, "change its AI Gateway")
    serving = (ep.get("config") or ep.get("pending") or {}).get("served_entities") or []
    ep["ai_gateway"] = _ai_gateway(body, ep, serving) if body else None
    ep["last_updated_timestamp"] = ws.now_ms()
    return ok(ep["ai_gateway"] or {})


def update_notifications(ws: Workspace, req: Request) -> Response:
    """PATCH .../notifications: the object sent replaces the stored one (databricks/cli's test
    server); answers UpdateInferenceEndpointNotificationsResponse {name, email_notifications}."""
    ep = _manageable(ws, req, "change its notifications")
    body = _check_keys(req.json(), {"email_notifications", "name"}, "the request")
    ep["email_notifications"] = _email_notifications(body.get("email_notifications"))
    ep["last_updated_timestamp"] = ws.now_ms()
    out: dict[str, Any] = {"name": ep["name"]}
    if ep["email_notifications"]:
        out["email_notifications"] = ep["email_notifications"]
    return ok(out)


def cross_api_update(ws: Workspace, ep: dict[str, Any], api: str) -> None:
    """Refuse a config update through the other family's API (``api``: "pt" for
    PUT /serving-endpoints/pt/{name}/config, "serving-endpoints" for PUT .../{name}/config)
    unless the pt_config_switch accepts it. No public source says which the service does (a
    GUESS either way, played both ways); the refusals' wording is a guess too."""
    if ws.switches.pt_config_switch == "accept":
        return
    if ep.get("pt") and api != "pt":
        raise invalid_parameter(f"Endpoint '{ep['name']}' serves model units: change its config "
                                f"through /api/2.0/serving-endpoints/pt/{ep['name']}/config.")
    if not ep.get("pt") and api == "pt":
        raise invalid_parameter(f"Endpoint '{ep['name']}' is not a model-units endpoint: change its "
                                f"config through /api/2.0/serving-endpoints/{ep['name']}/config.")


def _description(raw: Any) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise invalid_parameter("description must be a string")
    return raw


def _budget_policy(raw: Any) -> str | None:
    if raw is not None and (not isinstance(raw, str) or not raw):
        raise invalid_parameter("budget_policy_id must be a non-empty string")
    return raw


def patch_tags(ws: Workspace, req: Request) -> Response:
    ep = _manageable(ws, req, "change its tags")
    body = _check_keys(req.json(), {"add_tags", "delete_tags"}, "the request")
    tags = {t["key"]: t for t in ep["tags"]}
    delete = body.get("delete_tags") or []
    if not isinstance(delete, list) or not all(isinstance(k, str) for k in delete):
        raise invalid_parameter("delete_tags must be a list of tag keys")
    for key in delete:
        tags.pop(key, None)
    for t in _tags(body.get("add_tags"), "add_tags"):
        tags[t["key"]] = t
    ep["tags"] = list(tags.values())
    return ok({"tags": sorted(ep["tags"], key=lambda t: t["key"])})


def put_rate_limits(ws: Workspace, req: Request) -> Response:
    ep = _manageable(ws, req, "change its rate limits")
    body = _check_keys(req.json(), {"rate_limits"}, "the request")
    ep["rate_limits"] = _rate_limits(body.get("rate_limits") or [])
    return ok({"rate_limits": ep["rate_limits"]})


def optimization_info(ws: Workspace, req: Request) -> Response:
    """`{optimizable, model_type, throughput_chunk_size, dbus}` for a model version: what the
    UI and the Terraform provider read the provisioned-throughput chunk from."""
    name, version = req.params["entity"], req.params["version"]
    model = ws.uc_models.get(name)
    if model is None or version not in model["versions"]:
        raise not_found(f"Model version {version} of '{name}' does not exist.")
    chunk = ws.chunk_for(name, version)
    if not chunk:
        return ok({"optimizable": False})
    short = name.split(".")[-1]
    model_type = next((t for t in ("mixtral", "mistral", "llama", "gpt", "gemma") if t in short),
                      "unknown")
    # A unit model answers its unit step (in model units) as throughput_chunk_size and its DBU
    # per unit-hour as dbus: both field meanings and values are GUESSES (no public capture).
    # A band model's dbus is per chunk-hour: the seed's recorded figure, else invented.
    dbus = ws.dbus_for(name, version)
    return ok({"optimizable": True, "model_type": model_type, "throughput_chunk_size": chunk,
               "dbus": int(dbus) if dbus is not None and dbus == int(dbus) else dbus})


NAME = r"(?P<name>[^/]+)"
ROUTES = [
    Route("GET", rf"{BASE}/get-model-optimization-info/(?P<entity>[^/]+)/(?P<version>[^/]+)",
          optimization_info, serving_scope=True),
    Route("POST", f"{BASE}/pt", create_pt, serving_scope=True),
    Route("PUT", f"{BASE}/pt/{NAME}/config", update_pt_config, serving_scope=True),
    Route("POST", BASE, create, serving_scope=True),
    Route("GET", BASE, list_, serving_scope=True),
    Route("GET", f"{BASE}/{NAME}", get, serving_scope=True),
    Route("DELETE", f"{BASE}/{NAME}", delete, serving_scope=True),
    Route("PUT", f"{BASE}/{NAME}/config", update_config, serving_scope=True),
    Route("PUT", f"{BASE}/{NAME}/ai-gateway", put_ai_gateway, serving_scope=True),
    Route("PATCH", f"{BASE}/{NAME}/notifications", update_notifications, serving_scope=True),
    Route("PATCH", f"{BASE}/{NAME}/tags", patch_tags, serving_scope=True),
    Route("PUT", f"{BASE}/{NAME}/rate-limits", put_rate_limits, serving_scope=True),
]
