"""Hostile servers (issue 22): every HTTP call of the project has one deadline for the whole
request (headers and body), a size cap and a JSON nesting limit with named errors, and never
takes credentials from ~/.netrc.

The servers are loopback sockets that misbehave on purpose. No timing assertions: a call must
fail with the deadline error and must have returned (polled with a generous outer bound)."""

from __future__ import annotations

import base64
import json
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from components import transport
from components.providers import _auth, _client
from components.providers._client import AnswerRefused, BoundedApi, DeadlineExceeded

ROOT = Path(__file__).resolve().parent.parent
OUTER = 60.0  # generous: only a call that never returns exceeds it
TOKEN = "dapi-" + "0f" * 16  # built at run time: no real-looking token in a tracked file


@dataclass
class Server:
    url: str
    requests: list[bytes] = field(default_factory=list)


def _serve(answer: Callable[[socket.socket, threading.Event], None]) -> Iterator[Server]:
    stop = threading.Event()
    state = Server("")

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            data = b""
            self.request.settimeout(10)
            while b"\r\n\r\n" not in data:
                chunk = self.request.recv(65536)
                if not chunk:
                    return
                data += chunk
            state.requests.append(data)
            try:
                answer(self.request, stop)
            except OSError:
                return

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def _dribble(sock: socket.socket, stop: threading.Event, data: bytes) -> None:
    """`data`, then a header line or body for ever, one byte each 0.2 s: every read is short."""
    sock.sendall(data)
    while not stop.wait(0.2):
        sock.sendall(b"a")


def _dribble_headers(sock: socket.socket, stop: threading.Event) -> None:
    _dribble(sock, stop, b"HTTP/1.1 200 OK\r\nX-Slow: ")


def _dribble_body(sock: socket.socket, stop: threading.Event) -> None:
    _dribble(sock, stop, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")


@pytest.fixture(params=["headers", "body"])
def dribbling(request: pytest.FixtureRequest) -> Iterator[Server]:
    yield from _serve(_dribble_headers if request.param == "headers" else _dribble_body)


Answer = Callable[[socket.socket, threading.Event], None]


def _answer(body: bytes, status: str = "200 OK", chunked: bool = False) -> Answer:
    def answer(sock: socket.socket, stop: threading.Event) -> None:
        if chunked:
            sock.sendall(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                         "Connection: close\r\n\r\n".encode())
            for i in range(0, len(body), 1 << 16):
                part = body[i:i + (1 << 16)]
                sock.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        else:
            sock.sendall(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                         f"Connection: close\r\n\r\n".encode() + body)
    return answer


def _returns(call: Callable[[], Any]) -> Any:
    """Run `call` on a thread; it must return (or raise) within OUTER. Returns what it did."""
    box: list[Any] = []

    def run() -> None:
        try:
            box.append(("ok", call()))
        except BaseException as exc:
            box.append(("raised", exc))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(OUTER)
    assert not thread.is_alive(), "the call never returned"
    return box[0]


@dataclass
class _Config:
    host: str
    user_agent: str = "test"
    token: str = TOKEN

    def authenticate(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class _M2M:
    """An SDK config with OAuth machine-to-machine credentials, minted by _auth itself."""
    host: str
    client_id: str = "app-id"
    client_secret: str = "s" * 16
    token: None = None
    auth_type: str = "oauth-m2m"

    def authenticate(self) -> dict[str, str]:
        raise AssertionError("minted by _auth, not the SDK")


# ---------------------------------------------------------------- deadlines


@pytest.mark.parametrize("lifetime", [b"1" + b"0" * 400, b"NaN", b"-Infinity", b"Infinity", b"true", b'"soon"'])
def test_a_token_endpoint_claiming_an_impossible_lifetime_still_gives_a_token(lifetime: bytes) -> None:
    body = b'{"access_token": "minted-token-1234", "token_type": "Bearer", "expires_in": ' + lifetime + b"}"
    for server in _serve(_answer(body)):
        creds = _auth.Credentials(_M2M(server.url))
        kind, value = _returns(lambda creds=creds: creds.headers(time.monotonic() + 10))
        assert kind == "ok" and value[1] == {"Authorization": "Bearer minted-token-1234"}, value


def test_a_dribbling_server_cannot_hold_a_bounded_provider_call(dribbling: Server) -> None:
    api = BoundedApi.within(_Config(dribbling.url), 2)
    kind, value = _returns(lambda: api.do("GET", "/api/2.0/serving-endpoints"))
    assert kind == "raised" and isinstance(value, DeadlineExceeded), value
    assert "GET /api/2.0/serving-endpoints" in str(value)


def test_a_dribbling_proxy_cannot_hold_a_bounded_provider_call(dribbling: Server, monkeypatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", dribbling.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    api = BoundedApi.within(_Config("http://workspace.invalid"), 2, session_key="through-a-proxy")
    kind, value = _returns(lambda: api.do("GET", "/api/2.0/serving-endpoints"))
    assert kind == "raised" and isinstance(value, DeadlineExceeded), value
    assert dribbling.requests and b"workspace.invalid" in dribbling.requests[0]


def test_a_dribbling_server_loses_a_post_answer_not_the_call(dribbling: Server) -> None:
    api = BoundedApi.within(_Config(dribbling.url), 2)
    kind, value = _returns(lambda: api.do("POST", "/api/2.0/serving-endpoints", body={"name": "x"}))
    assert kind == "raised" and isinstance(value, (_client.AnswerLost, DeadlineExceeded)), value
    assert len(dribbling.requests) == 1  # a POST is never re-sent blindly


def test_a_dribbling_server_cannot_hold_the_verify_and_braintrust_transport(dribbling: Server) -> None:
    kind, result = _returns(lambda: transport.request("POST", f"{dribbling.url}/v1/x", json_body={}, timeout=1,
                                                      retries=1, sleep=lambda s: None))
    assert kind == "ok" and result.status == 0 and result.error.startswith("timed out"), result
    assert result.attempts == 2


def test_a_dribbling_server_cannot_hold_the_host_probe(dribbling: Server, monkeypatch) -> None:
    monkeypatch.setattr(_client, "HOST_PROBE_TIMEOUT", 1.0)
    kind, meta = _returns(lambda: _client._probe_host(dribbling.url))
    assert kind == "ok" and meta is None


def test_a_dribbling_server_cannot_hold_the_clock_probe(dribbling: Server, monkeypatch) -> None:
    from components.providers import _clock

    monkeypatch.setattr(_clock, "PROBE_TIMEOUT", 1.0)
    kind, offset = _returns(lambda: _clock._probe(dribbling.url))
    assert kind == "ok" and offset is None


def test_a_dribbling_token_endpoint_cannot_hold_a_token_mint(dribbling: Server) -> None:
    creds = _auth.Credentials(_M2M(dribbling.url))
    kind, value = _returns(lambda: creds.headers(time.monotonic() + 2))
    assert kind == "raised" and "no answer in time" in str(value), value


def test_a_dribbling_server_cannot_hold_verify(dribbling: Server, tmp_path: Path) -> None:
    record = tmp_path / "record.json"
    record.write_text(json.dumps({"type": "databricks", "name": "r", "secret": "dapi" + "1a" * 16,
                                  "metadata": {"api_base": dribbling.url, "auth_type": "pat",
                                               "customModels": {"m": {"format": "openai", "flavor": "chat"}},
                                               "models": ["m"]}}))
    kind, done = _returns(lambda: subprocess.run(
        [sys.executable, "-m", "components", "verify", "--config", str(record), "--timeout", "1", "--retries", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=OUTER))
    assert kind == "ok", done
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "timed out" in done.stdout + done.stderr, done.stdout + done.stderr


def test_a_dribbling_release_server_cannot_hold_the_cli_install(dribbling: Server, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PULUMI_RELEASES_URL": f"{dribbling.url}/releases",
           "PULUMI_INSTALL_DIR": str(tmp_path / "bin"), "PULUMI_DOWNLOAD_DEADLINE": "1"}
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "install_pulumi.py")], env=env,
                          capture_output=True, text=True, timeout=OUTER)
    assert done.returncode == 1 and "took longer than 1 s (the whole download)" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- size and nesting


@pytest.fixture(params=["length", "chunked"])
def huge(request: pytest.FixtureRequest) -> Iterator[Server]:
    body = b'{"a": "' + b"x" * (_client.MAX_ANSWER + 10) + b'"}'
    yield from _serve(_answer(body, chunked=request.param == "chunked"))


def test_an_answer_over_the_cap_is_refused_by_name(huge: Server) -> None:
    api = BoundedApi.within(_Config(huge.url), 30)
    kind, value = _returns(lambda: api.do("GET", "/api/2.0/serving-endpoints/big"))
    assert kind == "raised" and isinstance(value, AnswerRefused), value
    assert "GET /api/2.0/serving-endpoints/big" in str(value) and "larger than 16 MiB" in str(value)


def test_the_transport_refuses_an_answer_over_its_cap(huge: Server) -> None:
    result = transport.request("GET", f"{huge.url}/v1/x", retries=0)
    assert result.status == 200 and not result.ok and "larger than 1 MiB" in (result.error or "")


NESTED = b"[" * 50_000 + b"]" * 50_000


@pytest.mark.parametrize("status", ["200 OK", "400 Bad Request", "503 Service Unavailable"])
def test_deeply_nested_json_is_a_named_error_never_a_recursion_error(status: str) -> None:
    for server in _serve(_answer(b'{"error_code": "X", "message": ' + NESTED + b"}", status)):
        api = BoundedApi.within(_Config(server.url), 5)
        kind, value = _returns(lambda api=api: api.do("GET", "/api/2.0/serving-endpoints/deep"))
        assert kind == "raised" and isinstance(value, AnswerRefused), repr(value)
        assert "GET /api/2.0/serving-endpoints/deep" in str(value) and "nested" in str(value)
        result = transport.request("GET", f"{server.url}/v1/deep", retries=0)
        assert not result.ok and "nested more than" in (result.error or "")
        assert "nested more than" in transport.error_summary(result)


def test_loads_names_the_call_for_deep_json() -> None:
    with pytest.raises(transport.TooDeeplyNested, match="GET /x"):
        transport.loads(NESTED, "GET /x")
    assert transport.loads('{"a": "[[[[[[[[[["}', "GET /x") == {"a": "[[[[[[[[[["}


# An answer of escaped quotes that never closes: a string scan that restarts at every quote is
# quadratic in it (hours of CPU for 1 MiB, which no socket deadline can cut).
UNCLOSED = b'{"message": "' + b'\\"' * 400_000


@pytest.mark.parametrize("status", ["200 OK", "400 Bad Request"])
def test_an_answer_of_unclosed_escaped_quotes_is_refused_promptly(status: str) -> None:
    for server in _serve(_answer(UNCLOSED, status)):
        api = BoundedApi.within(_Config(server.url), 30)
        kind, value = _returns(lambda api=api: api.do("GET", "/api/2.0/serving-endpoints/q"))
        assert kind == "raised" and "GET /api/2.0/serving-endpoints/q" in str(value), repr(value)
        kind, result = _returns(lambda server=server: transport.request("GET", f"{server.url}/v1/q", retries=0))
        assert kind == "ok" and result.body is None  # not JSON: no body, returned at once
    assert transport.json_depth('["\\"[", {"a": "]]"}]') == 2


def _two_lengths(sock: socket.socket, stop: threading.Event) -> None:
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 99999\r\nConnection: close\r\n\r\n{}")


def test_a_malformed_answer_is_a_lost_answer_naming_the_call_never_a_bare_exception() -> None:
    for server in _serve(_two_lengths):
        kind, value = _returns(lambda url=server.url: BoundedApi.within(_Config(url), 2).do("GET", "/api/2.0/m"))
        assert kind == "raised" and isinstance(value, DeadlineExceeded), repr(value)
        assert "GET /api/2.0/m" in str(value) and "malformed answer" in str(value)
        kind, value = _returns(lambda url=server.url: BoundedApi.within(_Config(url), 2).do("POST", "/api/2.0/m",
                                                                                          body={}))
        assert kind == "raised" and isinstance(value, _client.AnswerLost), repr(value)


def test_an_unknown_principal_message_is_recognised_in_linear_time() -> None:
    from databricks.sdk.errors import BadRequest

    from components.providers._propagation import is_unknown_principal

    assert is_unknown_principal(BadRequest("Principal 1234 does not exist"))
    assert is_unknown_principal(BadRequest("unknown service principal abc"))
    assert not is_unknown_principal(BadRequest("endpoint x not found"))
    # A hostile message of "principal principal ..." made a backtracking regex run for minutes.
    kind, value = _returns(lambda: is_unknown_principal(BadRequest("principal " * 1_600_000)))
    assert kind == "ok" and value is False


def _install(url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PULUMI_RELEASES_URL": f"{url}/releases",
           "PULUMI_INSTALL_DIR": str(tmp_path / "bin"), "PULUMI_DOWNLOAD_DEADLINE": "50", "TMPDIR": str(tmp_path)}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "install_pulumi.py")], env=env,
                          capture_output=True, text=True, timeout=OUTER)


def _endless(sock: socket.socket, stop: threading.Event) -> None:
    sock.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
    block = b"0" * (1 << 20)
    while not stop.is_set():
        sock.sendall(block)


@pytest.mark.parametrize("shape", ["endless", "length"])
def test_a_release_server_sending_too_much_is_refused_by_size(shape: str, tmp_path: Path) -> None:
    answer = _endless if shape == "endless" else _answer(b"0" * (2 << 20))
    for server in _serve(answer):
        done = _install(server.url, tmp_path)
        assert done.returncode == 1 and "larger than 1 MiB" in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_the_installer_why_file_is_written_beside_a_symlink_not_through_it(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("keep\n")
    why = tmp_path / "why"
    why.symlink_to(target)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PULUMI_RELEASES_URL": "ftp://nowhere",
           "PULUMI_INSTALL_DIR": str(tmp_path / "bin")}
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "install_pulumi.py"), "--why", str(why)],
                          env=env, capture_output=True, text=True, timeout=OUTER)
    assert done.returncode == 1 and not why.is_symlink() and "not an http(s) URL" in why.read_text()
    assert target.read_text() == "keep\n"


# ---------------------------------------------------------------- ~/.netrc


@pytest.fixture
def recording() -> Iterator[Server]:
    yield from _serve(_answer(b'{"endpoints": []}'))


def _netrc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login netrc-user password netrc-password\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(netrc))


def _authorization(request: bytes) -> list[str]:
    lines = request.decode("latin-1").split("\r\n")
    return [line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("authorization:")]


def test_netrc_never_replaces_the_provider_credential(recording: Server, tmp_path: Path, monkeypatch) -> None:
    _netrc(tmp_path, monkeypatch)
    _client._SESSIONS.clear()
    BoundedApi.within(_Config(recording.url), 10, session_key="netrc-test").do("GET", "/api/2.0/serving-endpoints")
    _client._probe_host(recording.url)
    from components.providers import _clock

    _clock._probe(recording.url)
    transport.request("GET", f"{recording.url}/v1/x", retries=0, headers={"Authorization": f"Bearer {TOKEN}"})
    basic = base64.b64encode(b"netrc-user:netrc-password").decode()
    assert len(recording.requests) == 4
    provider, probe, clock, plain = (_authorization(r) for r in recording.requests)
    assert provider == [f"Bearer {TOKEN}"] and plain == [f"Bearer {TOKEN}"]
    assert probe == [] and clock == []
    assert all(basic.encode() not in r for r in recording.requests)


# ---------------------------------------------------------------- secrets echoed back


@pytest.mark.parametrize("status", ["400 Bad Request", "403 Forbidden", "200 OK"])
def test_a_workspace_echoing_the_authorization_header_never_shows_the_token(status: str) -> None:
    echo = json.dumps({"error_code": "BAD_REQUEST", "message": f"rejected header Authorization: Bearer {TOKEN}",
                       "details": {"sent": json.dumps({"Authorization": f"Bearer {TOKEN}"})}}).encode()
    for server in _serve(_answer(echo, status)):
        api = BoundedApi.within(_Config(server.url), 10)
        kind, value = _returns(lambda api=api: api.do("GET", "/api/2.0/serving-endpoints/x"))
        shown = repr(value) + str(value)
        if kind == "raised":
            from components.providers._errors import api_error

            shown += str(api_error("reading the endpoint", "endpoint x", value))
        assert TOKEN not in shown and TOKEN[5:] not in shown, shown
        assert transport.REDACTED in shown or kind == "raised"


def test_a_huge_or_escape_laden_workspace_error_is_quoted_short_and_inert() -> None:
    # A workspace error of megabytes (the provider reads up to its 16 MiB cap) with terminal
    # escapes in it: `up` shows its start, escaped, and how much was left out.
    message = "\x1b]0;owned\x07\x1b[2J" + "x" * 3_000_000
    body = json.dumps({"error_code": "BAD_REQUEST", "message": message}).encode()
    for server in _serve(_answer(body, "400 Bad Request")):
        api = BoundedApi.within(_Config(server.url), 10)
        kind, value = _returns(lambda api=api: api.do("GET", "/api/2.0/serving-endpoints/x"))
        assert kind == "raised"
        from components.providers._errors import SERVER_TEXT_LIMIT, api_error

        shown = str(api_error("reading the endpoint", "endpoint x", value))
        assert len(shown) < SERVER_TEXT_LIMIT + 500, len(shown)
        assert "\x1b" not in shown and "\x07" not in shown and "more characters not shown" in shown


def test_an_error_message_never_carries_a_remembered_secret() -> None:
    from components.providers._errors import ProviderError

    secret = "bt-" + "9c" * 12
    transport.remember(secret)
    error = ProviderError("publishing failed", "AI secret x", f"Braintrust said: bad key {secret}",
                          json.dumps({"echo": secret}))
    assert secret not in str(error) and transport.REDACTED in str(error)


def test_a_braintrust_answer_echoing_the_secret_is_kept_secret_and_redacted() -> None:
    from components.args import AI_SECRET, AiSecretArgs
    from components.providers.ai_secret import AiSecretProvider

    pat = "dapi" + "7e" * 16
    provider = AiSecretProvider()
    record = {"name": "r", "type": "databricks", "secret": pat, "metadata": {}}
    provider._api(AiSecretArgs(name="r", record_hash="h", record=record, api_url="http://127.0.0.1:9",
                               org_name=None))  # learns what the record's secret is
    outs = provider._outs({"id": "b0a3", "preview_secret": pat, "name": "r", "updated_at": "now"})
    assert outs.preview_secret != pat and pat not in repr(outs)
    assert "preview_secret" in AI_SECRET.secret_outputs


def test_a_braintrust_answer_echoing_secrets_anywhere_is_scrubbed_before_any_caller_sees_it() -> None:
    from components.providers._braintrust import BraintrustApi, BraintrustCredentials

    pat, key = "dapi" + "5d" * 16, "sk-" + "4c" * 20  # never remembered before this test
    echo = {"id": pat, "name": "r", "metadata": {"note": f"sent {key}", "list": [pat]}, key: "as a key"}
    for server in _serve(_answer(json.dumps(echo).encode())):
        api = BraintrustApi(server.url, BraintrustCredentials(api_key=key),
                            record={"name": "r", "type": "databricks", "secret": pat})
        got = api.upsert({"name": "r", "type": "databricks", "secret": pat})
        assert pat not in repr(got) and key not in repr(got), got  # not the id, not nested, not a key
        assert got["id"] == transport.REDACTED or transport.REDACTED in got["id"]


# ---------------------------------------------------------------- one credential, one host


STACK_HOST = "https://acme.cloud.databricks.com"


@pytest.mark.parametrize("env", [
    {"DATABRICKS_HOST": "https://other.cloud.databricks.com", "DATABRICKS_TOKEN": "x" * 12},
    {"DATABRICKS_HOST": "https://acme.cloud.databricks.com.evil.example", "DATABRICKS_CLIENT_ID": "id",
     "DATABRICKS_CLIENT_SECRET": "s" * 12},
    {"DATABRICKS_HOST": "http://acme.cloud.databricks.com", "DATABRICKS_TOKEN": "x" * 12},
])
def test_an_environment_credential_for_another_host_stops_the_run_naming_both(env: dict[str, str]) -> None:
    problem = _client.ambient_credential_problem(STACK_HOST, env)
    assert problem is not None and "\n" not in problem
    assert STACK_HOST in problem and _client.transport.origin(env["DATABRICKS_HOST"]) in problem
    assert env.get("DATABRICKS_TOKEN", "\0") not in problem and env.get("DATABRICKS_CLIENT_SECRET", "\0") not in problem


@pytest.mark.parametrize("env", [
    {"DATABRICKS_TOKEN": "x" * 12},  # CI: a token and no host: it is the stack's
    {"DATABRICKS_CLIENT_ID": "id", "DATABRICKS_CLIENT_SECRET": "s" * 12},
    {"DATABRICKS_HOST": "HTTPS://Acme.cloud.databricks.com/", "DATABRICKS_TOKEN": "x" * 12},
    {"DATABRICKS_HOST": "acme.cloud.databricks.com", "DATABRICKS_TOKEN": "x" * 12},
    {"DATABRICKS_HOST": "https://other.cloud.databricks.com"},  # a host with no credential is unused
])
def test_a_credential_for_the_stacks_host_or_with_no_host_is_used(env: dict[str, str]) -> None:
    assert _client.ambient_credential_problem(STACK_HOST, env) is None


def test_a_profile_for_another_host_stops_the_run(tmp_path: Path) -> None:
    cfg = tmp_path / ".databrickscfg"
    cfg.write_text("[other]\nhost = https://other.cloud.databricks.com\ntoken = " + "y" * 12 + "\n"
                   "[mine]\nhost = https://acme.cloud.databricks.com\ntoken = " + "z" * 12 + "\n"
                   "[hostless]\ntoken = " + "w" * 12 + "\n")
    env = {"DATABRICKS_CONFIG_FILE": str(cfg)}
    problem = _client.ambient_credential_problem(STACK_HOST, {**env, "DATABRICKS_CONFIG_PROFILE": "other"})
    assert problem is not None and "https://other.cloud.databricks.com" in problem and STACK_HOST in problem
    assert "y" * 12 not in problem
    for ok in ("mine", "hostless"):
        assert _client.ambient_credential_problem(STACK_HOST, {**env, "DATABRICKS_CONFIG_PROFILE": ok}) is None


def test_the_provider_refuses_before_it_builds_a_client(monkeypatch) -> None:
    monkeypatch.setenv("DATABRICKS_HOST", "https://other.cloud.databricks.com")
    monkeypatch.setenv("DATABRICKS_TOKEN", "x" * 12)
    with pytest.raises(_client.ProviderError) as info:
        _client.workspace_client(_client.Credentials(host=STACK_HOST))
    assert len(str(info.value).splitlines()) == 1
    assert "https://other.cloud.databricks.com" in str(info.value) and STACK_HOST in str(info.value)


@pytest.mark.parametrize("shape", ["record-string", "secret-string", "output"])
def test_verify_never_ends_in_a_recursion_error_on_deep_input(tmp_path: Path, shape: str) -> None:
    deep = "[" * 5000 + "]" * 5000
    record = {"type": "databricks", "name": "r", "secret": deep,
              "metadata": {"api_base": "http://127.0.0.1:9", "auth_type": "service_principal_oauth",
                           "customModels": {}, "models": []}}
    data: Any = {"record-string": json.dumps(deep), "secret-string": record,
                 "output": {"braintrust_provider": deep}}[shape]
    path = tmp_path / "record.json"
    path.write_text(json.dumps(data))
    done = subprocess.run([sys.executable, "-m", "components", "verify", "--config", str(path), "--retries", "0",
                           "--timeout", "1"], cwd=ROOT, capture_output=True, text=True, timeout=OUTER)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "RecursionError" not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 3, done.stderr
