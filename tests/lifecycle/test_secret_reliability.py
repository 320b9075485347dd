"""The OAuth secret through the real provider process: lost answers on its create and delete
(also during a rotation), secrets the stack does not know, the five-secret cap, and a principal
the workspace does not know yet. Against the emulator only (its admin path plays them)."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient

from components.providers.oauth_secret import OAuthSecret, OAuthSecretProvider
from testing.provider import Engine, ProviderCallError
from tests.lifecycle.conftest import Target
from tests.lifecycle.test_lifecycle import up_principal
from tests.lifecycle.test_principal_reliability import StderrMark, settings

SECRETS = r"^/api/2\.0/accounts/servicePrincipals/\d+/credentials/secrets"
DAY = 86400


def secret_inputs(sp: dict[str, Any], **over: Any) -> dict[str, Any]:
    return {"service_principal_id": sp["principal_id"], "application_id": sp["application_id"],
            "lifetime_days": 30, "rotate_before_days": 7, "scopes": ["all-apis"], **over}


def secret_ids(target: Target, sp: dict[str, Any]) -> set[str]:
    return {str(s.id) for s in
            target.client().service_principal_secrets_proxy.list(sp["principal_id"])}


def hand_made(target: Target, sp: dict[str, Any], n: int) -> list[str]:
    """Secrets somebody made by hand on the stack's principal."""
    api = target.client().service_principal_secrets_proxy
    return [str(api.create(sp["principal_id"], lifetime=f"{90 * DAY}s").id) for _ in range(n)]


def expire(target: Target, engine: Engine) -> None:
    """The stack's secret expires on the workspace's clock; refresh sees it: rotation is due."""
    target.emulator.admin("POST", "clock", {"advance_seconds": 31 * DAY})
    state = engine.refresh(OAuthSecret, "secret")
    assert state is not None and state.outputs["status"] != "ACTIVE"


def calls(target: Target, method: str, end: str = "$") -> list[dict[str, Any]]:
    pattern = re.compile(SECRETS + end)
    return [r for r in target.emulator.requests()
            if r["method"] == method and pattern.search(r["path"])]


@pytest.mark.parametrize("lost", [1, 2])
def test_lost_answers_to_the_secret_create_leave_no_stray_secret(target: Target, engine: Engine,
                                                                 lost: int) -> None:
    target.needs_emulator()
    sp = up_principal(engine, target)
    target.emulator.lose_answer("POST", SECRETS + "$", count=lost)
    mark = StderrMark(target)
    out = engine.register(OAuthSecret, OAuthSecretProvider, "secret", secret_inputs(sp)).outputs
    # Each lost attempt made a secret whose value nobody has: deleted, its id logged.
    assert secret_ids(target, sp) == {out["secret_id"]}
    assert len(calls(target, "POST")) == lost + 1
    assert len(calls(target, "DELETE", "/[^/]+$")) == lost
    assert mark.new().count("deleted OAuth secret") == lost
    assert out["client_secret"] not in target.proc.stderr()
    # The secret kept works: the emulator mints a token with it.
    me = WorkspaceClient(host=target.host, client_id=out["client_id"],
                         client_secret=out["client_secret"]).current_user.me()
    assert me.user_name == sp["application_id"]


def test_lost_answer_to_the_secret_delete_still_deletes_it(target: Target,
                                                           engine: Engine) -> None:
    target.needs_emulator()
    sp = up_principal(engine, target)
    engine.register(OAuthSecret, OAuthSecretProvider, "secret", secret_inputs(sp))
    target.emulator.lose_answer("DELETE", SECRETS + "/[^/]+$")
    engine.destroy(OAuthSecret, "secret")
    assert secret_ids(target, sp) == set()


def test_a_secret_delete_acknowledged_but_never_applied_is_sent_again_until_it_is_gone(
        target: Target, engine: Engine) -> None:
    """Before, the delete ended on the 200 alone: an active secret (one of the principal's
    five) outlived its state (found by an outside fault drive)."""
    target.needs_emulator()
    sp = up_principal(engine, target)
    engine.register(OAuthSecret, OAuthSecretProvider, "secret", secret_inputs(sp))
    target.emulator.swallow("DELETE", SECRETS + "/[^/]+$")
    engine.destroy(OAuthSecret, "secret")
    assert secret_ids(target, sp) == set()


def test_secret_deletes_never_applied_fail_the_step_saying_so(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    sp = up_principal(engine, target)
    engine.register(OAuthSecret, OAuthSecretProvider, "secret", secret_inputs(sp))
    target.emulator.swallow("DELETE", SECRETS + "/[^/]+$", count=3)
    with pytest.raises(ProviderCallError) as err:
        engine.destroy(OAuthSecret, "secret")
    assert "OAuth secret not deleted" in err.value.message
    assert len(secret_ids(target, sp)) == 1


def test_rotation_with_a_lost_answer_leaves_only_the_new_secret_the_old_one_goes_last(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    sp = up_principal(engine, target)
    old = engine.register(OAuthSecret, OAuthSecretProvider, "secret", secret_inputs(sp)).outputs
    expire(target, engine)
    target.emulator.admin("DELETE", "requests")
    target.emulator.lose_answer("POST", SECRETS + "$")
    step = engine.register(OAuthSecret, OAuthSecretProvider, "secret", secret_inputs(sp))
    assert step.op == "replace"
    assert secret_ids(target, sp) == {step.outputs["secret_id"]}
    assert step.outputs["unmanaged_secret_ids"] == []  # the old one is the stack's own
    log = target.emulator.requests()
    old_deletes = [i for i, r in enumerate(log)
                   if r["method"] == "DELETE" and r["path"].endswith("/" + old["secret_id"])]
    last_post = max(i for i, r in enumerate(log)
                    if r["method"] == "POST" and r["path"].endswith("/secrets"))
    # The create never touched the old secret: the replace's delete step removed it, once.
    assert len(old_deletes) == 1 and old_deletes[0] > last_post


def test_a_hand_made_secret_is_left_alone_and_refresh_warns_with_its_id(target: Target,
                                                                        engine: Engine) -> None:
    target.needs_emulator()
    sp = up_principal(engine, target)
    (by_hand,) = hand_made(target, sp, 1)
    target.emulator.lose_answer("POST", SECRETS + "$")  # the create cleans up after itself...
    out = engine.register(OAuthSecret, OAuthSecretProvider, "secret", secret_inputs(sp)).outputs
    assert secret_ids(target, sp) == {by_hand, out["secret_id"]}  # ...and only after itself
    assert out["unmanaged_secret_ids"] == [by_hand]
    mark = StderrMark(target)
    state = engine.refresh(OAuthSecret, "secret")
    assert state is not None and state.outputs["unmanaged_secret_ids"] == [by_hand]
    warning = [line for line in mark.new().splitlines() if by_hand in line]
    assert warning and warning[0].startswith("warning")
    assert secret_ids(target, sp) == {by_hand, out["secret_id"]}  # refresh only reports
    engine.destroy(OAuthSecret, "secret")
    assert secret_ids(target, sp) == {by_hand}


def test_rotation_never_fails_on_the_cap_because_of_the_stacks_own_secrets(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    sp = up_principal(engine, target)
    engine.register(OAuthSecret, OAuthSecretProvider, "secret", secret_inputs(sp))
    others = hand_made(target, sp, 3)  # with ours and the new one during rotation: five
    for _ in range(3):  # rotation after rotation: the stack never holds more than two
        expire(target, engine)
        step = engine.register(OAuthSecret, OAuthSecretProvider, "secret", secret_inputs(sp))
        assert step.op == "replace"
        assert secret_ids(target, sp) == {*others, step.outputs["secret_id"]}
        assert step.outputs["unmanaged_secret_ids"] == sorted(others)


def test_cap_reached_by_secrets_the_stack_does_not_know_names_them_and_the_fix(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    sp = up_principal(engine, target)
    ours = engine.register(OAuthSecret, OAuthSecretProvider, "secret", secret_inputs(sp)).outputs
    others = hand_made(target, sp, 4)
    expire(target, engine)
    posts_before = len(calls(target, "POST"))
    with pytest.raises(ProviderCallError) as err:
        engine.register(OAuthSecret, OAuthSecretProvider, "secret", secret_inputs(sp))
    message = err.value.message
    # the hand-made ones as not the stack's; the stack's own as the one state holds
    hand = message.split("not this stack's (made by hand)")[0]
    assert all(i in hand for i in others) and ours["secret_id"] not in hand
    assert f"{ours['secret_id']} is this stack's" in message and "principal_secret_id" in message
    assert "five" in message or "5 OAuth secrets" in message
    assert "delete" in message and "pulumi up" in message
    assert "Traceback" not in message
    assert len(calls(target, "POST")) == posts_before  # refused before writing anything
    assert secret_ids(target, sp) == {ours["secret_id"], *others}


# ------------------------------------------------------------------ propagation_delay


def test_secret_create_waits_for_a_principal_the_workspace_does_not_know_yet(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    settings(target, propagation_delay=1.5)  # real seconds: the emulator's clock runs
    sp = up_principal(engine, target)
    out = engine.register(OAuthSecret, OAuthSecretProvider, "secret", secret_inputs(sp)).outputs
    assert secret_ids(target, sp) == {out["secret_id"]}
    refused = [r for r in calls(target, "GET") + calls(target, "POST") if r["status"] == 404]
    assert refused  # the refusal did happen, and was ridden out


def test_secret_refused_for_a_principal_that_is_not_new_is_reported_at_once(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    settings(target, propagation_delay=3600)
    sp = up_principal(engine, target)
    with pytest.raises(ProviderCallError) as err:
        engine.register(OAuthSecret, OAuthSecretProvider, "secret",
                        secret_inputs(sp, principal_created_at="2020-01-01T00:00:00Z"))
    assert sp["principal_id"] in err.value.message.splitlines()[0]
    assert len(calls(target, "GET")) == 1  # no retry for an old principal


def test_refresh_while_the_secrets_api_does_not_know_the_principal_keeps_the_secret(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    sp = up_principal(engine, target)
    out = engine.register(OAuthSecret, OAuthSecretProvider, "secret", secret_inputs(sp)).outputs
    settings(target, propagation_delay=3600)  # the principal is "new" again to that API
    state = engine.refresh(OAuthSecret, "secret")
    assert state is not None and state.id == out["secret_id"]
    settings(target, propagation_delay=0)
    target.client().service_principals.delete(sp["principal_id"])
    assert engine.refresh(OAuthSecret, "secret") is None  # gone with its principal


def test_secret_delete_while_the_secrets_api_does_not_know_the_principal_waits_for_it(
        target: Target, engine: Engine) -> None:
    """A 404 for a principal not known yet is not "already deleted": the secret must go."""
    target.needs_emulator()
    started = time.time()
    sp = up_principal(engine, target)
    engine.register(OAuthSecret, OAuthSecretProvider, "secret", secret_inputs(sp))
    # The window reopens for 1.5 s from now (the emulator counts it from the creation).
    settings(target, propagation_delay=time.time() - started + 1.5)
    engine.destroy(OAuthSecret, "secret")
    settings(target, propagation_delay=0)
    assert secret_ids(target, sp) == set()


def test_secret_delete_after_its_principal_was_deleted_is_done_at_once(target: Target,
                                                                       engine: Engine) -> None:
    """A principal SCIM no longer lists is gone, however new: no waiting for it to appear."""
    target.needs_emulator()
    sp = up_principal(engine, target)
    engine.register(OAuthSecret, OAuthSecretProvider, "secret", secret_inputs(sp))
    target.client().service_principals.delete(sp["principal_id"])
    engine.destroy(OAuthSecret, "secret")
    assert len(calls(target, "DELETE", "/[^/]+$")) == 1
