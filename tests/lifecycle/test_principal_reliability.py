"""The service principal through the real provider process: lost answers on its create and
delete, a workspace that drops externalId, and a principal still propagating after its create.
Against the emulator only (its admin path plays the faults and switches)."""

from __future__ import annotations

from typing import Any

import pytest

from components.providers.principal import ServicePrincipal, ServicePrincipalProvider
from testing.provider import Engine, ProviderCallError
from tests.lifecycle.conftest import Target
from tests.lifecycle.test_lifecycle import DIFF_NONE, up_principal

SCIM_CREATE = r"^/api/2\.0/preview/scim/v2/ServicePrincipals$"
SCIM_ONE = r"^/api/2\.0/preview/scim/v2/ServicePrincipals/\d+$"
MARKER = "databricks-braintrust/lifecycle"


def principals(target: Target) -> list[Any]:
    """Every principal of the test's display name, as an admin sees them."""
    name = target.name("braintrust-lc")
    return [sp for sp in target.client().service_principals.list(
        filter=f'displayName eq "{name}"')]


def posts(target: Target, pattern_end: str) -> list[dict[str, Any]]:
    return [r for r in target.emulator.requests()
            if r["method"] == "POST" and r["path"].endswith(pattern_end)]


def settings(target: Target, **values: Any) -> None:
    target.emulator.admin("POST", "settings", values)


class StderrMark:
    """What the provider process printed since this mark (its stderr is shared by the session)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.start = len(target.proc.stderr())

    def new(self) -> str:
        return self.target.proc.stderr()[self.start:]


@pytest.mark.parametrize("lost", [1, 3])
def test_lost_answers_to_the_principal_create_leave_exactly_one_principal(
        target: Target, engine: Engine, lost: int) -> None:
    target.needs_emulator()
    target.emulator.lose_answer("POST", SCIM_CREATE, count=lost)
    sp = up_principal(engine, target)
    found = principals(target)
    assert [str(p.id) for p in found] == [sp["principal_id"]]
    assert found[0].application_id == sp["application_id"]
    # The create is never re-sent blindly: the lost attempt had made it, and it was kept.
    assert len(posts(target, "/ServicePrincipals")) == 1
    # State equals the workspace: a second up changes nothing.
    assert engine.register(ServicePrincipal, ServicePrincipalProvider, "principal", {
        "display_name": target.name("braintrust-lc"), "external_id": MARKER,
        "entitlements": []}).op == "same"
    state = engine.refresh(ServicePrincipal, "principal")
    assert state is not None and state.id == sp["principal_id"]


def test_lost_answer_to_the_principal_delete_still_deletes_it(target: Target,
                                                              engine: Engine) -> None:
    target.needs_emulator()
    up_principal(engine, target)
    target.emulator.lose_answer("DELETE", SCIM_ONE)
    engine.destroy(ServicePrincipal, "principal")
    assert principals(target) == []


def test_a_principal_delete_acknowledged_but_never_applied_is_sent_again_until_it_is_gone(
        target: Target, engine: Engine) -> None:
    """Before, destroy ended on the 200 alone and state forgot a principal the workspace still
    held (found by an outside fault drive of `destroy` under swallowed answers)."""
    target.needs_emulator()
    up_principal(engine, target)
    target.emulator.swallow("DELETE", SCIM_ONE)
    engine.destroy(ServicePrincipal, "principal")
    assert principals(target) == []


def test_principal_deletes_never_applied_fail_the_step_saying_so(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    up_principal(engine, target)
    target.emulator.swallow("DELETE", SCIM_ONE, count=3)
    with pytest.raises(ProviderCallError) as err:
        engine.destroy(ServicePrincipal, "principal")
    assert "service principal not deleted" in err.value.message
    assert len(principals(target)) == 1


def test_a_rename_acknowledged_but_never_applied_is_sent_again_until_the_workspace_shows_it(
        target: Target, engine: Engine) -> None:
    """Before, the rename ended on the 200 alone: state named the principal as the workspace
    did not, and every later `up` found nothing to do (found by an outside fault drive)."""
    target.needs_emulator()
    sp = up_principal(engine, target)
    target.emulator.swallow("PATCH", SCIM_ONE)
    renamed = target.name("braintrust-lc-renamed")
    engine.register(ServicePrincipal, ServicePrincipalProvider, "principal", {
        "display_name": renamed, "external_id": "databricks-braintrust/lifecycle",
        "entitlements": []})
    assert target.client().service_principals.get(sp["principal_id"]).display_name == renamed


def test_principal_without_external_id_is_never_adopted_a_new_one_is_made_with_a_warning(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    w = target.client()
    other = w.service_principals.create(display_name=target.name("braintrust-lc"))
    mark = StderrMark(target)
    sp = up_principal(engine, target)
    assert sp["principal_id"] != str(other.id)
    assert {str(p.id) for p in principals(target)} == {sp["principal_id"], str(other.id)}
    assert str(other.id) in mark.new() and "warning" in mark.new()
    assert sp["not_adopted_ids"] == [str(other.id)]  # also in state: a CLI may hide the log


# ------------------------------------------------------------------ scim_external_id: drop


def test_with_external_id_dropped_a_crash_that_lost_state_makes_a_new_principal_and_warns(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    settings(target, scim_external_id="drop")
    first = up_principal(engine, target)
    # The state is lost (a crash before the engine saved it): the create is sent again.
    mark = StderrMark(target)
    second = up_principal(Engine(target.proc), target)
    assert second["principal_id"] != first["principal_id"]
    assert first["principal_id"] in mark.new()  # the unprovable one is named, and left alone
    assert second["not_adopted_ids"] == [first["principal_id"]]
    assert {str(p.id) for p in principals(target)} == {first["principal_id"],
                                                      second["principal_id"]}


def test_with_external_id_dropped_a_lost_answer_still_leaves_exactly_one_principal(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    settings(target, scim_external_id="drop")
    target.emulator.lose_answer("POST", SCIM_CREATE, count=2)
    sp = up_principal(engine, target)
    assert [str(p.id) for p in principals(target)] == [sp["principal_id"]]


def test_with_external_id_dropped_refresh_shows_no_perpetual_drift(target: Target,
                                                                   engine: Engine) -> None:
    target.needs_emulator()
    settings(target, scim_external_id="drop")
    sp = up_principal(engine, target)
    assert target.client().service_principals.get(sp["principal_id"]).external_id is None
    for _ in range(2):
        state = engine.refresh(ServicePrincipal, "principal")
        assert state is not None and state.outputs["external_id"] == MARKER
        diff = engine.diff(ServicePrincipal, ServicePrincipalProvider, "principal", {
            "display_name": target.name("braintrust-lc"), "external_id": MARKER,
            "entitlements": []})
        assert diff.changes == DIFF_NONE


# ------------------------------------------------------------------ propagation_delay


def test_refresh_inside_the_propagation_window_keeps_the_principal_and_its_name(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    settings(target, propagation_delay=3600)  # the emulator's clock: the window stays open
    sp = up_principal(engine, target)
    with pytest.raises(Exception, match="not found"):
        target.client().service_principals.get(sp["principal_id"])  # as the provider meets it
    state = engine.refresh(ServicePrincipal, "principal")
    # SCIM get answers 404 and the list omits displayName: neither is a deletion or a rename.
    assert state is not None and state.id == sp["principal_id"]
    assert state.outputs["display_name"] == target.name("braintrust-lc")
    assert state.outputs["application_id"] == sp["application_id"]
    assert engine.diff(ServicePrincipal, ServicePrincipalProvider, "principal", {
        "display_name": target.name("braintrust-lc"), "external_id": MARKER,
        "entitlements": []}).changes == DIFF_NONE
    # After the window the principal reads as usual; deleted, refresh drops it.
    target.emulator.admin("POST", "clock", {"advance_seconds": 3601})
    assert engine.refresh(ServicePrincipal, "principal") is not None
    target.client().service_principals.delete(sp["principal_id"])
    assert engine.refresh(ServicePrincipal, "principal") is None


def test_lost_answer_inside_the_propagation_window_leaves_exactly_one_principal(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    settings(target, propagation_delay=3600)
    target.emulator.lose_answer("POST", SCIM_CREATE)
    sp = up_principal(engine, target)
    assert [str(p.id) for p in principals(target)] == [sp["principal_id"]]
    engine.destroy(ServicePrincipal, "principal")
    assert principals(target) == []


def test_of_two_principals_with_our_marker_the_one_in_use_is_adopted_never_the_orphan(
        target: Target, engine: Engine) -> None:
    """An older version could leave an orphan (lower id) beside the principal state held: the
    orphan never got a secret, the principal in use did."""
    target.needs_emulator()
    w = target.client()
    orphan = w.service_principals.create(display_name=target.name("braintrust-lc"),
                                         external_id=MARKER)
    in_use = w.service_principals.create(display_name=target.name("braintrust-lc"),
                                         external_id=MARKER)
    w.service_principal_secrets_proxy.create(str(in_use.id), lifetime="86400s")
    mark = StderrMark(target)
    sp = up_principal(engine, target)
    assert sp["principal_id"] == str(in_use.id)
    assert str(orphan.id) in mark.new()  # named in a warning, left alone
    assert {str(p.id) for p in principals(target)} == {str(orphan.id), str(in_use.id)}
