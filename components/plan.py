"""The resource plan: from a validated stack, every resource it declares, in one place.

Each declaration gives a resource's type token, its logical name, its parent, its typed
arguments (components/args.py) and, derived from the references in those arguments, the
resources it depends on. The Pulumi program (components/program.py) turns the declarations
into resources; `python -m components render` prints them; tests compare both with it.
Nothing else builds resource inputs.

No pulumi, no databricks-sdk: `validate` and `render` import this on a bare runner.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from components import catalog
from components.args import (
    ENDPOINT,
    AiSecretArgs,
    Args,
    BraintrustRecordArgs,
    DbuBudget,
    EmailNotificationsArgs,
    EndpointArgs,
    GuardrailArgs,
    GuardrailsArgs,
    InferenceTableArgs,
    OAuthSecretArgs,
    QueryGrantArgs,
    RateLimitArgs,
    ReadinessArgs,
    Ref,
    RolloutRef,
    SecretConfig,
    SecretSweepArgs,
    ServedEntity,
    ServicePrincipalArgs,
    TrafficRoute,
    dynamic_type,
    references,
)
from components.spec import (
    MANAGED_BY_TAG,
    PROJECT,
    CustomModelEndpoint,
    FoundationModelEndpoint,
    PayPerTokenEndpoint,
    Stack,
    ownership_marker,
)
from components.spec.endpoints import Guardrail

# Component type tokens. A renamed one keeps its former token as an alias, so a deployed
# stack's resources keep their identity (URN) and nothing is replaced.
SERVING_ENDPOINT = f"{PROJECT}:serving:ServingEndpoint"
READINESS_GATE = f"{PROJECT}:serving:ReadinessGate"
QUERY_PRINCIPAL = f"{PROJECT}:principal:QueryPrincipal"
BRAINTRUST_RECORD = BraintrustRecordArgs.TYPE_NAME
FORMER_TYPES = {
    READINESS_GATE: f"{PROJECT}:serving:EndpointsReady",
    BRAINTRUST_RECORD: f"{PROJECT}:braintrust:BraintrustProvider",
}
# Logical names that do not follow display_name: renaming the principal in the stack file is
# then an in-place SCIM update, not a new principal, secret and grants (a URN change).
PRINCIPAL_NAME = "query-principal"
SECRET_NAME = f"{PRINCIPAL_NAME}-oauth"
SWEEP_NAME = f"{SECRET_NAME}-sweep"


@dataclass(frozen=True)
class FormerIdentity:
    """What a resource used to be, for a Pulumi alias: another type token, or the same name
    under a parent whose type was renamed (the parent's former token)."""

    type: str | None = None
    parent_type: str | None = None


@dataclass(frozen=True)
class Declaration:
    key: str  # unique in the plan: "<type name>/<logical name>"
    type: str  # the Pulumi type token
    name: str  # the logical name (the last part of the URN)
    args: Args | None  # None for a component that only groups its children
    parent: str | None = None  # the parent's key; None: the stack itself
    aliases: tuple[FormerIdentity, ...] = ()

    @property
    def custom(self) -> bool:
        """A resource a provider creates (the others are components)."""
        return self.type.startswith("pulumi-python:dynamic/")


def key_of(type_token: str, name: str) -> str:
    return f"{type_token.rsplit(':', 1)[-1]}/{name}"


@dataclass(frozen=True)
class Plan:
    stack: Stack
    declarations: tuple[Declaration, ...]
    _by_key: dict[str, Declaration] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_key: dict[str, Declaration] = {}
        for d in self.declarations:
            if d.key in by_key:
                raise ValueError(f"two declarations share the key {d.key}")
            if d.parent is not None and d.parent not in by_key:
                raise ValueError(f"{d.key}: its parent {d.parent} must be declared before it")
            by_key[d.key] = d
        object.__setattr__(self, "_by_key", by_key)

    def __getitem__(self, key: str) -> Declaration:
        return self._by_key[key]

    def __iter__(self) -> Iterator[Declaration]:
        return iter(self.declarations)

    def dependencies(self, key: str) -> tuple[str, ...]:
        """The custom resources whose outputs this declaration's arguments use: what Pulumi
        records as its dependencies (a component's outputs stand for what they were built from)."""
        found: set[str] = set()
        pending = [key]
        seen = set(pending)
        while pending:
            decl = self[pending.pop()]
            for ref in references(decl.args.inputs()) if decl.args is not None else []:
                if isinstance(ref, SecretConfig):
                    continue
                target = self[ref.key]
                if target.custom:
                    found.add(target.key)
                elif target.key not in seen:
                    seen.add(target.key)
                    pending.append(target.key)
        return tuple(sorted(found))

    def of_type(self, args_type: type[Args]) -> list[Declaration]:
        return [d for d in self.declarations if isinstance(d.args, args_type)]


# ---------------------------------------------------------------------------------------------
# From a stack to its declarations

SpecEndpoint = FoundationModelEndpoint | CustomModelEndpoint | PayPerTokenEndpoint


def endpoint_key(name: str) -> str:
    return key_of(EndpointArgs.TYPE_NAME, name)


def served_entities(endpoint: SpecEndpoint) -> tuple[ServedEntity, ...]:
    if isinstance(endpoint, FoundationModelEndpoint):
        entity = catalog.BY_KEY[endpoint.foundation_model].provisioned
        if entity is None:  # the spec refuses a model without provisioned throughput
            raise ValueError(f"{endpoint.foundation_model} has no provisioned throughput")
        # An omitted version is left out: the endpoint provider pins the newest the workspace
        # serves at create and keeps it in state. The entity's name keys it in diffs, so it never
        # follows what is resolved: without a version it carries the catalog's fixed
        # name_version, the name stacks deployed before versions were resolved already hold
        # (never default_version, which moves when the catalog learns of a newer version).
        label = endpoint.entity_version or entity.name_version
        name = f"{entity.entity_name.rsplit('.', 1)[-1]}-{label}"
        if endpoint.model_units is not None:  # a unit model: /serving-endpoints/pt
            return (ServedEntity(
                name=name,
                entity_name=entity.entity_name,
                entity_version=endpoint.entity_version,
                provisioned_model_units=endpoint.model_units,
                burst_scaling_enabled=endpoint.burst_scaling,
            ),)
        throughput = endpoint.throughput
        if throughput is None:  # the spec requires one for a band model
            raise ValueError(f"{endpoint.name} has no throughput")
        return (ServedEntity(
            name=name,
            entity_name=entity.entity_name,
            entity_version=endpoint.entity_version,
            scale_to_zero_enabled=throughput.min == 0,
            min_provisioned_throughput=throughput.min,
            max_provisioned_throughput=throughput.max,
        ),)
    if isinstance(endpoint, CustomModelEndpoint):
        return tuple(ServedEntity(
            name=version.entity_name(),
            entity_name=version.name,
            entity_version=version.version,
            workload_size=version.workload_size,
            workload_type=version.workload_type,
            scale_to_zero_enabled=version.scale_to_zero,
        ) for version in endpoint.versions())
    return ()


def traffic(endpoint: SpecEndpoint) -> tuple[TrafficRoute, ...] | None:
    """The split a `models:` list gives; None (everything to the one entity) otherwise, which is
    what endpoints deployed before traffic splits hold."""
    if not isinstance(endpoint, CustomModelEndpoint) or endpoint.models is None:
        return None
    return tuple(TrafficRoute(v.entity_name(), 100 if v.traffic is None else v.traffic)
                 for v in endpoint.models)


def gateway_args(endpoint: SpecEndpoint) -> dict[str, Any]:
    """The AI Gateway and settings arguments of an endpoint the stack creates (a pay-per-token
    reference takes none: the spec refuses them)."""
    guardrails = endpoint.guardrails
    table = endpoint.inference_table
    emails = endpoint.email_notifications

    def side(g: Guardrail | None) -> GuardrailArgs | None:
        return None if g is None else GuardrailArgs(safety=g.safety, pii=g.pii)

    return {
        "guardrails": None if guardrails is None else GuardrailsArgs(side(guardrails.input), side(guardrails.output)),
        "inference_table": None if table is None else InferenceTableArgs(
            table.catalog_name, table.schema_name, table.table_name_prefix, table.enabled),
        "description": endpoint.description,
        "budget_policy_id": endpoint.budget_policy_id,
        "email_notifications": None if emails is None else EmailNotificationsArgs(
            tuple(emails.on_update_success), tuple(emails.on_update_failure)),
    }


def endpoint_args(stack: Stack, endpoint: SpecEndpoint) -> EndpointArgs:
    mode = endpoint.mode
    # A pay-per-token endpoint is Databricks': it carries no tags of ours.
    tags = {} if mode == "pay_per_token" else {
        **stack.spec.tags, **endpoint.tags, MANAGED_BY_TAG: ownership_marker(stack.name)}
    return EndpointArgs(
        name=endpoint.name,
        mode=mode,
        served_entities=served_entities(endpoint),
        traffic=traffic(endpoint),
        tags=tags,
        rate_limits=tuple(RateLimitArgs(r.calls, r.renewal_period, r.key, r.tokens, r.principal)
                          for r in endpoint.rate_limits),
        usage_tracking=endpoint.usage_tracking,
        route_optimized=endpoint.route_optimized,
        **gateway_args(endpoint),
    )


def with_budget(stack: Stack, endpoints: list[EndpointArgs]) -> list[EndpointArgs]:
    """Each endpoint given the stack's max_dbu_per_hour and the rest of the stack's DBUs per
    hour at max (the catalog's known part), so `up` can check its live rate before its write."""
    budget = stack.spec.max_dbu_per_hour
    if budget is None:
        return endpoints
    from components.cost import endpoint_cost

    highs = [endpoint_cost(e).max_dbu_per_hour or 0.0 for e in endpoints]
    return [dataclasses.replace(e, dbu_budget=DbuBudget(float(budget), sum(highs) - own))
            for e, own in zip(endpoints, highs, strict=True)]


def endpoint_identity(args: Args | None) -> dict[str, Any]:
    """What keeps an endpoint the same endpoint: its values of the replace keys."""
    assert isinstance(args, EndpointArgs)
    inputs = args.inputs()
    return {k: inputs[k] for k in (*ENDPOINT.replace_keys, "mode")}


def build_plan(stack: Stack) -> Plan:
    """Every resource of the stack, parents before children, in the order the program
    registers them."""
    spec = stack.spec
    out: list[Declaration] = []

    def declare(type_token: str, name: str, args: Args | None, parent: str | None = None,
                aliases: tuple[FormerIdentity, ...] = ()) -> str:
        key = key_of(type_token, name)
        if type_token in FORMER_TYPES:
            aliases = (FormerIdentity(type=FORMER_TYPES[type_token]), *aliases)
        out.append(Declaration(key, type_token, name, args, parent, aliases))
        return key

    def under(parent_key: str) -> tuple[FormerIdentity, ...]:
        # A child's URN carries its parent's type: a renamed parent makes a former identity.
        former = FORMER_TYPES.get(next(d.type for d in out if d.key == parent_key))
        return (FormerIdentity(parent_type=former),) if former else ()

    endpoints: list[str] = []
    for endpoint, args in zip(spec.endpoints, with_budget(stack, [endpoint_args(stack, e) for e in spec.endpoints]),
                              strict=True):
        component = declare(SERVING_ENDPOINT, endpoint.name, None)
        endpoints.append(declare(dynamic_type(EndpointArgs.TYPE_NAME), endpoint.name, args, component))

    out_args = {d.key: d.args for d in out if isinstance(d.args, EndpointArgs)}
    gate_name = f"{stack.name}-endpoints-ready"
    gate_component = declare(READINESS_GATE, gate_name, None)
    gate = declare(dynamic_type(ReadinessArgs.TYPE_NAME), gate_name, ReadinessArgs(
        endpoints={e.name: RolloutRef(key) for e, key in zip(spec.endpoints, endpoints, strict=True)},
        timeout_seconds=float(spec.readiness_timeout_minutes * 60),
    ), gate_component, under(gate_component))

    principal = declare(QUERY_PRINCIPAL, PRINCIPAL_NAME, None)
    sp = declare(dynamic_type(ServicePrincipalArgs.TYPE_NAME), PRINCIPAL_NAME, ServicePrincipalArgs(
        display_name=spec.principal.display_name,
        external_id=ownership_marker(stack.name),
        entitlements=tuple(spec.principal.entitlements),
    ), principal)
    secret = declare(dynamic_type(OAuthSecretArgs.TYPE_NAME), SECRET_NAME, OAuthSecretArgs(
        service_principal_id=Ref(sp, "principal_id"),
        application_id=Ref(sp, "application_id"),
        lifetime_days=spec.principal.secret_lifetime_days,
        rotate_before_days=spec.principal.rotate_before_days,
        scopes=tuple(spec.principal.scopes),
        principal_created_at=Ref(sp, "created_at"),
    ), principal)
    grants = [
        declare(dynamic_type(QueryGrantArgs.TYPE_NAME), f"{e.name}-can-query", QueryGrantArgs(
            endpoint_id=Ref(key, "endpoint_id"),
            endpoint_name=e.name,
            service_principal_name=Ref(sp, "application_id"),
            permission_level="CAN_QUERY",
            principal_created_at=Ref(sp, "created_at"),
            endpoint_pay_per_token=e.mode == "pay_per_token",
            endpoint_identity=endpoint_identity(out_args[key]),
        ), principal)
        for e, key in zip(spec.endpoints, endpoints, strict=True)
    ]

    settings = spec.braintrust
    record = declare(BRAINTRUST_RECORD, settings.secret_name, BraintrustRecordArgs(
        name=settings.secret_name,
        api_base=spec.workspace.host,
        auth_type=settings.auth_type,
        models={e.name: e.resolved_flavor() for e in spec.endpoints},
        supports_streaming=settings.supports_streaming,
        org_name=settings.org_name,
        client_id=Ref(sp, "application_id"),
        secret=SecretConfig("braintrust_pat") if settings.auth_type == "pat" else Ref(secret, "client_secret"),
        after=(Ref(gate, "ready"), *(Ref(g, "id") for g in grants)),
    ))
    after = [Ref(gate, "id"), *(Ref(g, "id") for g in grants)]
    if settings.publish:
        after.append(Ref(declare(dynamic_type(AiSecretArgs.TYPE_NAME), settings.secret_name, AiSecretArgs(
            name=settings.secret_name,
            record_hash=Ref(record, "record_hash"),
            record=Ref(record, "record"),
            api_url=settings.api_url,
            org_name=settings.org_name,
        ), record, under(record)), "id"))
    # Last: it removes orphan secrets once everything that uses the live one is done.
    declare(dynamic_type(SecretSweepArgs.TYPE_NAME), SWEEP_NAME, SecretSweepArgs(
        service_principal_id=Ref(sp, "principal_id"),
        live_secret_id=Ref(secret, "secret_id"),
        principal_created_at=Ref(sp, "created_at"),
        after=tuple(after),
    ), principal)
    return Plan(stack, tuple(out))
