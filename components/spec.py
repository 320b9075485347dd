"""The stack file's schema: the only place that knows its shape.

A stack file is ``stacks/Pulumi.<stack>.yaml``; its keys live under the project's namespace,
``databricks-braintrust:<key>``. Everything downstream receives a validated ``StackSpec``.
Every rule that needs no network is checked here, once, by ``load_stack_file`` (the CLI and
the pull-request job) and by ``validate_config`` (the Pulumi program, components/program.py), with messages for the
person editing the YAML: the field, what is wrong, and how to fix it.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from components import catalog
from components.urls import check_workspace_url

PROJECT = "databricks-braintrust"
_MODEL = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

# The API's enums (databricks.sdk.service.serving.ServedModelInputWorkloadSize / ...Type),
# written out so validating a stack needs no databricks-sdk; a unit test keeps them in sync.
WorkloadSize = Literal["Small", "Medium", "Large"]
WorkloadType = Literal["CPU", "GPU_SMALL", "GPU_MEDIUM", "GPU_LARGE", "MULTIGPU_MEDIUM"]
Entitlement = Literal[
    "workspace-access", "databricks-sql-access", "allow-cluster-create", "allow-instance-pool-create"
]
ENDPOINT_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
UC_MODEL_NAME = re.compile(r"^[A-Za-z0-9_]+\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+$")
# Secret stack config: `pulumi config set --secret <project>:<key> ...`.
SECRET_KEYS = ("databricks_token", "braintrust_api_key", "braintrust_pat")
# The OAuth scope of the secret handed to Braintrust. Its proxy asks the token endpoint for
# `scope=all-apis`, and a token cannot exceed its secret's scopes, so anything narrower would
# leave Braintrust without a token. What the principal may do is bounded instead by having no
# entitlements and CAN_QUERY on exactly the stack's endpoints.
QUERY_SCOPES = ("all-apis",)


def secret_hint(key: str) -> str:
    return f"pulumi config set --secret {PROJECT}:{key} <value>"


class SecureValue(BaseModel):
    """A value Pulumi stores encrypted (``{secure: ...}`` in the file). Only its presence is
    known before ``pulumi up``; the value reaches the program as a secret Output."""

    model_config = _MODEL
    secure: str = Field(min_length=1, description="Ciphertext written by `pulumi config set --secret`.")


def _secure_field(key: str) -> Any:
    return Field(default=None, description=f"Secret; set it with `{secret_hint(key)}`.")


# ---------------------------------------------------------------------------------------------
# Endpoints


class Throughput(BaseModel):
    model_config = _MODEL
    min: int = Field(0, ge=0, description="Minimum provisioned throughput, tokens/s; 0 scales to zero.")
    max: int = Field(gt=0, description="Maximum provisioned throughput, tokens/s.")

    @model_validator(mode="after")
    def _ordered(self) -> Throughput:
        if self.min > self.max:
            raise _FieldError(("min",), f"{self.min} is above max ({self.max}) (make min <= max)")
        return self


class RateLimit(BaseModel):
    model_config = _MODEL
    calls: int = Field(gt=0, description="Queries allowed per renewal period.")
    renewal_period: Literal["minute"] = Field("minute", description="The only period the API has.")
    key: Literal["user", "endpoint"] = Field(
        "endpoint", description="`endpoint`: one budget for all callers; `user`: one per caller."
    )


def _version_text(value: Any) -> Any:
    # YAML reads `version: 3` as an int; the API wants the string.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _positive_version(value: str) -> str:
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{value!r} is not a model version (use a positive number such as \"3\")")
    return value


ModelVersion = Annotated[str, BeforeValidator(_version_text), AfterValidator(_positive_version)]


class UnityCatalogModel(BaseModel):
    model_config = _MODEL
    name: str = Field(description="Three-level Unity Catalog name, `catalog.schema.model`.")
    version: ModelVersion = Field(description='Model version, e.g. "3".')

    @field_validator("name")
    @classmethod
    def _three_levels(cls, value: str) -> str:
        if not UC_MODEL_NAME.match(value):
            raise ValueError(
                f"{value!r} is not a Unity Catalog model name (write catalog.schema.model, "
                "e.g. main.ml.churn_scorer)"
            )
        return value


class _Endpoint(BaseModel):
    model_config = _MODEL
    kind: ClassVar[str]

    name: str = Field(
        description="Serving endpoint name, unique in the workspace: letters, digits, '-', '_', "
        "at most 63 characters. Braintrust uses it as the model name."
    )
    flavor: Literal["chat", "completion"] | None = Field(
        None, description="How Braintrust calls the model; defaults from the catalog, else chat."
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Endpoint tags, merged over the stack's.")
    rate_limits: list[RateLimit] = Field(default_factory=list, description="AI Gateway rate limits.")
    usage_tracking: bool = Field(False, description="AI Gateway usage tracking (system tables).")
    route_optimized: bool = Field(
        False, description="Must stay false: a route-optimized endpoint answers only on its own URL and only "
        "OAuth, while Braintrust's proxy calls {api_base}/serving-endpoints/<name>/invocations."
    )

    @field_validator("name")
    @classmethod
    def _endpoint_name(cls, value: str) -> str:
        if not ENDPOINT_NAME.match(value):
            raise ValueError(
                f"{value!r} may only hold letters, digits, '-' and '_' (rename it, e.g. "
                f"{re.sub(r'[^A-Za-z0-9_-]+', '-', value).strip('-') or 'bt-endpoint'!r})"
            )
        if len(value) > 63:
            raise ValueError(f"is {len(value)} characters long; the limit is 63 (shorten it)")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_tags(value)

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

    def served_entities(self) -> list[dict[str, Any]]:
        return []


def _check_tags(tags: Mapping[str, str]) -> dict[str, str]:
    for key, value in tags.items():
        if not key.strip() or len(key) > 255:
            raise ValueError(f"tag key {key!r} must be 1 to 255 characters")
        if len(value) > 255:
            raise ValueError(f"tag {key!r} has a value over 255 characters (shorten it)")
    return dict(tags)


class FoundationModelEndpoint(_Endpoint):
    """A provisioned-throughput endpoint serving a `system.ai` foundation model."""

    kind: ClassVar[str] = "foundation_model"
    foundation_model: str = Field(
        description="Catalog key of the model, e.g. meta-llama-3.1-8b-instruct (see components/catalog.py)."
    )
    throughput: Throughput
    entity_version: ModelVersion | None = Field(
        None, description="Override the catalog's system.ai version; versions differ between workspaces."
    )

    @field_validator("foundation_model")
    @classmethod
    def _in_catalog(cls, value: str) -> str:
        model = catalog.BY_KEY.get(value)
        if model is None and value.lower() in catalog.BY_KEY:
            raise ValueError(f"{value!r} is not in the model catalog (write it in lower case: {value.lower()!r})")
        if model is None:
            if value in catalog.BY_PAY_PER_TOKEN_ENDPOINT:
                raise ValueError(
                    f"{value!r} is a pay-per-token endpoint, not a model (reference it with "
                    f"`name: {value}` and `pay_per_token: true` instead)"
                )
            close = difflib.get_close_matches(value, catalog.BY_KEY, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(
                f"{value!r} is not in the model catalog ({hint}provisioned throughput serves: "
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
    def _throughput_chunks(self) -> FoundationModelEndpoint:
        entity = self.model().provisioned
        chunk = entity.throughput_chunk if entity else None
        if chunk:
            for bound in ("min", "max"):
                amount = getattr(self.throughput, bound)
                if amount % chunk:
                    lower = amount // chunk * chunk
                    options = " or ".join(str(n) for n in (lower, lower + chunk) if n > 0)
                    raise _FieldError(
                        ("throughput", bound),
                        f"{amount} is not a multiple of {chunk} tokens/s, the unit Databricks "
                        f"sells for {self.model().display_name} (use {options})",
                    )
        return self

    def model(self) -> catalog.FoundationModel:
        return catalog.BY_KEY[self.foundation_model]

    def resolved_flavor(self) -> str:
        return self.flavor or self.model().flavor

    def served_entities(self) -> list[dict[str, Any]]:
        entity = self.model().provisioned
        assert entity is not None  # noqa: S101 - guaranteed by _in_catalog
        version = self.entity_version or entity.default_version
        return [
            {
                "name": f"{entity.entity_name.rsplit('.', 1)[-1]}-{version}",
                "entity_name": entity.entity_name,
                "entity_version": version,
                "min_provisioned_throughput": self.throughput.min,
                "max_provisioned_throughput": self.throughput.max,
                "scale_to_zero_enabled": self.throughput.min == 0,
            }
        ]


class CustomModelEndpoint(_Endpoint):
    """An endpoint serving a model registered in Unity Catalog."""

    kind: ClassVar[str] = "model"
    model: UnityCatalogModel
    workload_size: WorkloadSize = Field("Small", description="Concurrency: Small, Medium or Large.")
    workload_type: WorkloadType | None = Field(None, description="Compute type; CPU when omitted.")
    scale_to_zero: bool = Field(False, description="Scale to zero when idle (cold starts).")

    def served_entities(self) -> list[dict[str, Any]]:
        entity: dict[str, Any] = {
            "name": f"{self.model.name.rsplit('.', 1)[-1]}-{self.model.version}",
            "entity_name": self.model.name,
            "entity_version": self.model.version,
            "workload_size": self.workload_size,
            "scale_to_zero_enabled": self.scale_to_zero,
        }
        if self.workload_type:
            entity["workload_type"] = self.workload_type
        return [entity]


class PayPerTokenEndpoint(_Endpoint):
    """A pay-per-token endpoint Databricks runs in every workspace: referenced, never created."""

    kind: ClassVar[str] = "pay_per_token"
    pay_per_token: Literal[True] = Field(description="`true`: this endpoint exists already.")

    @field_validator("name")
    @classmethod
    def _known_endpoint(cls, value: str) -> str:
        model = catalog.BY_PAY_PER_TOKEN_ENDPOINT.get(value)
        if model is None:
            raise ValueError(
                f"{value!r} is not a pay-per-token endpoint in the catalog (use one of "
                + ", ".join(catalog.pay_per_token_endpoints())
                + "; to serve a model yourself use foundation_model instead of pay_per_token)"
            )
        ppt = model.pay_per_token
        assert ppt is not None  # noqa: S101 - indexed by pay_per_token endpoint
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
                raise _FieldError(
                    (field,),
                    "cannot be set on a pay-per-token endpoint: it belongs to Databricks "
                    "and is only referenced here (remove it)",
                )
        return self

    def resolved_flavor(self) -> str:
        return self.flavor or catalog.BY_PAY_PER_TOKEN_ENDPOINT[self.name].flavor


_KINDS = ("foundation_model", "model", "pay_per_token")


def _endpoint_kind(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return getattr(value, "kind", None)
    if not isinstance(value, dict):
        return None
    present = [k for k in _KINDS if k in value]
    return present[0] if len(present) == 1 else None


Endpoint = Annotated[
    Annotated[FoundationModelEndpoint, Tag("foundation_model")]
    | Annotated[CustomModelEndpoint, Tag("model")]
    | Annotated[PayPerTokenEndpoint, Tag("pay_per_token")],
    Discriminator(
        _endpoint_kind,
        custom_error_type="endpoint_kind",
        custom_error_message="an endpoint needs exactly one of foundation_model, model or "
        "pay_per_token: true (keep the one that says what it serves)",
    ),
]


# ---------------------------------------------------------------------------------------------
# The rest of the stack


class Workspace(BaseModel):
    model_config = _MODEL
    host: str = Field(
        description="Workspace URL: https://<name>.cloud.databricks.com (AWS), "
        "https://adb-<id>.<n>.azuredatabricks.net (Azure), https://<id>.<n>.gcp.databricks.com "
        "(GCP), or http://127.0.0.1:<port> for the local emulator."
    )

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return check_workspace_url(value, strip_trailing_slash=True)


class Principal(BaseModel):
    model_config = _MODEL
    display_name: str = Field(
        min_length=1, max_length=200,
        description="Display name of the service principal Braintrust queries as.",
    )
    secret_lifetime_days: int = Field(90, ge=1, le=730, description="OAuth secret lifetime, 1-730 days.")
    rotate_before_days: int = Field(
        14, ge=0, description="`pulumi up` replaces the secret when it expires within this many days."
    )
    entitlements: list[Entitlement] = Field(
        default_factory=list, description="Workspace entitlements; none are needed to query endpoints."
    )
    scopes: list[str] = Field(
        default_factory=lambda: list(QUERY_SCOPES),
        min_length=1,
        description="OAuth scopes bound to the secret. Default `[all-apis]`: Braintrust's proxy asks for "
        "that scope and a token cannot exceed its secret's; the principal's reach is bounded by having no "
        "entitlements and CAN_QUERY on the stack's endpoints only.",
    )

    @field_validator("scopes")
    @classmethod
    def _braintrust_can_mint(cls, value: list[str]) -> list[str]:
        if "all-apis" not in value:
            raise ValueError(
                f"{value} would leave Braintrust without a token: its proxy asks for scope all-apis, "
                "which a token minted from this secret could not exceed (remove scopes, or use [all-apis])"
            )
        return value

    @field_validator("display_name")
    @classmethod
    def _trimmed(cls, value: str) -> str:
        if value != value.strip():
            raise ValueError("has leading or trailing spaces (remove them)")
        return value

    @model_validator(mode="after")
    def _rotation_window(self) -> Principal:
        if self.rotate_before_days >= self.secret_lifetime_days:
            raise _FieldError(
                ("rotate_before_days",),
                f"{self.rotate_before_days} must be less than secret_lifetime_days "
                f"({self.secret_lifetime_days}), or every update would rotate the secret (lower it)",
            )
        return self


class BraintrustSettings(BaseModel):
    model_config = _MODEL
    secret_name: str = Field(
        min_length=1, max_length=255, description="Name of the AI provider record in Braintrust."
    )
    auth_type: Literal["service_principal_oauth", "pat"] = Field(
        "service_principal_oauth",
        description="`service_principal_oauth`: the principal this stack creates; `pat`: the "
        f"token in `{PROJECT}:braintrust_pat` (secret).",
    )
    publish: bool = Field(False, description="Upsert the record through Braintrust's API on `pulumi up`.")
    api_url: str = Field(
        "https://api.braintrust.dev", description="Braintrust API base URL (self-hosted or local)."
    )
    org_name: str | None = Field(None, description="Only when the API key belongs to several organizations.")
    supports_streaming: bool = Field(True, description="metadata.supportsStreaming in the record.")

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+(/[^\s]*)?$", value):
            raise ValueError(f"{value!r} is not a URL (e.g. https://api.braintrust.dev)")
        return value.rstrip("/")


def is_production(stack: str, policy: str | None) -> bool:
    """Prod-like stacks: `policy: production`, or a stack named prod, production, prod-*."""
    return policy == "production" or re.match(r"^prod(uction)?([-_.].*)?$", stack) is not None


PRODUCTION_MAX_LIFETIME_DAYS = 90
MANAGED_BY_TAG = "managed-by"


def ownership_marker(stack: str) -> str:
    """What marks an object as this stack's: the endpoints' managed-by tag and the principal's
    SCIM externalId. Adoption after a crash only ever takes an object carrying it."""
    return f"{PROJECT}/{stack}"
MODES = {"foundation_model": "provisioned", "model": "custom", "pay_per_token": "pay_per_token"}


class StackSpec(BaseModel):
    """Everything a stack declares, validated. Built with ``context={"stack": name}``."""

    model_config = _MODEL
    _stack: str = PrivateAttr(default="")

    workspace: Workspace
    endpoints: list[Endpoint] = Field(min_length=1, description="Serving endpoints Braintrust may query.")
    principal: Principal
    braintrust: BraintrustSettings
    tags: dict[str, str] = Field(default_factory=dict, description="Tags on every endpoint.")
    policy: Literal["standard", "production"] | None = Field(
        None, description="`production` applies the prod rules; stacks named prod* always do."
    )
    readiness_timeout_minutes: int = Field(
        45, ge=1, le=720, description="How long `pulumi up` waits for endpoints to become ready."
    )
    databricks_token: SecureValue | None = _secure_field("databricks_token")
    braintrust_api_key: SecureValue | None = _secure_field("braintrust_api_key")
    braintrust_pat: SecureValue | None = _secure_field("braintrust_pat")

    @field_validator(*SECRET_KEYS, mode="before")
    @classmethod
    def _encrypted(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and not isinstance(value, dict):
            raise ValueError(
                "is written in plain text (remove it from the file and run "
                f"`{secret_hint(info.field_name or '')}`)"
            )
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_tags(value)

    @model_validator(mode="after")
    def _stack_rules(self, info: ValidationInfo) -> StackSpec:
        seen: dict[str, int] = {}
        for index, endpoint in enumerate(self.endpoints):
            if endpoint.name in seen:
                raise _FieldError(
                    ("endpoints", index, "name"),
                    f"{endpoint.name!r} is already used by endpoints[{seen[endpoint.name]}] "
                    "(endpoint names are unique in a workspace; rename one)",
                )
            seen[endpoint.name] = index
        if self.braintrust.auth_type == "pat" and self.braintrust_pat is None:
            raise _FieldError(
                ("braintrust", "auth_type"),
                "is pat, but no token is set for Braintrust (run "
                f"`{secret_hint('braintrust_pat')}`, or use service_principal_oauth)",
            )
        stack = (info.context or {}).get("stack", "")
        self._stack = stack
        if is_production(stack, self.policy):
            why = f"stack {stack!r} is production" if self.policy != "production" else "policy is production"
            if self.braintrust.auth_type == "pat":
                raise _FieldError(
                    ("braintrust", "auth_type"),
                    f"pat is not allowed because {why} (use service_principal_oauth)",
                )
            if self.principal.secret_lifetime_days > PRODUCTION_MAX_LIFETIME_DAYS:
                raise _FieldError(
                    ("principal", "secret_lifetime_days"),
                    f"{self.principal.secret_lifetime_days} days is too long because {why} "
                    f"(use at most {PRODUCTION_MAX_LIFETIME_DAYS})",
                )
            if not self.tags.get("owner", "").strip():
                raise _FieldError(
                    ("tags", "owner"),
                    f"is required because {why} (add `owner: <team or person>` under "
                    f"{PROJECT}:tags)",
                )
        return self

    def endpoint_tags(self, endpoint: _Endpoint) -> dict[str, str]:
        """The stack's tags with the endpoint's own over them, and the project's marker."""
        if isinstance(endpoint, PayPerTokenEndpoint):
            return {}
        return {**self.tags, **endpoint.tags, MANAGED_BY_TAG: ownership_marker(self._stack)}

    def endpoint_inputs(self, endpoint: _Endpoint) -> dict[str, Any]:
        """What the Endpoint resource takes (components/providers/endpoint.py)."""
        return {
            "name": endpoint.name,
            "mode": MODES[endpoint.kind],
            "served_entities": endpoint.served_entities(),
            "traffic": None,
            "tags": self.endpoint_tags(endpoint),
            "rate_limits": [r.model_dump() for r in endpoint.rate_limits],
            "usage_tracking": endpoint.usage_tracking,
            "route_optimized": endpoint.route_optimized,
        }


class _FieldError(ValueError):
    """A cross-field rule's error, carrying the path of the field the user must change."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


# ---------------------------------------------------------------------------------------------
# Loading and error reporting


@dataclass(frozen=True)
class Problem:
    file: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message}" if self.path else f"{self.file}: {self.message}"


class StackError(Exception):
    """Invalid stack config; ``str()`` is the list of problems, one per line."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Stack:
    name: str
    file: str
    spec: StackSpec

    @property
    def production(self) -> bool:
        return is_production(self.name, self.spec.policy)


@functools.cache
def _all_field_names() -> frozenset[str]:
    names: set[str] = set()
    for model in (StackSpec, Workspace, Principal, BraintrustSettings, Throughput, RateLimit,
                  UnityCatalogModel, FoundationModelEndpoint, CustomModelEndpoint, PayPerTokenEndpoint):
        names.update(model.model_fields)
    return frozenset(names)


def _path(loc: tuple[Any, ...], *, tagged: bool = True) -> str:
    """`endpoints[2].throughput.max` from a location; `tagged` for pydantic's, which carry the
    endpoint union's tag right after the index."""
    text = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            text += f"[{part}]"
        elif tagged and part in _KINDS and i == 2 and loc[0] == "endpoints":
            continue  # the union's tag, not a key the user wrote
        else:
            text += f".{part}" if text else str(part)
    return text


def _redact(text: str) -> str:
    # A backstop: whatever a message quotes, a credential-shaped value never reaches the output.
    return _CREDENTIAL_VALUE.sub("<redacted>", text)


def _message(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    msg = str(err["msg"]).removeprefix("Value error, ")
    field = str(err["loc"][-1]) if err["loc"] else ""
    if kind == "missing":
        return "is required (add it)"
    if kind == "extra_forbidden":
        if field in SECRET_KEYS or _looks_like_credential_key(field):
            return f"looks like a credential written in plain text (remove it; {_WHERE_SECRETS_GO})"
        loc = err["loc"]
        if field in _all_field_names():
            # A real field of another kind of entry, e.g. throughput on a custom model.
            kinds = {"foundation_model": "a foundation_model", "model": "a custom model",
                     "pay_per_token": "a pay-per-token"}
            where = kinds.get(loc[2]) if len(loc) > 3 and loc[0] == "endpoints" else None
            return (f"does not apply to {where} endpoint (remove it)" if where
                    else "does not apply here (remove it or move it to where it belongs)")
        close = difflib.get_close_matches(field, _all_field_names(), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "remove it or fix its spelling"
        return f"is not a known field ({hint})"
    if kind == "literal_error" and field == "pay_per_token":
        return ("can only be true (to serve the model yourself, replace it with foundation_model "
                "and throughput)")
    if kind in ("literal_error", "enum"):
        return f"{msg} (use one of those)"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{msg} (change the value)"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return f"{msg} (check the YAML value's type)"
    if kind == "too_short" and field == "endpoints":
        return "must list at least one endpoint (add one)"
    if kind in ("string_too_short", "too_short"):
        return f"{msg} (give a value)"
    if kind in ("string_too_long", "too_long"):
        return f"{msg} (shorten it)"
    if not msg.endswith(")"):
        return f"{msg} (see `python -m components schema` for what the field takes)"
    return msg


_CREDENTIAL_KEY = re.compile(
    r"(token|password|passwd|api_?key|client_secret|private_key|^pat$|^secret$|credential)", re.I
)
_WHERE_SECRETS_GO = (
    "credentials are set with `pulumi config set --secret "
    + PROJECT + ":<key>`, key one of " + ", ".join(SECRET_KEYS)
)
_CREDENTIAL_VALUE = re.compile(
    r"(dapi[0-9a-f]{32}|dose[0-9a-f]{32}|\bsk-[A-Za-z0-9_-]{16,}|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY)"
)


def _looks_like_credential_key(key: str) -> bool:
    # Our own fields (pay_per_token, secret_name, ...) are not credentials.
    return key not in _all_field_names() and bool(_CREDENTIAL_KEY.search(key))


def _credential_paths(value: Any, loc: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], str]]:
    """Paths where a credential is written in plain text: a credential-named key with a plain
    value, or a value shaped like a Databricks or Braintrust token anywhere."""
    found: list[tuple[tuple[Any, ...], str]] = []
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return found
        for key, item in value.items():
            here = (*loc, key)
            if isinstance(key, str) and _looks_like_credential_key(key) and not isinstance(item, dict | list):
                if item not in (None, ""):
                    found.append((here, str(key)))
                    continue
            found.extend(_credential_paths(item, here))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_credential_paths(item, (*loc, index)))
    elif isinstance(value, str) and _CREDENTIAL_VALUE.search(value):
        found.append((loc, ""))
    return found


def validate_config(raw: Mapping[str, Any], *, stack: str, file: str) -> Stack:
    """Validate the project's config keys (namespace already stripped). Raises StackError."""
    problems: list[Problem] = []
    flagged: set[str] = set()
    for loc, _key in _credential_paths(dict(raw)):
        if loc and loc[0] in SECRET_KEYS:
            continue  # reported by the field's own validator
        flagged.add(_path(loc, tagged=False))
        problems.append(Problem(file, _path(loc, tagged=False), (
            f"looks like a credential written in plain text (remove it; {_WHERE_SECRETS_GO})"
        )))
    try:
        spec = StackSpec.model_validate(dict(raw), context={"stack": stack})
    except ValidationError as exc:
        for err in exc.errors(include_input=False, include_url=False):
            loc = tuple(err["loc"])
            ctx_error = (err.get("ctx") or {}).get("error")
            if isinstance(ctx_error, _FieldError):
                # The rule names a field below the model it was raised in.
                loc, message = loc + ctx_error.loc, str(ctx_error)
            else:
                message = _message(err)
            if _path(loc) in flagged:
                continue
            problems.append(Problem(file, _path(loc), _redact(message)))
        raise StackError(problems) from None
    if problems:
        raise StackError(problems)
    return Stack(name=stack, file=file, spec=spec)


_TOP_LEVEL = {"config", "encryptionsalt", "secretsprovider", "encryptedkey", "environment"}


def stack_name_of(path: Path) -> str:
    match = re.match(r"^Pulumi\.(.+)\.ya?ml$", path.name)
    return match.group(1) if match else path.stem


def load_stack_file(path: Path | str, *, display: str | None = None) -> Stack:
    """Read and validate ``stacks/Pulumi.<stack>.yaml``. Raises StackError for any defect,
    including unreadable files and YAML syntax errors (with the line)."""
    path = Path(path)
    file = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StackError([Problem(file, "", f"cannot be read: {exc.strerror or exc}")]) from None
    except UnicodeDecodeError:
        raise StackError([Problem(file, "", "is not UTF-8 text (save it as UTF-8)")]) from None
    try:
        document = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise StackError([Problem(file, "", f"{where}YAML syntax error: {exc.problem or exc} "
                                            "(fix the indentation or quoting there)")]) from None
    except yaml.YAMLError as exc:
        raise StackError([Problem(file, "", f"YAML syntax error: {exc}")]) from None
    except RecursionError:
        raise StackError([Problem(file, "", "is nested too deeply to be a stack file (flatten it)")]) from None
    try:
        return validate_document(document, stack=stack_name_of(path), file=file)
    except RecursionError:
        raise StackError([Problem(file, "", "is nested too deeply to be a stack file (flatten it)")]) from None


def validate_document(document: Any, *, stack: str, file: str) -> Stack:
    """Validate a parsed stack file: top-level keys, the project namespace, then the spec."""
    if document is None:
        raise StackError([Problem(file, "", f"is empty (it needs a `config:` map with {PROJECT}:* keys)")])
    if not isinstance(document, dict):
        raise StackError([Problem(file, "", "must be a YAML map with a `config:` key")])
    problems = [
        Problem(file, str(key), f"is not a stack file key (allowed: {', '.join(sorted(_TOP_LEVEL))})")
        for key in document
        if key not in _TOP_LEVEL
    ]
    config = document.get("config")
    if not isinstance(config, dict):
        problems.append(Problem(file, "config", f"must be a map of {PROJECT}:* keys"))
        raise StackError(problems)
    raw: dict[str, Any] = {}
    for key, value in config.items():
        key = str(key)
        namespace, _, name = key.rpartition(":")
        if namespace in ("", PROJECT):
            raw[name] = value
        elif namespace != "pulumi":
            problems.append(Problem(file, f"config.{key}", (
                f"belongs to namespace {namespace!r}, which this project does not read "
                f"(use {PROJECT}:{name}, or remove it)"
            )))
    if problems:
        raise StackError(problems)
    return validate_config(raw, stack=stack, file=file)


def spec_json_schema() -> dict[str, Any]:
    """JSON Schema of a whole stack file, for editors (keys carry the project namespace)."""
    inner = StackSpec.model_json_schema(mode="validation")
    defs = inner.pop("$defs", {})
    properties = {f"{PROJECT}:{k}": v for k, v in inner["properties"].items()}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"{PROJECT} stack file",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "properties": properties,
                "required": [f"{PROJECT}:{k}" for k in inner.get("required", [])],
                "patternProperties": {"^pulumi:": {}},
                "additionalProperties": False,
            },
            "encryptionsalt": {"type": "string"},
            "secretsprovider": {"type": "string"},
            "encryptedkey": {"type": "string"},
            "environment": {},
        },
        "required": ["config"],
        "additionalProperties": False,
        "$defs": defs,
    }
