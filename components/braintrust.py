"""The record Braintrust stores for a Databricks AI provider (an "AI secret"), validated.

Braintrust's own schema does not tie ``auth_type`` to the shape of ``secret``: a mismatch is
only found when a request fails. Here it is a validation error, before anything is sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from components.args import BraintrustRecordArgs
from components.spec.constants import is_endpoint_name
from components.urls import check_workspace_url

AuthType = Literal["pat", "service_principal_oauth"]
REDACTED = "<redacted>"

_STRICT = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class CustomModel(BaseModel):
    """One entry of ``metadata.customModels``: how Braintrust talks to one serving endpoint."""

    model_config = _STRICT

    format: Literal["openai", "anthropic", "google", "window", "js", "converse"] = Field(
        description="Wire format; Databricks serving endpoints speak `openai`."
    )
    flavor: Literal["chat", "completion", "embedding"] = Field(
        description="`chat` for chat models, `completion` for completion-only models."
    )
    displayName: str | None = None
    description: str | None = None
    multimodal: bool | None = None
    input_cost_per_mil_tokens: float | None = None
    output_cost_per_mil_tokens: float | None = None
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    supports_streaming: bool | None = None
    deprecated: bool | None = None


class DatabricksMetadata(BaseModel):
    model_config = _STRICT

    api_base: str = Field(description="The workspace URL, no trailing slash.")
    # Braintrust defaults to `pat`; our records always state it.
    auth_type: AuthType = "pat"
    supportsStreaming: bool = True
    customModels: dict[str, CustomModel] = Field(default_factory=dict)
    models: list[str] | None = None
    excludeDefaultModels: bool | None = None

    @field_validator("api_base")
    @classmethod
    def _api_base(cls, value: str) -> str:
        return check_workspace_url(value, strip_trailing_slash=False)

    @field_validator("customModels")
    @classmethod
    def _model_names(cls, value: dict[str, CustomModel]) -> dict[str, CustomModel]:
        for name in value:
            if not is_endpoint_name(name):  # Braintrust's model names are endpoint names
                raise ValueError(
                    f"model name {name!r} is not a serving endpoint name "
                    "(letters, digits, '-' and '_', at most 63 characters)"
                )
        return value

    @model_validator(mode="after")
    def _models_are_custom(self) -> DatabricksMetadata:
        for name in self.models or []:
            if name not in self.customModels:
                raise ValueError(
                    f"models lists {name!r}, which has no customModels entry "
                    "(add one with format 'openai' and its flavor, or remove it from models)"
                )
        return self


def _oauth_secret_fields(raw: str) -> dict[str, Any] | None:
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, or nested past Python's limit: not the fields
        return None
    return parsed if isinstance(parsed, dict) else None


class BraintrustProviderConfig(BaseModel):
    """The AI-secret record: ``PUT /v1/ai_secret`` takes exactly ``to_record()``."""

    model_config = _STRICT

    name: str = Field(min_length=1, max_length=255, description="The record's name in Braintrust.")
    type: Literal["databricks"] = "databricks"
    metadata: DatabricksMetadata
    secret: SecretStr
    org_name: str | None = None

    @model_validator(mode="after")
    def _secret_matches_auth_type(self) -> BraintrustProviderConfig:
        raw = self.secret.get_secret_value()
        fields = _oauth_secret_fields(raw)
        if self.metadata.auth_type == "pat":
            if not raw.strip():
                raise ValueError("secret is empty: auth_type 'pat' needs a personal access token")
            if fields is not None:
                raise ValueError(
                    "secret holds JSON credentials but auth_type is 'pat' "
                    "(set metadata.auth_type to 'service_principal_oauth', or give the token itself)"
                )
            if raw != raw.strip() or any(c.isspace() for c in raw):
                raise ValueError("secret contains whitespace: a personal access token has none")
            return self
        if fields is None:
            raise ValueError(
                "auth_type 'service_principal_oauth' needs secret to be a JSON object "
                '{"client_id": ..., "client_secret": ...}, not a bare token '
                "(or set metadata.auth_type to 'pat')"
            )
        extra = sorted(set(fields) - {"client_id", "client_secret"})
        if extra:
            raise ValueError(f"secret JSON has unknown keys {extra} (only client_id and client_secret)")
        for key in ("client_id", "client_secret"):
            if not isinstance(fields.get(key), str) or not fields[key].strip():
                raise ValueError(f"secret JSON needs a non-empty string {key}")
        return self

    def to_record(self) -> dict[str, Any]:
        """The record as Braintrust's API takes it, secret included: handle as a secret."""
        record = self.model_dump(mode="json", exclude_none=True)
        record["secret"] = self.secret.get_secret_value()
        return record

    def redacted(self) -> dict[str, Any]:
        """The record for review output: the secret replaced, the OAuth client id kept."""
        record = self.model_dump(mode="json", exclude_none=True)
        fields = _oauth_secret_fields(self.secret.get_secret_value())
        if self.metadata.auth_type == "service_principal_oauth" and fields:
            record["secret"] = {"client_id": fields.get("client_id"), "client_secret": REDACTED}
        else:
            record["secret"] = REDACTED
        return record


def oauth_secret(client_id: str, client_secret: str) -> str:
    """The secret string Braintrust expects for ``service_principal_oauth``."""
    return json.dumps({"client_id": client_id, "client_secret": client_secret})


def build_provider_config(
    *,
    name: str,
    api_base: str,
    auth_type: AuthType,
    secret: str,
    endpoints: Iterable[tuple[str, str]],
    supports_streaming: bool = True,
    org_name: str | None = None,
) -> BraintrustProviderConfig:
    """One ``customModels`` entry (format openai) and one ``models`` entry per endpoint, given
    as ``(endpoint_name, flavor)``. Raises ValidationError when the result would be invalid."""
    pairs = sorted(endpoints)
    return BraintrustProviderConfig.model_validate(
        {
            "name": name,
            "type": "databricks",
            "metadata": {
                "api_base": api_base,
                "auth_type": auth_type,
                "supportsStreaming": supports_streaming,
                "customModels": {n: {"format": "openai", "flavor": f} for n, f in pairs},
                "models": [n for n, _ in pairs],
            },
            "secret": secret,
            "org_name": org_name,
        }
    )


def record_config(args: BraintrustRecordArgs, client_id: str, secret: str) -> BraintrustProviderConfig:
    """The record a plan's BraintrustRecordArgs describe, once the principal's application id
    and the secret (its OAuth secret, or the PAT) are known. Raises ValidationError."""
    auth_type: AuthType = "pat" if args.auth_type == "pat" else "service_principal_oauth"
    return build_provider_config(
        name=args.name,
        api_base=args.api_base,
        auth_type=auth_type,
        secret=secret if auth_type == "pat" else oauth_secret(client_id, secret),
        endpoints=args.models.items(),
        supports_streaming=args.supports_streaming,
        org_name=args.org_name,
    )


def problems(exc: ValidationError) -> list[str]:
    """``field.path: message`` lines for a validation error, never echoing the input."""
    lines = []
    for err in exc.errors(include_input=False, include_url=False):
        path = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: {msg}" if path else msg)
    return lines


def validate_record(data: Mapping[str, Any]) -> tuple[BraintrustProviderConfig | None, list[str]]:
    """Validate a record read from a file or a stack output."""
    try:
        return BraintrustProviderConfig.model_validate(dict(data)), []
    except ValidationError as exc:
        return None, problems(exc)
