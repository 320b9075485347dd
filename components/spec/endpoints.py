"""The endpoint entries of a stack file: one model per mode, told apart by the key written."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, Discriminator, Field, Tag, field_validator, model_validator

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
# Upper bounds: the API stores rate-limit calls as a 32-bit int; throughput beyond a thousand
# chunks is a typo, not a purchase.
MAX_CALLS = 2**31 - 1
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


class RateLimit(BaseModel):
    model_config = MODEL_CONFIG
    calls: Number = Field(gt=0, le=MAX_CALLS, description="Queries allowed per renewal period.")
    renewal_period: Literal["minute"] = Field("minute", description="The only period the API has.")
    key: Literal["user", "endpoint"] = Field(
        "endpoint", description="`endpoint`: one budget for all callers; `user`: one per caller."
    )


class UnityCatalogModel(BaseModel):
    model_config = MODEL_CONFIG
    name: Text = Field(description="Three-level Unity Catalog name, `catalog.schema.model`.")
    version: ModelVersion = Field(description='Model version, e.g. "3".')

    @field_validator("name")
    @classmethod
    def _three_levels(cls, value: str) -> str:
        if not UC_MODEL_NAME.fullmatch(value):
            raise ValueError(
                f"{shown(value)} is not a Unity Catalog model name (write catalog.schema.model, "
                "e.g. main.ml.churn_scorer)"
            )
        return value


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


class CustomModelEndpoint(EndpointBase):
    """An endpoint serving a model registered in Unity Catalog."""

    mode: ClassVar[Mode] = "custom"
    model: UnityCatalogModel
    workload_size: WorkloadSize = Field("Small", description="Concurrency: Small, Medium or Large.")
    workload_type: WorkloadType | None = Field(None, description="Compute type; CPU when omitted.")
    scale_to_zero: bool = Field(False, description="Scale to zero when idle (cold starts).")


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
        for field in ("tags", "rate_limits", "usage_tracking", "route_optimized"):
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
        custom_error_message="an endpoint needs exactly one of foundation_model, model or "
        "pay_per_token: true (keep the one that says what it serves)",
    ),
]
