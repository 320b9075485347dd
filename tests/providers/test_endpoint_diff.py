"""Endpoint diff rules: pure functions, no server."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi.output import Unknown

from components.providers import endpoint
from components.providers.endpoint import EndpointProvider

# The rules work on the contract's classes: each test states the wire props, as the engine
# hands them over, and the provider's own conversion makes the typed arguments.
args = EndpointProvider.args_of


def diff_endpoint(olds: dict[str, Any], news: dict[str, Any]) -> Any:
    return endpoint.diff_endpoint(args(olds), args(news))


def revision(props: dict[str, Any]) -> str:
    return endpoint.revision(args(props))


def check_endpoint(props: dict[str, Any]) -> Any:
    return endpoint.check_endpoint(args(props))

A = {"name": "a", "entity_name": "main.ml.a", "entity_version": "1", "workload_size": "Small",
     "scale_to_zero_enabled": True}
B = {"name": "b", "entity_name": "main.ml.b", "entity_version": "2", "workload_size": "Small"}


def props(**over: Any) -> dict[str, Any]:
    base = {"name": "ep", "mode": "custom", "served_entities": [A, B],
            "traffic": [{"served_entity_name": "a", "traffic_percentage": 60},
                        {"served_entity_name": "b", "traffic_percentage": 40}],
            "tags": {"team": "ml", "env": "dev"},
            "rate_limits": [{"calls": 10, "renewal_period": "minute", "key": "user"},
                            {"calls": 100, "renewal_period": "minute", "key": "endpoint"}],
            "usage_tracking": True, "route_optimized": False,
            "__provider": "old-provider-string"}
    base.update(over)
    return base


def test_identical_inputs_are_no_change() -> None:
    d = diff_endpoint(props(), props())
    assert d.changes is False and d.replaces == []


def test_provider_string_alone_is_no_change() -> None:
    d = diff_endpoint(props(), props(__provider="a-new-pickle-after-a-code-change"))
    assert d.changes is False


def test_served_entity_order_is_not_a_change() -> None:
    d = diff_endpoint(props(), props(served_entities=[B, A]))
    assert d.changes is False


def test_tag_and_route_and_rate_limit_order_is_not_a_change() -> None:
    new = props(tags={"env": "dev", "team": "ml"},
                traffic=[{"served_entity_name": "b", "traffic_percentage": 40},
                         {"served_entity_name": "a", "traffic_percentage": 60}],
                rate_limits=list(reversed(props()["rate_limits"])))
    assert diff_endpoint(props(), new).changes is False


def test_numbers_from_protobuf_doubles_are_not_a_change() -> None:
    pt = {"name": "llama", "entity_name": "system.ai.llama", "entity_version": 2.0,
          "min_provisioned_throughput": 0.0, "max_provisioned_throughput": 1240.0}
    pt_int = {**pt, "entity_version": "2", "min_provisioned_throughput": 0,
              "max_provisioned_throughput": 1240}
    old = props(mode="provisioned", served_entities=[pt], traffic=None)
    new = props(mode="provisioned", served_entities=[pt_int], traffic=None)
    assert diff_endpoint(old, new).changes is False


def test_outputs_in_olds_do_not_count_as_inputs() -> None:
    old = {**props(), "endpoint_id": "123", "url": "https://h/x", "revision": "r", "task": "t"}
    assert diff_endpoint(old, props()).changes is False


@pytest.mark.parametrize("change", [
    {"served_entities": [A, {**B, "entity_version": "3"}]},
    {"served_entities": [A], "traffic": None},
    {"traffic": [{"served_entity_name": "a", "traffic_percentage": 50},
                 {"served_entity_name": "b", "traffic_percentage": 50}]},
    {"tags": {"team": "ml"}},
    {"tags": {"team": "ml", "env": "prod"}},
    {"rate_limits": []},
    {"usage_tracking": False},
])
def test_config_tags_and_gateway_update_in_place(change: dict[str, Any]) -> None:
    d = diff_endpoint(props(), props(**change))
    assert d.changes is True and d.replaces == []


def test_rename_replaces_new_one_first() -> None:
    d = diff_endpoint(props(), props(name="ep2"))
    assert d.changes and d.replaces == ["name"] and d.delete_before_replace is False


def test_route_optimized_replaces_deleting_first_because_the_name_is_taken() -> None:
    d = diff_endpoint(props(), props(route_optimized=True))
    assert d.replaces == ["route_optimized"] and d.delete_before_replace is True


def test_mode_change_replaces() -> None:
    d = diff_endpoint(props(mode="pay_per_token", served_entities=[], traffic=None), props())
    assert "mode" in d.replaces


def test_pay_per_token_ignores_tags_and_gateway() -> None:
    ppt = props(mode="pay_per_token", served_entities=[], traffic=None)
    d = diff_endpoint(ppt, {**ppt, "tags": {"other": "x"}, "rate_limits": [], "usage_tracking": False})
    assert d.changes is False


def test_unknown_input_is_a_change() -> None:
    d = diff_endpoint(props(), props(tags=Unknown()))
    assert d.changes is True and d.replaces == []
    assert diff_endpoint(props(), props(name=Unknown())).replaces == ["name"]


def test_revision_is_order_insensitive_and_follows_config_only() -> None:
    assert revision(props()) == revision(props(served_entities=[B, A], tags={}))
    assert revision(props()) != revision(props(served_entities=[A, {**B, "workload_size": "Large"}]))


def test_traffic_none_means_all_to_the_single_entity() -> None:
    one = props(served_entities=[A], traffic=None)
    explicit = props(served_entities=[A], traffic=[{"served_entity_name": "a",
                                                    "traffic_percentage": 100}])
    assert diff_endpoint(one, explicit).changes is False
    assert revision(one) == revision(explicit)


def test_check_rejects_traffic_not_adding_to_100_and_duplicate_names() -> None:
    bad = props(traffic=[{"served_entity_name": "a", "traffic_percentage": 60}])
    assert [f.property for f in check_endpoint(bad)] == ["traffic"]
    dup = props(served_entities=[A, A], traffic=None)
    assert "served_entities" in [f.property for f in check_endpoint(dup)]
    assert check_endpoint(props()) == []
