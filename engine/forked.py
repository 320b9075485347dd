"""Provider processes forked from one that has already imported them: the test suite's speed.

A `python -m pulumi.dynamic` process spends about 2 s of CPU importing databricks-sdk, pulumi
and the project's providers before it serves its first call, and the test suite starts over a
hundred of them (one per engine command, as the Pulumi CLI starts one per `pulumi up`): half of
its CPU. `Zygote` is a process that imports all that once and waits; each provider process is
then a fork of it that runs pulumi/dynamic/__main__.py as `python -m` would (`runpy`), with
its own environment, stdout and stderr: the same module, the same gRPC server, no state shared
with any other (the zygote never runs provider code, so what each child starts from is what a
fresh import leaves). The Pulumi CLI, the bundled engine and every child process (make,
`python -m testing.engine`) start real `python -m pulumi.dynamic` processes; only a caller that
sets `engine.provider.FORK` (the test suite, tests/conftest.py) uses this.

The zygote and its children are in the caller's process group, so killing that group kills
them as it would real children. The zygote exits when the caller closes its end of the socket
(or dies). Linux only (pidfd, SCM_RIGHTS over a SOCK_SEQPACKET socket pair).
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

# Runs in the zygote: `python -c`, so no package of ours is imported before it says so. gRPC is
# imported but never used before the fork (no channel, no server, no thread): the child starts
# its server as a fresh process would.
_ZYGOTE = r"""
import json, os, runpy, signal, socket, sys
import dill, grpc, pulumi.dynamic, pulumi.runtime.proto.provider_pb2_grpc
import components.providers
import pkgutil, importlib
for mod in pkgutil.iter_modules(components.providers.__path__):
    importlib.import_module("components.providers." + mod.name)
sock = socket.socket(fileno=int(sys.argv[1]))
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
while True:
    try:
        msg, fds, _, _ = socket.recv_fds(sock, 1 << 20, 2)
    except OSError:
        os._exit(0)
    if not msg:
        os._exit(0)
    env = json.loads(msg)
    pid = os.fork()
    if pid == 0:
        try:
            sock.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.dup2(fds[0], 1)
            os.dup2(fds[1], 2)
            for fd in fds:
                os.close(fd)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.close(null)
            os.environ.clear()
            os.environ.update(env)
            sys.argv = [sys.executable, "-m", "pulumi.dynamic"]
            runpy.run_module("pulumi.dynamic", run_name="__main__", alter_sys=True)
        finally:
            os._exit(0)
    for fd in fds:
        os.close(fd)
    sock.send(str(pid).encode())
"""


class ForkedProcess:
    """What `ProviderProcess` uses of a `subprocess.Popen`, for a child of the zygote: it is not
    this process's child, so its exit is watched through a pidfd (its exit status is unknown:
    `returncode` is -1 once it has exited)."""

    def __init__(self, pid: int, stdout: IO[bytes], stderr: IO[bytes] | None) -> None:
        self.pid = pid
        self._pidfd = os.pidfd_open(pid)
        self.stdout = stdout
        self.stderr = stderr
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and select.select([self._pidfd], [], [], 0)[0]:
            self._exited()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if not select.select([self._pidfd], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(["pulumi.dynamic"], timeout or 0)
            self._exited()
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            try:
                signal.pidfd_send_signal(self._pidfd, sig)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def _exited(self) -> None:
        self.returncode = -1
        os.close(self._pidfd)
        if self.stdout is not None:
            self.stdout.close()


class Zygote:
    """One per process that asked for one; started on first use, stopped at exit."""

    def __init__(self, root: Path) -> None:
        self._sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS_")}
        env["PYTHONPATH"] = str(root)
        self._proc = subprocess.Popen([sys.executable, "-c", _ZYGOTE, str(theirs.fileno())],
                                      pass_fds=(theirs.fileno(),), cwd=root, env=env)
        theirs.close()
        self._lock = threading.Lock()

    def spawn(self, env: dict[str, str], stderr: int | IO[bytes]) -> ForkedProcess:
        """A provider process with `env`; its stderr to the file given, or (subprocess.PIPE) to
        a pipe the returned process reads."""
        out_r, out_w = os.pipe()
        if stderr == subprocess.PIPE:
            err_r, err_w = os.pipe()
        else:
            assert not isinstance(stderr, int)
            err_r, err_w = -1, os.dup(stderr.fileno())
        try:
            with self._lock:
                socket.send_fds(self._sock, [json.dumps(env).encode()], [out_w, err_w])
                answer = self._sock.recv(64)
        finally:
            os.close(out_w)
            os.close(err_w)
        if not answer:
            os.close(out_r)
            if err_r >= 0:
                os.close(err_r)
            raise RuntimeError("the provider zygote exited")
        return ForkedProcess(int(answer), os.fdopen(out_r, "rb"),
                             os.fdopen(err_r, "rb") if err_r >= 0 else None)

    def close(self) -> None:
        self._sock.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


_zygote: Zygote | None = None
_zygote_lock = threading.Lock()


def zygote(root: Path) -> Zygote:
    global _zygote
    with _zygote_lock:
        if _zygote is None or _zygote._proc.poll() is not None:
            _zygote = Zygote(root)
            atexit.register(_zygote.close)
        return _zygote


def spawn(root: Path, env: dict[str, str], stderr: Any) -> ForkedProcess:
    return zygote(root).spawn(env, stderr)
