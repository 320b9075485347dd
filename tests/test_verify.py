"""`python -m components verify` against the emulator: the proxy's token and invocation calls,
bounded retries shown in the table, exit codes, and no secret in anything it prints.

State is made with the SDK as an admin (the end-to-end test makes it through the providers).
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.braintrust import REDACTED, build_provider_config, oauth_secret
from components.cli import main

ROOT = Path(__file__).resolve().parent.parent
CHAT = "databricks-meta-llama-3-1-8b-instruct"  # pay-per-token: present and ready in the emulator


def _grant(emulator, endpoint: str, application_id: str) -> None:
    from databricks.sdk.service.serving import (
        ServingEndpointAccessControlRequest,
        ServingEndpointPermissionLevel,
    )

    w = emulator.workspace_client()
    w.serving_endpoints.update_permissions(w.serving_endpoints.get(endpoint).id, access_control_list=[
        ServingEndpointAccessControlRequest(service_principal_name=application_id,
                                            permission_level=ServingEndpointPermissionLevel.CAN_QUERY)])


@pytest.fixture
def principal(emulator) -> dict[str, str]:
    """A service principal with an OAuth secret and CAN_QUERY on CHAT."""
    w = emulator.workspace_client()
    sp = w.service_principals.create(display_name="verify-test")
    secret = w.service_principal_secrets_proxy.create(sp.id)
    _grant(emulator, CHAT, sp.application_id)
    return {"client_id": sp.application_id, "client_secret": secret.secret}


def _write(tmp_path: Path, record: dict[str, Any]) -> Path:
    path = tmp_path / "record.json"
    path.write_text(json.dumps(record))
    return path


def _oauth_record(emulator, principal, models=((CHAT, "chat"),), **kw) -> dict[str, Any]:
    return build_provider_config(
        name="databricks-test", api_base=emulator.url, auth_type="service_principal_oauth",
        secret=oauth_secret(principal["client_id"], kw.pop("client_secret", principal["client_secret"])),
        endpoints=list(models)).to_record()


def _verify(capsys, path: Path, *extra: str) -> tuple[int, str]:
    code = main(["verify", "--config", str(path), "--timeout", "10", *extra])
    out = capsys.readouterr()
    return code, out.out + out.err


def _row(output: str, model: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(model + " "))


def _cells(output: str, model: str) -> dict[str, str]:
    """The table row of `model`, cut at the header's column offsets."""
    lines = output.splitlines()
    header = next(line for line in lines if line.startswith("MODEL "))
    names = header.split()
    starts = [header.index(n) for n in names]
    row = _row(output, model)
    return {n: row[s:(starts[i + 1] if i + 1 < len(starts) else None)].strip()
            for i, (n, s) in enumerate(zip(names, starts, strict=True))}


def test_oauth_record_answers_for_every_model_with_one_token(emulator, principal, tmp_path, capsys) -> None:
    record = _oauth_record(emulator, principal, models=((CHAT, "chat"),
                                                        ("databricks-meta-llama-3-3-70b-instruct", "chat")))
    _grant(emulator, "databricks-meta-llama-3-3-70b-instruct", principal["client_id"])
    code, output = _verify(capsys, _write(tmp_path, record))
    assert code == 0, output
    assert "2 of 2 model(s) answered" in output
    assert _cells(output, CHAT)["STATUS"] == "ok"
    tokens = [r for r in emulator.requests() if r["path"] == "/oidc/v1/token"]
    assert len(tokens) == 1  # cached for the run, as the proxy caches it


def test_pat_record_uses_the_token_directly(emulator, tmp_path, capsys) -> None:
    record = build_provider_config(name="databricks-pat", api_base=emulator.url, auth_type="pat",
                                   secret=emulator.admin_token, endpoints=[(CHAT, "chat")]).to_record()
    code, output = _verify(capsys, _write(tmp_path, record))
    assert code == 0, output
    assert not [r for r in emulator.requests() if r["path"] == "/oidc/v1/token"]
    assert emulator.admin_token not in output


def test_output_never_holds_the_client_secret_or_the_access_token(emulator, principal, tmp_path, capsys) -> None:
    emulator.inject_fault("POST", f"/serving-endpoints/{CHAT}/invocations", 500)
    code, output = _verify(capsys, _write(tmp_path, _oauth_record(emulator, principal)))
    assert code == 1
    assert principal["client_secret"] not in output
    assert "eyJemu." not in output  # the emulator's access tokens start so


def test_a_429_then_503_is_retried_and_the_attempts_are_shown(emulator, principal, tmp_path, capsys) -> None:
    path = f"/serving-endpoints/{CHAT}/invocations"
    emulator.inject_fault("POST", path, 429, retry_after=0)
    emulator.inject_fault("POST", path, 503, retry_after=0)
    code, output = _verify(capsys, _write(tmp_path, _oauth_record(emulator, principal)))
    assert code == 0, output
    row = _cells(output, CHAT)
    assert (row["STATUS"], row["ATTEMPTS"]) == ("ok", "3")


def test_retries_are_bounded_and_the_last_status_is_reported(emulator, principal, tmp_path, capsys) -> None:
    emulator.inject_fault("POST", f"/serving-endpoints/{CHAT}/invocations", 503, count=10, retry_after=0)
    code, output = _verify(capsys, _write(tmp_path, _oauth_record(emulator, principal)), "--retries", "1")
    assert code == 1
    row = _cells(output, CHAT)
    assert (row["STATUS"], row["ATTEMPTS"]) == ("HTTP 503", "2")


def test_a_400_is_not_retried(emulator, principal, tmp_path, capsys) -> None:
    emulator.inject_fault("POST", f"/serving-endpoints/{CHAT}/invocations", 400)
    code, output = _verify(capsys, _write(tmp_path, _oauth_record(emulator, principal)))
    assert code == 1
    assert _cells(output, CHAT)["ATTEMPTS"] == "1"


def test_unreachable_workspace_is_an_error_after_bounded_attempts(principal, tmp_path, capsys, emulator) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    record = _oauth_record(emulator, principal)
    record["metadata"]["api_base"] = f"http://127.0.0.1:{port}"
    code, output = _verify(capsys, _write(tmp_path, record), "--retries", "1")
    assert code == 1
    row = _cells(output, CHAT)
    assert (row["STATUS"], row["ATTEMPTS"]) == ("error", "2")
    assert "connection failed" in row["ERROR"]


def test_invalid_record_exits_2_and_sends_nothing(emulator, principal, tmp_path, capsys) -> None:
    record = _oauth_record(emulator, principal)
    record["metadata"]["api_base"] += "/"
    emulator.admin("DELETE", "requests")
    code, output = _verify(capsys, _write(tmp_path, record))
    assert code == 2
    assert "metadata.api_base" in output and "not sent" in _row(output, CHAT)
    assert emulator.requests() == []
    assert principal["client_secret"] not in output


def test_a_record_listing_models_that_are_not_names_is_invalid_not_a_crash(emulator, principal, tmp_path,
                                                                          capsys) -> None:
    record = _oauth_record(emulator, principal)
    record["metadata"]["models"] = [[CHAT], {"name": CHAT}]
    code, output = _verify(capsys, _write(tmp_path, record))
    assert code == 2
    assert "metadata.models.0" in output and "not sent" in output


def test_the_whole_stack_output_object_is_accepted(emulator, principal, tmp_path, capsys) -> None:
    outputs = {"braintrust_provider": _oauth_record(emulator, principal), "other": 1}
    code, output = _verify(capsys, _write(tmp_path, outputs))
    assert code == 0, output


def test_missing_file_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    code, output = _verify(capsys, tmp_path / "nope.json")
    assert code == 2 and len(output.strip().splitlines()) == 1


def test_a_file_that_is_not_utf8_is_one_line_naming_it_and_exit_2(tmp_path, capsys) -> None:
    path = tmp_path / "record.json"
    path.write_bytes('{"name": "databricks-test"}'.encode("utf-16"))  # what PowerShell 5 writes
    code, output = _verify(capsys, path)
    assert code == 2
    (line,) = output.strip().splitlines()
    assert str(path) in line and "not UTF-8" in line


def test_a_deeply_nested_file_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    path = tmp_path / "record.json"
    path.write_text("[" * 5000 + "]" * 5000)
    code, output = _verify(capsys, path)
    assert code == 2
    (line,) = output.strip().splitlines()
    assert str(path) in line and "nested too deeply" in line


@pytest.mark.parametrize(("flag", "value"), [
    ("--timeout", "nan"), ("--timeout", "inf"), ("--timeout", "-inf"), ("--timeout", "0"),
    ("--timeout", "-1"), ("--timeout", "1e300"), ("--timeout", "soon"), ("--retries", "-1")])
def test_a_timeout_or_retries_out_of_range_is_a_usage_error(tmp_path, capsys, flag, value) -> None:
    with pytest.raises(SystemExit) as info:
        main(["verify", "--config", str(_write(tmp_path, {})), f"{flag}={value}"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage:") and f"argument {flag}" in err


class _EchoAuthorization(http.server.BaseHTTPRequestHandler):
    """A workspace that refuses every call with an error quoting the request's Authorization
    header, placed so that the credential straddles the 300-character cut of the error column."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        raw = ("x" * 280 + str(self.headers.get("Authorization"))).encode()
        self.send_response(401 if self.path == "/oidc/v1/token" else 400)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def echo_workspace() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoAuthorization)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_credential_echoed_at_the_cut_of_the_error_is_not_half_shown(echo_workspace, tmp_path,
                                                                        capsys) -> None:
    client_id, client_secret = "0f3c2a51-1111-2222-3333-444455556666", "dose-echoed-secret-0123456789abcdef"
    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    pat = "dapi-echoed-pat-0123456789abcdef0123"
    oauth = build_provider_config(name="databricks-test", api_base=echo_workspace,
                                  auth_type="service_principal_oauth", secret=oauth_secret(client_id, client_secret),
                                  endpoints=[(CHAT, "chat")]).to_record()
    by_pat = build_provider_config(name="databricks-test", api_base=echo_workspace, auth_type="pat",
                                   secret=pat, endpoints=[(CHAT, "chat")]).to_record()
    for record, credential in ((oauth, basic), (by_pat, pat)):
        code, output = _verify(capsys, _write(tmp_path, record))
        assert code == 1, output
        assert REDACTED in _cells(output, CHAT)["ERROR"]
        assert credential[:8] not in output


def test_stack_without_the_pulumi_cli_says_how_in_one_line(tmp_path, capsys, monkeypatch) -> None:
    # No pulumi on PATH nor beside the running Python: `make up` and `make pulumi` install the CLI
    # into .venv/bin, where verify also looks, so the test must not depend on that folder.
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PULUMI_HOME", str(tmp_path / "pulumi-home"))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    assert main(["verify", "--stack", "dev"]) == 2
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and "Pulumi CLI" in lines[0] and "--config" in lines[0]
    assert out.out == ""


def test_stack_finds_the_cli_in_pulumi_home_as_make_pulumi_does(tmp_path, capsys, monkeypatch) -> None:
    # Pulumi's own installer puts the CLI in ~/.pulumi/bin ($PULUMI_HOME/bin), where `make pulumi`
    # finds it and installs nothing: verify --stack must find it there too.
    home = tmp_path / "pulumi-home"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "pulumi").write_text(f"#!/bin/sh\necho \"$*\" > {tmp_path / 'args'}\necho '\"[secret]\"'\n")
    (home / "bin" / "pulumi").chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("PULUMI_HOME", str(home))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    assert main(["verify", "--stack", "dev"]) == 2
    assert (tmp_path / "args").read_text().split() == [
        "stack", "output", "braintrust_provider", "--show-secrets", "--json", "--stack", "dev"]
    assert "--show-secrets" in capsys.readouterr().err


def test_verify_imports_neither_pulumi_nor_databricks_sdk(emulator, principal, tmp_path) -> None:
    path = _write(tmp_path, _oauth_record(emulator, principal))
    code = (
        "import sys\n"
        "from components.cli import main\n"
        f"rc = main(['verify', '--config', {str(path)!r}])\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi', 'databricks', 'openai'))\n"
        "print('IMPORTED', bad)\n"
        "sys.exit(rc)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "IMPORTED []" in done.stdout


# ------------------------------------------------------------------ every shape the project prints


def _render_json(capsys) -> dict[str, Any]:
    assert main(["render", "local", "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("part", ["whole", "provider"])
def test_renders_json_is_recognised_and_its_redacted_secret_gets_the_show_secrets_hint(tmp_path, capsys,
                                                                                       part) -> None:
    rendered = _render_json(capsys)
    data = rendered if part == "whole" else rendered["braintrust"]["provider"]
    code, output = _verify(capsys, _write(tmp_path, data))
    assert code == 2
    (line,) = output.strip().splitlines()
    assert "redacted" in line
    assert "pulumi stack output braintrust_provider --show-secrets" in line
    assert "Input should be a valid string" not in output


@pytest.mark.parametrize("shape", ["redacted output", "hidden", "pat redacted"])
def test_other_redacted_shapes_get_the_same_hint(emulator, principal, tmp_path, capsys, shape) -> None:
    record = _oauth_record(emulator, principal)
    if shape == "redacted output":
        data: Any = {"braintrust_provider_redacted": 1,
                     "braintrust_provider": {**record, "secret": {"client_id": "x", "client_secret": REDACTED}}}
    elif shape == "hidden":
        data = {"braintrust_provider": "[secret]"}
    else:
        data = {**record, "secret": REDACTED, "metadata": {**record["metadata"], "auth_type": "pat"}}
    emulator.admin("DELETE", "requests")
    code, output = _verify(capsys, _write(tmp_path, data))
    assert code == 2
    assert "--show-secrets" in output
    assert emulator.requests() == []


def test_a_hidden_record_printed_without_json_gets_the_show_secrets_hint(tmp_path, capsys) -> None:
    # `pulumi stack output braintrust_provider > provider.json`, --show-secrets forgotten, prints
    # the bare word [secret], which is not JSON
    path = tmp_path / "provider.json"
    path.write_text("[secret]\n")
    code, output = _verify(capsys, path)
    assert code == 2
    (line,) = output.strip().splitlines()
    assert "[secret]" in line and "--show-secrets" in line and "not JSON" not in line


@pytest.mark.parametrize("secret_as", ["object", "json string", "output object"])
def test_a_stack_output_record_with_the_secret_as_object_or_json_string_is_verified(
        emulator, principal, tmp_path, capsys, secret_as) -> None:
    record = _oauth_record(emulator, principal)
    if secret_as == "object":
        record["secret"] = json.loads(record["secret"])
    data = {"braintrust_provider": record} if secret_as == "output object" else record
    code, output = _verify(capsys, _write(tmp_path, data))
    assert code == 0, output
    assert principal["client_secret"] not in output


class _SlowSecondModel(http.server.BaseHTTPRequestHandler):
    """A workspace answering every model at once, except `second`, which is held until the test
    has read the first model's row (or a deadline passes)."""

    release = threading.Event()
    second_done = threading.Event()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if "/second/" in self.path:
            self.release.wait(timeout=30)
        raw = json.dumps({"choices": [{"message": {"role": "assistant", "content": "ok"}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)
        if "/second/" in self.path:
            self.second_done.set()

    def log_message(self, *args: Any) -> None:
        pass


def test_each_row_is_printed_as_soon_as_its_model_answered(tmp_path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowSecondModel)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    record = build_provider_config(name="databricks-test", api_base=url, auth_type="pat",
                                   secret="dapi-stream-0123456789abcdef",
                                   endpoints=[("first", "chat"), ("second", "chat")]).to_record()
    proc = subprocess.Popen([sys.executable, "-m", "components", "verify", "--config", str(_write(tmp_path, record))],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("first "):
                break
        second_was_pending = not _SlowSecondModel.second_done.is_set()
        _SlowSecondModel.release.set()
        rest, _ = proc.communicate(timeout=60)
    finally:
        _SlowSecondModel.release.set()
        if proc.poll() is None:
            proc.kill()
        server.shutdown()
        server.server_close()
    assert lines[-1].split()[:3] == ["first", "chat", "ok"]
    assert second_was_pending  # the first row was out while the second model had not answered
    assert proc.returncode == 0 and "2 of 2 model(s) answered" in rest
