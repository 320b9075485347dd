"""The one table of replace keys (components/args.py) is what each provider's diff does: a change
of each input alone replaces the resource exactly when the table says so, and an inert input
changes nothing. `python -m components diff` reads the same table, so it cannot disagree."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pulumi.dynamic import DiffResult

from components.args import (
    AiSecretArgs,
    Args,
    EndpointArgs,
    OAuthSecretArgs,
    QueryGrantArgs,
    ReadinessArgs,
    ServicePrincipalArgs,
)
from components.providers.ai_secret import diff_ai_secret
from components.providers.endpoint import diff_endpoint
from components.providers.grant import diff_grant
from components.providers.oauth_secret import diff_secret
from components.providers.principal import diff_principal
from components.providers.readiness import diff_ready

ENTITY = {"name": "m-1", "entity_name": "system.ai.m", "entity_version": "1",
          "scale_to_zero_enabled": True, "min_provisioned_throughput": 0, "max_provisioned_throughput": 970}
# One valid set of inputs per resource, and another value for each input.
Diff = Callable[[dict[str, Any], dict[str, Any]], DiffResult]
CASES: dict[type[Args], tuple[Diff, dict[str, Any], dict[str, Any]]] = {
    EndpointArgs: (diff_endpoint, {
        "name": "ep", "mode": "provisioned", "served_entities": [ENTITY], "traffic": None, "tags": {"a": "b"},
        "rate_limits": [], "usage_tracking": False, "route_optimized": False,
    }, {
        "name": "ep2", "mode": "custom", "served_entities": [{**ENTITY, "max_provisioned_throughput": 1940}],
        "traffic": [{"served_entity_name": "m-1", "traffic_percentage": 50}],
        "tags": {"a": "c"}, "rate_limits": [{"calls": 5, "renewal_period": "minute", "key": "user"}],
        "usage_tracking": True, "route_optimized": True,
    }),
    ReadinessArgs: (diff_ready, {"endpoints": {"ep": "r1@e1"}, "timeout_seconds": 60.0},
                    {"endpoints": {"ep": "r2@e1"}, "timeout_seconds": 120.0}),
    ServicePrincipalArgs: (diff_principal, {"display_name": "a", "external_id": "m/a", "entitlements": []},
                           {"display_name": "b", "external_id": "m/b", "entitlements": ["workspace-access"]}),
    OAuthSecretArgs: (lambda o, n: diff_secret(o, n), {
        "service_principal_id": "1", "application_id": "app", "lifetime_days": 90, "rotate_before_days": 7,
        "scopes": ["all-apis"], "principal_created_at": "2026-01-01T00:00:00Z",
    }, {
        "service_principal_id": "2", "application_id": "app2", "lifetime_days": 60, "rotate_before_days": 8,
        "scopes": ["all-apis", "sql"], "principal_created_at": "2026-02-01T00:00:00Z",
    }),
    QueryGrantArgs: (diff_grant, {
        "endpoint_id": "e1", "endpoint_name": "ep", "service_principal_name": "app", "permission_level": "CAN_QUERY",
        "principal_created_at": "t1", "endpoint_identity": {"name": "ep", "mode": "provisioned",
                                                            "route_optimized": False},
    }, {
        "endpoint_id": "e2", "endpoint_name": "ep2", "service_principal_name": "app2",
        "permission_level": "CAN_MANAGE", "principal_created_at": "t2",
        "endpoint_identity": {"name": "ep", "mode": "custom", "route_optimized": True},
    }),
    AiSecretArgs: (diff_ai_secret, {"name": "r", "record_hash": "h1", "record": {"a": 1},
                                    "api_url": "https://x", "org_name": None},
                   {"name": "r2", "record_hash": "h2", "record": {"a": 2}, "api_url": "https://y", "org_name": "o"}),
}


@pytest.mark.parametrize("args_type", list(CASES), ids=lambda t: t.__name__)
def test_each_input_alone_replaces_exactly_when_the_table_says(args_type: type[Args]) -> None:
    diff, old, other = CASES[args_type]
    assert set(old) == set(args_type.keys()) == set(other)  # every input is exercised
    assert set(args_type.REPLACE_KEYS) <= set(args_type.keys())
    assert set(args_type.INERT_KEYS) <= set(args_type.keys())
    # Stored outputs hold the outputs too: in state, the secret's expiry is far off.
    olds = {**old, "expire_time": "2999-01-01T00:00:00Z", "status": "ACTIVE"}
    for key in args_type.keys():
        result = diff(olds, {**old, key: other[key]})
        if key in args_type.INERT_KEYS:
            assert result.changes is False, key
        else:
            assert result.changes is True, key
            assert (key in result.replaces) == (key in args_type.REPLACE_KEYS), key
