"""A Braintrust record that is gone, whichever status Braintrust answers for it.

Braintrust's OpenAPI spec never lists 404: an unknown or deleted id may answer 404, 400 or 403
(the emulator's `braintrust_unknown_id` switch). Under each, publish, refresh and destroy work:
a record deleted out of band is dropped on refresh and published again, and a delete of a
record already gone succeeds. A 400 or 403 that is a real refusal (the record is there, or the
key may not even list) is never taken for "gone".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.braintrust import build_provider_config, oauth_secret
from components.providers.ai_secret import AiSecret, AiSecretProvider, record_hash
from testing.deployment import Deployment, provider_for
from testing.provider import Engine, ProviderCallError, ProviderProcess
from tests.lifecycle.conftest import ai_secret_names, braintrust_call

POSITIONS = ["404", "400", "403"]
ITEM = r"^/braintrust/v1/ai_secret/"
COLLECTION = r"^/braintrust/v1/ai_secret$"


def _inputs(emulator: Any, name: str = "databricks-gone") -> dict[str, Any]:
    record = build_provider_config(
        name=name, api_base=emulator.url, auth_type="service_principal_oauth",
        secret=oauth_secret("0f3c2a51-1111-2222-3333-444455556666", "dose-client-secret-gone-0123456789"),
        endpoints=[("bt-chat", "chat")]).to_record()
    return {"name": name, "record": record, "record_hash": record_hash(record),
            "api_url": emulator.braintrust_url, "org_name": None}


@pytest.fixture
def engine(braintrust_process: ProviderProcess, emulator) -> Engine:
    return Engine(braintrust_process)


def _lists(emulator: Any) -> int:
    return sum(1 for r in emulator.requests() if r["method"] == "GET" and r["path"].endswith("/ai_secret"))


@pytest.mark.parametrize("status", POSITIONS)
def test_publish_refresh_and_destroy_whichever_status_says_gone(engine, emulator, braintrust_process,
                                                               status) -> None:
    emulator.settings(braintrust_unknown_id=status)
    inputs = _inputs(emulator)
    outs = engine.register(AiSecret, AiSecretProvider, "bt", inputs).outputs
    assert engine.refresh(AiSecret, "bt") is not None  # live: kept, and no list needed
    assert _lists(emulator) == 0
    assert braintrust_call(emulator, "DELETE", f"/v1/ai_secret/{outs['secret_id']}")[0] == 200
    assert braintrust_call(emulator, "GET", f"/v1/ai_secret/{outs['secret_id']}")[0] == int(status)
    assert engine.refresh(AiSecret, "bt") is None  # gone: dropped
    assert _lists(emulator) == (0 if status == "404" else 1)  # 400/403 confirmed by a list by id
    step = engine.register(AiSecret, AiSecretProvider, "bt", inputs)
    assert step.op == "create" and ai_secret_names(emulator) == ["databricks-gone"]
    state = engine.state[engine.urn(AiSecret, "bt")]
    engine.destroy(AiSecret, "bt")
    assert ai_secret_names(emulator) == []
    braintrust_process.delete(state.id, engine.urn(AiSecret, "bt"), state.outputs)  # already gone: done


@pytest.mark.parametrize("status", POSITIONS)
def test_a_lost_answer_to_the_delete_is_done_whichever_status_says_gone(engine, emulator, status) -> None:
    emulator.settings(braintrust_unknown_id=status)
    engine.register(AiSecret, AiSecretProvider, "bt", _inputs(emulator))
    emulator.lose_answer("DELETE", ITEM)
    engine.destroy(AiSecret, "bt")
    deletes = [r["status"] for r in emulator.requests() if r["method"] == "DELETE"]
    assert deletes == [200, int(status)]  # the re-send found it gone
    assert ai_secret_names(emulator) == []


@pytest.mark.parametrize("status", [400, 403])
def test_a_refusal_of_a_record_that_is_there_is_an_error_not_gone(engine, emulator, status) -> None:
    emulator.settings(braintrust_unknown_id=str(status))
    engine.register(AiSecret, AiSecretProvider, "bt", _inputs(emulator))
    emulator.inject_fault("GET", ITEM, status, count=1)  # the list by id still shows the record
    with pytest.raises(ProviderCallError) as info:
        engine.refresh(AiSecret, "bt")
    assert "reading the AI secret failed" in info.value.message and f"HTTP {status}" in info.value.message
    assert engine.state.get(engine.urn(AiSecret, "bt")) is not None  # kept in state
    emulator.inject_fault("DELETE", ITEM, status, count=1)
    with pytest.raises(ProviderCallError) as info:
        engine.destroy(AiSecret, "bt")
    assert "deleting the AI secret failed" in info.value.message
    assert ai_secret_names(emulator) == ["databricks-gone"]  # never counted as deleted


@pytest.mark.parametrize("status", [400, 403])
def test_a_key_that_may_not_even_list_is_an_error_not_gone(engine, emulator, status) -> None:
    emulator.settings(braintrust_unknown_id=str(status))
    engine.register(AiSecret, AiSecretProvider, "bt", _inputs(emulator))
    emulator.inject_fault("GET", ITEM, status, count=1)
    emulator.inject_fault("GET", COLLECTION, 403, count=1)  # the confirming list is refused too
    with pytest.raises(ProviderCallError) as info:
        engine.refresh(AiSecret, "bt")
    assert f"HTTP {status}" in info.value.message
    emulator.inject_fault("DELETE", ITEM, status, count=1)
    emulator.inject_fault("GET", COLLECTION, 403, count=1)
    with pytest.raises(ProviderCallError):
        engine.destroy(AiSecret, "bt")
    assert ai_secret_names(emulator) == ["databricks-gone"]


def test_every_put_sends_every_managed_field_whatever_a_put_clears(engine, emulator) -> None:
    """Under the PUT switches' non-default positions (omitted fields kept, a null secret
    cleared), an update leaves exactly the record the stack declares."""
    emulator.settings(braintrust_put_omitted="keep", braintrust_put_null_secret="clear")
    first = engine.register(AiSecret, AiSecretProvider, "bt", _inputs(emulator)).outputs
    wider = _inputs(emulator)
    wider["record"]["metadata"]["models"] = []
    wider["record"]["metadata"]["customModels"] = {}
    wider["record_hash"] = record_hash(wider["record"])
    step = engine.register(AiSecret, AiSecretProvider, "bt", wider)
    assert step.op == "update"
    status, remote = braintrust_call(emulator, "GET", f"/v1/ai_secret/{first['secret_id']}")
    assert status == 200 and remote["metadata"] == wider["record"]["metadata"]
    assert remote["type"] == "databricks" and remote["preview_secret"]  # the secret is still there


# ------------------------------------------------------------------ the whole stack


@pytest.mark.parametrize("status", POSITIONS)
def test_the_local_stack_publishes_refreshes_and_destroys_under_each_unknown_id_status(
        emulator, tmp_path: Path, status: str) -> None:
    """The real program and every provider: `up` publishes; the record deleted out of band is
    dropped by refresh and published again by the next `up`; `destroy` leaves no record."""
    emulator.settings(braintrust_unknown_id=status)
    proc = provider_for(emulator)
    try:
        run = Deployment(emulator, tmp_path / "local.state.json", base="local", proc=proc)
        run.up()
        name = run.name(AiSecret)
        secret_id = run.outputs(AiSecret, name)["secret_id"]
        assert braintrust_call(emulator, "DELETE", f"/v1/ai_secret/{secret_id}")[0] == 200
        kept = run.refresh()
        assert kept[name] is False and all(v for k, v in kept.items() if k != name)
        steps = run.up()
        assert steps[name].op == "create"
        assert len(ai_secret_names(emulator)) == 1
        run.destroy()
        assert ai_secret_names(emulator) == []
    finally:
        proc.close()
