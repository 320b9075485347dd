"""GateWait on a fake clock: when it logs, when it polls, what it reports. No workspace."""

from __future__ import annotations

import pytest

from components.providers._client import POLL_GRACE
from components.providers._errors import WaitTimeout
from components.providers.readiness import LOG_EVERY, EndpointStatus, GateWait


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds


def pending(name: str, state: str = "ready=NOT_READY config_update=IN_PROGRESS") -> EndpointStatus:
    return EndpointStatus(name, False, False, state, None)


def ready(name: str) -> EndpointStatus:
    return EndpointStatus(name, True, False, "ready=READY config_update=NOT_UPDATING", 1)


def failed(name: str, message: str) -> EndpointStatus:
    return EndpointStatus(name, False, True, "ready=NOT_READY config_update=UPDATE_FAILED", 1,
                          (f"{name}: {message}",))


def test_unchanged_states_are_logged_at_least_once_a_minute_and_every_change_at_once() -> None:
    t = FakeTime()
    logs: list[tuple[float, str]] = []

    def poll(names: list[str], deadline: float) -> dict[str, EndpointStatus]:
        assert deadline > t.now
        if t.now >= 300:
            return {n: ready(n) for n in names}
        return {n: pending(n) for n in names}

    gate = GateWait(["a"], poll, log=lambda level, msg: logs.append((t.now, msg)),
                    clock=t.clock, sleep=t.sleep)
    gate.run(3600)
    times = [at for at, _ in logs]
    gaps = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    assert max(gaps) <= LOG_EVERY
    assert any("still waiting" in msg for _, msg in logs)
    assert "ready=READY" in logs[-1][1]  # the change to ready is logged when seen


def test_a_failure_is_logged_when_seen_and_reported_with_the_pending_at_the_deadline() -> None:
    t = FakeTime()
    logs: list[tuple[str, str]] = []

    def poll(names: list[str], deadline: float) -> dict[str, EndpointStatus]:
        out = {"slow": pending("slow"), "bad": failed("bad", "no GPU quota")}
        return {n: out[n] for n in names}

    gate = GateWait(["bad", "slow"], poll, log=lambda level, msg: logs.append((level, msg)),
                    clock=t.clock, sleep=t.sleep)
    with pytest.raises(WaitTimeout) as err:
        gate.run(120)
    assert ("warn", "endpoint bad: rollout failed (ready=NOT_READY config_update=UPDATE_FAILED):"
            " bad: no GPU quota") in logs
    text = str(err.value)
    assert "bad: no GPU quota" in text and "- endpoint slow: ready=NOT_READY" in text
    assert t.now <= 120  # never sleeps past the deadline


def test_an_unanswered_poll_keeps_the_last_state_and_says_so() -> None:
    t = FakeTime()
    answers = iter([{"a": pending("a")}])

    def poll(names: list[str], deadline: float) -> dict[str, EndpointStatus]:
        return next(answers, {})

    with pytest.raises(WaitTimeout) as err:
        GateWait(["a"], poll, log=lambda *_: None, clock=t.clock, sleep=t.sleep).run(30)
    assert "- endpoint a: ready=NOT_READY config_update=IN_PROGRESS (the workspace did not answer)" \
        in str(err.value)


def test_the_minute_holds_when_every_poll_takes_its_whole_budget() -> None:
    t = FakeTime()
    logs: list[float] = []

    def poll(names: list[str], deadline: float) -> dict[str, EndpointStatus]:
        t.now = deadline  # the workspace answers only at the last moment, with no change
        return {n: pending(n) for n in names}

    with pytest.raises(WaitTimeout):
        GateWait(["a"], poll, log=lambda level, msg: logs.append(t.now),
                 clock=t.clock, sleep=t.sleep).run(600)
    gaps = [b - a for a, b in zip(logs, logs[1:], strict=False)]
    assert gaps and max(gaps) <= LOG_EVERY
    assert t.now <= 600 + POLL_GRACE  # the last poll ends by the deadline + its grace
