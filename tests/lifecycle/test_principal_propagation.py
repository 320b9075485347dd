"""The propagation retry (`components/providers/_propagation.py`) on a fake clock: which refusals
it retries, for which principals, and for how long. No emulator, no sleeping."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from databricks.sdk.errors import BadRequest, NotFound, PermissionDenied

from components.providers._errors import WaitTimeout
from components.providers._propagation import (
    is_recent,
    is_unknown_principal,
    until_known,
)
from components.providers.grant import put_order

UNKNOWN_ACL = BadRequest("Principal: ServicePrincipalName(1234-abcd) does not exist")
UNKNOWN_SECRETS = NotFound("Service principal 7000000000000001 does not exist in this workspace.")
UNKNOWN_SCIM = NotFound("User not found. ServicePrincipal with id 7000000000000001 not found.")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def refusing(times: int, exc: Exception) -> tuple[Callable[[], str], list[int]]:
    calls = [0]

    def call() -> str:
        calls[0] += 1
        if calls[0] <= times:
            raise exc
        return "done"
    return call, calls


@pytest.mark.parametrize("exc", [UNKNOWN_ACL, UNKNOWN_SECRETS, UNKNOWN_SCIM])
def test_each_unknown_principal_refusal_is_recognised(exc: Exception) -> None:
    assert is_unknown_principal(exc)


@pytest.mark.parametrize("exc", [
    NotFound("Serving endpoint with id 'abc' does not exist."),
    NotFound("Secret 0a1b does not exist for service principal 7000000000000001."),
    PermissionDenied("Principal: ServicePrincipalName(x) may not change permissions"),
    BadRequest("Service principal 7 already has 5 OAuth secrets, the maximum of 5"),
])
def test_other_refusals_are_not_taken_for_an_unknown_principal(exc: Exception) -> None:
    assert not is_unknown_principal(exc)


def test_a_new_principal_is_retried_with_backoff_until_known() -> None:
    clock = FakeClock()
    call, calls = refusing(4, UNKNOWN_ACL)
    assert until_known(call, recent=True, principal="sp", clock=clock,
                       sleep=clock.sleep) == "done"
    assert calls[0] == 5 and clock.slept == sorted(clock.slept)


def test_an_old_principal_or_another_error_is_raised_at_once() -> None:
    clock = FakeClock()
    call, calls = refusing(1, UNKNOWN_ACL)
    with pytest.raises(BadRequest):
        until_known(call, recent=False, principal="sp", clock=clock, sleep=clock.sleep)
    other, other_calls = refusing(1, BadRequest("Permission level 'X' is not valid"))
    with pytest.raises(BadRequest):
        until_known(other, recent=True, principal="sp", clock=clock, sleep=clock.sleep)
    assert calls[0] == 1 and other_calls[0] == 1 and clock.slept == []


def test_a_principal_scim_no_longer_lists_is_gone_and_raised_at_once() -> None:
    clock = FakeClock()
    call, calls = refusing(3, UNKNOWN_SECRETS)
    with pytest.raises(NotFound):
        until_known(call, recent=True, principal="sp", listed=lambda: False, clock=clock,
                    sleep=clock.sleep)
    assert calls[0] == 1


def test_the_retry_gives_up_at_its_deadline_with_a_clear_message() -> None:
    clock = FakeClock()
    call, _ = refusing(10_000, UNKNOWN_ACL)
    with pytest.raises(WaitTimeout) as err:
        until_known(call, recent=True, principal="service principal 42", listed=lambda: True,
                    timeout=120, clock=clock, sleep=clock.sleep)
    assert clock.now <= 120 and "service principal 42" in str(err.value)
    assert "does not exist" in str(err.value)  # the workspace's own refusal is shown


def test_recent_means_created_in_the_last_half_hour() -> None:
    now = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
    assert is_recent("2026-11-26T11:50:00Z", now)
    assert not is_recent("2026-11-26T11:00:00Z", now)
    for bad in (None, "", "yesterday", 12):
        assert not is_recent(bad, now)


def test_put_order_names_each_principals_highest_level_last() -> None:
    entries: list[Any] = [("user_name", "a", "CAN_MANAGE"), ("user_name", "a", "CAN_VIEW"),
                          ("group_name", "g", "CAN_QUERY")]
    ordered = put_order(entries)
    assert sorted(ordered) == sorted(entries)
    assert [e for e in ordered if e[1] == "a"][-1][2] == "CAN_MANAGE"
