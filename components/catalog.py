"""Foundation models this project can serve, as data.

Adding a model is one entry in ``MODELS``. Each model may be served two ways, each with its
own lifecycle, because Databricks retires them separately (pay-per-token with 3 months'
notice, provisioned throughput with 6):

- provisioned throughput: an endpoint we create, serving a Unity Catalog entity from
  ``system.ai`` at a version the stack may override (versions differ between workspaces);
- pay-per-token: an endpoint Databricks already runs in every workspace; we only reference it.

Sources: Databricks' foundation-model retirement notes and provisioned-throughput docs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Flavor = Literal["chat", "completion"]
Status = Literal["active", "retired"]


@dataclass(frozen=True)
class Provisioned:
    """How a model is served with provisioned throughput."""

    entity_name: str  # Unity Catalog name, ``system.ai.<model>``
    default_version: str
    # Throughput is bought in chunks (tokens/s); None where no value is known at all.
    throughput_chunk: int | None
    # True where Databricks' docs state the chunk: a throughput that is not a multiple is then
    # refused offline. False where the value is a best guess: validate only warns, and the
    # provider checks the workspace's live chunk before it writes anything.
    chunk_confirmed: bool = False
    status: Status = "active"
    replacement: str | None = None  # catalog key of the model to use instead, when retired


@dataclass(frozen=True)
class PayPerToken:
    """The pay-per-token endpoint Databricks runs for a model."""

    endpoint_name: str
    status: Status = "active"
    replacement: str | None = None  # pay-per-token endpoint name to use instead, when retired


@dataclass(frozen=True)
class FoundationModel:
    key: str  # what a stack file writes as ``foundation_model``
    display_name: str
    flavor: Flavor  # chat, or completion for completion-only models (Braintrust needs it)
    provisioned: Provisioned | None
    pay_per_token: PayPerToken | None
    # Why a mode is missing, for the error message when a stack asks for it.
    provisioned_note: str = ""


MODELS: tuple[FoundationModel, ...] = (
    FoundationModel(
        key="meta-llama-3.1-70b-instruct",
        display_name="Meta Llama 3.1 70B Instruct",
        flavor="chat",
        provisioned=Provisioned("system.ai.meta_llama_v3_1_70b_instruct", "1", 2400, chunk_confirmed=True),
        # Replaced on pay-per-token by Llama 3.3 70B from December 2024.
        pay_per_token=PayPerToken(
            "databricks-meta-llama-3-1-70b-instruct",
            status="retired",
            replacement="databricks-meta-llama-3-3-70b-instruct",
        ),
    ),
    FoundationModel(
        key="meta-llama-3.3-70b-instruct",
        display_name="Meta Llama 3.3 70B Instruct",
        flavor="chat",
        provisioned=Provisioned("system.ai.llama_v3_3_70b_instruct", "1", 2400),
        pay_per_token=PayPerToken("databricks-meta-llama-3-3-70b-instruct"),
    ),
    FoundationModel(
        key="meta-llama-3.1-8b-instruct",
        display_name="Meta Llama 3.1 8B Instruct",
        flavor="chat",
        provisioned=Provisioned("system.ai.meta_llama_v3_1_8b_instruct", "1", 1240, chunk_confirmed=True),
        pay_per_token=PayPerToken("databricks-meta-llama-3-1-8b-instruct"),
    ),
    FoundationModel(
        key="mistral-7b-instruct",
        display_name="Mistral 7B Instruct",
        flavor="chat",
        provisioned=Provisioned("system.ai.mistral_7b_instruct_v0_2", "1", 970),
        pay_per_token=None,
    ),
    FoundationModel(
        key="mixtral-8x7b-instruct",
        display_name="Mixtral 8x7B Instruct",
        flavor="chat",
        provisioned=Provisioned("system.ai.mixtral_8x7b_instruct_v0_1", "1", 1080),
        pay_per_token=PayPerToken(
            "databricks-mixtral-8x7b-instruct",
            status="retired",
            replacement="databricks-meta-llama-3-3-70b-instruct",
        ),
    ),
    FoundationModel(
        key="mpt-7b-instruct",
        display_name="MPT-7B Instruct",
        flavor="completion",
        provisioned=None,
        provisioned_note="Databricks publishes no system.ai entity for MPT-7B Instruct",
        pay_per_token=PayPerToken(
            "databricks-mpt-7b-instruct",
            status="retired",
            replacement="databricks-meta-llama-3-1-8b-instruct",
        ),
    ),
)

BY_KEY: dict[str, FoundationModel] = {m.key: m for m in MODELS}
BY_PAY_PER_TOKEN_ENDPOINT: dict[str, FoundationModel] = {
    m.pay_per_token.endpoint_name: m for m in MODELS if m.pay_per_token is not None
}


def provisioned_keys() -> list[str]:
    """Models a stack can serve with provisioned throughput today."""
    return sorted(m.key for m in MODELS if m.provisioned and m.provisioned.status == "active")


def pay_per_token_endpoints() -> list[str]:
    """Pay-per-token endpoints a stack can reference today."""
    return sorted(
        m.pay_per_token.endpoint_name
        for m in MODELS
        if m.pay_per_token and m.pay_per_token.status == "active"
    )
