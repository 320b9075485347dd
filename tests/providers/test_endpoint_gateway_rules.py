"""The AI Gateway, settings and model-switch rules of the endpoint provider: pure functions, no
server. The replace and refuse rules come from components/endpoint_rules.py, the one table
`diff` and preview read too."""

from __future__ import annotations

from typing import Any

import pytest

from components import endpoint_rules
from components.providers import endpoint
from components.providers.endpoint import EndpointProvider

# The wire props as the engine hands them over; the provider's own conversion types them.
args = EndpointProvider.args_of


def diff_endpoint(olds: dict[str, Any], news: dict[str, Any]) -> Any:
    return endpoint.diff_endpoint(args(olds), args(news))


def check_endpoint(news: dict[str, Any], olds: dict[str, Any]) -> list[Any]:
    """What the provider's Check refuses, the inputs in state given (no request is made)."""
    return list(EndpointProvider().check(olds, news).failures or [])

LLAMA = {"name": "meta_llama_v3_1_8b_instruct-1", "entity_name": "system.ai.meta_llama_v3_1_8b_instruct",
         "entity_version": "1", "scale_to_zero_enabled": True, "min_provisioned_throughput": 0,
         "max_provisioned_throughput": 1240}
CHURN3 = {"name": "churn_scorer-3", "entity_name": "main.ml.churn_scorer", "entity_version": "3",
          "workload_size": "Small", "scale_to_zero_enabled": True}
CHURN4 = {**CHURN3, "name": "churn_scorer-4", "entity_version": "4"}
UNITS = {"name": "llama_v4-1", "entity_name": "system.ai.llama_v4_maverick", "entity_version": "1",
         "provisioned_model_units": 50}


def props(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "ep", "mode": "provisioned", "served_entities": [LLAMA], "traffic": None,
        "tags": {"team": "ml"}, "usage_tracking": True, "route_optimized": False,
        "rate_limits": [{"calls": 10, "renewal_period": "minute", "key": "user"},
                        {"tokens": 500, "renewal_period": "minute", "key": "user_group",
                         "principal": "data-scientists"}],
        "guardrails": {"input": {"safety": True, "pii": "BLOCK"}, "output": {"safety": False, "pii": "MASK"}},
        "inference_table": {"catalog_name": "main", "schema_name": "logs", "table_name_prefix": "bt",
                            "enabled": True},
        "description": "for Braintrust", "budget_policy_id": "policy-1",
        "email_notifications": {"on_update_success": ["a@example.com", "b@example.com"],
                                "on_update_failure": []},
    }
    base.update(over)
    return base


def custom(**over: Any) -> dict[str, Any]:
    return props(**{"mode": "custom", "served_entities": [CHURN3], **over})


@pytest.mark.parametrize(("field", "value"), [
    ("rate_limits", [{"calls": 11, "renewal_period": "minute", "key": "user"}]),
    ("rate_limits", []),
    ("usage_tracking", False),
    ("guardrails", {"input": {"safety": False, "pii": "BLOCK"}}),
    ("guardrails", None),
    ("inference_table", {"catalog_name": "main", "schema_name": "other", "table_name_prefix": "bt",
                         "enabled": True}),
    ("inference_table", None),
    ("email_notifications", {"on_update_success": [], "on_update_failure": ["ops@example.com"]}),
    ("email_notifications", None),
])
def test_each_gateway_and_notification_change_is_an_update_never_a_replace(field: str, value: Any) -> None:
    d = diff_endpoint(props(), props(**{field: value}))
    assert d.changes is True and d.replaces == []
    assert check_endpoint(props(**{field: value}), props()) == []


def test_order_of_limits_and_addresses_and_a_side_that_sets_nothing_are_no_change() -> None:
    old = props()
    new = props(rate_limits=list(reversed(old["rate_limits"])),
                email_notifications={"on_update_success": ["b@example.com", "a@example.com"]},
                guardrails={**old["guardrails"], "output": {"pii": "MASK"}})
    assert diff_endpoint(old, new).changes is False
    assert diff_endpoint(props(guardrails={"input": {"safety": False}}), props(guardrails=None)).changes is False


def test_a_limit_of_zero_is_a_limit_not_the_absence_of_one() -> None:
    zero = [{"calls": 0, "renewal_period": "minute", "key": "user_group", "principal": "contractors"}]
    assert diff_endpoint(props(rate_limits=[]), props(rate_limits=zero)).changes is True
    calls_none = [{"tokens": 5, "renewal_period": "minute", "key": "user"}]
    calls_zero = [{"tokens": 5, "calls": 0, "renewal_period": "minute", "key": "user"}]
    assert diff_endpoint(props(rate_limits=calls_none), props(rate_limits=calls_zero)).changes is True


def test_calls_and_tokens_in_two_limits_of_one_key_compare_in_any_order() -> None:
    """One limit of calls and another of tokens for the same key (and a repeated one): sorting
    them compared None with a number and failed the whole `up`."""
    limits = [{"calls": 5, "renewal_period": "minute", "key": "user"},
              {"tokens": 9, "renewal_period": "minute", "key": "user"},
              {"calls": 5, "renewal_period": "minute", "key": "user"}]
    assert diff_endpoint(props(rate_limits=limits), props(rate_limits=limits[::-1])).changes is False
    assert diff_endpoint(props(rate_limits=limits[:2]), props(rate_limits=limits)).changes is True
    config = endpoint._gateway_config(args(props(rate_limits=limits)))
    assert sorted(str(r.as_dict()) for r in config.rate_limits or []) == sorted(
        str(r) for r in [{"calls": 5, "key": "user", "renewal_period": "minute"}] * 2
        + [{"key": "user", "renewal_period": "minute", "tokens": 9}])


def test_a_disabled_inference_table_is_the_same_as_none() -> None:
    off = {"catalog_name": "main", "schema_name": "logs", "enabled": False}
    assert diff_endpoint(props(inference_table=off), props(inference_table=None)).changes is False


def test_a_table_written_disabled_is_stored_where_the_stack_says_disabled() -> None:
    """Read back, the workspace holds what the stack file says (catalog, schema, prefix,
    enabled: false); turning a logging table off stays one bare `enabled: false` (the location
    changes only while disabled)."""
    off = {"catalog_name": "main", "schema_name": "audit", "table_name_prefix": "bt", "enabled": False}
    created = endpoint._gateway_config(args(props(inference_table=off)))
    assert created.inference_table_config is not None
    assert created.inference_table_config.as_dict() == off
    was_logging = args(props())
    turned_off = endpoint._gateway_config(args(props(inference_table=off)), was=was_logging)
    assert turned_off.inference_table_config is not None
    assert turned_off.inference_table_config.as_dict() == {"enabled": False}


def test_state_written_before_these_settings_existed_shows_no_change() -> None:
    old = {k: v for k, v in props(guardrails=None, inference_table=None, description=None,
                                   budget_policy_id=None, email_notifications=None).items()
           if k not in ("guardrails", "inference_table", "description", "budget_policy_id",
                        "email_notifications")}
    old["rate_limits"] = [{"calls": 10, "renewal_period": "minute", "key": "user"}]
    new = props(guardrails=None, inference_table=None, description=None, budget_policy_id=None,
                email_notifications=None, rate_limits=old["rate_limits"])
    assert diff_endpoint(old, new).changes is False
    assert check_endpoint(new, old) == []


@pytest.mark.parametrize(("old", "new"), [(props(), custom()), (custom(), props())],
                         ids=["foundation-to-custom", "custom-to-foundation"])
def test_switching_between_a_foundation_and_a_custom_model_is_an_update_in_place(
        old: dict[str, Any], new: dict[str, Any]) -> None:
    d = diff_endpoint(old, new)
    assert d.changes is True and d.replaces == []
    assert check_endpoint(new, old) == []


def test_shifting_traffic_between_versions_is_an_update() -> None:
    old = custom(served_entities=[CHURN3, CHURN4],
                 traffic=[{"served_entity_name": "churn_scorer-3", "traffic_percentage": 90},
                          {"served_entity_name": "churn_scorer-4", "traffic_percentage": 10}])
    new = {**old, "traffic": [{"served_entity_name": "churn_scorer-3", "traffic_percentage": 10},
                              {"served_entity_name": "churn_scorer-4", "traffic_percentage": 90}]}
    d = diff_endpoint(old, new)
    assert d.changes is True and d.replaces == []


@pytest.mark.parametrize("field", ["description", "budget_policy_id"])
def test_a_setting_databricks_sets_only_at_create_is_refused_in_check_never_replaced(field: str) -> None:
    new = props(**{field: "another"})
    failures = check_endpoint(new, props())
    assert [f.property for f in failures] == [field]
    assert "cannot change on an existing endpoint" in failures[0].reason
    assert "give the endpoint a new name" in failures[0].reason
    assert field not in diff_endpoint(props(), new).replaces


@pytest.mark.parametrize("field", ["description", "budget_policy_id"])
def test_the_same_setting_on_a_new_endpoint_or_a_rename_is_fine(field: str) -> None:
    assert check_endpoint(props(**{field: "x"}), {}) == []
    assert check_endpoint(props(name="ep2", **{field: "x"}), props()) == []


@pytest.mark.parametrize(("old", "new"), [
    (props(), props(mode="units", served_entities=[UNITS])),
    (props(mode="units", served_entities=[UNITS]), custom()),
    (custom(), props(mode="provisioned", served_entities=[UNITS])),
], ids=["tokens-to-units", "units-to-custom", "custom-to-units-by-entity"])
def test_a_switch_into_or_out_of_model_units_is_refused_in_place_with_a_rename_as_the_fix(
        old: dict[str, Any], new: dict[str, Any]) -> None:
    failures = [f for f in check_endpoint(new, old) if f.property == "served_entities"]
    assert len(failures) == 1 and "new name" in failures[0].reason
    # Renamed, it is a new endpoint: nothing to refuse.
    assert endpoint_rules.refusals(old, {**new, "name": "ep-units"}) == []


def test_rename_replaces_creating_the_new_one_first() -> None:
    d = diff_endpoint(props(), props(name="ep2"))
    assert d.replaces == ["name"] and d.delete_before_replace is False


def test_the_rules_table_is_one_importable_table() -> None:
    assert endpoint_rules.REPLACE_KEYS == ("name", "route_optimized")
    assert "mode" not in endpoint_rules.REPLACE_KEYS
    assert endpoint_rules.SWITCHES[("tokens_per_second", "custom")] == "update"
    assert endpoint_rules.SWITCHES[("custom", "tokens_per_second")] == "update"
    assert {endpoint_rules.SWITCHES[k] for k in endpoint_rules.SWITCHES if "units" in k
            and "pay_per_token" not in k} == {"refuse"}
    assert endpoint_rules.replace_keys(props(mode="pay_per_token"), props(), ["mode"]) == ["mode"]
