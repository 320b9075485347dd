"""The admin path, the request log, --state persistence and the command line."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from databricks.sdk import WorkspaceClient

from emulator.server import EmulatorServer

from .conftest import PPT, churn_config

ROOT = Path(__file__).resolve().parents[2]


def test_request_log_holds_no_secrets_tokens_or_bodies(w, emulator, make_sp):
    emulator.admin("DELETE", "requests")
    sp, secret = make_sp()
    token = requests.post(f"{emulator.url}/oidc/v1/token", auth=(sp.application_id, secret.secret),
                          data={"grant_type": "client_credentials"}, timeout=10).json()["access_token"]
    requests.get(f"{emulator.url}/api/2.0/serving-endpoints?token={token}",
                 headers={"Authorization": f"Bearer {token}"}, timeout=10)
    log = emulator.requests()
    dump = json.dumps(log)
    for sensitive in (secret.secret, token, emulator.admin_token):
        assert sensitive not in dump
    assert {tuple(sorted(r)) for r in log} == {("method", "path", "principal", "status", "time")}
    assert ("POST", "/oidc/v1/token", 200) in {(r["method"], r["path"], r["status"]) for r in log}
    assert not any(r["path"].startswith("/_emulator") for r in log)


def test_reset_restores_the_seed(w, emulator):
    w.serving_endpoints.create("tmp", config=churn_config("tmp"))
    w.service_principals.create(display_name="tmp")
    emulator.reset()
    assert emulator.requests() == []
    assert "tmp" not in {e.name for e in w.serving_endpoints.list()}
    assert list(w.service_principals.list()) == []
    assert w.serving_endpoints.get(PPT).name == PPT


def test_admin_path_needs_the_admin_token(emulator):
    r = requests.post(f"{emulator.url}/_emulator/reset", json={}, timeout=10)
    assert r.status_code == 401


def test_state_file_keeps_principals_secrets_and_endpoints_across_restarts(tmp_path):
    state = str(tmp_path / "state.json")
    first = EmulatorServer(port=0, admin_token="adm", ready_after=0.0, state_file=state,
                           models=["main.ml.churn_scorer:1"]).start()
    try:
        w = WorkspaceClient(host=first.url, token="adm")
        sp = w.service_principals.create(display_name="kept")
        secret = w.service_principal_secrets_proxy.create(sp.id)
        ep = w.serving_endpoints.create("kept", config=churn_config("kept", version="1")).response
    except Exception:
        first.stop()
        raise
    else:
        first.stop()
    assert secret.secret not in Path(state).read_text()  # only a hash is kept
    second = EmulatorServer(port=0, admin_token="adm", ready_after=0.0, state_file=state,
                            models=[]).start()
    try:
        w = WorkspaceClient(host=second.url, token="adm")
        assert w.service_principals.get(sp.id).display_name == "kept"
        assert w.serving_endpoints.get("kept").id == ep.id
        sw = WorkspaceClient(host=second.url, client_id=sp.application_id, client_secret=secret.secret)
        assert sw.serving_endpoints.get(PPT).name == PPT
    finally:
        second.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_prints_its_url_and_stops_on_sigterm(tmp_path):
    port = _free_port()
    state = tmp_path / "cli-state.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--port", str(port), "--admin-token", "cli-admin",
         "--model", "main.ml.churn_scorer:3", "--ready-after", "0.1", "--state", str(state)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = proc.stdout.readline()
        assert re.search(rf"http://127\.0\.0\.1:{port}\b", line), line
        url = f"http://127.0.0.1:{port}"
        w = WorkspaceClient(host=url, token="cli-admin")
        w.serving_endpoints.create("cli", config=churn_config("cli"))
        assert state.exists()
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=5)
