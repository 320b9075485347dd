"""The bundled engine checkpoints after every step, says each step as it happens, and stops on
Ctrl-C in one line keeping its state; its state file is never written through a symlink."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from testing.engine.state import Checkpoints, ResourceState, StackState

from testing.emulator import EmulatorClient
from testing.engine import EngineError, StackEngine
from testing.stacks import emulator_config
from tests.conftest import READY_AFTER

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / "stacks" / "Pulumi.local.yaml"
ENDPOINT = "pulumi-python:dynamic/databricks-braintrust:Endpoint"


def _engine_cli(command: str, emulator: EmulatorClient, state: Path) -> subprocess.Popen[str]:
    """`python -m testing.engine COMMAND` for the local stack, secrets through the environment,
    in a process group of its own (a terminal's Ctrl-C reaches the whole group)."""
    config, secrets = emulator_config(LOCAL, emulator)
    args = [sys.executable, "-m", "testing.engine", command, str(LOCAL), "--state", str(state)]
    for key, value in config.items():
        args += ["--config", f"{key}={json.dumps(value)}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for key, value in secrets.items():
        env[f"TEST_SECRET_{key.upper()}"] = value
        args += ["--secret-env", f"{key}=TEST_SECRET_{key.upper()}"]
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _read_until(proc: subprocess.Popen[str], *wanted: str, timeout: float = 180) -> list[str]:
    """stdout lines until each of `wanted` has ended a line, read as they are printed."""
    assert proc.stdout is not None
    lines: list[str] = []
    box: dict[str, bool] = {}

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if all(any(x.endswith(f" {w}") for x in lines) for w in wanted):
                box["found"] = True
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    assert box.get("found"), f"no line with {wanted!r} within {timeout} s:\n" + "\n".join(lines)
    return lines


def _saved(state: Path) -> dict[str, ResourceState]:
    return StackState.load(state, "databricks-braintrust", "local").resources


def _custom_names(state: Path) -> set[str]:
    return {r.name for r in _saved(state).values() if r.custom}


@pytest.mark.parametrize("how", ["kill", "ctrl-c"])
def test_a_run_stopped_in_the_gate_keeps_every_finished_step_and_the_rerun_adopts_them(
        emulator: EmulatorClient, tmp_path: Path, how: str) -> None:
    emulator.set_ready_after(600)  # the gate waits: the endpoints' steps are done, the run is not
    state = tmp_path / "state.json"
    proc = _engine_cli("up", emulator, state)
    try:
        lines = _read_until(proc, "bt-local-churn-scorer", "query-principal")
        # a step's line is printed once its checkpoint is on disk
        assert {"bt-local-churn-scorer", "query-principal"} <= _custom_names(state)
        if how == "kill":
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            stderr = ""
        else:
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends
            _, stderr = proc.communicate(timeout=60)
            assert proc.returncode == 130
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert any(" create " in line and "Endpoint bt-local-churn-scorer" in line for line in lines)
    if how == "ctrl-c":
        # Ctrl-C adds one line, and no traceback, to what the run had said so far (on a loaded
        # machine a provider's info line may come before it).
        said = [x for x in stderr.splitlines() if x.strip()]
        assert "Traceback" not in stderr and [x for x in said if x.startswith("interrupted")] == said[-1:], stderr
        line = said[-1]
        assert line.startswith("interrupted: up stopped") and str(state) in line
    kept = _custom_names(state)
    assert {"query-principal", "bt-local-churn-scorer"} <= kept
    assert "local-endpoints-ready" not in kept  # the step in flight is the one lost
    assert oct(state.stat().st_mode & 0o777) == "0o600"
    if how == "ctrl-c":  # a checkpoint being written is finished first (a kill may leave its temp file)
        assert not [p for p in tmp_path.iterdir() if p.name != "state.json"]

    emulator.advance_clock(601)  # the rollouts end
    # An endpoint whose create the stop came before is created by the rerun: its rollout
    # must not wait the 600 s again (on a loaded machine the stop comes before several).
    emulator.set_ready_after(READY_AFTER)
    config, secrets = emulator_config(LOCAL, emulator)
    result = StackEngine(LOCAL, state, config=config, secrets=secrets).up()
    ops = result.ops()
    # every step whose line was printed before the stop is adopted from its checkpoint
    printed = {line.rsplit(" ", 1)[1] for line in lines if " create " in line}
    assert printed and {ops[name] for name in printed} == {"same"}, (printed, ops)
    assert ops["local-endpoints-ready"] == "create"


def test_every_step_has_its_line_as_it_happens_and_a_no_op_up_writes_no_checkpoint(
        emulator: EmulatorClient, tmp_path: Path) -> None:
    config, secrets = emulator_config(LOCAL, emulator)
    state = tmp_path / "state.json"
    lines: list[str] = []
    engine = StackEngine(LOCAL, state, config=config, secrets=secrets, progress=lines.append)
    first = engine.up()
    step_lines = [x for x in lines if " s  " in x]
    assert len(step_lines) == len(first.steps)
    for step in first.steps.values():
        assert any(f" {step.op} " in x and x.endswith(f" {step.name}") for x in step_lines)
    # the readiness gate's own progress, from the provider process, as the CLI shows it
    assert any("info: " in x and "ready" in x for x in lines)
    assert engine.checkpoints.writes >= 2
    before = state.stat().st_mtime_ns

    noop = StackEngine(LOCAL, state, config=config, secrets=secrets)
    assert set(noop.up().ops().values()) == {"same"}
    assert noop.checkpoints.writes == 0  # no step changed state: the file stays as it was
    assert state.stat().st_mtime_ns == before


def test_a_replaced_resource_waits_in_pending_deletes_until_its_delete(tmp_path: Path) -> None:
    engine = StackEngine(LOCAL, tmp_path / "state.json")
    old = ResourceState("urn:pulumi:local::databricks-braintrust::T::a", "T", True, "id-1")
    new = ResourceState(old.urn, "T", True, "id-2")
    engine.record(put=old)
    engine.record(put=new, remove=old, pend=old)  # create-before-delete: the old one waits
    saved = StackState.load(tmp_path / "state.json", "databricks-braintrust", "local")
    assert [r.id for r in saved.resources.values()] == ["id-2"]
    assert [r.id for r in saved.pending_deletes] == ["id-1"]
    reloaded = StackEngine(LOCAL, tmp_path / "state.json")
    assert [r.id for r in reloaded.state.pending_deletes] == ["id-1"]
    engine.record(remove=old, unpend=old)  # deleted: the new one stays
    saved = StackState.load(tmp_path / "state.json", "databricks-braintrust", "local")
    assert [r.id for r in saved.resources.values()] == ["id-2"] and saved.pending_deletes == []


def test_the_state_file_is_never_written_through_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("not yours\n")
    state = tmp_path / "state.json"
    state.symlink_to(target)
    StackState("p", "s").save(state)
    assert target.read_text() == "not yours\n"
    assert not state.is_symlink() and json.loads(state.read_text())["resources"] == []
    assert oct(state.stat().st_mode & 0o777) == "0o600"


def test_steps_finishing_together_share_a_write(tmp_path: Path) -> None:
    lock = threading.Lock()
    state = StackState("p", "s")
    writes: list[int] = []

    def snapshot() -> StackState:
        writes.append(len(state.resources))
        time.sleep(0.05)  # a slow disk: the other steps finish meanwhile
        return StackState("p", "s", dict(state.resources))

    cp = Checkpoints(tmp_path / "s.json", lock, snapshot)

    def step(i: int) -> None:
        with lock:
            state.resources[f"u{i}"] = ResourceState(f"urn::u{i}", "T", True)
            seq = cp.changed()
        cp.commit(seq)
        saved = json.loads((tmp_path / "s.json").read_text())
        assert f"urn::u{i}" in {r["urn"] for r in saved["resources"]}  # on disk when commit returns

    threads = [threading.Thread(target=step, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(writes) < 40


REPLACING = Path(__file__).parent / "programs" / "replacing.py"


def _replacing(tmp_path: Path, a: str, fail: bool = False) -> StackEngine:
    stack_file = tmp_path / "Pulumi.pending.yaml"
    stack_file.write_text(f"config:\n  engine-test:a: '{a}'\n  engine-test:fail: '{'yes' if fail else ''}'\n")
    return StackEngine(stack_file, tmp_path / "state.json", program=REPLACING)


def test_a_failed_up_deletes_nothing_and_the_next_up_deletes_what_it_replaced_first(
        tmp_path: Path) -> None:
    first = _replacing(tmp_path, "1").up()
    assert first.ops() == {"a": "create", "b": "create"}

    # `a` is replaced (its new one made first), then `b` fails: as in Pulumi, whose deletes
    # run only once the program ended without an error, the old `a` is not deleted.
    with pytest.raises(EngineError) as failed:
        _replacing(tmp_path, "2", fail=True).up()
    assert failed.value.result is not None
    assert "Delete" not in failed.value.result.methods()
    assert failed.value.result.ops()["a"] == "replace"
    saved = StackState.load(tmp_path / "state.json", "databricks-braintrust", "pending")
    assert [r.id for r in saved.pending_deletes] == ["thing-1"]
    assert {r.name: r.id for r in saved.resources.values() if r.custom}["a"] == "thing-2"

    # The next up deletes it before the program runs (Pulumi's retirePendingDeletes).
    rerun = _replacing(tmp_path, "2").up()
    methods = [c.method for c in rerun.calls if c.method in ("Create", "Update", "Delete")]
    assert methods[0] == "Delete" and methods.count("Delete") == 1, methods
    assert rerun.ops()["b"] == "update"
    saved = StackState.load(tmp_path / "state.json", "databricks-braintrust", "pending")
    assert saved.pending_deletes == []
    assert {r.name: r.id for r in saved.resources.values() if r.custom} == {"a": "thing-2", "b": "thing-b"}
