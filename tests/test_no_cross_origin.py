"""Credentials never leave their origin: a workspace or Braintrust URL that redirects to a
second server never hands that server the client secret, the access token, a PAT or the
Braintrust API key, through `verify` and through the AiSecret provider's Braintrust client.

Two local servers: `first` redirects (every request, or every request but the token call) to
`second`, which records whatever reaches it. No redirect is followed, so `second` must see
nothing at all, and the error names second's origin so the user knows where it pointed.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from components import transport
from components.braintrust import build_provider_config, oauth_secret
from components.cli import main
from components.providers._braintrust import BraintrustApi, BraintrustApiError, BraintrustCredentials

CHAT = "databricks-meta-llama-3-1-8b-instruct"
CLIENT_ID = "0f3c2a51-1111-2222-3333-444455556666"
CLIENT_SECRET = "dose-client-secret-0123456789abcdef"
ACCESS_TOKEN = "eyJfirst.access-token-0123456789"
PAT = "dapi-redirect-pat-0123456789abcdef01"
BRAINTRUST_KEY = "sk-bt-redirect-key-0123456789abcdef"
CREDENTIALS = (CLIENT_SECRET, ACCESS_TOKEN, PAT, BRAINTRUST_KEY)


@dataclass
class Server:
    url: str
    seen: list[dict[str, Any]] = field(default_factory=list)
    redirect_to: str = ""
    status: int = 302
    answer_token: bool = False  # first answers the OAuth token call itself, then redirects the rest


def _handler(state: Server) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def _any(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode(errors="replace")
            state.seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                               "body": body})
            if state.answer_token and self.path == "/oidc/v1/token":
                self._send(200, {"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 3600})
            elif state.redirect_to:
                self.send_response(state.status)
                self.send_header("Location", state.redirect_to + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self._send(200, {"id": "x", "choices": [{"text": "ok"}]})

        def _send(self, status: int, body: dict[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = do_PUT = do_DELETE = _any

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def servers() -> Iterator[tuple[Server, Server]]:
    started = []
    states = []
    for _ in range(2):
        state = Server(url="")
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
        state.url = f"http://127.0.0.1:{srv.server_address[1]}"
        threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
        started.append(srv)
        states.append(state)
    first, second = states
    first.redirect_to = second.url
    yield first, second
    for srv in started:
        srv.shutdown()
        srv.server_close()


def _never_saw_a_credential(second: Server) -> None:
    assert second.seen == []  # nothing at all followed the redirect
    dump = json.dumps(second.seen)
    assert not any(c in dump for c in CREDENTIALS)


def _verify(tmp_path: Path, capsys, record: dict[str, Any]) -> tuple[int, str]:
    path = tmp_path / "record.json"
    path.write_text(json.dumps(record))
    code = main(["verify", "--config", str(path), "--timeout", "10", "--retries", "0"])
    out = capsys.readouterr()
    return code, out.out + out.err


def _oauth(api_base: str) -> dict[str, Any]:
    return build_provider_config(name="databricks-test", api_base=api_base, auth_type="service_principal_oauth",
                                 secret=oauth_secret(CLIENT_ID, CLIENT_SECRET), endpoints=[(CHAT, "chat")]).to_record()


def _pat(api_base: str) -> dict[str, Any]:
    return build_provider_config(name="databricks-test", api_base=api_base, auth_type="pat", secret=PAT,
                                 endpoints=[(CHAT, "chat")]).to_record()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_verify_token_request_never_follows_a_redirect(servers, tmp_path, capsys, status) -> None:
    first, second = servers
    first.status = status
    code, output = _verify(tmp_path, capsys, _oauth(first.url))
    assert code == 1
    assert [r["path"] for r in first.seen] == ["/oidc/v1/token"]
    _never_saw_a_credential(second)
    assert f"redirected to {second.url}" in output and "metadata.api_base" in output
    assert CLIENT_SECRET not in output


def test_verify_invocation_with_the_oauth_token_never_follows_a_redirect(servers, tmp_path, capsys) -> None:
    first, second = servers
    first.answer_token = True
    code, output = _verify(tmp_path, capsys, _oauth(first.url))
    assert code == 1
    assert [r["path"] for r in first.seen] == ["/oidc/v1/token", f"/serving-endpoints/{CHAT}/invocations"]
    _never_saw_a_credential(second)
    assert f"redirected to {second.url}" in output
    assert ACCESS_TOKEN not in output


def test_verify_invocation_with_a_pat_never_follows_a_redirect(servers, tmp_path, capsys) -> None:
    first, second = servers
    code, output = _verify(tmp_path, capsys, _pat(first.url))
    assert code == 1
    _never_saw_a_credential(second)
    assert f"redirected to {second.url}" in output
    assert PAT not in output


@pytest.mark.parametrize("call", ["upsert", "get", "delete"])
def test_braintrust_client_never_follows_a_redirect(servers, call) -> None:
    first, second = servers
    api = BraintrustApi(url=first.url, creds=BraintrustCredentials(api_key=BRAINTRUST_KEY), retries=0)
    with pytest.raises(BraintrustApiError) as info:
        if call == "upsert":
            api.upsert(_pat("https://acme.cloud.databricks.com"))
        elif call == "get":
            api.get("abc", "databricks-test")
        else:
            api.delete("abc", "databricks-test")
    assert len(first.seen) == 1
    _never_saw_a_credential(second)
    message = str(info.value)
    assert f"redirected to {second.url}" in message and "braintrust.api_url" in message
    assert BRAINTRUST_KEY not in message and PAT not in message


def test_a_redirect_to_the_same_origin_is_not_followed_either(servers) -> None:
    first, _ = servers
    first.redirect_to = first.url + "/moved"
    result = transport.request("GET", first.url + "/x", headers={"Authorization": "Bearer " + PAT}, retries=0)
    assert not result.ok and result.status == 302
    assert len(first.seen) == 1
    assert f"redirected to {first.url}" in transport.error_summary(result)


def test_netrc_never_replaces_the_callers_authorization(servers, tmp_path, monkeypatch) -> None:
    first, _ = servers
    first.redirect_to = ""
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password netrc-password-0123\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    transport.request("GET", first.url + "/x", headers={"Authorization": "Bearer " + PAT}, retries=0)
    transport.request("GET", first.url + "/y", retries=0)
    assert first.seen[0]["headers"]["Authorization"] == "Bearer " + PAT
    assert first.seen[1]["headers"]["Authorization"].startswith("Basic ")  # the .netrc is in effect


def test_an_unreachable_origin_is_one_line_naming_it(tmp_path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = transport.request("GET", f"http://127.0.0.1:{port}/x", retries=0)
    summary = transport.error_summary(result)
    assert result.status == 0 and summary.startswith(f"connection failed: http://127.0.0.1:{port}: ")
    assert "object at 0x" not in summary and "\n" not in summary


def test_a_redirect_naming_credentials_in_its_location_never_shows_them(servers) -> None:
    first, second = servers
    host = second.url.removeprefix("http://")
    first.redirect_to = f"http://{CLIENT_SECRET}:{BRAINTRUST_KEY}@{host}"
    first.status = 307  # the status that would resend the body
    api = BraintrustApi(url=first.url, creds=BraintrustCredentials(api_key=BRAINTRUST_KEY), retries=0)
    with pytest.raises(BraintrustApiError) as info:
        api.upsert(_pat("https://acme.cloud.databricks.com"))
    _never_saw_a_credential(second)
    message = str(info.value)
    assert f"redirected to {second.url}" in message
    assert not any(c in message for c in CREDENTIALS)
