"""The one table of replace keys (components/args.py) is what each provider's diff does: a change
of each input alone replaces the resource exactly when the table says so, and an inert input
changes nothing. `python -m components diff` reads the same table, so it cannot disagree."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi.dynamic import ResourceProvider

from components.args import CONTRACTS, Contract, contract_of
from components.providers.ai_secret import AiSecretProvider
from components.providers.endpoint import EndpointProvider
from components.providers.grant import QueryGrantProvider
from components.providers.oauth_secret import OAuthSecretProvider, OAuthSecretSweepProvider
from components.providers.principal import ServicePrincipalProvider
from components.providers.readiness import EndpointsReadyProvider

PROVIDERS: list[type[ResourceProvider]] = [EndpointProvider, EndpointsReadyProvider, ServicePrincipalProvider,
                                           OAuthSecretProvider, OAuthSecretSweepProvider, QueryGrantProvider,
                                           AiSecretProvider]
ENTITY = {"name": "m-1", "entity_name": "system.ai.m", "entity_version": "1",
          "scale_to_zero_enabled": True, "min_provisioned_throughput": 0, "max_provisioned_throughput": 970}
# One valid set of inputs per resource, and another value for each input.
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "Endpoint": ({
        "name": "ep", "mode": "provisioned", "served_entities": [ENTITY], "traffic": None, "tags": {"a": "b"},
        "rate_limits": [], "usage_tracking": False, "route_optimized": False, "dbu_budget": None,
        "guardrails": None, "inference_table": None, "description": None, "budget_policy_id": None,
        "email_notifications": None,
    }, {
        "name": "ep2", "mode": "custom", "served_entities": [{**ENTITY, "max_provisioned_throughput": 1940}],
        "traffic": [{"served_entity_name": "m-1", "traffic_percentage": 50}],
        "tags": {"a": "c"}, "rate_limits": [{"calls": 5, "renewal_period": "minute", "key": "user"}],
        "usage_tracking": True, "route_optimized": True,
        "dbu_budget": {"max_dbu_per_hour": 100.0, "others_max_dbu_per_hour": 10.0},
        "guardrails": {"input": {"safety": True}}, "inference_table": {"catalog_name": "c", "schema_name": "s"},
        "description": "d", "budget_policy_id": "b", "email_notifications": {"on_update_failure": ["a@example.com"]},
    }),
    "EndpointsReady": ({"endpoints": {"ep": "r1@e1"}, "timeout_seconds": 60.0},
                    {"endpoints": {"ep": "r2@e1"}, "timeout_seconds": 120.0}),
    "ServicePrincipal": ({"display_name": "a", "external_id": "m/a", "entitlements": []},
                           {"display_name": "b", "external_id": "m/b", "entitlements": ["workspace-access"]}),
    "OAuthSecret": ({
        "service_principal_id": "1", "application_id": "app", "lifetime_days": 90, "rotate_before_days": 7,
        "scopes": ["all-apis"], "principal_created_at": "2026-01-01T00:00:00Z",
    }, {
        "service_principal_id": "2", "application_id": "app2", "lifetime_days": 60, "rotate_before_days": 8,
        "scopes": ["all-apis", "sql"], "principal_created_at": "2026-02-01T00:00:00Z",
    }),
    "OAuthSecretSweep": ({"service_principal_id": "1", "live_secret_id": "s1", "principal_created_at": "t1",
                          "after": ["gate", "grant"]},
                         {"service_principal_id": "2", "live_secret_id": "s2", "principal_created_at": "t2",
                          "after": ["gate", "grant", "record"]}),
    "QueryGrant": ({
        "endpoint_id": "e1", "endpoint_name": "ep", "service_principal_name": "app", "permission_level": "CAN_QUERY",
        "principal_created_at": "t1", "endpoint_pay_per_token": False,
        "endpoint_identity": {"name": "ep", "mode": "provisioned", "route_optimized": False},
    }, {
        "endpoint_id": "e2", "endpoint_name": "ep2", "service_principal_name": "app2",
        "permission_level": "CAN_MANAGE", "principal_created_at": "t2", "endpoint_pay_per_token": True,
        "endpoint_identity": {"name": "ep", "mode": "custom", "route_optimized": True},
    }),
    "AiSecret": ({"name": "r", "record_hash": "h1", "record": {"a": 1},
                                    "api_url": "https://x", "org_name": None},
                   {"name": "r2", "record_hash": "h2", "record": {"a": 2}, "api_url": "https://y", "org_name": "o"}),
}


def test_every_contract_is_exercised() -> None:
    assert sorted(c.type_name for c in CONTRACTS) == sorted(CASES)
    assert sorted(p.CONTRACT.type_name for p in PROVIDERS) == sorted(CASES)  # type: ignore[attr-defined]


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.__name__)
def test_each_input_alone_replaces_exactly_when_the_table_says(provider: type[ResourceProvider]) -> None:
    contract: Contract[Any, Any] = provider.CONTRACT  # type: ignore[attr-defined]
    assert contract_of(contract.type_token) is contract
    old, other = CASES[contract.type_name]
    keys = contract.input_keys()
    assert set(old) == set(keys) == set(other)  # every input is exercised
    assert set(contract.replace_keys) <= set(keys) and set(contract.inert_keys) <= set(keys)
    # Stored outputs hold the outputs too: in state, the secret's expiry is far off.
    olds = {**old, "expire_time": "2999-01-01T00:00:00Z", "status": "ACTIVE", "__provider": "p"}
    for key in keys:
        result = provider().diff("id", olds, {**old, key: other[key], "__provider": "p"})
        if key in contract.inert_keys:
            assert result.changes is False, key
        else:
            assert result.changes is True, key
            assert (key in (result.replaces or [])) == (key in contract.replace_keys), key
