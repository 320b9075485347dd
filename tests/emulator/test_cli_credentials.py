"""The command line: switches as flags, credentials from files or the environment (never needed
on the command line, never printed where a log would keep them), files written 0600."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from emulator.credentials import CredentialError, resolve
from emulator.server import EmulatorServer

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def cli(*args: str, env: dict[str, str] | None = None,
        stderr_out: list[str] | None = None) -> Iterator[tuple[str, list[str]]]:
    """Run `python -m emulator --port 0 ARGS`; yield (url, banner lines); stop it on exit
    (appending what it wrote to stderr to `stderr_out`)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--port", "0", "--ready-after", "0", *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("EMULATOR_")},
             "PYTHONUNBUFFERED": "1", **(env or {})})
    try:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        match = re.search(r"listening on (http://\S+)", first)
        assert match, (first, proc.stderr.read() if proc.poll() is not None else "")
        banner = [first]
        while not banner[-1].startswith("  settings:"):
            banner.append(proc.stdout.readline())
        yield match.group(1), banner
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
            _, err = proc.communicate(timeout=5)
            if stderr_out is not None:
                stderr_out.append(err)


def _settings(url: str, token: str) -> dict:
    r = requests.get(f"{url}/_emulator/settings", headers={"Authorization": f"Bearer {token}"},
                     timeout=10)
    r.raise_for_status()
    return r.json()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_missing_token_files_are_generated_0600_shared_by_the_next_start_and_never_printed(tmp_path):
    admin_file, bt_file = tmp_path / "dir" / "admin-token", tmp_path / "dir" / "braintrust-api-key"
    args = ("--admin-token-file", str(admin_file), "--braintrust-api-key-file", str(bt_file))
    with cli(*args) as (url, banner):
        token, key = admin_file.read_text().strip(), bt_file.read_text().strip()
        assert _mode(admin_file) == 0o600 and _mode(bt_file) == 0o600
        assert token.startswith("dapi") and key
        assert not any(token in line or key in line for line in banner)
        assert _settings(url, token)["pay_per_token_acl"] == "accept"
        assert requests.get(f"{url}/braintrust/v1/ai_secret", timeout=10,
                            headers={"Authorization": f"Bearer {key}"}).status_code == 200
    with cli(*args) as (url, _):  # the second start (make up after make emulator) reads them
        assert admin_file.read_text().strip() == token
        _settings(url, token)


def test_credentials_from_the_environment_work_and_are_not_printed(tmp_path):
    env = {"EMULATOR_ADMIN_TOKEN": "dapi-from-env-0123", "EMULATOR_BRAINTRUST_API_KEY": "bt-env-key"}
    with cli(env=env) as (url, banner):
        assert _settings(url, "dapi-from-env-0123")
        assert not any("dapi-from-env-0123" in line or "bt-env-key" in line for line in banner)
        assert any("$EMULATOR_ADMIN_TOKEN" in line for line in banner)


def test_a_generated_token_is_not_printed_when_stdout_is_not_a_terminal():
    with cli() as (_, banner):
        assert not any(re.search(r"dapi[0-9a-f]{32}", line) for line in banner)
        assert any("not shown" in line for line in banner)


def test_the_deprecated_admin_token_flag_still_works_and_warns(tmp_path):
    with cli("--admin-token", "dapi-deprecated-flag") as (url, banner):
        assert _settings(url, "dapi-deprecated-flag")
        assert not any("dapi-deprecated-flag" in line for line in banner)


def test_every_switch_is_a_flag(tmp_path):
    admin_file = tmp_path / "admin-token"
    admin_file.write_text("dapi-switches\n")
    with cli("--admin-token-file", str(admin_file), "--pay-per-token-acl", "reject",
             "--propagation-delay", "12.5", "--retired", "mixtral_8x7b_instruct_v0_1",
             "--retired", "system.ai.mistral_7b_instruct_v0_1", "--scim-external-id", "drop",
             "--seed", "42", "--braintrust-unknown-id", "403", "--braintrust-put-omitted", "keep",
             "--braintrust-put-null-secret", "clear", "--braintrust-other-org", "empty",
             "--pt-config-switch", "accept") as (url, banner):
        got = _settings(url, "dapi-switches")
        assert got == {"ready_after": 0.0, "pay_per_token_acl": "reject", "propagation_delay": 12.5,
                       "retired": ["system.ai.mixtral_8x7b_instruct_v0_1",
                                   "system.ai.mistral_7b_instruct_v0_1"],
                       "scim_external_id": "drop", "seed": 42, "braintrust_unknown_id": "403",
                       "braintrust_put_omitted": "keep", "braintrust_put_null_secret": "clear",
                       "braintrust_other_org": "empty", "pt_config_switch": "accept"}
        assert "seed=42" in banner[-1]
        # reset restores the start values, not the defaults
        requests.post(f"{url}/_emulator/settings", json={"pay_per_token_acl": "accept"}, timeout=10,
                      headers={"Authorization": "Bearer dapi-switches"}).raise_for_status()
        requests.post(f"{url}/_emulator/reset", json={}, timeout=10,
                      headers={"Authorization": "Bearer dapi-switches"}).raise_for_status()
        assert _settings(url, "dapi-switches") == got


@pytest.mark.parametrize("args,message", [
    (["--pay-per-token-acl", "sometimes"], "invalid choice"),
    (["--propagation-delay", "-3"], "propagation-delay"),
    (["--scim-external-id", "x"], "invalid choice"),
])
def test_a_bad_switch_is_refused_with_usage_and_no_traceback(args, message):
    proc = subprocess.run([sys.executable, "-m", "emulator", "--port", "0", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_unreadable_or_empty_token_file_is_an_error_that_names_it(tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("\n")
    proc = subprocess.run([sys.executable, "-m", "emulator", "--port", "0", "--admin-token-file",
                           str(empty)], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and str(empty) in proc.stderr and "Traceback" not in proc.stderr


def test_resolve_prefers_the_file_then_the_environment_then_generates(tmp_path):
    made = iter(["gen-1", "gen-2"])
    f = tmp_path / "tok"
    assert resolve(None, "X", lambda: next(made), environ={}) == ("gen-1", "generated")
    assert resolve(None, "X", lambda: "no", environ={"X": "env"}) == ("env", "$X")
    value, where = resolve(str(f), "X", lambda: "no", environ={"X": "env"})
    assert value == "env" and f.read_text() == "env\n" and "env" not in where.replace("$X", "")
    assert resolve(str(f), "X", lambda: "no", environ={"X": "other"})[0] == "env"
    f.write_text("two words\n")
    with pytest.raises(CredentialError, match=str(f)):
        resolve(str(f), "X", lambda: "no", environ={})


def test_the_state_file_is_written_0600_whatever_the_umask(tmp_path):
    state = tmp_path / "state.json"
    old = os.umask(0)
    try:
        server = EmulatorServer(port=0, admin_token="adm", ready_after=0.0, state_file=str(state))
        server.start()
        try:
            # The state is written before the answer leaves.
            requests.post(f"{server.url}/api/2.0/preview/scim/v2/ServicePrincipals", timeout=10,
                          json={"displayName": "x"}, headers={"Authorization": "Bearer adm"})
        finally:
            server.stop()
    finally:
        os.umask(old)
    assert _mode(state) == 0o600


def test_malformed_requests_print_no_traceback_and_the_server_keeps_serving(tmp_path):
    admin_file = tmp_path / "admin-token"
    admin_file.write_text("dapi-malformed\n")
    err: list[str] = []
    with cli("--admin-token-file", str(admin_file), stderr_out=err) as (url, _):
        host, port = url.removeprefix("http://").split(":")
        for raw in (b"POST /api/2.0/serving-endpoints HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                    b"GET /api/2.0/serving-endpoints/\xff HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"POST /api/2.0/preview/scim/v2/ServicePrincipals HTTP/1.1\r\nHost: x\r\n"
                    b"Authorization: Bearer dapi-malformed\r\nContent-Length: 3\r\n\r\n\"\xff\"",
                    b"NONSENSE\r\n\r\n"):
            with socket.create_connection((host, int(port)), timeout=10) as sock:
                sock.sendall(raw)
                assert sock.recv(12).startswith(b"HTTP/1.1 400")
        assert _settings(url, "dapi-malformed")
    assert "Traceback" not in err[0], err[0]
