"""The typed contract of every resource the stack declares: one Args class per resource type,
and for each dynamic resource one `Contract` (its Args, its Outputs, its secret outputs and its
replace keys), listed in CONTRACTS.

These classes are the one statement of what each dynamic provider takes and gives. The plan
(components/plan.py) fills them from a validated stack, the program turns them into resources,
`render` prints them. Each provider declares its Contract as a class attribute
(components/providers/_contract.py converts the wire props to and from these classes, and
builds the Pulumi Resource class from the Contract); the test mocks answer from it. A value that is an
output of another resource (an endpoint's id, the principal's application id) is a reference,
resolved by the program to a Pulumi Output and printed by `render` as a placeholder.

No pulumi, no databricks-sdk: `validate` and `render` import this on a bare runner, and so
does every provider process.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from components import endpoint_rules
from components.spec.constants import PROJECT, Mode

# The dynamic resources' type tokens: pulumi.dynamic.Resource forms them as
# "pulumi-python:dynamic/<module>:<name>" from the class keywords in components/providers/.
DYNAMIC_MODULE = PROJECT


def dynamic_type(name: str) -> str:
    return f"pulumi-python:dynamic/{DYNAMIC_MODULE}:{name}"


# ---------------------------------------------------------------------------------------------
# Values known only once another resource exists


@dataclass(frozen=True)
class Ref:
    """An output of another declared resource: ``key`` is its declaration's key."""

    key: str
    output: str

    def __str__(self) -> str:
        return f"<{self.key}.{self.output}>"


@dataclass(frozen=True)
class RolloutRef:
    """An endpoint's rollout identity, ``revision@endpoint_id``: the readiness gate waits again
    whenever it changes. The id is part of it because an endpoint recreated with the same
    config (deleted out of band, or replaced) rolls out again from nothing."""

    key: str

    def parts(self) -> tuple[Ref, Ref]:
        return Ref(self.key, "revision"), Ref(self.key, "endpoint_id")

    def __str__(self) -> str:
        return f"<{self.key}.revision>@<{self.key}.endpoint_id>"


def rollout_id(revision: str, endpoint_id: str | None) -> str:
    return f"{revision}@{endpoint_id}" if endpoint_id else revision


@dataclass(frozen=True)
class SecretConfig:
    """A secret stack config value (`pulumi config set --secret <project>:<key>`)."""

    key: str

    def __str__(self) -> str:
        return f"<secret config {self.key}>"


Reference = Ref | RolloutRef | SecretConfig


def substitute(value: Any, resolve: Callable[[Reference], Any]) -> Any:
    """``value`` with every reference replaced by ``resolve(reference)``, at any depth."""
    if isinstance(value, Ref | RolloutRef | SecretConfig):
        return resolve(value)
    if isinstance(value, Mapping):
        return {k: substitute(v, resolve) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [substitute(v, resolve) for v in value]
    return value


def references(value: Any) -> list[Reference]:
    """Every reference in ``value``, in order."""
    found: list[Reference] = []
    substitute(value, lambda ref: found.append(ref))
    return found


# ---------------------------------------------------------------------------------------------
# The arguments classes


class Args:
    """Base of the arguments classes: frozen dataclasses whose fields are the inputs."""

    TYPE_NAME: ClassVar[str]  # the dynamic resource's type name, or a component's type token

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The input keys, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]

    def inputs(self) -> dict[str, Any]:
        """The inputs as plain values (references left in place): what the provider receives."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if isinstance(value, Ref | RolloutRef | SecretConfig):
            return value
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if getattr(value, f.name) is not None}
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class ServedEntity:
    """One served entity (None fields are not sent). ``entity_version`` None means the newest
    version the workspace serves, resolved by the provider at create and kept in state. The
    ``name`` keys the entity in diffs: it never depends on what the provider resolves."""

    name: str
    entity_name: str
    entity_version: str | None
    workload_size: str | None = None
    workload_type: str | None = None
    scale_to_zero_enabled: bool | None = None
    min_provisioned_throughput: int | None = None
    max_provisioned_throughput: int | None = None
    # A unit model (components/catalog.py, capacity "units"): the provider creates and changes
    # the endpoint through /api/2.0/serving-endpoints/pt when any entity has units.
    provisioned_model_units: int | None = None
    burst_scaling_enabled: bool | None = None  # None: the API's default; never echoed on GET


@dataclass(frozen=True)
class TrafficRoute:
    """A share of the endpoint's traffic for one served entity (the shares add up to 100)."""

    served_entity_name: str
    traffic_percentage: int


@dataclass(frozen=True)
class RateLimitArgs:
    """An AI Gateway rate limit (databricks-sdk AiGatewayRateLimit): ``calls`` and/or ``tokens``
    per ``renewal_period`` ("minute"), per ``key`` ("endpoint": one budget for all callers;
    "user": one per caller; "user_group" / "service_principal": for ``principal``; "user" with a
    ``principal``: for that one user). A limit of 0 blocks, it never means unlimited."""

    calls: int | None
    renewal_period: str
    key: str
    tokens: int | None = None
    principal: str | None = None


@dataclass(frozen=True)
class GuardrailArgs:
    """One side's AI Gateway guardrails (AiGatewayGuardrailParameters): the safety filter, and
    what the PII filter does (BLOCK, MASK, NONE; None: not set)."""

    safety: bool = False
    pii: str | None = None


@dataclass(frozen=True)
class GuardrailsArgs:
    input: GuardrailArgs | None = None
    output: GuardrailArgs | None = None


@dataclass(frozen=True)
class InferenceTableArgs:
    """The AI Gateway's inference table (AiGatewayInferenceTableConfig)."""

    catalog_name: str
    schema_name: str
    table_name_prefix: str | None = None
    enabled: bool = True


@dataclass(frozen=True)
class EmailNotificationsArgs:
    """Who is told about config updates (EmailNotifications); empty: nobody."""

    on_update_success: tuple[str, ...] = ()
    on_update_failure: tuple[str, ...] = ()


@dataclass(frozen=True)
class DbuBudget:
    """The stack's budget as one endpoint checks it at `up` (components/cost.py): the endpoint
    is refused before its write when its live DBUs per hour at max, plus the rest of the stack's
    at max (the catalog's known part), exceed ``max_dbu_per_hour``."""

    max_dbu_per_hour: float
    others_max_dbu_per_hour: float


@dataclass(frozen=True)
class EndpointArgs(Args):
    """A serving endpoint (components/providers/endpoint.py), created, or only referenced when
    ``mode`` is pay_per_token. Outputs: every input, plus EndpointOutputs."""

    TYPE_NAME: ClassVar[str] = "Endpoint"

    name: str
    mode: Mode
    served_entities: tuple[ServedEntity, ...] = ()  # empty for pay_per_token
    traffic: tuple[TrafficRoute, ...] | None = None  # None: everything to the one entity
    tags: Mapping[str, str] = field(default_factory=dict)  # the ownership tag included
    rate_limits: tuple[RateLimitArgs, ...] = ()
    usage_tracking: bool = False  # AI Gateway usage tracking (system tables)
    route_optimized: bool = False
    # The rest of the AI Gateway (None: off), and the endpoint's settings. description and
    # budget_policy_id are set at create only (components/endpoint_rules.py).
    guardrails: GuardrailsArgs | None = None
    inference_table: InferenceTableArgs | None = None
    description: str | None = None
    budget_policy_id: str | None = None
    email_notifications: EmailNotificationsArgs | None = None  # None: nobody
    dbu_budget: DbuBudget | None = None  # None: the stack sets no max_dbu_per_hour


@dataclass(frozen=True)
class ReadinessArgs(Args):
    """The stack's readiness gate (components/providers/readiness.py): ``endpoints`` maps each
    endpoint's name to its rollout identity: whenever one changes, the gate waits again.
    Outputs: every input, plus ReadinessOutputs."""

    TYPE_NAME: ClassVar[str] = "EndpointsReady"

    endpoints: Mapping[str, RolloutRef | str]
    timeout_seconds: float  # alone, changes nothing remote


@dataclass(frozen=True)
class ServicePrincipalArgs(Args):
    """The service principal Braintrust queries as (components/providers/principal.py).
    Outputs: every input, plus ServicePrincipalOutputs."""

    TYPE_NAME: ClassVar[str] = "ServicePrincipal"

    display_name: str
    external_id: str  # the stack's ownership marker, "databricks-braintrust/<stack>"
    entitlements: tuple[str, ...] = ()  # none are needed to query endpoints


@dataclass(frozen=True)
class OAuthSecretArgs(Args):
    """The principal's OAuth secret (components/providers/oauth_secret.py). Outputs: every
    input, plus OAuthSecretOutputs (client_secret always a secret output)."""

    TYPE_NAME: ClassVar[str] = "OAuthSecret"

    service_principal_id: Ref | str  # the SCIM id
    application_id: Ref | str
    lifetime_days: int
    rotate_before_days: int  # replaced when it expires within this many days
    scopes: tuple[str, ...] | None  # None or empty: unrestricted
    # The principal's creation time: while it is recent, calls naming it are retried until the
    # workspace knows it (components/providers/_propagation.py).
    principal_created_at: Ref | str | None = None


@dataclass(frozen=True)
class SecretSweepArgs(Args):
    """Removes the stack's own OAuth secrets that state does not hold: made by a run that died
    before saving its state (components/providers/oauth_secret.py, OAuthSecretSweepProvider).
    Outputs: every input, plus SecretSweepOutputs."""

    TYPE_NAME: ClassVar[str] = "OAuthSecretSweep"

    service_principal_id: Ref | str  # the SCIM id
    live_secret_id: Ref | str  # the OAuth secret's secret_id: the one state holds now
    principal_created_at: Ref | str | None = None  # as OAuthSecretArgs.principal_created_at
    # Ids of what must be done first: the readiness gate, every grant and, when the stack
    # publishes, the Braintrust record, so a sweep never runs before Braintrust has switched.
    # Their values are never compared.
    after: tuple[Ref | str, ...] = ()


@dataclass(frozen=True)
class QueryGrantArgs(Args):
    """One entry on one endpoint's ACL, and only that entry (components/providers/grant.py).
    Outputs: every input, plus QueryGrantOutputs."""

    TYPE_NAME: ClassVar[str] = "QueryGrant"

    endpoint_id: Ref | str  # Databricks' id: the permissions API is keyed by it
    endpoint_name: str  # for messages
    service_principal_name: Ref | str  # the principal's application id
    permission_level: str = "CAN_QUERY"
    principal_created_at: Ref | str | None = None  # as OAuthSecretArgs.principal_created_at
    # Whether the endpoint is pay-per-token (Databricks' own, shared by the workspace), as the
    # plan knows from its mode. None (state written before this input): guessed from the
    # endpoint's `databricks-` name, as earlier code did. Never a change by itself.
    endpoint_pay_per_token: bool | None = None
    # The endpoint's values of ENDPOINT.replace_keys, known in a preview where its
    # endpoint_id is not (a dynamic provider's update hands no output on): with the same
    # values the endpoint is updated in place and keeps its id, so the grant does not change.
    # Nothing remote: never a change by itself. None in state written before it existed.
    endpoint_identity: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class AiSecretArgs(Args):
    """The record published to Braintrust (components/providers/ai_secret.py). Outputs: every
    input, plus AiSecretOutputs (record always a secret output)."""

    TYPE_NAME: ClassVar[str] = "AiSecret"

    name: str  # the record's name in Braintrust
    record_hash: Ref | str  # ai_secret.record_hash(record): a one-way hash, so a rotation shows
    record: Ref | Mapping[str, Any]  # the full record, its secret included: a secret Output
    api_url: str  # Braintrust's API base URL
    org_name: str | None


@dataclass(frozen=True)
class BraintrustRecordArgs(Args):
    """Not a provider's input: what the program needs to build the Braintrust AI-provider
    record (components/braintrust.py) once the principal exists. ``after`` are outputs the
    record waits for: the readiness gate and every grant, so Braintrust never gets a record
    whose endpoints do not answer or whose credentials may not query them."""

    TYPE_NAME: ClassVar[str] = f"{PROJECT}:braintrust:BraintrustRecord"

    name: str
    api_base: str
    auth_type: str
    models: Mapping[str, str]  # endpoint name -> flavor, as Braintrust calls it
    supports_streaming: bool
    org_name: str | None
    client_id: Ref
    secret: Ref | SecretConfig
    after: tuple[Ref, ...]


# ---------------------------------------------------------------------------------------------
# The outputs classes: what each provider adds to its inputs in state. Every field has a
# default, because state written by earlier code may lack an output added since (Read and
# Delete must work with it): None (or empty) there means "not recorded".


class Outputs:
    """Base of the outputs classes: frozen dataclasses whose fields are the computed outputs."""

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]


@dataclass(frozen=True)
class EndpointOutputs(Outputs):
    endpoint_id: str | None = None  # Databricks' id: keys the permissions API
    url: str | None = None  # the invocations URL
    revision: str | None = None  # hash of the desired served entities and traffic
    task: str | None = None  # e.g. llm/v1/chat


@dataclass(frozen=True)
class ReadinessOutputs(Outputs):
    ready: Mapping[str, Mapping[str, Any]] | None = None  # {name: {state, config_version}}


@dataclass(frozen=True)
class ServicePrincipalOutputs(Outputs):
    principal_id: str | None = None  # the numeric SCIM id
    application_id: str | None = None  # a UUID
    created_at: str | None = None  # RFC 3339: when this stack created or adopted it
    not_adopted_ids: tuple[str, ...] = ()  # same-named principals it could not prove its own


@dataclass(frozen=True)
class OAuthSecretOutputs(Outputs):
    secret_id: str | None = None
    client_id: str | None = None  # = application_id
    client_secret: str | None = None  # SECRET
    expire_time: str | None = None
    status: str | None = None
    unmanaged_secret_ids: tuple[str, ...] = ()  # the principal's other secrets, never touched


@dataclass(frozen=True)
class SecretSweepOutputs(Outputs):
    removed_secret_ids: tuple[str, ...] = ()  # what its last create or update deleted


@dataclass(frozen=True)
class QueryGrantOutputs(Outputs):
    governed_by: str | None = None  # "acl", or "workspace"; None (earlier state) means "acl"


@dataclass(frozen=True)
class AiSecretOutputs(Outputs):
    secret_id: str | None = None  # Braintrust's uuid
    preview_secret: str | None = None  # meant to be non-revealing; a secret output all the same (issue 22)
    updated_at: str | None = None


A = TypeVar("A", bound=Args)
Out = TypeVar("Out", bound=Outputs)


@dataclass(frozen=True)
class Contract(Generic[A, Out]):
    """One dynamic resource: its inputs, its outputs, which outputs are always secret, and which
    inputs replace the resource when they change. The type name is the Args' TYPE_NAME."""

    args: type[A]
    outputs: type[Out]
    secret_outputs: tuple[str, ...] = ()
    # The one table of the inputs whose change replaces the resource: the provider's diff and
    # `python -m components diff` both read it, so a review and a preview cannot disagree.
    replace_keys: tuple[str, ...] = ()
    # Inputs whose change alone changes nothing remote (a label for messages, a hint, a
    # timeout): the provider's diff never compares them.
    inert_keys: tuple[str, ...] = ()

    @property
    def type_name(self) -> str:
        return self.args.TYPE_NAME

    @property
    def type_token(self) -> str:
        return dynamic_type(self.args.TYPE_NAME)

    def input_keys(self) -> tuple[str, ...]:
        return self.args.keys()

    def output_keys(self) -> tuple[str, ...]:
        return self.outputs.keys()


# The endpoint's replace keys, and the rules for a change of mode, are components/endpoint_rules.py.
ENDPOINT = Contract(EndpointArgs, EndpointOutputs, replace_keys=endpoint_rules.REPLACE_KEYS,
                    # The budget is checked before a write, never written itself.
                    inert_keys=("dbu_budget",))
READINESS = Contract(ReadinessArgs, ReadinessOutputs, inert_keys=("timeout_seconds",))
SERVICE_PRINCIPAL = Contract(ServicePrincipalArgs, ServicePrincipalOutputs)
OAUTH_SECRET = Contract(OAuthSecretArgs, OAuthSecretOutputs, secret_outputs=("client_secret",),
                        replace_keys=("service_principal_id", "application_id", "lifetime_days",
                                      "scopes"),
                        # rotate_before_days moves nothing until a rotation falls due, which the
                        # stored expiry decides.
                        inert_keys=("rotate_before_days", "principal_created_at"))
# No replace keys: a new principal or a new live secret is swept by an update, in place.
SECRET_SWEEP = Contract(SecretSweepArgs, SecretSweepOutputs,
                        inert_keys=("principal_created_at", "after"))
QUERY_GRANT = Contract(QueryGrantArgs, QueryGrantOutputs,
                       replace_keys=("endpoint_id", "service_principal_name"),
                       inert_keys=("endpoint_name", "principal_created_at", "endpoint_pay_per_token",
                                   "endpoint_identity"))
AI_SECRET = Contract(AiSecretArgs, AiSecretOutputs, secret_outputs=("record", "preview_secret"),
                     replace_keys=("name", "api_url", "org_name"))

CONTRACTS: tuple[Contract[Any, Any], ...] = (ENDPOINT, READINESS, SERVICE_PRINCIPAL, OAUTH_SECRET,
                                             SECRET_SWEEP, QUERY_GRANT, AI_SECRET)


def contract_of(type_token: str) -> Contract[Any, Any] | None:
    """The contract of the dynamic resource registered as `type_token`, if any."""
    return next((c for c in CONTRACTS if c.type_token == type_token), None)
