"""AiSecret through the real provider process against the emulator's Braintrust API.

One provider process per module (as one `pulumi up` has one), configured with the secret
stack config `braintrust_api_key` exactly as the engine sends it; a second process with a
wrong key for the refusal test (a process configures each provider once).
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pulumi.runtime import rpc

from components.args import AI_SECRET
from components.braintrust import REDACTED, build_provider_config, oauth_secret
from components.providers.ai_secret import AiSecret, AiSecretProvider, record_hash
from testing.provider import Engine, ProviderCallError, ProviderProcess
from tests.lifecycle.conftest import ai_secret_names, braintrust_call
from tests.program.conftest import STACKS, run_program

CLIENT_SECRET = "dose-client-secret-0123456789abcdef"
ROTATED_SECRET = "dose-rotated-secret-fedcba9876543210"
PAT = "dapi-lifecycle-test-pat-not-a-real-token"


def _record(api_base: str, client_secret: str = CLIENT_SECRET, models: tuple[str, ...] = ("bt-chat",),
            name: str = "databricks-lc") -> dict[str, Any]:
    cfg = build_provider_config(
        name=name, api_base=api_base, auth_type="service_principal_oauth",
        secret=oauth_secret("0f3c2a51-1111-2222-3333-444455556666", client_secret),
        endpoints=[(m, "chat") for m in models])
    return cfg.to_record()


def _inputs(emulator, record: dict[str, Any]) -> dict[str, Any]:
    return {"name": record["name"], "record": record, "record_hash": record_hash(record),
            "api_url": emulator.braintrust_url, "org_name": None}


@pytest.fixture
def engine(braintrust_process: ProviderProcess, emulator) -> Engine:
    return Engine(braintrust_process)


def test_create_publishes_the_record_and_returns_braintrust_ids(engine, emulator) -> None:
    record = _record(emulator.url)
    step = engine.register(AiSecret, AiSecretProvider, "bt", _inputs(emulator, record))
    assert step.op == "create"
    outs = step.outputs
    status, remote = braintrust_call(emulator, "GET", f"/v1/ai_secret/{outs['secret_id']}")
    assert status == 200
    assert remote["name"] == "databricks-lc"
    assert remote["metadata"] == record["metadata"]
    assert outs["preview_secret"] == remote["preview_secret"]
    assert outs["updated_at"] == remote["updated_at"]
    assert CLIENT_SECRET not in json.dumps(remote)


def test_same_inputs_are_a_no_op_and_send_nothing(engine, emulator) -> None:
    inputs = _inputs(emulator, _record(emulator.url))
    engine.register(AiSecret, AiSecretProvider, "bt", inputs)
    before = len(emulator.requests())
    step = engine.register(AiSecret, AiSecretProvider, "bt", inputs)
    assert step.op == "same"
    assert len(emulator.requests()) == before


def test_rotated_secret_publishes_again_in_place(engine, emulator) -> None:
    first = engine.register(AiSecret, AiSecretProvider, "bt", _inputs(emulator, _record(emulator.url)))
    rotated = _record(emulator.url, client_secret=ROTATED_SECRET)
    step = engine.register(AiSecret, AiSecretProvider, "bt", _inputs(emulator, rotated))
    assert step.op == "update"
    assert list(step.diff.replaces) == []
    assert step.outputs["secret_id"] == first.outputs["secret_id"]
    puts = [r for r in emulator.requests() if r["method"] == "PUT"]
    assert len(puts) == 2


def test_added_endpoint_publishes_the_new_model_list(engine, emulator) -> None:
    engine.register(AiSecret, AiSecretProvider, "bt", _inputs(emulator, _record(emulator.url)))
    wider = _record(emulator.url, models=("bt-chat", "bt-other"))
    step = engine.register(AiSecret, AiSecretProvider, "bt", _inputs(emulator, wider))
    assert step.op == "update"
    remote = braintrust_call(emulator, "GET", f"/v1/ai_secret/{step.outputs['secret_id']}")[1]
    assert remote["metadata"]["models"] == ["bt-chat", "bt-other"]


def test_rename_creates_the_new_record_then_deletes_the_old(engine, emulator) -> None:
    engine.register(AiSecret, AiSecretProvider, "bt", _inputs(emulator, _record(emulator.url)))
    renamed = _record(emulator.url, name="databricks-lc-2")
    step = engine.register(AiSecret, AiSecretProvider, "bt", _inputs(emulator, renamed))
    assert step.op == "replace"
    assert not step.diff.deleteBeforeReplace
    assert ai_secret_names(emulator) == ["databricks-lc-2"]


def test_record_deleted_out_of_band_is_found_by_refresh_and_published_again(engine, emulator) -> None:
    inputs = _inputs(emulator, _record(emulator.url))
    outs = engine.register(AiSecret, AiSecretProvider, "bt", inputs).outputs
    assert braintrust_call(emulator, "DELETE", f"/v1/ai_secret/{outs['secret_id']}")[0] == 200
    assert engine.refresh(AiSecret, "bt") is None
    step = engine.register(AiSecret, AiSecretProvider, "bt", inputs)
    assert step.op == "create"
    assert ai_secret_names(emulator) == ["databricks-lc"]


def test_refresh_of_a_live_record_keeps_it_and_changes_nothing(engine, emulator) -> None:
    inputs = _inputs(emulator, _record(emulator.url))
    engine.register(AiSecret, AiSecretProvider, "bt", inputs)
    assert engine.refresh(AiSecret, "bt") is not None
    assert engine.register(AiSecret, AiSecretProvider, "bt", inputs).op == "same"


def test_delete_twice_is_tolerated(engine, emulator, braintrust_process) -> None:
    engine.register(AiSecret, AiSecretProvider, "bt", _inputs(emulator, _record(emulator.url)))
    state = engine.state[engine.urn(AiSecret, "bt")]
    engine.destroy(AiSecret, "bt")
    assert ai_secret_names(emulator) == []
    braintrust_process.delete(state.id, engine.urn(AiSecret, "bt"), state.outputs)  # already gone: no error


def test_record_stays_out_of_the_provider_log(engine, emulator, braintrust_process) -> None:
    engine.register(AiSecret, AiSecretProvider, "bt", _inputs(emulator, _record(emulator.url)))
    engine.register(AiSecret, AiSecretProvider, "bt",
                    _inputs(emulator, _record(emulator.url, client_secret=ROTATED_SECRET)))
    engine.destroy(AiSecret, "bt")
    log = braintrust_process.stderr()
    assert CLIENT_SECRET not in log and ROTATED_SECRET not in log
    assert emulator.braintrust_api_key not in log


def test_invalid_record_fails_check_before_anything_is_sent(braintrust_process, emulator) -> None:
    record = _record(emulator.url)
    record["metadata"]["auth_type"] = "pat"  # a JSON secret with auth_type pat
    news = {**_inputs(emulator, record), "__provider": ""}
    from testing.provider import provider_string

    news["__provider"] = provider_string(AiSecretProvider)
    _, failures = braintrust_process.check(Engine.urn(AiSecret, "bad"), {}, news)
    assert failures and failures[0][0] == "record"
    assert "auth_type" in failures[0][1] and CLIENT_SECRET not in failures[0][1]
    assert emulator.requests() == []


def test_bad_api_key_fails_with_one_clear_line_without_the_key(emulator_server, emulator) -> None:
    bad_key = "sk-bt-wrong-key-9999999999"
    p = ProviderProcess(env={"BRAINTRUST_API_KEY": "", "BRAINTRUST_BASE_URL": ""})
    try:
        p.configure({"braintrust_api_key": bad_key}, secret_keys=("braintrust_api_key",))
        with pytest.raises(ProviderCallError) as info:
            Engine(p).register(AiSecret, AiSecretProvider, "bt", _inputs(emulator, _record(emulator.url)))
    finally:
        p.close()
    message = info.value.message
    first = message.splitlines()[0]
    assert "publishing the AI secret failed" in first
    assert "refused the API key (HTTP 401" in first and "braintrust_api_key" in first
    assert len(message.strip().splitlines()) == 1
    assert bad_key not in info.value.details and CLIENT_SECRET not in info.value.details


def test_braintrust_503_is_retried_honouring_retry_after(engine, emulator) -> None:
    emulator.inject_fault("PUT", "/braintrust/v1/ai_secret", 503, count=2, retry_after=0)
    step = engine.register(AiSecret, AiSecretProvider, "bt", _inputs(emulator, _record(emulator.url)))
    assert step.op == "create"
    statuses = [r["status"] for r in emulator.requests() if r["method"] == "PUT"]
    assert statuses == [503, 503, 200]


# ------------------------------------------------------------------ an error that echoes the request

Respond = Callable[[bytes], tuple[int, str, str]]


class _Echo(http.server.BaseHTTPRequestHandler):
    """Braintrust's API as a careless server: an error built from the request it was sent."""

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, content_type, text = self.server.respond(body)  # type: ignore[attr-defined]
        raw = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[Callable[[Respond], str]]:
    """`echo(respond)` starts a loopback server answering every PUT with `respond(body)`; its URL."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(respond: Respond) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
        server.respond = respond  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _pat_record(api_base: str) -> dict[str, Any]:
    return build_provider_config(name="databricks-lc", api_base=api_base, auth_type="pat", secret=PAT,
                                 endpoints=[("bt-chat", "chat")]).to_record()


def _echo_secret_field(body: bytes) -> tuple[int, str, str]:
    """A JSON error whose message quotes the record's `secret` as it was sent."""
    sent = json.loads(body)
    return 400, "application/json", json.dumps(
        {"Code": "BadRequest", "Message": f"secret {json.dumps(sent['secret'])} is not valid"})


def _echo_body_cut_at(secret: str) -> Callable[[bytes], tuple[int, str, str]]:
    """A text error echoing the body, padded so `secret` straddles the 300-character cut of the
    one-line summary: a scrub after the cut would miss the half that is left."""
    def respond(body: bytes) -> tuple[int, str, str]:
        text = body.decode()
        return 400, "text/plain", "x" * 280 + text[text.index(secret):]
    return respond


@pytest.mark.parametrize(("auth", "server"), [
    ("oauth", "secret field in a JSON error"), ("pat", "secret field in a JSON error"),
    ("oauth", "body cut in a text error"), ("pat", "body cut in a text error")])
def test_an_error_echoing_the_request_never_carries_the_records_secret(engine, emulator, echo, auth,
                                                                        server) -> None:
    record = _record(emulator.url) if auth == "oauth" else _pat_record(emulator.url)
    secret = CLIENT_SECRET if auth == "oauth" else PAT
    respond = _echo_secret_field if server.startswith("secret field") else _echo_body_cut_at(secret)
    inputs = {**_inputs(emulator, record), "api_url": echo(respond)}
    with pytest.raises(ProviderCallError) as info:
        engine.register(AiSecret, AiSecretProvider, "bt", inputs)
    message = info.value.message
    assert "publishing the AI secret failed" in message and "HTTP 400" in message
    assert REDACTED in message
    assert secret[:12] not in info.value.details
    assert record["secret"] not in info.value.details


# ------------------------------------------------------------------ the record's hash


@pytest.mark.parametrize("path", [p for p in STACKS if "publish: true" in p.read_text()][:1], ids=lambda p: p.name)
def test_the_component_sends_the_hash_the_provider_computes(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mocks, _, _ = run_program(path, monkeypatch)

    def plain(value: Any) -> Any:  # the mocks see a secret input as {<sig>: <secret sig>, "value": ...}
        wrapped = isinstance(value, dict) and set(value) == {rpc._special_sig_key, "value"}
        return value["value"] if wrapped else value

    (published,) = [r for r in mocks.resources if r.typ == AI_SECRET.type_token]
    record = plain(published.inputs["record"])
    assert record["secret"]  # the whole record, secret included, is what is hashed
    assert plain(published.inputs["record_hash"]) == record_hash(record)
