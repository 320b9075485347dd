"""The stack as a whole: workspace, principal, Braintrust settings, tags, and the policy
(standard or production) that decides which extra rules apply."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from components.spec.constants import (
    PRODUCTION_MAX_LIFETIME_DAYS,
    PROJECT,
    QUERY_SCOPES,
    READINESS_TIMEOUT_MINUTES,
    SECRET_KEYS,
    secret_hint,
)
from components.spec.endpoints import MAX_ENDPOINTS, EndpointEntry
from components.spec.fields import MODEL_CONFIG, Number, PositiveAmount, Text, check_tags, nfc
from components.spec.problems import FieldError, Problem
from components.urls import check_api_url, check_workspace_url, is_loopback

Entitlement = Literal[
    "workspace-access", "databricks-sql-access", "allow-cluster-create", "allow-instance-pool-create"
]


# A production stack by its name, in any case: prod, production, prod-eu, Prod.EU, ...
_PRODUCTION_NAME = re.compile(r"prod(uction)?([-_.].*)?", re.IGNORECASE | re.DOTALL)


def is_production(stack: str, policy: str | None) -> bool:
    """Prod-like stacks: `policy: production`, or a stack named prod, production, prod-*, in any case."""
    return policy == "production" or _PRODUCTION_NAME.fullmatch(stack) is not None


class SecureValue(BaseModel):
    """A value Pulumi stores encrypted (``{secure: ...}`` in the file). Only its presence is
    known before ``pulumi up``; the value reaches the program as a secret Output."""

    model_config = MODEL_CONFIG
    secure: str = Field(min_length=1, description="Ciphertext written by `pulumi config set --secret`.")


def _secure_field(key: str) -> Any:
    return Field(default=None, description=f"Secret; set it with `{secret_hint(key)}`.")


class WorkspaceSettings(BaseModel):
    model_config = MODEL_CONFIG
    host: str = Field(
        description="Workspace URL: https://<name>.cloud.databricks.com (AWS), "
        "https://adb-<id>.<n>.azuredatabricks.net (Azure), https://<id>.<n>.gcp.databricks.com "
        "(GCP), or http://127.0.0.1:<port> for the local emulator."
    )

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return check_workspace_url(value, strip_trailing_slash=True)


class PrincipalSettings(BaseModel):
    model_config = MODEL_CONFIG
    display_name: Text = Field(
        min_length=1, max_length=200,
        description="Display name of the service principal Braintrust queries as.",
    )
    secret_lifetime_days: Number = Field(90, ge=1, le=730, description="OAuth secret lifetime, 1-730 days.")
    rotate_before_days: Number = Field(
        14, ge=0, description="`pulumi up` replaces the secret when it expires within this many days."
    )
    entitlements: list[Entitlement] = Field(
        default_factory=list, description="Workspace entitlements; none are needed to query endpoints."
    )
    scopes: list[Text] = Field(
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

    @model_validator(mode="after")
    def _rotation_window(self) -> PrincipalSettings:
        if self.rotate_before_days >= self.secret_lifetime_days:
            raise FieldError(
                ("rotate_before_days",),
                f"{self.rotate_before_days} must be less than secret_lifetime_days "
                f"({self.secret_lifetime_days}), or every update would rotate the secret (lower it)",
            )
        return self


class BraintrustSettings(BaseModel):
    model_config = MODEL_CONFIG
    secret_name: Text = Field(
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
    org_name: Text | None = Field(
        None, min_length=1, max_length=255,
        description="Only when the API key belongs to several organizations.",
    )
    supports_streaming: bool = Field(True, description="metadata.supportsStreaming in the record.")

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        return check_api_url(value)


class StackSpec(BaseModel):
    """Everything a stack declares, validated. Built with ``context={"stack": name}``, which
    decides whether the production policy applies; the spec itself does not keep the name."""

    model_config = MODEL_CONFIG

    workspace: WorkspaceSettings
    endpoints: list[EndpointEntry] = Field(min_length=1, max_length=MAX_ENDPOINTS,
                                           description="Serving endpoints Braintrust may query.")
    principal: PrincipalSettings
    braintrust: BraintrustSettings
    tags: dict[str, str] = Field(default_factory=dict, description="Tags on every endpoint.")
    policy: Literal["standard", "production"] | None = Field(
        None, description="`production` applies the prod rules; stacks named prod* always do."
    )
    readiness_timeout_minutes: Number = Field(
        READINESS_TIMEOUT_MINUTES, ge=1, le=720,
        description="How long `pulumi up` waits for endpoints to become ready."
    )
    max_dbu_per_hour: PositiveAmount | None = Field(
        None, description="A budget: the most DBUs per hour the stack's endpoints may cost at their max "
        "capacity. validate, diff and `pulumi up` refuse a plan over it; where a rate is unknown offline they "
        "say they cannot check it, and `pulumi up` checks each endpoint's live rate before it writes.",
    )
    price_per_dbu: PositiveAmount | None = Field(
        None, description="Your price of one DBU (in your currency), to show cost as money per hour and "
        "per month in render and diff. Nothing is billed from it.",
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
        return check_tags(value)

    @model_validator(mode="after")
    def _stack_rules(self, info: ValidationInfo) -> StackSpec:
        seen: dict[str, int] = {}
        for index, endpoint in enumerate(self.endpoints):
            name = nfc(endpoint.name)  # composed and decomposed accents are one name
            if name in seen:
                same = "" if self.endpoints[seen[name]].name == endpoint.name else (
                    ", written with other Unicode characters (composed against decomposed accents)")
                raise FieldError(
                    ("endpoints", index, "name"),
                    f"{endpoint.name!r} is already used by endpoints[{seen[name]}]{same} "
                    "(endpoint names are unique in a workspace; rename one)",
                )
            seen[name] = index
            stack_keys = {nfc(k): k for k in self.tags}
            for key in endpoint.tags:
                spelled = stack_keys.get(nfc(key))
                if spelled is not None and spelled != key:
                    raise FieldError(("endpoints", index, "tags", key), (
                        f"is the stack's tag key {spelled!r} written with other Unicode characters (composed "
                        "against decomposed accents): the endpoint would carry both (write it as the stack does)"
                    ))
        if self.braintrust.auth_type == "pat" and self.braintrust_pat is None:
            raise FieldError(
                ("braintrust", "auth_type"),
                "is pat, but no token is set for Braintrust (run "
                f"`{secret_hint('braintrust_pat')}`, or use service_principal_oauth)",
            )
        stack = str((info.context or {}).get("stack", ""))
        if is_production(stack, self.policy):
            why = f"stack {stack!r} is production" if self.policy != "production" else "policy is production"
            host = urlsplit(self.workspace.host)
            if is_loopback((host.hostname or "").lower()):
                raise FieldError(
                    ("workspace", "host"),
                    f"is a loopback address, which is never a real workspace, and {why} (use the "
                    "workspace's https:// URL, or run this file as a non-production stack)",
                )
            if urlsplit(self.braintrust.api_url).scheme != "https":
                raise FieldError(
                    ("braintrust", "api_url"),
                    f"uses plain http://, which is not allowed because {why} (use https://)",
                )
            if self.braintrust.auth_type == "pat":
                raise FieldError(
                    ("braintrust", "auth_type"),
                    f"pat is not allowed because {why} (use service_principal_oauth)",
                )
            if self.principal.secret_lifetime_days > PRODUCTION_MAX_LIFETIME_DAYS:
                raise FieldError(
                    ("principal", "secret_lifetime_days"),
                    f"{self.principal.secret_lifetime_days} days is too long because {why} "
                    f"(use at most {PRODUCTION_MAX_LIFETIME_DAYS})",
                )
            if not self.tags.get("owner", "").strip():
                raise FieldError(
                    ("tags", "owner"),
                    f"is required because {why} (add `owner: <team or person>` under "
                    f"{PROJECT}:tags)",
                )
        return self


@dataclass(frozen=True)
class Stack:
    """A validated stack: its name (from the file name or Pulumi), where it came from, its spec."""

    name: str
    file: str
    spec: StackSpec
    # What validation accepts but a reviewer should see, e.g. a throughput that is not a multiple
    # of an unconfirmed chunk.
    warnings: tuple[Problem, ...] = ()

    @property
    def production(self) -> bool:
        return is_production(self.name, self.spec.policy)
