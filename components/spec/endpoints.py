"""The endpoint entries of a stack file: one model per mode, told apart by the key written."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from components import catalog
from components.spec.constants import ENDPOINT_NAME_CHARS, ENDPOINT_NAME_MAX, MANAGED_BY_TAG, MODE_KEYS, Mode
from components.spec.fields import MODEL_CONFIG, ModelVersion, Number, Text, check_tags, shown
from components.spec.problems import FieldError

# The API's enums (databricks.sdk.service.serving.ServedModelInputWorkloadSize / ...Type),
# written out so validating a stack needs no databricks-sdk; a unit test keeps them in sync.
WorkloadSize = Literal["Small", "Medium", "Large"]
WorkloadType = Literal["CPU", "GPU_SMALL", "GPU_MEDIUM", "GPU_LARGE", "MULTIGPU_MEDIUM"]
# Matched with fullmatch: `$` would let a trailing newline through.
UC_MODEL_NAME = re.compile(r"[A-Za-z0-9_]+\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+")
# A Unity Catalog catalog, schema or table-name prefix as the inference table takes it.
UC_IDENTIFIER = re.compile(r"[A-Za-z0-9_]+")
# An address a notification can go to: one '@', a dotted domain, no spaces. Deliberately loose
# (RFC 5322 allows more); it catches a name, a URL or a missing domain, which is what gets pasted.
EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")
BUDGET_POLICY_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Upper bounds: the API stores rate-limit calls as a 32-bit int (tokens as a 64-bit one, but a
# trillion tokens a minute is a typo); throughput beyond a thousand chunks is a typo, not a purchase.
MAX_CALLS = 2**31 - 1
MAX_TOKENS = 10**12
# Served entities per endpoint the API accepts in practice (databricks-sdk-py issue 1496).
MAX_SERVED_ENTITIES = 15
MAX_CHUNKS = 1000
# Databricks' default limit of serving endpoints per workspace (model-serving-limits): a stack
# listing more could never be created, and would take seconds to validate.
MAX_ENDPOINTS = 1000


class Throughput(BaseModel):
    model_config = MODEL_CONFIG
    min: Number = Field(0, ge=0, description="Minimum provisioned throughput, tokens/s; 0 scales to zero.")
    max: Number = Field(gt=0, description="Maximum provisioned throughput, tokens/s.")

    @model_validator(mode="after")
    def _ordered(self) -> Throughput:
        if self.min > self.max:
            raise FieldError(("min",), f"{self.min} is above max ({self.max}) (make min <= max)")
        return self


RateLimitKey = Literal["user", "user_group", "service_principal", "endpoint"]
# The keys whose limit is for one named principal (databricks-sdk AiGatewayRateLimit.principal:
# "a user email, group name, or service principal application ID").
NEEDS_PRINCIPAL = ("user_group", "service_principal")


class RateLimit(BaseModel):
    """An AI Gateway rate limit (databricks-sdk AiGatewayRateLimit): calls and/or tokens per
    minute, for the whole endpoint, each user, or one named user, group or service principal."""

    model_config = MODEL_CONFIG
    calls: Number | None = Field(None, ge=0, le=MAX_CALLS, description="Queries allowed per renewal period.")
    tokens: Number | None = Field(None, ge=0, le=MAX_TOKENS, description="Tokens allowed per renewal period.")
    renewal_period: Literal["minute"] = Field("minute", description="The only period the API has.")
    key: RateLimitKey = Field(
        "endpoint", description="`endpoint`: one budget for all callers; `user`: one per caller (or, with "
        "`principal`, for that one user); `user_group` / `service_principal`: for the `principal` named."
    )
    principal: Text | None = Field(
        None, description="Who the limit is for: a user's email (key user), a group name (key user_group) or "
        "a service principal's application id (key service_principal)."
    )

    @model_validator(mode="after")
    def _complete(self) -> RateLimit:
        if self.calls is None and self.tokens is None:
            raise FieldError((), "sets neither calls nor tokens (add calls: <queries per minute> and/or "
                                 "tokens: <tokens per minute>)")
        if self.principal is not None and not self.principal.strip():
            # An empty principal names nobody: with a limit of 0 it would pass as "one principal
            # blocked" while the API reads it as no principal (every caller).
            raise FieldError(("principal",), "is empty (name the user, group or service principal, or "
                                             "remove principal: for a limit on every caller)")
        if self.key in NEEDS_PRINCIPAL and self.principal is None:
            what = "group name" if self.key == "user_group" else "service principal's application id"
            raise FieldError(("principal",), f"is required with key: {self.key} (add principal: <the {what}>)")
        if self.key == "endpoint" and self.principal is not None:
            raise FieldError(("principal",), "does not apply to key: endpoint, which limits every caller "
                                             "together (remove it, or use key: user, user_group or "
                                             "service_principal)")
        if 0 in (self.calls, self.tokens) and self.principal is None:
            # Databricks treats a limit of 0 as blocking, never as unlimited (terraform-provider-
            # databricks issue 5362 is the confusion). Without a principal it blocks every
            # caller, Braintrust's principal included: the record would list a model that never
            # answers.
            field = "calls" if self.calls == 0 else "tokens"
            raise FieldError((field,), "0 blocks every caller, Braintrust included (Databricks reads 0 as "
                                       "blocked, not unlimited); remove the limit for no limit, or add "
                                       "principal: to block only that user, group or service principal)")
        return self

    def blocks(self) -> str | None:
        """The principal this limit shuts out entirely (a limit of 0), for the warning."""
        return self.principal if 0 in (self.calls, self.tokens) else None


PiiBehavior = Literal["BLOCK", "MASK", "NONE"]


class Guardrail(BaseModel):
    """One side's guardrails (databricks-sdk AiGatewayGuardrailParameters: safety, pii)."""

    model_config = MODEL_CONFIG
    safety: bool = Field(False, description="Databricks' safety filter on this side.")
    pii: PiiBehavior | None = Field(
        None, description="What the PII filter does: BLOCK the request, MASK the PII, or NONE; omitted: off."
    )


class Guardrails(BaseModel):
    model_config = MODEL_CONFIG
    input: Guardrail | None = Field(None, description="Guardrails on requests.")
    output: Guardrail | None = Field(None, description="Guardrails on responses.")


def _uc_identifier(value: str) -> str:
    if not UC_IDENTIFIER.fullmatch(value):
        raise ValueError(f"{shown(value)} may only hold letters, digits and '_' (rename it, e.g. "
                         f"{re.sub(r'[^A-Za-z0-9_]+', '_', value).strip('_') or 'ml'!r})")
    return value


class InferenceTable(BaseModel):
    """AI Gateway payload logging to a Unity Catalog table (databricks-sdk
    AiGatewayInferenceTableConfig)."""

    model_config = MODEL_CONFIG
    catalog_name: Text = Field(description="Unity Catalog catalog of the table.")
    schema_name: Text = Field(description="Unity Catalog schema of the table.")
    table_name_prefix: Text | None = Field(None, description="Prefix of the table's name; Databricks' default "
                                                              "when omitted.")
    enabled: bool = Field(True, description="Log requests and responses.")

    @field_validator("catalog_name", "schema_name", "table_name_prefix")
    @classmethod
    def _identifiers(cls, value: str | None) -> str | None:
        return value if value is None else _uc_identifier(value)


def _email(value: str) -> str:
    if not EMAIL.fullmatch(value):
        raise ValueError(f"{shown(value)} is not an email address (write it as name@example.com)")
    return value


Email = Annotated[str, AfterValidator(_email)]


class EmailNotifications(BaseModel):
    """Who hears about the endpoint's config updates (databricks-sdk EmailNotifications)."""

    model_config = MODEL_CONFIG
    on_update_success: list[Email] = Field(default_factory=list, description="Told when an update succeeds.")
    on_update_failure: list[Email] = Field(default_factory=list, description="Told when an update fails.")


def uc_model_name(value: str) -> str:
    if not UC_MODEL_NAME.fullmatch(value):
        raise ValueError(
            f"{shown(value)} is not a Unity Catalog model name (write catalog.schema.model, "
            "e.g. main.ml.churn_scorer)"
        )
    return value


class UnityCatalogModel(BaseModel):
    model_config = MODEL_CONFIG
    name: Text = Field(description="Three-level Unity Catalog name, `catalog.schema.model`.")
    version: ModelVersion = Field(description='Model version, e.g. "3".')

    @field_validator("name")
    @classmethod
    def _three_levels(cls, value: str) -> str:
        return uc_model_name(value)


class EndpointBase(BaseModel):
    model_config = MODEL_CONFIG
    mode: ClassVar[Mode]

    name: Text = Field(
        description="Serving endpoint name, unique in the workspace: letters, digits, '-', '_', "
        "at most 63 characters. Braintrust uses it as the model name."
    )
    flavor: Literal["chat", "completion"] | None = Field(
        None, description="How Braintrust calls the model; defaults from the catalog, else chat."
    )
    tags: dict[str, str] = Field(
        default_factory=dict,
        description=f"Endpoint tags, merged over the stack's; `{MANAGED_BY_TAG}` is reserved for the project.",
    )
    rate_limits: list[RateLimit] = Field(default_factory=list, description="AI Gateway rate limits.")
    usage_tracking: bool = Field(False, description="AI Gateway usage tracking (system tables).")
    guardrails: Guardrails | None = Field(None, description="AI Gateway guardrails on input and output; "
                                                            "omitted: none.")
    inference_table: InferenceTable | None = Field(
        None, description="AI Gateway inference table (payload logging to Unity Catalog); omitted: off."
    )
    fallback: Any = Field(
        None, description="Not offered: Databricks' AI Gateway falls back only between external models, "
        "which this project never serves."
    )
    description: Text | None = Field(
        None, max_length=1000,
        description="The endpoint's description. Set at create only: no API changes it afterwards.",
    )
    budget_policy_id: Text | None = Field(
        None, description="Serverless budget policy the endpoint bills to. Set at create only: no API changes "
        "it afterwards.",
    )
    email_notifications: EmailNotifications | None = Field(
        None, description="Addresses told about config updates; omitted or empty lists: nobody."
    )
    route_optimized: bool = Field(
        False, description="Must stay false: a route-optimized endpoint answers only on its own URL and only "
        "OAuth, while Braintrust's proxy calls {api_base}/serving-endpoints/<name>/invocations."
    )

    @field_validator("name")
    @classmethod
    def _endpoint_name(cls, value: str) -> str:
        if not ENDPOINT_NAME_CHARS.fullmatch(value):
            raise ValueError(
                f"{shown(value)} may only hold letters, digits, '-' and '_' (rename it, e.g. "
                f"{re.sub(r'[^A-Za-z0-9_-]+', '-', value).strip('-')[:ENDPOINT_NAME_MAX] or 'bt-endpoint'!r})"
            )
        if len(value) > ENDPOINT_NAME_MAX:
            raise ValueError(f"is {len(value)} characters long; the limit is {ENDPOINT_NAME_MAX} "
                             "(shorten it)")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        return check_tags(value)

    @field_validator("fallback", mode="before")
    @classmethod
    def _no_fallback(cls, value: Any) -> Any:
        if value is not None:
            # Databricks' AI Gateway docs ("Configure AI Gateway on model serving endpoints",
            # supported features) offer fallbacks for endpoints serving external models only;
            # this project creates provisioned-throughput and custom-model endpoints.
            raise ValueError(
                "AI Gateway fallback is offered only for endpoints that serve external models, which this "
                "project never creates (remove it; to move traffic between versions, list them under "
                "models: with a traffic share each)"
            )
        return value

    @field_validator("budget_policy_id")
    @classmethod
    def _policy_id(cls, value: str | None) -> str | None:
        if value is not None and not BUDGET_POLICY_ID.fullmatch(value):
            raise ValueError(f"{shown(value)} is not a budget policy id (copy the policy's id from the "
                             "workspace's budget policies page)")
        return value

    def limit_warnings(self) -> list[tuple[tuple[str | int, ...], str]]:
        """(path, message) for each limit of 0 that shuts one principal out entirely."""
        return [(("rate_limits", i, "calls" if limit.calls == 0 else "tokens"),
                 f"blocks {limit.principal!r} entirely: Databricks reads a limit of 0 as blocked, not "
                 "unlimited (remove the limit to lift it)")
                for i, limit in enumerate(self.rate_limits) if limit.blocks()]

    @field_validator("route_optimized")
    @classmethod
    def _reachable_by_braintrust(cls, value: bool) -> bool:
        if value:
            raise ValueError(
                "a route-optimized endpoint answers only on its own dedicated URL, which Braintrust's "
                "Databricks provider never calls: it posts to the workspace URL (remove route_optimized)"
            )
        return value

    def resolved_flavor(self) -> str:
        return self.flavor or "chat"


class FoundationModelEndpoint(EndpointBase):
    """A provisioned-throughput endpoint serving a `system.ai` foundation model: in tokens per
    second (`throughput`, a band model) or in model units (`model_units`, a unit model), as the
    catalog says of the model."""

    mode: ClassVar[Mode] = "provisioned"
    foundation_model: str = Field(
        description="Catalog key of the model, e.g. meta-llama-3.1-8b-instruct (see components/catalog.py)."
    )
    throughput: Throughput | None = Field(
        None, description="Tokens per second, for a model bought in tokens-per-second bands (Llama 3.x, "
        "Mistral, Mixtral)."
    )
    model_units: Number | None = Field(
        None, description=f"Model units, for a model bought in units (Llama 4 Maverick, GPT OSS, Gemma 3): "
        f"1 to {catalog.MAX_MODEL_UNITS}. Created through the /serving-endpoints/pt API."
    )
    burst_scaling: bool | None = Field(
        None, description="Unit models only: let the endpoint scale beyond its units during traffic spikes "
        "(the API's default is on)."
    )
    entity_version: ModelVersion | None = Field(
        None, description="Override the catalog's system.ai version; versions differ between workspaces."
    )

    @field_validator("foundation_model")
    @classmethod
    def _in_catalog(cls, value: str) -> str:
        model = catalog.BY_KEY.get(value)
        if model is None and value.lower() in catalog.BY_KEY:
            raise ValueError(f"{shown(value)} is not in the model catalog (write it in lower case: {value.lower()!r})")
        if model is None:
            if value in catalog.BY_PAY_PER_TOKEN_ENDPOINT:
                raise ValueError(
                    f"{value!r} is a pay-per-token endpoint, not a model (reference it with "
                    f"`name: {value}` and `pay_per_token: true` instead)"
                )
            close = difflib.get_close_matches(value, catalog.BY_KEY, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(
                f"{shown(value)} is not in the model catalog ({hint}provisioned throughput serves: "
                + ", ".join(catalog.provisioned_keys())
                + ")"
            )
        if model.provisioned is None:
            raise ValueError(
                f"{model.display_name} cannot be served with provisioned throughput: "
                f"{model.provisioned_note or 'there is no system.ai entity for it'} (choose one of "
                + ", ".join(catalog.provisioned_keys())
                + ")"
            )
        if model.provisioned.status == "retired":
            raise ValueError(
                f"Databricks retired {model.display_name} for provisioned throughput "
                + (f"(use {model.provisioned.replacement!r} instead)" if model.provisioned.replacement
                   else "(choose another model from the catalog)")
            )
        return value

    @model_validator(mode="after")
    def _capacity(self) -> FoundationModelEndpoint:
        """The capacity key the model's group takes (catalog), then its bounds and chunks."""
        model = self.model()
        entity = model.provisioned
        if entity is None:
            return self
        name = model.display_name
        if entity.capacity == "units":
            if self.throughput is not None:
                raise FieldError(("throughput",), f"{name} is bought in model units, not tokens per second "
                                 "(write `model_units: N` instead of throughput)")
            if self.model_units is None:
                raise FieldError(("model_units",), f"is required: {name} is bought in model units "
                                 "(write e.g. `model_units: 50`)")
            if self.model_units <= 0:
                raise FieldError(("model_units",), f"{self.model_units} buys nothing; a unit model needs at "
                                 "least 1 unit and cannot scale to zero (write a positive number)")
            if self.model_units > catalog.MAX_MODEL_UNITS:
                raise FieldError(("model_units",), f"{self.model_units} is above this project's bound of "
                                 f"{catalog.MAX_MODEL_UNITS} units (use at most {catalog.MAX_MODEL_UNITS})")
            for bound, message in self.chunk_problems(refused=True):
                raise FieldError((bound,), message)
            if self.description is not None:
                # databricks-sdk create_provisioned_throughput_endpoint has no description.
                raise FieldError(("description",), f"cannot be set: {name} is served in model units, "
                                 "through Databricks' /serving-endpoints/pt API, which takes no "
                                 "description (remove it)")
            return self
        if self.model_units is not None:
            raise FieldError(("model_units",), f"{name} is bought in tokens per second, not model units "
                             "(write `throughput: {min, max}` instead of model_units)")
        if self.burst_scaling is not None:
            raise FieldError(("burst_scaling",), f"only unit models burst; {name} is bought in tokens per "
                             "second (remove burst_scaling)")
        if self.throughput is None:
            raise FieldError(("throughput",), f"is required: {name} is bought in tokens per second "
                             "(write e.g. `throughput: {min: 0, max: "
                             f"{entity.chunk_for(self.entity_version)[0] or 1000}}}`)")
        chunk = entity.chunk_for(self.entity_version)[0]
        if chunk and self.throughput.max > MAX_CHUNKS * chunk:
            raise FieldError(
                ("throughput", "max"),
                f"{self.throughput.max} is more than {MAX_CHUNKS} chunks of {chunk} tokens/s "
                f"(use at most {MAX_CHUNKS * chunk})",
            )
        for bound, message in self.chunk_problems(refused=True):
            raise FieldError(tuple(bound.split(".")), message)
        return self

    def chunk_problems(self, *, refused: bool) -> list[tuple[str, str]]:
        """(field path, message) for each capacity that is not a multiple of the catalog's chunk
        (band) or unit step (units) for the version: with ``refused``, those a source confirms
        for that exact version (validate refuses them); without, the others (it warns, naming
        the version it assumed; `pulumi up` checks the workspace's own before any write)."""
        model = self.model()
        entity = model.provisioned
        if entity is None:
            return []
        chunk, confirmed, version = entity.chunk_for(self.entity_version)
        if not chunk or confirmed != refused:
            return []
        units = entity.capacity == "units"
        amounts = ([("model_units", self.model_units)] if units
                   else [(f"throughput.{b}", getattr(self.throughput, b)) for b in ("min", "max")]
                   if self.throughput is not None else [])
        what = "units" if units else "tokens/s"
        found = []
        for path, amount in amounts:
            if amount is None or not amount % chunk:
                continue
            lower = amount // chunk * chunk
            options = " or ".join(str(n) for n in (lower, lower + chunk) if n > 0)
            if confirmed:
                why = f"the unit Databricks sells for {model.display_name} version {version}"
            else:
                assumed = ("the version this stack pins" if self.entity_version
                           else f"version {version}, which validate assumes because the stack pins none")
                why = (f"the catalog's unconfirmed unit for {model.display_name} at {assumed}; "
                       "`pulumi up` checks the workspace's own unit before it writes")
            found.append((path, f"{amount} is not a multiple of {chunk} {what}, {why} (use {options})"))
        return found

    def chunk_mismatches(self) -> list[tuple[str, str]]:
        """The warnings: capacities off the catalog's unconfirmed chunk (see chunk_problems)."""
        return self.chunk_problems(refused=False)

    def model(self) -> catalog.FoundationModel:
        return catalog.BY_KEY[self.foundation_model]

    def resolved_flavor(self) -> str:
        return self.flavor or self.model().flavor


class ServedVersion(BaseModel):
    """One model version of a custom-model endpoint that splits traffic between versions."""

    model_config = MODEL_CONFIG
    name: Text = Field(description="Three-level Unity Catalog name, `catalog.schema.model`.")
    version: ModelVersion = Field(description='Model version, e.g. "3".')
    workload_size: WorkloadSize = Field("Small", description="Concurrency: Small, Medium or Large.")
    workload_type: WorkloadType | None = Field(None, description="Compute type; CPU when omitted.")
    scale_to_zero: bool = Field(False, description="Scale to zero when idle (cold starts).")
    traffic: Number | None = Field(
        None, ge=0, le=100, description="Percent of the endpoint's queries this version answers; the shares "
        "add up to 100 (may be omitted when only one version is listed)."
    )

    @field_validator("name")
    @classmethod
    def _three_levels(cls, value: str) -> str:
        return uc_model_name(value)

    def entity_name(self) -> str:
        """The served entity's name: it keys the entity in diffs and routes."""
        return f"{self.name.rsplit('.', 1)[-1]}-{self.version}"


class CustomModelEndpoint(EndpointBase):
    """An endpoint serving a model registered in Unity Catalog: one version (`model:`), or several
    sharing its traffic (`models:`)."""

    # Editors learn that one of model / models is required (validate says so too).
    model_config = ConfigDict(**MODEL_CONFIG, json_schema_extra={
        "oneOf": [{"required": ["model"]}, {"required": ["models"]}]})
    mode: ClassVar[Mode] = "custom"
    model: UnityCatalogModel | None = Field(None, description="The model version served (or use models:).")
    models: list[ServedVersion] | None = Field(
        None, min_length=1, max_length=MAX_SERVED_ENTITIES,
        description="Several versions sharing the traffic, each with its share (in place of model:).",
    )
    workload_size: WorkloadSize = Field("Small", description="Concurrency: Small, Medium or Large.")
    workload_type: WorkloadType | None = Field(None, description="Compute type; CPU when omitted.")
    scale_to_zero: bool = Field(False, description="Scale to zero when idle (cold starts).")

    @model_validator(mode="after")
    def _versions(self) -> CustomModelEndpoint:
        if self.models is None:
            return self
        for field in ("workload_size", "workload_type", "scale_to_zero"):
            if field in self.model_fields_set:
                raise FieldError((field,), "applies to each entry of models: (move it into each entry)")
        seen: dict[str, int] = {}
        for i, entry in enumerate(self.models):
            key = entry.entity_name()
            if key in seen:
                raise FieldError(("models", i, "version"), (
                    f"{entry.name} version {entry.version} is listed twice (entries {seen[key]} and {i}); "
                    "keep one entry per version (merge their traffic)"))
            seen[key] = i
        shares = [entry.traffic for entry in self.models]
        if len(self.models) == 1 and shares[0] in (None, 100):
            return self
        missing = [i for i, share in enumerate(shares) if share is None]
        if missing:
            raise FieldError(("models", missing[0], "traffic"), (
                "is required when several versions share the endpoint (give each its percent; the shares "
                "add up to 100)"))
        total = sum(share or 0 for share in shares)
        if total != 100:
            raise FieldError(("models",), (
                f"traffic adds up to {total}, not 100 ({' + '.join(str(x) for x in shares)}; change the "
                "shares so they add up to 100)"))
        return self

    def versions(self) -> list[ServedVersion]:
        """The served versions, `model:` read as a single one with all the traffic."""
        if self.models is not None:
            return list(self.models)
        assert self.model is not None  # the discriminator requires model or models
        return [ServedVersion(name=self.model.name, version=self.model.version,
                              workload_size=self.workload_size, workload_type=self.workload_type,
                              scale_to_zero=self.scale_to_zero, traffic=None)]


# The AI Gateway's settings, as the stack file writes them.
GATEWAY_FIELDS = ("rate_limits", "usage_tracking", "guardrails", "inference_table", "fallback")


class PayPerTokenEndpoint(EndpointBase):
    """A pay-per-token endpoint Databricks runs in every workspace: referenced, never created."""

    mode: ClassVar[Mode] = "pay_per_token"
    pay_per_token: Literal[True] = Field(description="`true`: this endpoint exists already.")

    @field_validator("name")
    @classmethod
    def _known_endpoint(cls, value: str) -> str:
        model = catalog.BY_PAY_PER_TOKEN_ENDPOINT.get(value)
        if model is None:
            raise ValueError(
                f"{shown(value)} is not a pay-per-token endpoint in the catalog (use one of "
                + ", ".join(catalog.pay_per_token_endpoints())
                + "; to serve a model yourself use foundation_model instead of pay_per_token)"
            )
        ppt = model.pay_per_token
        assert ppt is not None  # indexed by pay_per_token endpoint
        if ppt.status == "retired":
            raise ValueError(
                f"Databricks retired the pay-per-token endpoint {value!r} "
                + (f"(use {ppt.replacement!r} instead" if ppt.replacement else "(choose another")
                + ", or serve the model with provisioned throughput)"
            )
        return value

    @model_validator(mode="after")
    def _not_ours(self) -> PayPerTokenEndpoint:
        # The endpoint belongs to Databricks and every team in the workspace shares it.
        for field in GATEWAY_FIELDS:
            if field in self.model_fields_set:
                # Issue 4589 of terraform-provider-databricks: limits on an imported pay-per-token
                # endpoint were silently not applied. Here they are refused, with the reason.
                raise FieldError(
                    (field,),
                    "cannot be set on a pay-per-token endpoint: it is Databricks' shared endpoint, and "
                    "its AI Gateway settings would govern every user of the workspace (remove it; to "
                    "govern your own traffic, serve the model with foundation_model and throughput)",
                )
        for field in ("tags", "route_optimized", "description", "budget_policy_id", "email_notifications"):
            if field in self.model_fields_set:
                raise FieldError(
                    (field,),
                    "cannot be set on a pay-per-token endpoint: it belongs to Databricks "
                    "and is only referenced here (remove it)",
                )
        return self

    def resolved_flavor(self) -> str:
        return self.flavor or catalog.BY_PAY_PER_TOKEN_ENDPOINT[self.name].flavor


def lifecycle_warnings(endpoints: Sequence[EndpointBase]) -> list[tuple[tuple[Any, ...], str]]:
    """(field location, message) for each legacy or deprecated model the stack serves or
    references, once per model and mode (the first endpoint names it). Retired ones are refused
    by the validators; these still work, but only where the workspace used them lately."""
    found: list[tuple[tuple[Any, ...], str]] = []
    seen: set[tuple[str, str]] = set()
    for index, endpoint in enumerate(endpoints):
        if isinstance(endpoint, FoundationModelEndpoint):
            model, loc = endpoint.model(), (index, "foundation_model")
            life = model.provisioned.lifecycle if model.provisioned else None
            what = f"{model.display_name} (provisioned throughput)"
            instead = f"foundation_model: {life.replacement}" if life and life.replacement else ""
        elif isinstance(endpoint, PayPerTokenEndpoint):
            model, loc = catalog.BY_PAY_PER_TOKEN_ENDPOINT[endpoint.name], (index, "name")
            life = model.pay_per_token.lifecycle if model.pay_per_token else None
            what = f"the pay-per-token endpoint {endpoint.name}"
            instead = f"name: {life.replacement}" if life and life.replacement else ""
        else:
            continue
        if life is None or life.state not in ("legacy", "deprecated") or (model.key, endpoint.mode) in seen:
            continue
        seen.add((model.key, endpoint.mode))
        when = (f"; Databricks retires it on {life.retires_on}" if life.state == "deprecated" and life.retires_on
                else "; Databricks will announce its retirement date")
        fix = f"move to {instead}" if instead else "choose a model the catalog lists as active"
        found.append((("endpoints", *loc), f"{what} is {life.state}: only workspaces that used it in the 30 "
                      f"days before the announcement may still deploy it{when} ({fix})"))
    return found


def endpoint_mode(value: Any) -> str | None:
    """Which kind of endpoint an entry is, from the one mode key it writes (MODE_KEYS)."""
    if isinstance(value, EndpointBase):
        return value.mode
    if not isinstance(value, dict):
        return None
    present = [mode for key, mode in MODE_KEYS.items() if key in value]
    return present[0] if len(present) == 1 else None


EndpointEntry = Annotated[
    Annotated[FoundationModelEndpoint, Tag("provisioned")]
    | Annotated[CustomModelEndpoint, Tag("custom")]
    | Annotated[PayPerTokenEndpoint, Tag("pay_per_token")],
    Discriminator(
        endpoint_mode,
        custom_error_type="endpoint_kind",
        custom_error_message="an endpoint needs exactly one of foundation_model, model, models or "
        "pay_per_token: true (keep the one that says what it serves)",
    ),
]
