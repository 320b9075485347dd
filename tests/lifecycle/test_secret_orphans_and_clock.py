"""Issue 21, the OAuth secret: no orphan left by a run that died (removed by the stack's sweep,
after the create), and rotation on the workspace's clock. Through the real provider process,
against the emulator (its admin path moves the workspace's clock, and every answer's Date
header follows it)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from components.providers.oauth_secret import (
    OAuthSecret,
    OAuthSecretProvider,
    OAuthSecretSweep,
    OAuthSecretSweepProvider,
    lifetime_seconds,
)
from testing.provider import Engine, ProviderCallError, ProviderProcess, State, provider_string
from tests.lifecycle.conftest import Target
from tests.lifecycle.test_lifecycle import DIFF_NONE, up_principal
from tests.lifecycle.test_principal_reliability import StderrMark
from tests.lifecycle.test_secret_reliability import DAY, calls, hand_made, secret_ids, secret_inputs

PROBE = "/.well-known/databricks-config"


def died_before_saving(engine: Engine, name: str = "secret") -> dict[str, Any]:
    """The run that made the secret was killed before its state was saved: state never knew it."""
    return engine.state.pop(engine.urn(OAuthSecret, name)).outputs


def sweep(engine: Engine, sp: dict[str, Any]) -> dict[str, Any]:
    """The stack's sweep, as the program declares it after the record: the live secret's id."""
    live = engine.outputs(OAuthSecret, "secret")["secret_id"]
    return engine.register(OAuthSecretSweep, OAuthSecretSweepProvider, "sweep", {
        "service_principal_id": sp["principal_id"], "live_secret_id": live,
        "principal_created_at": sp["created_at"], "after": []}).outputs


def test_an_orphan_of_a_run_that_died_is_removed_by_the_next_up_a_hand_made_one_is_left(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    sp = up_principal(engine, target)
    by_hand = hand_made(target, sp, 1)
    orphan = engine.register(OAuthSecret, OAuthSecretProvider, "secret",
                             secret_inputs(sp)).outputs["secret_id"]
    died_before_saving(engine)
    mark = StderrMark(target)
    out = engine.register(OAuthSecret, OAuthSecretProvider, "secret", secret_inputs(sp)).outputs
    # The create cannot tell an orphan from a secret state holds: it leaves every signed one.
    assert secret_ids(target, sp) == {*by_hand, orphan, out["secret_id"]}
    assert list(out["unmanaged_secret_ids"]) == by_hand  # the orphan is signed: the stack's
    swept = sweep(engine, sp)
    assert list(swept["removed_secret_ids"]) == [orphan]
    assert secret_ids(target, sp) == {*by_hand, out["secret_id"]}
    assert f"deleted OAuth secret {orphan}" in mark.new()
    # A refresh still warns about the hand-made one, and only it.
    state = engine.refresh(OAuthSecret, "secret")
    assert state is not None and list(state.outputs["unmanaged_secret_ids"]) == by_hand


def _cap_message(err: pytest.ExceptionInfo[ProviderCallError]) -> tuple[str, str]:
    """The cap error's parts: what it calls hand-made, and what it calls the stack's."""
    message = err.value.message
    assert "the most Databricks allows" in message and "Traceback" not in message
    assert "service-principal-secrets-proxy delete" in message and "pulumi up" in message
    hand = re.search(r"; ([^;]*) (?:is|are) not this stack's \(made by hand\)", message)
    ours = re.search(r"; ([^;:]*) (?:is|are) this stack's: [^;]*principal_secret_id", message)
    return (hand.group(1) if hand else ""), (ours.group(1) if ours else "")


def test_orphans_filling_the_cap_fail_the_create_before_it_writes_naming_them(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    sp = up_principal(engine, target)
    by_hand = hand_made(target, sp, 3)
    # Two runs died after their creates, as the provider sends them (the same lifetime).
    api = target.client().service_principal_secrets_proxy
    for _ in range(2):
        api.create(sp["principal_id"], lifetime=f"{lifetime_seconds(30)}s")
    orphans = sorted(secret_ids(target, sp) - set(by_hand))
    assert len(secret_ids(target, sp)) == 5  # the cap
    posts = len(calls(target, "POST"))
    with pytest.raises(ProviderCallError) as err:
        engine.register(OAuthSecret, OAuthSecretProvider, "secret", secret_inputs(sp))
    hand, ours = _cap_message(err)
    assert hand == ", ".join(sorted(by_hand)) and ours == ", ".join(orphans)
    assert len(calls(target, "POST")) == posts  # nothing written, nothing deleted
    assert not calls(target, "DELETE", end="")
    assert len(secret_ids(target, sp)) == 5
    # Once one is deleted as the message says, the create goes through and the sweep ends the rest.
    api.delete(sp["principal_id"], orphans[0])
    out = engine.register(OAuthSecret, OAuthSecretProvider, "secret", secret_inputs(sp)).outputs
    sweep(engine, sp)
    assert secret_ids(target, sp) == {*by_hand, out["secret_id"]}


def test_at_the_cap_a_rotation_fails_before_writing_and_names_the_secret_state_holds(
        target: Target, engine: Engine) -> None:
    """A create cannot tell the secret state holds from an orphan (after a failed rotation the
    live one is the newer): it deletes neither, and names both as the stack's."""
    target.needs_emulator()
    sp = up_principal(engine, target)
    old = engine.register(OAuthSecret, OAuthSecretProvider, "secret", secret_inputs(sp)).outputs
    sweep(engine, sp)
    by_hand = hand_made(target, sp, 2)
    api = target.client().service_principal_secrets_proxy
    for _ in range(2):  # two rotations that died after their creates
        target.emulator.advance_clock(60)
        api.create(sp["principal_id"], lifetime=f"{lifetime_seconds(30)}s")
    before = secret_ids(target, sp)
    assert len(before) == 5
    target.emulator.advance_clock(60)
    with pytest.raises(ProviderCallError) as err:
        engine.register(OAuthSecret, OAuthSecretProvider, "secret",
                        secret_inputs(sp, lifetime_days=40))
    hand, ours = _cap_message(err)
    assert hand == ", ".join(sorted(by_hand))
    assert ours == ", ".join(sorted(before - set(by_hand))) and old["secret_id"] in ours
    assert secret_ids(target, sp) == before  # the live secret, and everything else, kept
    assert engine.outputs(OAuthSecret, "secret")["secret_id"] == old["secret_id"]


def test_a_rotation_keeps_the_old_secret_until_the_replace_deletes_it(
        target: Target, engine: Engine) -> None:
    """The old secret is signed, and the create leaves every signed secret alone."""
    target.needs_emulator()
    sp = up_principal(engine, target)
    old = engine.register(OAuthSecret, OAuthSecretProvider, "secret",
                          secret_inputs(sp)).outputs["secret_id"]
    step = engine.register(OAuthSecret, OAuthSecretProvider, "secret",
                           secret_inputs(sp, lifetime_days=40))
    assert step.op == "replace"
    assert secret_ids(target, sp) == {step.outputs["secret_id"]}
    assert old not in step.outputs["unmanaged_secret_ids"]


def test_a_rotations_create_in_a_process_that_ran_no_diff_keeps_the_secret_state_holds(
        target: Target, engine: Engine, fresh: tuple[Engine, ProviderProcess]) -> None:
    """Diff is pure: nothing it sees is handed to a later create through process memory. A
    create in another provider process than the diff's (here one that ran nothing before)
    leaves the stack's old secret in place, and the sweep after it keeps that one too: only
    the replace's delete removes it, after Braintrust has switched."""
    sp = up_principal(engine, target)
    old = engine.register(OAuthSecret, OAuthSecretProvider, "secret", secret_inputs(sp)).outputs
    sweep(engine, sp)
    assert list(engine.diff(OAuthSecret, OAuthSecretProvider, "secret",
                            secret_inputs(sp, lifetime_days=40)).replaces) == ["lifetime_days"]
    other, proc = fresh
    urn = engine.urn(OAuthSecret, "secret")
    checked, _ = proc.check(urn, {}, {**secret_inputs(sp, lifetime_days=40),
                                      "__provider": provider_string(OAuthSecretProvider)})
    new_id, new = proc.create(urn, checked)
    assert secret_ids(target, sp) == {old["secret_id"], new["secret_id"]}
    engine.state[urn] = State("OAuthSecret", new_id, checked, new)
    swept = sweep(engine, sp)  # an update: the live secret changed
    assert list(swept["removed_secret_ids"]) == []
    assert secret_ids(target, sp) == {old["secret_id"], new["secret_id"]}
    proc.delete(old["secret_id"], urn, old)  # the replace's delete step
    assert secret_ids(target, sp) == {new["secret_id"]}


# ------------------------------------------------------------------ the workspace's clock


@pytest.fixture
def fresh(target: Target) -> Iterator[tuple[Engine, ProviderProcess]]:
    """A provider process of its own: it has not learnt the workspace's clock yet."""
    target.needs_emulator()
    proc = ProviderProcess()
    proc.configure({"workspace": {"host": target.host}, "databricks_token": target.token},
                   secret_keys=("databricks_token",))
    try:
        yield Engine(proc), proc
    finally:
        proc.close()


def stderr_of(proc: ProviderProcess) -> str:
    return proc.stderr()


def test_a_workspace_behind_this_machine_does_not_rotate_on_every_up(
        target: Target, fresh: tuple[Engine, ProviderProcess]) -> None:
    """Before issue 21, a machine 25 days ahead rotated a 30-day secret (window 7) on every up."""
    engine, proc = fresh
    target.emulator.set_clock_offset(-25 * DAY)
    sp = up_principal(engine, target)
    engine.register(OAuthSecret, OAuthSecretProvider, "secret", secret_inputs(sp))
    target.emulator.clear_requests()
    assert engine.diff(OAuthSecret, OAuthSecretProvider, "secret",
                       secret_inputs(sp)).changes == DIFF_NONE
    assert target.emulator.requests() == []  # the clock was learnt from the create's answers
    assert "25.0 days ahead of the workspace's" in stderr_of(proc)


def test_a_workspace_ahead_of_this_machine_rotates_on_time(
        target: Target, fresh: tuple[Engine, ProviderProcess]) -> None:
    """Before issue 21, a machine 25 days behind rotated 25 days late (after the expiry)."""
    engine, proc = fresh
    target.emulator.set_clock_offset(25 * DAY)
    sp = up_principal(engine, target)
    engine.register(OAuthSecret, OAuthSecretProvider, "secret", secret_inputs(sp))
    target.emulator.advance_clock(24 * DAY)  # 6 days left on the workspace's clock
    # A new provider process (the next `up`) learns the clock with one read.
    proc.close()
    again = ProviderProcess()
    again.configure({"workspace": {"host": target.host}, "databricks_token": target.token},
                    secret_keys=("databricks_token",))
    try:
        engine.proc = again
        target.emulator.clear_requests()
        diff = engine.diff(OAuthSecret, OAuthSecretProvider, "secret", secret_inputs(sp))
        assert list(diff.replaces) == ["expire_time"]
        assert [(r["method"], r["path"]) for r in target.emulator.requests()] == [("GET", PROBE)]
        assert "49.0 days behind the workspace's" in again.stderr()
        # A second diff in that process reads nothing.
        target.emulator.clear_requests()
        engine.diff(OAuthSecret, OAuthSecretProvider, "secret", secret_inputs(sp))
        assert target.emulator.requests() == []
    finally:
        again.close()


def test_a_no_op_diff_in_a_fresh_process_reads_the_clock_once_and_nothing_else(
        target: Target, engine: Engine, fresh: tuple[Engine, ProviderProcess]) -> None:
    sp = up_principal(engine, target)
    engine.register(OAuthSecret, OAuthSecretProvider, "secret", secret_inputs(sp))
    other, _ = fresh
    other.state = dict(engine.state)
    target.emulator.clear_requests()
    for _ in range(3):
        assert other.diff(OAuthSecret, OAuthSecretProvider, "secret",
                          secret_inputs(sp)).changes == DIFF_NONE
    assert [(r["method"], r["path"]) for r in target.emulator.requests()] == [("GET", PROBE)]
