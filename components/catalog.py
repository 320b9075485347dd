"""Foundation models this project can serve, as data, with the source of every figure.

Adding a model is one entry in ``MODELS``. Each model may be served two ways, each with its own
lifecycle, because Databricks retires them separately:

- provisioned throughput: an endpoint we create, serving a Unity Catalog entity from
  ``system.ai`` at a version the stack may pin (versions differ between workspaces). Two
  capacity shapes exist (Databricks' "Model units in provisioned throughput" page,
  docs.databricks.com/aws/en/machine-learning/foundation-model-apis/model-units):
  * ``band``: tokens-per-second bands, bought in chunks whose size depends on the model
    version (the page's "legacy" group: Llama 3.x, Mistral, Mixtral, MPT, ...), created
    through ``POST /api/2.0/serving-endpoints``;
  * ``units``: model units (Llama 4 Maverick, GPT OSS 120B/20B, Gemma 3 12B, ...), created
    through ``POST /api/2.0/serving-endpoints/pt`` (databricks-sdk 0.162.0
    ``ServingEndpointsAPI.create_provisioned_throughput_endpoint``).
- pay-per-token: an endpoint Databricks already runs in every workspace; we only reference it.

Every figure carries its source; ``None`` as a source means nobody publishes it: the figure is
this project's assumption, ``validate`` only warns on it, and ``pulumi up`` checks the
workspace's live value (``get-model-optimization-info``) before it writes anything.

Lifecycle (Databricks' "AI models maintenance policy",
docs.databricks.com/aws/en/machine-learning/retired-models-policy): ``legacy`` (no longer
recommended; only workspaces that used it in the 30 days before the announcement keep it),
``deprecated`` (a retirement date 30 or 90 days ahead; same 30-day rule), ``retired`` (gone).

``diff``/cost code reads ``version_facts(entity, version)`` and ``assumed_facts(...)``: the
chunk (or unit step) and the DBU/h per chunk (or per unit), each with its source.

No pulumi, no databricks-sdk: ``validate`` imports this on a bare runner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Flavor = Literal["chat", "completion"]
Capacity = Literal["band", "units"]
LifecycleState = Literal["active", "legacy", "deprecated", "retired"]
LIFECYCLE_STATES: tuple[LifecycleState, ...] = ("active", "legacy", "deprecated", "retired")

# The sources cited below, written once.
SRC_TF_ACCEPTANCE = ("terraform-provider-databricks serving/model_serving_test.go (acceptance test "
                     "run against a live workspace)")
SRC_2025_CAPTURE = ("a recorded get-model-optimization-info answer (2025): chunk 19000, "
                    "106 DBU/h per chunk")
SRC_2024_CAPTURE = ("a recorded get-model-optimization-info answer (2024): chunk 970, dbus 24; "
                    "the capture does not say which 970-chunk model it was")
SRC_MODEL_UNITS_PAGE = ("Databricks docs, 'Model units in provisioned throughput' "
                        "(foundation-model-apis/model-units)")
SRC_LISTING_2026 = ("a captured GET /api/2.0/serving-endpoints listing (2026): "
                    "served_entities[].entity_name of Databricks' pay-per-token endpoints")
SRC_PULUMI_PT = ("pulumi-databricks ModelServingProvisionedThroughput example "
                 "(entityName system.ai.llama-4-maverick, entityVersion 1)")
SRC_RETIRED_POLICY = "Databricks docs, 'AI models maintenance policy' (retired-models-policy)"
SRC_DOCS_EXAMPLE = ("Databricks' provisioned-throughput docs example (1240 for Llama 3.1 8B, 2400 "
                    "for Llama 3.1 70B); the example's version is not certain")


@dataclass(frozen=True)
class VersionFacts:
    """What is known of one version of a ``system.ai`` entity.

    ``chunk``: tokens/s per chunk for a band model; model units per step for a unit model.
    ``dbus``: DBU per hour for one chunk (band) or one unit (units). A ``*_source`` of None
    marks the figure as this project's assumption (unconfirmed)."""

    version: str
    chunk: int | None = None
    chunk_source: str | None = None
    dbus: float | None = None
    dbus_source: str | None = None
    # Where the dbus figure is applied beyond what it was recorded for: how (cost shows it).
    dbus_applied_beyond: str = ""

    @property
    def chunk_confirmed(self) -> bool:
        return self.chunk is not None and self.chunk_source is not None


@dataclass(frozen=True)
class Lifecycle:
    """Where a model stands in Databricks' rolling retirement."""

    state: LifecycleState = "active"
    retires_on: str | None = None  # ISO date, when deprecated
    # Catalog key (provisioned) or pay-per-token endpoint name (pay-per-token) to use instead.
    replacement: str | None = None
    source: str | None = None  # where the state is published; None: the project's reading


@dataclass(frozen=True)
class Provisioned:
    """How a model is served with provisioned throughput."""

    entity_name: str  # Unity Catalog name, ``system.ai.<model>``
    # The version validate assumes when a stack omits one (the provider pins the newest the
    # workspace serves at create): the newest the catalog knows of.
    default_version: str
    # The chunk (band) or unit step (units) assumed for a version the catalog has no figure
    # for: never confirmed. None: nothing is known at all.
    throughput_chunk: int | None
    capacity: Capacity = "band"
    versions: tuple[VersionFacts, ...] = ()
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    # The label in the served entity's name (`<model>-<label>`) when a stack omits the version.
    # Fixed forever: stacks deployed with it keep their served entity (0 writes on upgrade),
    # whatever ``default_version`` becomes.
    name_version: str = "1"
    entity_source: str | None = None  # where the entity name is published
    # Unit models: estimated tokens/s per unit for a medium workload, with its source.
    tokens_per_unit: float | None = None
    tokens_per_unit_source: str | None = None

    def facts(self, version: str) -> VersionFacts | None:
        return next((v for v in self.versions if v.version == version), None)

    def chunk_for(self, version: str | None) -> tuple[int | None, bool, str]:
        """(chunk, confirmed, version assumed) for a stack's version (None: omitted)."""
        assumed = version or self.default_version
        facts = self.facts(assumed)
        if facts is not None and facts.chunk is not None:
            # A confirmed figure binds only a version the stack pins: an omitted one becomes
            # whatever the workspace serves newest.
            return facts.chunk, facts.chunk_confirmed and version is not None, assumed
        return self.throughput_chunk, False, assumed

    @property
    def status(self) -> LifecycleState:
        return self.lifecycle.state

    @property
    def replacement(self) -> str | None:
        return self.lifecycle.replacement


@dataclass(frozen=True)
class PayPerToken:
    """The pay-per-token endpoint Databricks runs for a model."""

    endpoint_name: str
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    source: str | None = None  # where the endpoint name is published

    @property
    def status(self) -> LifecycleState:
        return self.lifecycle.state

    @property
    def replacement(self) -> str | None:
        return self.lifecycle.replacement


@dataclass(frozen=True)
class FoundationModel:
    key: str  # what a stack file writes as ``foundation_model``
    display_name: str
    flavor: Flavor  # chat, or completion for completion-only models (Braintrust needs it)
    provisioned: Provisioned | None
    pay_per_token: PayPerToken | None
    # Why a mode is missing, for the error message when a stack asks for it.
    provisioned_note: str = ""

    @property
    def capacity(self) -> Capacity | None:
        return self.provisioned.capacity if self.provisioned else None


def _retired(replacement: str, source: str = SRC_RETIRED_POLICY) -> Lifecycle:
    return Lifecycle("retired", replacement=replacement, source=source)


MODELS: tuple[FoundationModel, ...] = (
    # ---- band models (tokens per second) -------------------------------------------------------
    FoundationModel(
        key="meta-llama-3.1-70b-instruct",
        display_name="Meta Llama 3.1 70B Instruct",
        flavor="chat",
        provisioned=Provisioned(
            "system.ai.meta_llama_v3_1_70b_instruct", "1", 2400,
            versions=(VersionFacts("1", 2400, None),),  # SRC_DOCS_EXAMPLE: version not certain
        ),
        # Replaced on pay-per-token by Llama 3.3 70B from December 2024.
        pay_per_token=PayPerToken("databricks-meta-llama-3-1-70b-instruct",
                                  _retired("databricks-meta-llama-3-3-70b-instruct")),
    ),
    FoundationModel(
        key="meta-llama-3.3-70b-instruct",
        display_name="Meta Llama 3.3 70B Instruct",
        flavor="chat",
        # No public chunk for any version (a third-party config uses 1580: not a source).
        provisioned=Provisioned("system.ai.llama_v3_3_70b_instruct", "1", 2400,
                                entity_source=SRC_LISTING_2026),
        pay_per_token=PayPerToken("databricks-meta-llama-3-3-70b-instruct", source=SRC_LISTING_2026),
    ),
    FoundationModel(
        key="meta-llama-3.1-8b-instruct",
        display_name="Meta Llama 3.1 8B Instruct",
        flavor="chat",
        provisioned=Provisioned(
            "system.ai.meta_llama_v3_1_8b_instruct", "4", 1240,
            versions=(
                VersionFacts("2", 970, SRC_TF_ACCEPTANCE, 24, SRC_2024_CAPTURE, dbus_applied_beyond=(
                    "the capture does not name the model; applied to Llama 3.1 8B version 2, the llama "
                    "model whose chunk is 970")),
                VersionFacts("3", 19000, SRC_2025_CAPTURE, 106, SRC_2025_CAPTURE),
                VersionFacts("4", 1240, None),  # SRC_DOCS_EXAMPLE: version not certain
            ),
            entity_source=SRC_LISTING_2026,
        ),
        pay_per_token=PayPerToken("databricks-meta-llama-3-1-8b-instruct", source=SRC_LISTING_2026),
    ),
    FoundationModel(
        key="mistral-7b-instruct",
        display_name="Mistral 7B Instruct",
        flavor="chat",
        provisioned=Provisioned("system.ai.mistral_7b_instruct_v0_2", "1", 970,
                                versions=(VersionFacts("1", 970, SRC_TF_ACCEPTANCE),),
                                entity_source=SRC_TF_ACCEPTANCE),
        pay_per_token=None,
    ),
    FoundationModel(
        key="mixtral-8x7b-instruct",
        display_name="Mixtral 8x7B Instruct",
        flavor="chat",
        provisioned=Provisioned("system.ai.mixtral_8x7b_instruct_v0_1", "1", 1080),  # 1080: a guess
        pay_per_token=PayPerToken("databricks-mixtral-8x7b-instruct",
                                  _retired("databricks-meta-llama-3-3-70b-instruct")),
    ),
    FoundationModel(
        key="mpt-7b-instruct",
        display_name="MPT-7B Instruct",
        flavor="completion",
        provisioned=None,
        provisioned_note="Databricks publishes no system.ai entity for MPT-7B Instruct",
        pay_per_token=PayPerToken("databricks-mpt-7b-instruct",
                                  _retired("databricks-meta-llama-3-1-8b-instruct")),
    ),
    FoundationModel(
        key="meta-llama-3.1-405b-instruct",
        display_name="Meta Llama 3.1 405B Instruct",
        flavor="chat",
        provisioned=None,
        provisioned_note="the catalog records no system.ai entity for Llama 3.1 405B",
        # Braintrust's proxy still lists the endpoint (packages/proxy/schema/index.ts); the
        # workspace answers 404 for it.
        pay_per_token=PayPerToken("databricks-meta-llama-3-1-405b-instruct",
                                  _retired("databricks-llama-4-maverick")),
    ),
    # ---- unit models (model units; no public unit step or DBU rate) ------------------------------
    FoundationModel(
        key="meta-llama-4-maverick",
        display_name="Meta Llama 4 Maverick",
        flavor="chat",
        provisioned=Provisioned(
            "system.ai.llama-4-maverick", "1", None, capacity="units",
            entity_source=f"{SRC_LISTING_2026}; {SRC_PULUMI_PT}",
            tokens_per_unit=65.0,  # 50 units ~ 3250 tokens/s for a medium workload
            tokens_per_unit_source=SRC_MODEL_UNITS_PAGE,
        ),
        pay_per_token=PayPerToken("databricks-llama-4-maverick", source=SRC_LISTING_2026),
    ),
    FoundationModel(
        key="gpt-oss-120b",
        display_name="OpenAI GPT OSS 120B",
        flavor="chat",
        # The listing says system.ai.gpt-oss-120b; a Databricks Academy notebook writes
        # system.ai.gpt_oss_20b for the 20B model. The listing is the API's own answer.
        provisioned=Provisioned("system.ai.gpt-oss-120b", "1", None, capacity="units",
                                entity_source=SRC_LISTING_2026),
        pay_per_token=PayPerToken("databricks-gpt-oss-120b", source=SRC_LISTING_2026),
    ),
    FoundationModel(
        key="gpt-oss-20b",
        display_name="OpenAI GPT OSS 20B",
        flavor="chat",
        provisioned=Provisioned("system.ai.gpt-oss-20b", "1", None, capacity="units",
                                entity_source=SRC_LISTING_2026),
        pay_per_token=PayPerToken("databricks-gpt-oss-20b", source=SRC_LISTING_2026),
    ),
    FoundationModel(
        key="gemma-3-12b",
        display_name="Google Gemma 3 12B",
        flavor="chat",
        provisioned=Provisioned("system.ai.gemma-3-12b-it", "1", None, capacity="units",
                                entity_source=SRC_LISTING_2026),
        pay_per_token=PayPerToken("databricks-gemma-3-12b", source=SRC_LISTING_2026),
    ),
)

BY_KEY: dict[str, FoundationModel] = {m.key: m for m in MODELS}
BY_PAY_PER_TOKEN_ENDPOINT: dict[str, FoundationModel] = {
    m.pay_per_token.endpoint_name: m for m in MODELS if m.pay_per_token is not None
}
BY_ENTITY: dict[str, FoundationModel] = {
    m.provisioned.entity_name: m for m in MODELS if m.provisioned is not None
}
# Upper bound on model units per served entity: beyond it is a typo, not a purchase (no
# published limit; Databricks' examples use 50 and 100).
MAX_MODEL_UNITS = 1000


def version_facts(entity_name: str, version: str) -> VersionFacts | None:
    """The catalog's facts for one version of a ``system.ai`` entity; None when it has none."""
    model = BY_ENTITY.get(entity_name)
    return model.provisioned.facts(version) if model and model.provisioned else None


def assumed_facts(entity_name: str, version: str | None) -> VersionFacts | None:
    """The facts to compute with for an entity at a version (None: the stack omitted it): the
    version's own where the catalog has them, else the model's assumption, sources None."""
    model = BY_ENTITY.get(entity_name)
    if model is None or model.provisioned is None:
        return None
    p = model.provisioned
    facts = p.facts(version or p.default_version)
    if facts is not None:
        return facts
    return VersionFacts(version or p.default_version, p.throughput_chunk, None)


def provisioned_keys(capacity: Capacity | None = None) -> list[str]:
    """Models a stack can serve with provisioned throughput today (of one capacity shape)."""
    return sorted(m.key for m in MODELS if m.provisioned and m.provisioned.status != "retired"
                  and (capacity is None or m.provisioned.capacity == capacity))


def pay_per_token_endpoints() -> list[str]:
    """Pay-per-token endpoints a stack can reference today."""
    return sorted(
        m.pay_per_token.endpoint_name
        for m in MODELS
        if m.pay_per_token and m.pay_per_token.status != "retired"
    )


# ---------------------------------------------------------------------------------------------
# What capacity costs: DBUs per hour for one chunk (band) or one model unit, from VersionFacts.dbus.
#
# Provisioned throughput is billed in DBUs per hour for every chunk or model unit, used or not.
# The API states the rate: get-model-optimization-info answers `dbus` next to
# `throughput_chunk_size`, and served entities carry `min_dbus` and `max_dbus` (the SDK's
# dataclasses drop both). Public figures are few; every other entity and version is unknown,
# and shown as unknown, never as 0 (components/cost.py).

RateBasis = Literal["chunk", "unit"]


@dataclass(frozen=True)
class DbuRate:
    """DBUs per hour for one chunk (or model unit) of one entity at one version."""

    basis: RateBasis
    size: int  # tokens/s in one chunk (basis "chunk"); 1 for a model unit
    dbu_per_hour: float  # per chunk (or unit)
    source: str
    extrapolated: str = ""  # set where the figure is applied beyond what it was recorded for


def dbu_rate(entity_name: str, version: str | None) -> DbuRate | None:
    """The published rate for one entity at one version; None where no source gives one (and for
    an omitted version, which the provider resolves at create: offline it is not known)."""
    if version is None:
        return None
    model = BY_ENTITY.get(entity_name)
    facts = version_facts(entity_name, version)
    if model is None or model.provisioned is None or facts is None or facts.dbus is None \
            or facts.dbus_source is None:
        return None
    if model.provisioned.capacity == "units":
        return DbuRate("unit", 1, float(facts.dbus), facts.dbus_source, facts.dbus_applied_beyond)
    if facts.chunk is None:
        return None
    return DbuRate("chunk", facts.chunk, float(facts.dbus), facts.dbus_source, facts.dbus_applied_beyond)
