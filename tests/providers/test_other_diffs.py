"""Diff rules of the readiness gate, the principal, the OAuth secret and the grant."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pulumi.output import Unknown

from components.providers import grant, principal, readiness
from components.providers._errors import WaitTimeout
from components.providers._wait import Done, Pending, wait_for
from components.providers.grant import QueryGrantProvider, direct_entries, without
from components.providers.oauth_secret import OAuthSecretProvider, diff_secret, parse_time
from components.providers.principal import ServicePrincipalProvider
from components.providers.readiness import EndpointsReadyProvider

NOW = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


def secret(**over: Any) -> dict[str, Any]:
    base = {"service_principal_id": "42", "application_id": "app-uuid", "lifetime_days": 90,
            "rotate_before_days": 14, "scopes": ["all-apis"], "__provider": "p",
            "secret_id": "s1", "client_id": "app-uuid", "client_secret": "xyz",
            "expire_time": (NOW + dt.timedelta(days=60)).isoformat(), "status": "ACTIVE"}
    base.update(over)
    return base


def diff_ready(olds: dict[str, Any], news: dict[str, Any]) -> Any:
    args = EndpointsReadyProvider.args_of
    return readiness.diff_ready(args(olds), args(news))


def diff_principal(olds: dict[str, Any], news: dict[str, Any]) -> Any:
    args = ServicePrincipalProvider.args_of
    return principal.diff_principal(args(olds), args(news))


def diff_grant(olds: dict[str, Any], news: dict[str, Any]) -> Any:
    args = QueryGrantProvider.args_of
    return grant.diff_grant(args(olds), args(news))


def secret_diff(olds: dict[str, Any], news: dict[str, Any], now: Any) -> Any:
    """The pure diff, on the contract's classes made from the wire props."""
    return diff_secret(OAuthSecretProvider.stored_of(olds), OAuthSecretProvider.args_of(news), now=now)


def inputs(props: dict[str, Any]) -> dict[str, Any]:
    keys = ("service_principal_id", "application_id", "lifetime_days", "rotate_before_days",
            "scopes", "__provider")
    return {k: props[k] for k in keys if k in props}


def test_secret_no_change_far_from_expiry() -> None:
    d = secret_diff(secret(), inputs(secret(__provider="new")), now=lambda: NOW)
    assert d.changes is False and d.replaces == []


@pytest.mark.parametrize("key,value", [("service_principal_id", "43"), ("lifetime_days", 30),
                                       ("scopes", ["sql"]), ("application_id", "other")])
def test_secret_replaced_new_first_when_principal_lifetime_or_scopes_change(key: str,
                                                                            value: Any) -> None:
    d = secret_diff(secret(), inputs(secret(**{key: value})), now=lambda: NOW)
    assert d.replaces == [key] and d.delete_before_replace is False


def test_secret_scope_order_and_none_vs_empty_are_no_change() -> None:
    old = secret(scopes=["a", "b"])
    assert secret_diff(old, inputs(secret(scopes=["b", "a"])), now=lambda: NOW).changes is False
    old = secret(scopes=None)
    assert secret_diff(old, inputs(secret(scopes=[])), now=lambda: NOW).changes is False


def test_secret_rotates_inside_the_window_only() -> None:
    inside = secret(expire_time=(NOW + dt.timedelta(days=13)).isoformat())
    edge = secret(expire_time=(NOW + dt.timedelta(days=14, seconds=1)).isoformat())
    d = secret_diff(inside, inputs(inside), now=lambda: NOW)
    assert d.replaces == ["expire_time"] and d.delete_before_replace is False
    assert secret_diff(edge, inputs(edge), now=lambda: NOW).changes is False


def test_secret_expired_or_inactive_is_replaced() -> None:
    expired = secret(expire_time=(NOW - dt.timedelta(days=1)).isoformat())
    assert secret_diff(expired, inputs(expired), now=lambda: NOW).replaces == ["expire_time"]
    inactive = secret(status="EXPIRED")
    assert secret_diff(inactive, inputs(inactive), now=lambda: NOW).replaces == ["expire_time"]


def test_secret_rotate_before_days_alone_is_no_change_unless_it_opens_the_window() -> None:
    assert secret_diff(secret(), inputs(secret(rotate_before_days=7)),
                       now=lambda: NOW).changes is False
    assert secret_diff(secret(), inputs(secret(rotate_before_days=61)),
                       now=lambda: NOW).replaces == ["expire_time"]


def test_parse_time_accepts_rfc3339_and_epoch() -> None:
    assert parse_time("2025-06-01T00:00:00Z") == NOW
    assert parse_time(str(int(NOW.timestamp() * 1000))) == NOW
    assert parse_time(NOW.timestamp()) == NOW
    assert parse_time(None) is None


def test_principal_display_name_updates_in_place() -> None:
    old = {"display_name": "bt", "external_id": "m", "entitlements": [], "principal_id": "1",
           "application_id": "u", "__provider": "a"}
    assert diff_principal(old, {**old, "__provider": "b"}).changes is False
    d = diff_principal(old, {**old, "display_name": "bt2"})
    assert d.changes is True and d.replaces == []


def test_principal_entitlements_compared_as_a_set() -> None:
    old = {"display_name": "bt", "external_id": "m", "entitlements": ["a", "b"]}
    assert diff_principal(old, {**old, "entitlements": ["b", "a"]}).changes is False
    assert diff_principal(old, {**old, "entitlements": ["a"]}).changes is True


def test_grant_replaces_on_endpoint_or_principal_and_ignores_endpoint_name() -> None:
    old = {"endpoint_id": "e1", "endpoint_name": "ep", "service_principal_name": "app",
           "permission_level": "CAN_QUERY", "__provider": "a"}
    assert diff_grant(old, {**old, "__provider": "b", "endpoint_name": "x"}).changes is False
    assert diff_grant(old, {**old, "endpoint_id": "e2"}).replaces == ["endpoint_id"]
    # A preview: the endpoint's id is unknown. Updated in place (same name and replace-key
    # values), it keeps its id, so the grant does not change; replaced, the grant is too.
    ident = {"name": "ep", "mode": "provisioned", "route_optimized": False}
    kept = {**old, "endpoint_identity": ident}
    assert diff_grant(kept, {**kept, "endpoint_id": Unknown()}).changes is False
    assert diff_grant(old, {**kept, "endpoint_id": Unknown()}).changes is False  # state from before the hint
    replaced = {**kept, "endpoint_id": Unknown(), "endpoint_identity": {**ident, "route_optimized": True}}
    assert diff_grant(kept, replaced).replaces == ["endpoint_id"]
    assert diff_grant(kept, {**kept, "endpoint_id": Unknown(), "endpoint_name": "other"}).replaces == ["endpoint_id"]
    assert diff_grant(kept, {**kept, "endpoint_identity": {**ident, "route_optimized": True}}).changes is False
    # The principal renamed in place (it has no replace keys): its application id is unknown in a
    # preview and kept by up.
    assert diff_grant(old, {**old, "service_principal_name": Unknown()}).changes is False
    d = diff_grant(old, {**old, "service_principal_name": "app2"})
    assert d.replaces == ["service_principal_name"] and d.delete_before_replace is False
    d = diff_grant(old, {**old, "permission_level": "CAN_MANAGE"})
    assert d.changes is True and d.replaces == []  # swapped in place, never removed
    no_level = {k: v for k, v in old.items() if k != "permission_level"}
    assert diff_grant(old, no_level).changes is False



def test_grant_pay_per_token_comes_from_the_plan_and_its_absence_in_old_state_is_no_change() -> None:
    old = {"endpoint_id": "e1", "endpoint_name": "databricks-x", "service_principal_name": "app",
           "permission_level": "CAN_QUERY"}  # state written before the plan passed the mode
    for told in (True, False):
        assert diff_grant(old, {**old, "endpoint_pay_per_token": told}).changes is False
    args = QueryGrantProvider.args_of
    assert grant.is_pay_per_token(args(old))  # as before: from the name
    assert not grant.is_pay_per_token(args({**old, "endpoint_pay_per_token": False}))
    assert grant.is_pay_per_token(args({**old, "endpoint_name": "mine",
                                        "endpoint_pay_per_token": True}))


def test_grant_keeps_direct_entries_and_drops_inherited_and_ours() -> None:
    from databricks.sdk.service.serving import ServingEndpointPermissions

    acl = ServingEndpointPermissions.from_dict({"access_control_list": [
        {"group_name": "admins", "all_permissions": [
            {"permission_level": "CAN_MANAGE", "inherited": True,
             "inherited_from_object": ["/serving-endpoints/"]}]},
        {"user_name": "alice@x", "all_permissions": [
            {"permission_level": "CAN_MANAGE", "inherited": False},
            {"permission_level": "CAN_VIEW", "inherited": True}]},
        {"service_principal_name": "other", "all_permissions": [
            {"permission_level": "CAN_QUERY", "inherited": False}]},
        {"service_principal_name": "app", "all_permissions": [
            {"permission_level": "CAN_QUERY", "inherited": False}]},
    ]})
    entries = direct_entries(acl)
    assert entries == [("user_name", "alice@x", "CAN_MANAGE"),
                       ("service_principal_name", "other", "CAN_QUERY"),
                       ("service_principal_name", "app", "CAN_QUERY")]
    assert without(entries, ("service_principal_name", "app", "CAN_QUERY")) == entries[:2]


def test_gate_waits_again_only_when_a_revision_or_the_set_changes() -> None:
    old = {"endpoints": {"a": "r1", "b": "r2"}, "timeout_seconds": 2700, "ready": {},
           "__provider": "x"}
    assert diff_ready(old, {"endpoints": {"b": "r2", "a": "r1"}, "timeout_seconds": 60,
                            "__provider": "y"}).changes is False
    assert diff_ready(old, {"endpoints": {"a": "r1", "b": "r3"}}).changes is True
    assert diff_ready(old, {"endpoints": {"a": "r1"}}).changes is True


def test_wait_backs_off_to_the_cap_and_times_out_with_what_it_waited_for() -> None:
    clock = [0.0]
    sleeps: list[float] = []

    def sleep(s: float) -> None:
        sleeps.append(s)
        clock[0] += s

    with pytest.raises(WaitTimeout) as err:
        wait_for(lambda: Pending("IN_PROGRESS"), what="endpoint x to be ready", obj="x",
                 timeout=200, clock=lambda: clock[0], sleep=sleep)
    # Each delay is an eighth of the time waited so far (at least 0.5 s, at most 10 s): growing,
    # capped, and never more than 12.5% past the moment the poll would have succeeded.
    elapsed = 0.0
    for s in sleeps[:-1]:
        assert s == pytest.approx(min(10, max(0.5, elapsed / 8)))
        elapsed += s
    assert sleeps == sorted(sleeps[:-1]) + sleeps[-1:] and max(sleeps) == 10
    assert clock[0] == 200
    first = str(err.value).splitlines()[0]
    assert "endpoint x to be ready" in first and "pulumi up" in first
    assert "IN_PROGRESS" in str(err.value)
    assert wait_for(lambda: Done(3), what="w", obj="o", timeout=1) == 3


def test_secret_is_not_replaced_in_a_preview_of_a_principal_renamed_in_place() -> None:
    old = secret()
    for key in ("service_principal_id", "application_id"):
        assert secret_diff(old, inputs(secret(**{key: Unknown()})), now=lambda: NOW).changes is False
    assert secret_diff(old, inputs(secret(service_principal_id="43")), now=lambda: NOW).replaces == [
        "service_principal_id"]
