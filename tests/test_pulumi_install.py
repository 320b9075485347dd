"""`make up` brings its own Pulumi CLI: scripts/install_pulumi.py against a local HTTP server
serving a fake release in Pulumi's layout (never a real outside address).

A good archive is verified and installed, then found again without a download; a checksum
mismatch, no network (a closed loopback port) and an unsupported platform each stop with one
line saying what happened and what to do; `make up STACK=local` with no CLI on PATH installs
it and runs it.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import importlib.util
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest

from tests.test_make_up import RECORD  # the PAT record the stand-in CLI prints

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "install_pulumi.py"
VERSION = next(line.split("==")[1].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
               if line.startswith("pulumi=="))
ARCHIVE = "pulumi-v{v}-{os}-{arch}.tar.gz"


def _installer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("install_pulumi", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


INSTALLER = _installer()
OS_NAME, ARCH = INSTALLER.platform_names()

FAKE_CLI = """#!/usr/bin/env bash
echo "$*" >> "${FAKE_PULUMI_LOG:-/dev/null}"
if [[ "${1:-}" == version ]]; then echo "v@VERSION@"; fi
"""


def _tarball(files: dict[str, str | bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class Release:
    url: str
    root: Path
    requests: list[str] = field(default_factory=list)

    def publish(self, cli: str = FAKE_CLI, checksum: str | None = None,
                extra: dict[str, str | bytes] | None = None) -> None:
        archive = ARCHIVE.format(v=VERSION, os=OS_NAME, arch=ARCH)
        files: dict[str, str | bytes] = {"pulumi/pulumi": cli.replace("@VERSION@", VERSION),
                 "pulumi/pulumi-language-python": "#!/bin/sh\n", **(extra or {})}
        data = _tarball(files)
        (self.root / archive).write_bytes(data)
        digest = checksum or hashlib.sha256(data).hexdigest()
        other = hashlib.sha256(b"another archive").hexdigest()
        (self.root / f"pulumi-{VERSION}-checksums.txt").write_text(
            f"{other}  pulumi-v{VERSION}-windows-x64.zip\n{digest}  {archive}\n")


@pytest.fixture
def release(tmp_path: Path) -> Iterator[Release]:
    root = tmp_path / "release"
    root.mkdir()
    state = Release(url="", root=root)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    state.url = f"http://127.0.0.1:{server.server_address[1]}/releases/sdk"
    (root / "releases").mkdir()
    (root / "releases" / "sdk").mkdir()
    state.root = root / "releases" / "sdk"
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield state
    server.shutdown()
    server.server_close()


def _bare_path(tmp_path: Path) -> str:
    """A PATH with the tools make and the scripts need, and no pulumi."""
    bin_dir = tmp_path / "tools"
    bin_dir.mkdir(exist_ok=True)
    # touch: `make up` runs `make venv`, which stamps .venv/.installed whenever a requirements file
    # is newer than the stamp (a fresh checkout, a pull)
    for tool in ("make", "bash", "sh", "env", "dirname", "cat", "mkdir", "chmod", "rm", "tr", "grep", "tail",
                 "sleep", "nohup", "sed", "touch", "mktemp", "head", "find"):
        found = shutil.which(tool)
        assert found, f"{tool} is needed"
        if not (bin_dir / tool).exists():
            (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def _env(tmp_path: Path, url: str, **extra: str) -> dict[str, str]:
    env = {"PATH": _bare_path(tmp_path), "HOME": str(tmp_path / "home"), "PULUMI_RELEASES_URL": url,
           "PULUMI_INSTALL_DIR": str(tmp_path / "venv-bin"), **extra}
    return env


def _install(tmp_path: Path, url: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT)], env=_env(tmp_path, url), capture_output=True, text=True,
                          timeout=60)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_good_release_is_verified_installed_and_found_again_without_a_download(tmp_path, release) -> None:
    release.publish()
    done = _install(tmp_path, release.url)
    assert done.returncode == 0, done.stderr
    target = tmp_path / "venv-bin"
    assert done.stdout.strip() == str(target)
    assert f"installing v{VERSION}" in done.stderr and f"{OS_NAME}-{ARCH}" in done.stderr
    assert os.access(target / "pulumi", os.X_OK) and os.access(target / "pulumi-language-python", os.X_OK)
    version = subprocess.run([str(target / "pulumi"), "version"], capture_output=True, text=True, timeout=10)
    assert version.stdout.strip() == f"v{VERSION}"
    assert sorted(release.requests) == sorted([f"/releases/sdk/pulumi-{VERSION}-checksums.txt",
                                               f"/releases/sdk/{ARCHIVE.format(v=VERSION, os=OS_NAME, arch=ARCH)}"])

    again = _install(tmp_path, release.url)
    assert again.returncode == 0 and again.stdout.strip() == str(target)
    assert len(release.requests) == 2  # already installed: nothing downloaded


def test_a_large_download_says_how_far_it_got(tmp_path, release) -> None:
    release.publish(extra={"pulumi/pulumi-language-big": os.urandom(6 << 20)})  # random: gzip keeps it 6 MB
    done = _install(tmp_path, release.url)
    assert done.returncode == 0, done.stderr
    progress = [line for line in done.stderr.splitlines() if " MB" in line]
    assert 1 <= len(progress) <= 4 and progress[-1].endswith("of 6 MB")


def test_a_checksum_mismatch_installs_nothing_and_says_so_in_one_line(tmp_path, release) -> None:
    release.publish(checksum="0" * 64)
    done = _install(tmp_path, release.url)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert "checksum mismatch" in last and "install the Pulumi CLI by hand" in last
    assert [line for line in done.stderr.splitlines() if line.startswith("pulumi:")] == [last]
    assert not (tmp_path / "venv-bin" / "pulumi").exists()
    assert done.stdout == ""


def test_no_network_is_one_line_saying_what_to_do(tmp_path) -> None:
    done = _install(tmp_path, f"http://127.0.0.1:{_closed_port()}/releases/sdk")
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert "cannot download the Pulumi CLI" in line
    assert "install it by hand" in line and "PATH" in line and "PULUMI_HOME" in line
    assert not (tmp_path / "venv-bin" / "pulumi").exists()


def test_a_release_without_this_platform_in_its_checksums_is_one_line(tmp_path, release) -> None:
    release.publish()
    (release.root / f"pulumi-{VERSION}-checksums.txt").write_text("")
    done = _install(tmp_path, release.url)
    assert done.returncode == 1
    assert "lists no pulumi-v" in done.stderr.strip().splitlines()[-1]


def test_an_archive_writing_outside_its_folder_is_not_followed(tmp_path, release) -> None:
    release.publish(extra={"pulumi/../../escaped": "x", "pulumi/sub/nested": "x"})
    done = _install(tmp_path, release.url)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "venv-bin" / "sub").exists()


def test_pulumi_on_path_or_in_pulumi_home_is_used_as_it_is(tmp_path) -> None:
    home = tmp_path / "pulumi-home"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "pulumi").write_text("#!/bin/sh\n")
    (home / "bin" / "pulumi").chmod(0o755)
    closed = f"http://127.0.0.1:{_closed_port()}"
    env = _env(tmp_path, closed, PULUMI_HOME=str(home))
    done = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == str(home / "bin")
    env = _env(tmp_path, closed, PATH=f"{home / 'bin'}:{_bare_path(tmp_path)}")
    done = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == str(home / "bin")


@pytest.mark.parametrize(("system", "machine", "expected"), [
    ("Linux", "x86_64", ("linux", "x64")), ("Linux", "aarch64", ("linux", "arm64")),
    ("Darwin", "arm64", ("darwin", "arm64")), ("Darwin", "x86_64", ("darwin", "x64"))])
def test_os_and_architecture_map_to_pulumis_names(system, machine, expected) -> None:
    assert INSTALLER.platform_names(system, machine) == expected


@pytest.mark.parametrize(("system", "machine", "says"), [
    ("Windows", "AMD64", "winget install pulumi"), ("Linux", "armv7l", "no CLI for Linux/armv7l"),
    ("FreeBSD", "amd64", "no CLI for FreeBSD/amd64")])
def test_windows_and_unsupported_platforms_say_how_to_install_by_hand(system, machine, says) -> None:
    with pytest.raises(INSTALLER.InstallError) as info:
        INSTALLER.platform_names(system, machine)
    message = str(info.value)
    assert says in message and "https://www.pulumi.com/docs/install/" in message and "\n" not in message


def test_the_version_is_the_pinned_sdks(tmp_path) -> None:
    assert INSTALLER.pinned_version(ROOT / "requirements.txt") == VERSION
    loose = tmp_path / "requirements.txt"
    loose.write_text("pulumi>=3\n")
    with pytest.raises(INSTALLER.InstallError, match="pins no `pulumi==X.Y.Z`"):
        INSTALLER.pinned_version(loose)


def test_make_pulumi_prints_the_folder_for_ci(tmp_path, release) -> None:
    release.publish()
    done = subprocess.run(["make", "-s", "--no-print-directory", "pulumi", f"PYTHON={sys.executable}"], cwd=ROOT,
                          env=_env(tmp_path, release.url), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "venv-bin")


FAKE_PULUMI_UP = r'''#!/usr/bin/env bash
# The installed stand-in for the CLI: records its calls; `stack output` answers a PAT record.
set -euo pipefail
echo "$*" >> "$FAKE_PULUMI_LOG"
if [[ "$1 $2" == "stack output" ]]; then
  sed -e "s|@HOST@|$DATABRICKS_HOST|" -e "s|@TOKEN@|$DATABRICKS_TOKEN|" "$FAKE_RECORD"
fi
'''


def test_make_up_without_a_cli_installs_it_from_the_release_and_runs_it(tmp_path, release) -> None:
    release.publish(cli=FAKE_PULUMI_UP)
    (tmp_path / "record.json").write_text(json.dumps(RECORD))
    port, emu, log = _closed_port(), tmp_path / "emu", tmp_path / "pulumi.log"
    env = _env(tmp_path, release.url, FAKE_PULUMI_LOG=str(log), FAKE_RECORD=str(tmp_path / "record.json"),
               EMULATOR_DIR=str(emu), EMULATOR_PORT=str(port), PULUMI_STATE_DIR=str(tmp_path / "state"),
               PY=sys.executable)
    try:
        done = subprocess.run(["make", "--no-print-directory", "up", "STACK=local"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=180)
    finally:
        subprocess.run([str(ROOT / "scripts" / "emulator.sh"), "stop"], env={**os.environ, **env}, cwd=ROOT,
                       capture_output=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert os.access(tmp_path / "venv-bin" / "pulumi", os.X_OK)
    assert log.read_text().splitlines()[:2] == ["stack select --create local", "up --yes --stack local"]
    assert "1 of 1 model(s) answered" in done.stdout
    assert (emu / "admin-token").read_text().strip() not in done.stdout + done.stderr
