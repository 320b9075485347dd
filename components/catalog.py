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


# ---------------------------------------------------------------------------------------------
# What capacity costs: DBUs per hour, per entity and version, where a public figure exists.
#
# Provisioned throughput is billed in DBUs per hour for every chunk (tokens/s band models) or
# model unit, used or not. The API states the rate: get-model-optimization-info answers `dbus`
# next to `throughput_chunk_size`, and served entities carry `min_dbus` and `max_dbus` (the
# SDK's dataclasses drop both; the provider reads the raw JSON at `up`). Public figures are few;
# every other entity and version is unknown, and shown as unknown, never as 0.

RateBasis = Literal["chunk", "unit"]


@dataclass(frozen=True)
class DbuRate:
    """DBUs per hour for one chunk (or model unit) of one entity at one version."""

    basis: RateBasis
    size: int  # tokens/s in one chunk (for basis "chunk"); 1 for a model unit
    dbu_per_hour: float  # per chunk (or unit)
    source: str
    # Set where the figure is applied beyond what it was recorded for: says how.
    extrapolated: str = ""


DBU_RATES: dict[tuple[str, str], DbuRate] = {
    ("system.ai.meta_llama_v3_1_8b_instruct", "3"): DbuRate(
        "chunk", 19000, 106.0,
        source="a recorded serving-endpoints API answer (2025) for Llama 3.1 8B version 3: "
               "min_provisioned_throughput = max = 19000 tokens/s with min_dbus = max_dbus = 106",
    ),
    ("system.ai.meta_llama_v3_1_8b_instruct", "2"): DbuRate(
        "chunk", 970, 24.0,
        source="a 2024 capture of get-model-optimization-info for a llama-type model: "
               "throughput_chunk_size 970, dbus 24",
        extrapolated="the capture names a llama-type model with a 970 chunk, not this entity; applied "
                     "to Llama 3.1 8B version 2, whose chunk is 970 (terraform-provider-databricks "
                     "serving/model_serving_test.go)",
    ),
}


def dbu_rate(entity_name: str, version: str | None) -> DbuRate | None:
    """The rate for one entity at one version; None where no public figure exists (and for an
    omitted version, which the provider resolves at create: offline it is not known)."""
    if version is None:
        return None
    return DBU_RATES.get((entity_name, version))
