"""The diff rule for an omitted entity_version, as a pure function: the version recorded at
create is the desired one until the stack names another version or another model."""

from __future__ import annotations

from pulumi.output import Unknown

from components.args import EndpointArgs
from components.providers.endpoint import EndpointProvider, diff_endpoint, with_recorded_versions

LLAMA = "system.ai.meta_llama_v3_1_8b_instruct"


def _props(version: str | None, entity: str = LLAMA) -> EndpointArgs:
    return EndpointProvider.args_of({
        "name": "pt", "mode": "provisioned", "traffic": None, "tags": {}, "rate_limits": [],
        "usage_tracking": False, "route_optimized": False,
        "served_entities": [{"name": "llm", "entity_name": entity, "entity_version": version,
                             "max_provisioned_throughput": 1240}]})


def test_an_omitted_version_takes_the_recorded_one_and_shows_no_change() -> None:
    olds, news = _props("4"), _props(None)
    filled = with_recorded_versions(news, olds)
    assert filled.served_entities[0].entity_version == "4"
    assert not diff_endpoint(olds, filled).changes


def test_a_named_version_or_another_model_is_a_change() -> None:
    olds = _props("4")
    assert diff_endpoint(olds, with_recorded_versions(_props("5"), olds)).changes
    other = with_recorded_versions(_props(None, "system.ai.mixtral_8x7b_instruct_v0_1"), olds)
    assert other.served_entities[0].entity_version is None  # resolved again at update
    assert diff_endpoint(olds, other).changes


def test_unknown_entities_are_left_unknown() -> None:
    news = EndpointProvider.args_of({"name": "pt", "mode": "provisioned",
                                     "served_entities": Unknown()})
    assert with_recorded_versions(news, _props("4")) is news
