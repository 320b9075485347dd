"""AiSecret writes whose answer is lost: the create is a PUT upsert by name, so sending it again
makes no second record; a delete sent again finds nothing and succeeds."""

from __future__ import annotations

from typing import Any

import pytest

from components.braintrust import build_provider_config, oauth_secret
from components.providers.ai_secret import AiSecret, AiSecretProvider, record_hash
from testing.provider import Engine, ProviderCallError, ProviderProcess
from tests.lifecycle.conftest import ai_secret_names, braintrust_call


def _record(api_base: str) -> dict[str, Any]:
    cfg = build_provider_config(
        name="databricks-lost", api_base=api_base, auth_type="service_principal_oauth",
        secret=oauth_secret("0f3c2a51-1111-2222-3333-444455556666",
                            "dose-client-secret-lost-0123456789"),
        endpoints=[("bt-chat", "chat")])
    return cfg.to_record()


def _inputs(emulator, record: dict[str, Any]) -> dict[str, Any]:
    return {"name": record["name"], "record": record, "record_hash": record_hash(record),
            "api_url": emulator.braintrust_url, "org_name": None}


@pytest.fixture
def bt(braintrust_process: ProviderProcess, emulator) -> Engine:
    return Engine(braintrust_process)


def _lose(emulator, method: str, path: str) -> None:
    emulator.admin("POST", "faults", {"kind": "lost-answer", "method": method, "path": path,
                                      "count": 1})


def test_a_lost_answer_to_the_create_makes_one_record_recorded_as_it_is(bt: Engine, emulator) -> None:
    record = _record(emulator.url)
    _lose(emulator, "*", r"^/braintrust/v1/ai_secret$")
    step = bt.register(AiSecret, AiSecretProvider, "bt", _inputs(emulator, record))
    assert step.op == "create"
    assert ai_secret_names(emulator) == [record["name"]]
    status, remote = braintrust_call(emulator, "GET", f"/v1/ai_secret/{step.outputs['secret_id']}")
    assert status == 200 and remote["name"] == record["name"]
    assert remote["metadata"] == record["metadata"]
    lost = [r for r in emulator.requests() if r.get("lost")]
    assert len(lost) == 1  # the fault did fire


def test_a_lost_answer_to_the_delete_still_deletes_once(bt: Engine, emulator) -> None:
    record = _record(emulator.url)
    step = bt.register(AiSecret, AiSecretProvider, "bt", _inputs(emulator, record))
    _lose(emulator, "DELETE", r"^/braintrust/v1/ai_secret/")
    bt.destroy(AiSecret, "bt")
    assert ai_secret_names(emulator) == []
    assert braintrust_call(emulator, "GET", f"/v1/ai_secret/{step.outputs['secret_id']}")[0] == 404


def _swallow(emulator, count: int) -> None:
    emulator.admin("POST", "faults", {"kind": "swallowed", "method": "DELETE",
                                      "path": r"^/braintrust/v1/ai_secret/", "count": count})


def test_a_delete_acknowledged_but_never_applied_is_sent_again_until_the_record_is_gone(
        bt: Engine, emulator) -> None:
    """Before, destroy ended on the 200 alone and left the record (and the principal's secret
    in it) in Braintrust with nothing in state to find it (found by an outside fault drive)."""
    bt.register(AiSecret, AiSecretProvider, "bt", _inputs(emulator, _record(emulator.url)))
    _swallow(emulator, 1)
    bt.destroy(AiSecret, "bt")
    assert ai_secret_names(emulator) == []


def test_deletes_never_applied_fail_the_step_saying_so(bt: Engine, emulator) -> None:
    record = _record(emulator.url)
    bt.register(AiSecret, AiSecretProvider, "bt", _inputs(emulator, record))
    _swallow(emulator, 3)
    with pytest.raises(ProviderCallError) as err:
        bt.destroy(AiSecret, "bt")
    assert "AI secret not deleted" in err.value.message and "destroy" in err.value.message
    assert ai_secret_names(emulator) == [record["name"]]
