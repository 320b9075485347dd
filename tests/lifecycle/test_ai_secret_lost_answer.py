"""AiSecret writes whose answer is lost: the create is a PUT upsert by name, so sending it again
makes no second record; a delete sent again finds nothing and succeeds."""

from __future__ import annotations

import pytest

from components.providers.ai_secret import AiSecret, AiSecretProvider
from tests.lifecycle.harness import Engine, ProviderProcess
from tests.lifecycle.test_ai_secret import _bt, _inputs, _names, _record
from tests.lifecycle.test_ai_secret import proc as proc  # the module's provider process, a fixture


@pytest.fixture
def bt(proc: ProviderProcess, emulator) -> Engine:
    return Engine(proc)


def _lose(emulator, method: str, path: str) -> None:
    emulator.admin("POST", "faults", {"kind": "lost-answer", "method": method, "path": path,
                                      "count": 1})


def test_a_lost_answer_to_the_create_makes_one_record_recorded_as_it_is(bt: Engine, emulator) -> None:
    record = _record(emulator.url)
    _lose(emulator, "*", r"^/braintrust/v1/ai_secret$")
    step = bt.register(AiSecret, AiSecretProvider, "bt", _inputs(emulator, record))
    assert step.op == "create"
    assert _names(emulator) == [record["name"]]
    status, remote = _bt(emulator, "GET", f"/v1/ai_secret/{step.outputs['secret_id']}")
    assert status == 200 and remote["name"] == record["name"]
    assert remote["metadata"] == record["metadata"]
    lost = [r for r in emulator.requests() if r.get("lost")]
    assert len(lost) == 1  # the fault did fire


def test_a_lost_answer_to_the_delete_still_deletes_once(bt: Engine, emulator) -> None:
    record = _record(emulator.url)
    step = bt.register(AiSecret, AiSecretProvider, "bt", _inputs(emulator, record))
    _lose(emulator, "DELETE", r"^/braintrust/v1/ai_secret/")
    bt.destroy(AiSecret, "bt")
    assert _names(emulator) == []
    assert _bt(emulator, "GET", f"/v1/ai_secret/{step.outputs['secret_id']}")[0] == 404
