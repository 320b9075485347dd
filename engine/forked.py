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
from typing import IO

# The environment at import (tests/conftest.py imports this before any test changes it): the
# zygote starts from it, so what is read at import time and interpreter settings come from it.
_BASE_ENV = dict(os.environ)
SPAWN_TIMEOUT = 60.0  # seconds for the zygote to answer a spawn

# Runs in the zygote: `python -c`, so no package of ours is imported before it says so. gRPC is
# imported but never used before the fork (no channel, no server, no thread): the child starts
# its server as a fresh process would.
_ZYGOTE = r"""
import json, os, runpy, socket, sys, traceback
import dill, grpc, pulumi.dynamic, pulumi.runtime.proto.provider_pb2_grpc
import components.providers
import pkgutil, importlib
for mod in pkgutil.iter_modules(components.providers.__path__):
    importlib.import_module("components.providers." + mod.name)
sock = socket.socket(fileno=int(sys.argv[1]))
while True:
    try:  # children that exited: each stays a zombie until here, so its pid is never reused
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass
    try:
        msg, fds, _, _ = socket.recv_fds(sock, 1 << 20, 2)
    except OSError:
        os._exit(0)
    if not msg:
        os._exit(0)
    env = json.loads(msg)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            sock.close()
            os.dup2(fds[0], 1)
            os.dup2(fds[1], 2)
            for fd in fds:
                os.close(fd)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.close(null)
            os.environ.clear()
            os.environ.update(env)
            sys.argv = ["-m"]  # what `python -m` leaves before the module sets its own path
            runpy.run_module("pulumi.dynamic", run_name="__main__", alter_sys=True)
        except BaseException:  # a crash at start says why, as a real process would
            traceback.print_exc()
            code = 1
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass
            os._exit(code)
    pidfd = os.pidfd_open(pid)  # before the child can be reaped: the caller's handle on it
    for fd in fds:
        os.close(fd)
    socket.send_fds(sock, [str(pid).encode()], [pidfd])
    os.close(pidfd)
"""


class ForkedProcess:
    """What `ProviderProcess` uses of a `subprocess.Popen`, for a child of the zygote: it is not
    this process's child, so its exit is watched through a pidfd the zygote opened before the
    child could exit (its exit status is unknown: `returncode` is -1 once it has exited)."""

    def __init__(self, pid: int, pidfd: int, stdout: IO[bytes], stderr: IO[bytes] | None) -> None:
        self.pid = pid
        self._pidfd = pidfd
        self._lock = threading.Lock()
        self.stdout = stdout
        self.stderr = stderr
        self.returncode: int | None = None

    def _ended(self, timeout: float | None) -> bool:
        with self._lock:
            if self.returncode is not None:
                return True
            poller = select.poll()
            poller.register(self._pidfd, select.POLLIN)
            if not poller.poll(None if timeout is None else int(timeout * 1000)):
                return False
            self.returncode = -1
            os.close(self._pidfd)
            self._pidfd = -1
        return True

    def poll(self) -> int | None:
        self._ended(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended(timeout):
            raise subprocess.TimeoutExpired(["pulumi.dynamic"], timeout or 0)
        return -1

    def send_signal(self, sig: int) -> None:
        with self._lock:
            if self.returncode is None:
                try:  # a pidfd names this process only: never another that reused its pid
                    signal.pidfd_send_signal(self._pidfd, sig)
                except ProcessLookupError:
                    pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def __del__(self) -> None:
        if self._pidfd >= 0:
            os.close(self._pidfd)


class Zygote:
    """One per process that asked for one; started on first use, stopped at exit."""

    def __init__(self, root: Path) -> None:
        self._sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._sock.settimeout(SPAWN_TIMEOUT)
        env = {k: v for k, v in _BASE_ENV.items() if not k.startswith("DATABRICKS_")}
        env["PYTHONPATH"] = str(root)
        self._proc = subprocess.Popen([sys.executable, "-u", "-c", _ZYGOTE, str(theirs.fileno())],
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
        answer, fds = b"", list[int]()
        try:
            with self._lock:
                socket.send_fds(self._sock, [json.dumps(env).encode()], [out_w, err_w])
                answer, fds, _, _ = socket.recv_fds(self._sock, 64, 1)
        except OSError:
            pass  # the zygote is gone or stuck: said below
        finally:
            os.close(out_w)
            os.close(err_w)
        if not answer or len(fds) != 1:
            for fd in (out_r, err_r, *fds):
                if fd >= 0:
                    os.close(fd)
            self.close()
            raise RuntimeError("the provider zygote did not answer (engine/forked.py)")
        return ForkedProcess(int(answer), fds[0], os.fdopen(out_r, "rb"),
                             os.fdopen(err_r, "rb") if err_r >= 0 else None)

    def close(self) -> None:
        atexit.unregister(self.close)
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
            if _zygote is not None:
                _zygote.close()
            _zygote = Zygote(root)
            atexit.register(_zygote.close)
        return _zygote


def spawn(root: Path, env: dict[str, str], stderr: int | IO[bytes]) -> ForkedProcess:
    return zygote(root).spawn(env, stderr)
