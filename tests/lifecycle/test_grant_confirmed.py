"""A grant state records is one the workspace holds (issue 21): every write confirmed by a read,
the workspace taken to govern a pay-per-token endpoint only on a 403 PERMISSION_DENIED after a
read of that same ACL, and every ACL write built from a read made right before it, after a
Retry-After or a 503 too. Through the real provider process, against the emulator."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from components.providers.grant import QueryGrant, QueryGrantProvider
from testing.provider import Engine, ProviderCallError
from tests.lifecycle.conftest import Target
from tests.lifecycle.test_grant_reliability import (
    PERMS,
    add_others,
    custom_endpoint,
    pay_per_token,
    writes,
)
from tests.lifecycle.test_lifecycle import direct_entries, grant_inputs, up_principal
from tests.lifecycle.test_principal_reliability import settings


def ours(sp: dict[str, Any], level: str = "CAN_QUERY") -> tuple[str, str, str]:
    return ("service_principal_name", sp["application_id"], level)


@pytest.mark.parametrize(("status", "code"), [(401, None), (403, "FORBIDDEN"), (429, None),
                                              (500, None), (503, None)])
def test_a_refusal_that_is_not_permission_denied_never_records_a_grant_governed_by_the_workspace(
        target: Target, engine: Engine, status: int, code: str | None) -> None:
    """Before issue 21 any 4xx on a `databricks-*` endpoint was taken for the workspace
    governing it: a 401 of an expired token recorded a grant that does not exist."""
    target.needs_emulator()
    ep = pay_per_token(target)
    sp = up_principal(engine, target)
    # Every write refused with that status: a 429/503 is retried until its Retry-After (an
    # hour) no longer fits the deadline, the others fail at once. Reads go through.
    for method in ("PATCH", "PUT"):
        target.emulator.inject_fault(method, PERMS, status, count=1000,
                                     retry_after=3600 if status in (429, 503) else None,
                                     error_code=code)
    with pytest.raises(ProviderCallError) as err:
        engine.register(QueryGrant, QueryGrantProvider, "grant", grant_inputs(ep, sp))
    # A 401 is about the deployer's token (a PAT here: nothing to mint again), never the ACL.
    assert ("refused the deployer's credentials" if status == 401
            else "granting query access failed") in err.value.message
    assert engine.urn(QueryGrant, "grant") not in engine.state  # nothing recorded
    target.emulator.admin("DELETE", "faults")
    # The next up writes the entry (nothing in state claims it exists).
    out = engine.register(QueryGrant, QueryGrantProvider, "grant", grant_inputs(ep, sp)).outputs
    assert out["governed_by"] == "acl"
    assert ours(sp) in direct_entries(target, ep["endpoint_id"])


def test_a_short_burst_of_429_and_503_on_the_write_is_ridden_out_and_confirmed(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    ep = pay_per_token(target)
    sp = up_principal(engine, target)
    target.emulator.inject_fault("PATCH", PERMS, 429, count=1, retry_after=0)
    target.emulator.inject_fault("PATCH", PERMS, 503, count=1)
    out = engine.register(QueryGrant, QueryGrantProvider, "grant", grant_inputs(ep, sp)).outputs
    assert out["governed_by"] == "acl"
    log = [(r["method"], r["status"]) for r in target.emulator.requests()
           if r["path"].startswith("/api/2.0/permissions/")]
    assert ours(sp) in direct_entries(target, ep["endpoint_id"])
    # Each attempt is preceded by a fresh read, and the write is confirmed by one.
    assert log[-7:] == [("GET", 200), ("PATCH", 429), ("GET", 200), ("PATCH", 503),
                        ("GET", 200), ("PATCH", 200), ("GET", 200)]


def test_the_workspace_governs_only_on_permission_denied_after_a_read_of_that_acl(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    settings(target, pay_per_token_acl="reject")
    ep = pay_per_token(target)
    sp = up_principal(engine, target)
    # The read itself refused: nothing was learnt about the endpoint, the step fails.
    target.emulator.inject_fault("GET", PERMS, 403, count=1000)
    with pytest.raises(ProviderCallError):
        engine.register(QueryGrant, QueryGrantProvider, "grant", grant_inputs(ep, sp))
    target.emulator.admin("DELETE", "faults")
    out = engine.register(QueryGrant, QueryGrantProvider, "grant", grant_inputs(ep, sp)).outputs
    assert out["governed_by"] == "workspace"
    log = [(r["method"], r["status"]) for r in target.emulator.requests()
           if r["path"].startswith("/api/2.0/permissions/")]
    assert log[-2:] == [("GET", 200), ("PATCH", 403)]


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_a_write_acknowledged_but_never_applied_is_caught_by_the_read_and_sent_again(
        target: Target, engine: Engine, method: str) -> None:
    target.needs_emulator()
    ep = custom_endpoint(target, engine)
    sp = up_principal(engine, target)
    if method == "PUT":  # our principal raised by hand: create swaps the level by PUT
        add_others(target, ep["endpoint_id"], [{"service_principal_name": sp["application_id"],
                                                "permission_level": "CAN_MANAGE"}])
    target.emulator.swallow(method, PERMS)
    target.emulator.clear_requests()
    out = engine.register(QueryGrant, QueryGrantProvider, "grant", grant_inputs(ep, sp)).outputs
    assert out["governed_by"] == "acl"
    assert ours(sp) in direct_entries(target, ep["endpoint_id"])
    assert [w["method"] for w in writes(target)] == [method, method]


def test_writes_never_confirmed_fail_the_step_and_record_nothing(target: Target,
                                                                 engine: Engine) -> None:
    target.needs_emulator()
    ep = custom_endpoint(target, engine)
    sp = up_principal(engine, target)
    target.emulator.swallow("PATCH", PERMS, count=1000)
    with pytest.raises(ProviderCallError) as err:
        engine.register(QueryGrant, QueryGrantProvider, "grant", grant_inputs(ep, sp))
    assert "reading the ACL back does not show it" in err.value.message
    assert engine.urn(QueryGrant, "grant") not in engine.state


def test_a_delete_swallowed_is_sent_again_until_a_read_shows_the_entry_gone(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    ep = custom_endpoint(target, engine)
    sp = up_principal(engine, target)
    engine.register(QueryGrant, QueryGrantProvider, "grant", grant_inputs(ep, sp))
    target.emulator.swallow("PUT", PERMS)
    engine.destroy(QueryGrant, "grant")
    assert ours(sp) not in direct_entries(target, ep["endpoint_id"])


def _wait_for_request(target: Target, method: str, status: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(r["method"] == method and r["status"] == status
               and r["path"].startswith("/api/2.0/permissions/")
               for r in target.emulator.requests()):
            return
        time.sleep(0.05)
    raise AssertionError(f"no {method} answered {status} within {timeout}s")


@pytest.mark.parametrize(("status", "retry_after"), [(429, 2), (503, 2)])
def test_an_entry_added_during_a_retry_after_survives_the_delete_on_a_shared_endpoint(
        target: Target, engine: Engine, status: int, retry_after: int) -> None:
    """Before issue 21 the PUT sent after a Retry-After carried the ACL read before the 429, and
    erased another stack's entry written during the pause."""
    target.needs_emulator()
    ep = pay_per_token(target)
    sp = up_principal(engine, target)
    engine.register(QueryGrant, QueryGrantProvider, "grant", grant_inputs(ep, sp))
    target.emulator.clear_requests()
    target.emulator.inject_fault("PUT", PERMS, status, count=1, retry_after=retry_after)
    failure: list[BaseException] = []

    def destroy() -> None:
        try:
            engine.destroy(QueryGrant, "grant")
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=destroy)
    worker.start()
    _wait_for_request(target, "PUT", status)
    other = ("user_name", "bob@example.com", "CAN_QUERY")
    add_others(target, ep["endpoint_id"], [{"user_name": other[1], "permission_level": other[2]}])
    worker.join(60)
    assert not worker.is_alive() and not failure
    after = direct_entries(target, ep["endpoint_id"])
    assert other in after and ours(sp) not in after
