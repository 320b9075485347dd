"""Careless environments (issue 22): files the project writes never follow a symlink; `make`
targets never paste STACK into a recipe; a stack name never reads as an option."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from components.files import replacing, write_file

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- files


def test_writing_through_a_symlink_replaces_the_link_and_leaves_its_target_alone(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    victim.chmod(0o644)
    link = tmp_path / "out.json"
    link.symlink_to(victim)
    write_file(link, "{}\n")
    assert victim.read_text() == "precious\n"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert not link.is_symlink() and link.read_text() == "{}\n"
    assert stat.S_IMODE(link.stat().st_mode) == 0o600


def test_a_dangling_symlink_is_replaced_not_created_through(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "created"
    (tmp_path / "elsewhere").mkdir()
    link = tmp_path / "state.json"
    link.symlink_to(target)
    write_file(link, b"x", mode=0o640)
    assert not target.exists()
    assert link.read_bytes() == b"x" and stat.S_IMODE(link.stat().st_mode) == 0o640


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), replacing(path) as f:
        f.write("half")
        raise RuntimeError("stop")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_the_mode_is_private_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        write_file(tmp_path / "outputs.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "outputs.json").stat().st_mode) == 0o600


def test_engine_state_save_replaces_a_symlink(tmp_path: Path) -> None:
    from testing.engine.state import StackState

    victim = tmp_path / "victim"
    victim.write_text("precious")
    link = tmp_path / "stack.json"
    link.symlink_to(victim)
    StackState("p", "s").save(link)
    assert victim.read_text() == "precious" and not link.is_symlink()
    assert json.loads(link.read_text())["stack"] == "s"


def test_record_files_are_git_ignored_and_the_docs_write_them_outside_the_tree() -> None:
    assert "provider.json" in (ROOT / ".gitignore").read_text().splitlines()
    for doc in ("README.md", "docs/gitops.md"):
        text = (ROOT / doc).read_text()
        assert "> provider.json" not in text, doc  # never `... --show-secrets > provider.json` in the tree


# ---------------------------------------------------------------- make and stack names


def _make(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "EMULATOR_DIR": str(tmp_path / "emu"),
           "PULUMI_INSTALL_DIR": str(tmp_path / "bin"), "PULUMI_RELEASES_URL": "http://127.0.0.1:9/none"}
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("target", ["render", "up", "down"])
@pytest.mark.parametrize("shape", ['x;touch {m}', 'x"; touch {m}; echo "', "x'; touch {m}; echo '",
                                   "$(shell touch {m})", "`touch {m}`", "$$(touch {m})"])
def test_make_never_runs_a_command_pasted_into_stack(tmp_path: Path, target: str, shape: str) -> None:
    marker = tmp_path / "pwned"
    done = _make(tmp_path, target, "STACK=" + shape.format(m=marker))
    assert done.returncode != 0
    assert not marker.exists(), done.stderr
    assert not (tmp_path / "emu").exists()  # refused before anything was set up


@pytest.mark.parametrize("target", ["up", "down"])
def test_make_up_refuses_a_stack_name_that_reads_as_an_option(tmp_path: Path, target: str) -> None:
    done = _make(tmp_path, target, "STACK=--help")
    assert done.returncode != 0
    assert "is not a stack name" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "emu").exists()


def test_a_stack_file_whose_name_starts_with_a_dash_fails_validate_and_render(tmp_path: Path) -> None:
    good = (ROOT / "stacks").glob("Pulumi.*.yaml")
    text = next(iter(sorted(good))).read_text()
    (tmp_path / "Pulumi.--help.yaml").write_text(text)
    cmd = [sys.executable, "-m", "components"]
    validate = subprocess.run([*cmd, "validate", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert validate.returncode == 1 and "which Pulumi refuses" in validate.stdout + validate.stderr
    render = subprocess.run([*cmd, "render", "--", str(tmp_path / "Pulumi.--help.yaml")], cwd=ROOT,
                            capture_output=True, text=True)
    assert render.returncode == 1 and "usage:" not in render.stdout + render.stderr


def test_the_pull_request_workflow_renders_each_stack_after_a_double_dash() -> None:
    text = (ROOT / ".github" / "workflows" / "pr.yml").read_text()
    assert 'components render -- "$stack"' in text


def test_the_ci_stack_matrix_refuses_a_stack_name_that_reads_as_an_option(tmp_path: Path) -> None:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "promotion.txt").write_text("*\n")
    (tmp_path / "stacks" / "Pulumi.dev.yaml").write_text("config: {}\n")
    (tmp_path / "stacks" / "Pulumi.--help.yaml").write_text("config: {}\n")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "stack_matrix.py"), "--root", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "'--help'" in done.stderr and done.stdout == ""


# ---------------------------------------------------------------- stack files: map keys and Unicode

import copy  # noqa: E402
import unicodedata  # noqa: E402

import yaml  # noqa: E402

from components.spec import PROJECT, StackError, check_across, load_stack_file  # noqa: E402

DEV = yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())
PAT = "dapi" + "ab" * 16  # built at run time: no real-looking token in a tracked file
BT_KEY = "sk-" + "Zq" * 12


def _write(tmp_path: Path, config: dict, name: str = "dev") -> Path:
    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump({"config": config}, allow_unicode=True))
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(StackError) as info:
        load_stack_file(path)
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize("where", ["stack", "endpoint"])
@pytest.mark.parametrize("key", [PAT, BT_KEY, f"owner-{PAT}"])
def test_a_tag_key_holding_a_credential_is_refused_and_never_shown(tmp_path: Path, where: str, key: str) -> None:
    config = copy.deepcopy(DEV["config"])
    if where == "stack":
        config.setdefault(f"{PROJECT}:tags", {})[key] = "x"
    else:
        config[f"{PROJECT}:endpoints"][0].setdefault("tags", {})[key] = "x"
    path = _write(tmp_path, config)
    found = _problems(path)
    assert any("credential" in p for p in found), found
    assert all(PAT not in p and BT_KEY not in p for p in found), found
    cmd = [sys.executable, "-m", "components"]
    for args in (["validate", str(path)], ["render", "--", str(path)]):
        done = subprocess.run([*cmd, *args], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 1 and PAT not in done.stdout + done.stderr and BT_KEY not in done.stdout + done.stderr


def _nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def test_tag_keys_that_differ_only_in_composed_form_are_refused(tmp_path: Path) -> None:
    config = copy.deepcopy(DEV["config"])
    config[f"{PROJECT}:tags"] = {**config.get(f"{PROJECT}:tags", {}), "équipe": "a", _nfd("équipe"): "b"}
    found = _problems(_write(tmp_path, config))
    assert any("composed against decomposed" in p for p in found), found


def test_an_endpoint_tag_key_spelled_unlike_the_stacks_is_refused(tmp_path: Path) -> None:
    config = copy.deepcopy(DEV["config"])
    config[f"{PROJECT}:tags"] = {**config.get(f"{PROJECT}:tags", {}), "équipe": "a"}
    config[f"{PROJECT}:endpoints"][0]["tags"] = {_nfd("équipe"): "b"}
    found = _problems(_write(tmp_path, config))
    assert any("composed against decomposed" in p for p in found), found
    config[f"{PROJECT}:endpoints"][0]["tags"] = {"équipe": "b"}  # the same spelling overrides, as before
    load_stack_file(_write(tmp_path, config))


def test_endpoint_names_that_differ_only_in_composed_form_are_refused(tmp_path: Path) -> None:
    config = copy.deepcopy(DEV["config"])
    endpoints = config[f"{PROJECT}:endpoints"]
    first = copy.deepcopy(endpoints[0])
    first["name"], second = "bt-café", copy.deepcopy(endpoints[0])
    second["name"] = _nfd("bt-café")
    config[f"{PROJECT}:endpoints"] = [first, second]
    found = _problems(_write(tmp_path, config))
    # Endpoint names are ASCII (letters, digits, '-', '_'), so no two can collide in NFC: both
    # spellings are refused by that rule, at each endpoint.
    assert sum("may only hold letters, digits" in p for p in found) == 2, found


def test_secret_names_across_stacks_compare_in_nfc(tmp_path: Path) -> None:
    stacks = []
    for name, secret in (("dev", "databricks-équipe"), ("staging", _nfd("databricks-équipe"))):
        config = copy.deepcopy(DEV["config"])
        config[f"{PROJECT}:braintrust"] = {**config[f"{PROJECT}:braintrust"], "secret_name": secret}
        stacks.append(load_stack_file(_write(tmp_path, config, name)))
    problems = check_across(stacks)
    assert len(problems) == 1 and "composed against decomposed" in str(problems[0])


def test_names_are_compared_in_nfc_but_sent_as_written(tmp_path: Path) -> None:
    config = copy.deepcopy(DEV["config"])
    config[f"{PROJECT}:tags"] = {**config.get(f"{PROJECT}:tags", {}), _nfd("équipe"): "a"}
    stack = load_stack_file(_write(tmp_path, config))
    assert _nfd("équipe") in stack.spec.tags  # never rewritten: a deployed stack sees no write


def test_schema_output_replaces_a_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    link = tmp_path / "stack.schema.json"
    link.symlink_to(victim)
    done = subprocess.run([sys.executable, "-m", "components", "schema", "--output", str(link)], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert victim.read_text() == "precious" and not link.is_symlink()
    assert json.loads(link.read_text())["type"] == "object"


def test_the_foreground_emulator_writes_its_pid_file_beside_a_symlink_not_through_it(tmp_path: Path) -> None:
    import os
    import socket
    import sys
    import time

    emu = tmp_path / "emu"
    emu.mkdir(mode=0o700)
    target = tmp_path / "target"
    target.write_text("keep\n")
    (emu / "emulator.pid").symlink_to(target)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "EMULATOR_DIR": str(emu), "EMULATOR_PORT": str(port), "PY": sys.executable}
    proc = subprocess.Popen([str(ROOT / "scripts" / "emulator.sh"), "run"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        pid_file = emu / "emulator.pid"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (pid_file.is_symlink() or not pid_file.exists()):
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        assert not pid_file.is_symlink() and pid_file.read_text().strip() == str(proc.pid)
        assert target.read_text() == "keep\n"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
