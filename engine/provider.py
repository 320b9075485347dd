"""The real dynamic-provider process, driven over gRPC the way the Pulumi engine does.

`ProviderProcess` starts `python -m pulumi.dynamic` from the repository root (so providers
pickled by reference re-import from `components/`), reads the port it prints, and speaks the
ResourceProvider protocol: Configure, Check, Diff, Create, Read, Update, Delete. Properties are
serialised with `pulumi.runtime.rpc.serialize_properties` and carry `__provider` as
`pulumi.dynamic.dynamic.serialize_provider` produces it. As the engine does for a provider
that answers `acceptSecrets: false`, secrets are sent as plain values (the engine strips them).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import selectors
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
from google.protobuf import struct_pb2  # type: ignore[import-untyped]
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2
from pulumi.runtime.proto.provider_pb2_grpc import ResourceProviderStub

from components.spec.constants import PROJECT
from engine.forked import ForkedProcess, spawn

ROOT = Path(__file__).resolve().parents[1]
# Fork each provider process from one that has imported the providers already (engine/forked.py):
# the test suite sets it, for speed; everyone else starts `python -m pulumi.dynamic` afresh.
FORK = False
Process = subprocess.Popen[bytes] | ForkedProcess
PROVIDER_KEY = "__provider"
_EXC_LINE = re.compile(r"^[A-Za-z_][\w.]*: ")
_LOG_LINE = re.compile(r"^(info|warning|error): ")


class ProviderCallError(Exception):
    """The provider process answered an RPC with an error; `details` is what a user would see."""

    def __init__(self, method: str, details: str) -> None:
        self.method = method
        self.details = details
        super().__init__(f"{method} failed:\n{details}")

    @property
    def message(self) -> str:
        """The provider's own exception text (the traceback's last lines)."""
        lines = self.details.rstrip().splitlines()
        for i in range(len(lines) - 1, -1, -1):
            if _EXC_LINE.match(lines[i]):
                # the `module.Class: first line` line, plus its continuation lines
                return "\n".join(lines[i:]).split(": ", 1)[1]
        return self.details


def _serialize(props: dict[str, Any]) -> struct_pb2.Struct:
    # Plain values never make the coroutine wait: drive it by hand, no event loop per call (a
    # new loop is a selector and a socket pair, on every Check and Diff of every resource).
    coro = rpc.serialize_properties(props, {})
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()  # it waited on something: run it again on a loop of its own (it has no effects)
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(rpc.serialize_properties(props, {}))
    finally:
        loop.close()


def _deserialize(struct: struct_pb2.Struct) -> dict[str, Any]:
    # Unknowns (a preview's Check) stay the UNKNOWN sentinel, as the engine keeps them.
    return rpc.deserialize_properties(struct, keep_unknowns=True) or {}


def first_line(proc: Process, timeout: float) -> bytes | None:
    """The first line a child process prints on stdout, or None if it exits or stays silent
    past `timeout` (a server announcing its port, say)."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\n" not in buf:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or proc.poll() is not None:
            return None
        if sel.select(remaining):
            buf += os.read(proc.stdout.fileno(), 256)
    return buf.split(b"\n")[0]


def stop_process(proc: Process) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class ProviderProcess:
    """One `python -m pulumi.dynamic` process: four workers, shared by every resource."""

    def __init__(self, env: dict[str, str] | None = None, start_timeout: float = 60.0,
                 on_log: Callable[[str], None] | None = None) -> None:
        """`on_log` gets each `info:`/`warning:`/`error:` line the providers print (pulumi.log
        in a provider process writes there, and the CLI shows them), as it is printed."""
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS_")}
        full_env.update(env or {})
        # No PULUMI_PROJECT: whether the engine exports it to provider plugins is not something
        # to rely on, so the providers read fully qualified config keys and must work without it.
        full_env.pop("PULUMI_PROJECT", None)
        full_env["PYTHONPATH"] = str(ROOT)
        self._stderr = tempfile.TemporaryFile()
        self._stderr_lock = threading.Lock()
        self.proc: Process
        if FORK:
            self.proc = spawn(ROOT, full_env, self._stderr if on_log is None else subprocess.PIPE)
        else:
            self.proc = subprocess.Popen(
                # -u, as Pulumi's own launcher (pulumi-resource-pulumi-python) runs it: the
                # process writes its port without a flush, which a pipe would hold back.
                [sys.executable, "-u", "-m", "pulumi.dynamic"], cwd=ROOT, env=full_env,
                stdout=subprocess.PIPE, stderr=self._stderr if on_log is None else subprocess.PIPE)
        self._tee: threading.Thread | None = None
        if on_log is not None:
            self._tee = threading.Thread(target=self._read_stderr, args=(on_log,), daemon=True,
                                         name="provider-stderr")
            self._tee.start()
        try:
            self.port = self._read_port(start_timeout)
            self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
            grpc.channel_ready_future(self.channel).result(timeout=start_timeout)
        except BaseException:  # never leave a process behind
            stop_process(self.proc)
            self._close_stderr()
            raise
        self.stub = ResourceProviderStub(self.channel)

    def _read_port(self, timeout: float) -> int:
        line = first_line(self.proc, timeout)
        if line is None:
            raise RuntimeError(f"provider process did not print its port:\n{self.stderr()}")
        return int(line)

    def _close_stderr(self) -> None:
        with self._stderr_lock:
            self._stderr.close()

    def _read_stderr(self, on_log: Callable[[str], None]) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            with self._stderr_lock:
                if self._stderr.closed:
                    return
                self._stderr.write(raw)
            line = raw.decode(errors="replace").rstrip()
            if _LOG_LINE.match(line):
                on_log(line)

    def stderr(self) -> str:
        if self._tee is not None and self.proc.poll() is not None:
            self._tee.join(timeout=5)  # what the process printed before it exited
        with self._stderr_lock:
            self._stderr.seek(0)
            text = self._stderr.read().decode(errors="replace")
            self._stderr.seek(0, os.SEEK_END)
        return text

    def kill(self) -> None:
        """SIGKILL, as a crash or a cancelled CI job would: no cleanup, no graceful shutdown."""
        self.proc.kill()
        self.proc.wait()
        self.channel.close()

    def close(self) -> None:
        self.channel.close()
        if self.proc.poll() is not None:  # already killed
            self._close_stderr()
            return
        stop_process(self.proc)
        self._close_stderr()

    def _call(self, method: str, request: Any) -> Any:
        try:
            return getattr(self.stub, method)(request)
        except grpc.RpcError as exc:
            raise ProviderCallError(method, exc.details() or str(exc)) from None

    # ------------------------------------------------------------ the protocol

    def configure(self, config: dict[str, Any], secret_keys: tuple[str, ...] = ()) -> None:
        """Stack config as the engine sends it: namespaced keys, structured values as JSON text,
        secrets wrapped as secrets (the process unwraps them)."""
        args = {}
        for key, value in config.items():
            full = key if ":" in key else f"{PROJECT}:{key}"
            text = value if isinstance(value, str) else json.dumps(value)
            args[full] = rpc.wrap_rpc_secret(text) if key in secret_keys else text
        self._call("Configure", provider_pb2.ConfigureRequest(
            args=_serialize(args), acceptSecrets=True, acceptResources=True))

    def check(self, urn: str, olds: dict[str, Any], news: dict[str, Any]
              ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        resp = self._call("Check", provider_pb2.CheckRequest(
            urn=urn, olds=_serialize(olds), news=_serialize(news)))
        return _deserialize(resp.inputs), [(f.property, f.reason) for f in resp.failures]

    def diff(self, id_: str, urn: str, olds: dict[str, Any], news: dict[str, Any]
             ) -> provider_pb2.DiffResponse:
        return self._call("Diff", provider_pb2.DiffRequest(
            id=id_, urn=urn, olds=_serialize(olds), news=_serialize(news)))

    def create(self, urn: str, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        resp = self._call("Create", provider_pb2.CreateRequest(urn=urn,
                                                               properties=_serialize(props)))
        return resp.id, _deserialize(resp.properties)

    def read(self, id_: str, urn: str, props: dict[str, Any], inputs: dict[str, Any]
             ) -> tuple[str, dict[str, Any]]:
        resp = self._call("Read", provider_pb2.ReadRequest(
            id=id_, urn=urn, properties=_serialize(props), inputs=_serialize(inputs)))
        return resp.id, _deserialize(resp.properties)

    def read_with_inputs(self, id_: str, urn: str, props: dict[str, Any], inputs: dict[str, Any]
                         ) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
        """Read, with the inputs the provider returned for later diffs (None when it kept them)."""
        resp = self._call("Read", provider_pb2.ReadRequest(
            id=id_, urn=urn, properties=_serialize(props), inputs=_serialize(inputs)))
        ins = _deserialize(resp.inputs) if resp.HasField("inputs") else None
        return resp.id, _deserialize(resp.properties), ins

    def update(self, id_: str, urn: str, olds: dict[str, Any], news: dict[str, Any]
               ) -> dict[str, Any]:
        resp = self._call("Update", provider_pb2.UpdateRequest(
            id=id_, urn=urn, olds=_serialize(olds), news=_serialize(news)))
        return _deserialize(resp.properties)

    def delete(self, id_: str, urn: str, props: dict[str, Any]) -> None:
        self._call("Delete", provider_pb2.DeleteRequest(id=id_, urn=urn,
                                                        properties=_serialize(props)))
