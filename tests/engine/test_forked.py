"""The test suite's provider processes are forks of a zygote that imported the providers once
(engine/forked.py): each is a process of its own, with the environment it was given, that
answers the protocol, dies when killed, and outlives nothing it should not."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest
from pulumi.dynamic import CreateResult, ResourceProvider

import engine.provider
from engine.forked import ForkedProcess, Zygote
from engine.provider import ROOT, ProviderProcess, first_line
from testing.emulator import EmulatorClient
from testing.provider import provider_string
from testing.stacks import emulator_config

LOCAL = ROOT / "stacks" / "Pulumi.local.yaml"


def test_forked_provider_processes_are_each_a_process_of_their_own(
        emulator: EmulatorClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine.provider, "FORK", True)
    config, secrets = emulator_config(LOCAL, emulator)
    first, second = ProviderProcess(), ProviderProcess()
    try:
        assert isinstance(first.proc, ForkedProcess) and isinstance(second.proc, ForkedProcess)
        assert len({first.proc.pid, second.proc.pid, os.getpid()}) == 3
        first.kill()
        assert first.proc.poll() is not None
        second.configure(config, secret_keys=tuple(secrets))  # the other one still answers
        assert second.proc.poll() is None
    finally:
        first.close()
        second.close()
    assert second.proc.poll() is not None  # close stops it


class EnvProvider(ResourceProvider):
    """Answers what the provider process's environment holds, as a provider would read it."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult("env", {"mark": os.environ.get("FORK_TEST_MARK", "unset"),
                                    "databricks": sorted(k for k in os.environ if k.startswith("DATABRICKS_"))})


def test_a_fork_runs_with_the_environment_it_was_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine.provider, "FORK", True)
    # In this process, not the child's: a DATABRICKS_ variable the engine never passes on.
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-not-for-the-provider")
    urn = "urn:pulumi:s::p::T::n"
    marks = []
    for mark in ("one", "two"):
        proc = ProviderProcess(env={"FORK_TEST_MARK": mark})
        try:
            checked, _ = proc.check(urn, {}, {"__provider": provider_string(EnvProvider)})
            _, outs = proc.create(urn, checked)
        finally:
            proc.close()
        marks.append(outs["mark"])
        assert outs["databricks"] == []
    assert marks == ["one", "two"]
    assert "FORK_TEST_MARK" not in os.environ


def test_a_forked_child_is_the_zygotes_and_the_zygote_ends_with_its_owner() -> None:
    zygote = Zygote(ROOT)
    try:
        child = zygote.spawn({**os.environ, "PYTHONPATH": str(ROOT)}, subprocess.PIPE)
        line = first_line(child, 60)
        assert line is not None and line.isdigit()  # the port pulumi.dynamic prints
        with open(f"/proc/{child.pid}/status") as status:
            ppid = next(x for x in status if x.startswith("PPid:")).split()[1]
        assert int(ppid) == zygote._proc.pid and child.pid != os.getpid()
        child.terminate()
        child.wait(timeout=30)
        assert child.poll() is not None
    finally:
        zygote.close()
    assert zygote._proc.poll() is not None  # closing our end of the socket ends it


@pytest.mark.parametrize("fork", [False, True], ids=["real", "forked"])
def test_a_provider_process_prints_its_port_without_pythonunbuffered(
        monkeypatch: pytest.MonkeyPatch, fork: bool) -> None:
    # pulumi.dynamic writes its port without a flush: without -u a pipe holds it back, and the
    # engine would wait for it until its start timeout (a machine without PYTHONUNBUFFERED).
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
    monkeypatch.setattr(engine.provider, "FORK", fork)
    proc = ProviderProcess(start_timeout=20)
    try:
        assert proc.port > 0
    finally:
        proc.close()
