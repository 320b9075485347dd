"""The readiness gate through the real provider process: its deadline holds whatever the
workspace answers, and when it gives up it reports every failed and every pending endpoint."""

from __future__ import annotations

import time

import pytest

from components.providers._client import POLL_GRACE
from components.providers.endpoint import Endpoint, EndpointProvider
from components.providers.readiness import EndpointsReady, EndpointsReadyProvider
from testing.provider import Engine, ProviderCallError, ProviderProcess
from tests.lifecycle.conftest import Target
from tests.lifecycle.test_lifecycle import endpoint_inputs

# The bound: the gate returns no later than its deadline plus this.
SLACK = 10.0


def _up(engine: Engine, target: Target, base: str) -> tuple[str, str]:
    inputs = endpoint_inputs(target, base=base)
    outs = engine.register(Endpoint, EndpointProvider, base, inputs).outputs
    return inputs["name"], outs["revision"]


def _gate(engine: Engine, endpoints: dict[str, str], timeout: float) -> object:
    return engine.register(EndpointsReady, EndpointsReadyProvider, "ready",
                           {"endpoints": endpoints, "timeout_seconds": timeout})


def test_gate_returns_by_its_deadline_under_a_stream_of_503s(target: Target,
                                                             engine: Engine) -> None:
    target.needs_emulator()
    target.emulator.set_ready_after(3600)
    endpoints = dict([_up(engine, target, "slow-a"), _up(engine, target, "slow-b")])
    # Every read of an endpoint answers 503 with a Retry-After far past the deadline.
    target.emulator.inject_fault("GET", "^/api/2.0/serving-endpoints", 503, count=100000,
                                 retry_after=3600)
    deadline = 3.0
    started = time.monotonic()
    with pytest.raises(ProviderCallError) as err:
        _gate(engine, endpoints, deadline)
    took = time.monotonic() - started
    # A correctness bound (deadline + 10 s), not a performance measurement.
    assert took < deadline + SLACK, took
    assert POLL_GRACE < SLACK
    msg = err.value.message
    assert msg.splitlines()[0].startswith("timed out after 3s")
    pending = msg.split("still pending:", 1)[1]
    for name in endpoints:
        assert f"- endpoint {name}: " in pending
    assert "did not answer" in pending
    assert target.token and target.token not in err.value.details


def test_gate_reports_a_failed_endpoint_next_to_a_slow_one(target: Target,
                                                           engine: Engine) -> None:
    target.needs_emulator()
    bad_name = target.name("bad")
    target.emulator.fail_next_rollout(bad_name, "Container image build failed: no GPU quota")
    bad = _up(engine, target, "bad")  # fails after the suite's short rollout
    target.emulator.set_ready_after(3600)
    slow = _up(engine, target, "slow")  # still rolling out when the gate gives up
    with pytest.raises(ProviderCallError) as err:
        _gate(engine, dict([bad, slow]), 4.0)
    msg = err.value.message
    first = msg.splitlines()[0]
    assert first.startswith("timed out after 4s") and "1 failed to roll out" in first
    failed, pending = msg.split("still pending:", 1)
    assert f"- endpoint {bad[0]} " in failed.split("failed:", 1)[1]
    assert "Container image build failed: no GPU quota" in failed
    assert f"- endpoint {slow[0]}: " in pending and "IN_PROGRESS" in pending
    assert bad[0] not in pending
    assert engine.urn(EndpointsReady, "ready") not in engine.state


def test_gate_logs_each_endpoint_state_while_it_waits(target: Target, engine: Engine) -> None:
    target.needs_emulator()
    target.emulator.set_ready_after(1.0)
    name, rev = _up(engine, target, "logged")
    before = len(target.proc.stderr())
    _gate(engine, {name: rev}, 60)
    log = target.proc.stderr()[before:]
    states = [line for line in log.splitlines() if line.startswith(f"info: endpoint {name}: ")]
    assert any("IN_PROGRESS" in line for line in states), log
    assert any("config_update=NOT_UPDATING" in line and "ready=READY" in line
               for line in states), log
    assert "info: 1 serving endpoint(s) ready" in log


def test_a_fresh_provider_process_keeps_the_gate_deadline_when_every_path_answers_503(
        target: Target, engine: Engine) -> None:
    # The first call of a provider process builds its databricks-sdk client, which probes the
    # host's /.well-known/databricks-config: the SDK's own probe retries 503s for 300 s and
    # sleeps a whole Retry-After first. A fresh process must still return by the deadline.
    target.needs_emulator()
    assert target.emulator is not None
    target.emulator.set_ready_after(3600)
    endpoints = dict([_up(engine, target, "slow-a"), _up(engine, target, "slow-b")])
    target.emulator.inject_fault("*", ".*", 503, count=100000, retry_after=3600)
    fresh = ProviderProcess()
    try:
        fresh.configure({"workspace": {"host": target.host}, "databricks_token": target.token},
                        secret_keys=("databricks_token",))
        deadline = 3.0
        started = time.monotonic()
        with pytest.raises(ProviderCallError) as err:
            Engine(fresh).register(EndpointsReady, EndpointsReadyProvider, "ready",
                                   {"endpoints": endpoints, "timeout_seconds": deadline})
        took = time.monotonic() - started
    finally:
        fresh.close()
    # A correctness bound, not a performance measurement: what it rules out is the SDK's own
    # 300 s of probe retries and the 3600 s Retry-After. It also covers the fresh process
    # importing databricks-sdk, which takes seconds on a loaded machine (four test workers on
    # two cores), so it is wider than the warm-process bound above.
    assert took < deadline + 6 * SLACK, took
    msg = err.value.message
    assert msg.splitlines()[0].startswith("timed out after 3s"), msg
    for name in endpoints:
        assert f"- endpoint {name}: " in msg.split("still pending:", 1)[1]
