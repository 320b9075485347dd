"""Parallel convergence: how long `pulumi up` takes to create N endpoints whose rollout takes D
seconds, with the principal, its secret, one grant per endpoint and the readiness gate.

The real program (`__main__.py`) runs through the stand-in engine (testing/engine), which sends
each registration to one provider process (four gRPC workers) as soon as the program makes it.
Designs, same emulator, same program, same engine:
  gate    the project's design: creates return once accepted, one EndpointsReady waits for all
  inside  each endpoint's create waits for its own rollout (bench/waiting_provider.py, swapped in
          for the endpoints' provider by a transform, as a Pulumi stack transform could); the
          gate is still there and finds every endpoint ready at once
Both wait with the providers' one schedule (components/providers/_wait.py): a delay of an eighth
of the time waited so far (at least 0.5 s, at most 10 s).
Reported: wall time / D (1.0 is the physical limit: every endpoint rolls out at once), from
`up` called to `up` returned (the program's run included; the provider process is started
before, as the engine starts it while the program starts), when the creates and the gate
finished, when the first create reached the emulator (the provider
process's first-call cost: importing databricks-sdk, building the client), when the last
endpoint was ready (last create + D) and the wait's overshoot past that, the most creates the
emulator saw start within D/2 (the provider process's real concurrency when creates block),
and the reads spent waiting: gate reads per endpoint (every `GET /serving-endpoints/{name}` and
`GET /serving-endpoints` list, over N) and list rounds (the gate lists once per round while
more than one endpoint is pending).
Goal: wall / D <= 1.25 at N = 50 with the gate.

    .venv/bin/python -m bench.converge [--quick]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import (
    ADMIN_TOKEN,
    Emulator,
    EmulatorClient,
    custom_stack,
    progress,
    provider_process,
    request_kind,
    table,
    write_results,
    write_stack,
)

FULL: dict[str, Any] = {"n": (1, 5, 20, 50), "d": (2.0, 5.0), "modes": ("gate", "inside")}
QUICK: dict[str, Any] = {"n": (1, 8, 20), "d": (2.0,), "modes": ("gate", "inside")}
# Quick mode keeps the inside design to the sizes that show the rounds without taking minutes.
QUICK_INSIDE_MAX_N = 8
GOAL = 1.25
CREATE = "POST /serving-endpoints"
GET_ONE = "GET /serving-endpoints/{name}"
LIST = "GET /serving-endpoints"


def max_in_window(times: Sequence[float], window: float) -> int:
    """The most events that fall within any `window` seconds."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] > window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def waiting_endpoints() -> Any:
    """A transform that gives every Endpoint the provider whose create waits for its rollout."""
    from testing.engine.props import secret

    from bench.waiting_provider import WaitingEndpointProvider
    from components.providers.endpoint import Endpoint
    from testing.engine import type_token
    from testing.provider import provider_string

    token, waiting = type_token(Endpoint), secret(provider_string(WaitingEndpointProvider))

    def transform(type_: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        return {**inputs, "__provider": waiting} if type_ == token else inputs

    return transform


def done_at(result: Any, resource: type) -> list[float]:
    from testing.engine import type_token

    return [s.t for s in result.steps.values() if s.type == type_token(resource)]


def one_run(emulator: EmulatorClient, n: int, d: float, mode: str, folder: Path) -> dict[str, Any]:
    from components.providers.endpoint import Endpoint
    from components.providers.grant import QueryGrant
    from components.providers.oauth_secret import OAuthSecret
    from components.providers.readiness import EndpointsReady
    from testing.engine import StackEngine

    emulator.reset()
    emulator.set_ready_after(d)
    stack_file = write_stack(folder, custom_stack(n, host=emulator.url))
    proc = provider_process(emulator)  # the engine starts it while the program starts
    try:
        engine = StackEngine(stack_file, None, secrets={"databricks_token": ADMIN_TOKEN}, proc=proc,
                             transform=waiting_endpoints() if mode == "inside" else None)
        emulator.clear_requests()
        t0_wall = time.time()
        t0 = time.monotonic()
        result = engine.up()
        wall = time.monotonic() - t0
    finally:
        proc.close()
    log = emulator.requests()
    kinds = [request_kind(r["method"], r["path"]) for r in log]
    creates = [r["time"] for r, k in zip(log, kinds, strict=True) if k == CREATE]
    gets, lists = kinds.count(GET_ONE), kinds.count(LIST)
    # The emulator's log says when each create reached it; the last endpoint is ready D later.
    first_create, last_create = min(creates) - t0_wall, max(creates) - t0_wall
    return {
        "n": n, "d": d, "mode": mode, "wall": wall, "wall_over_d": wall / d,
        "creates_done": max(done_at(result, Endpoint)), "gate_done": max(done_at(result, EndpointsReady)),
        "grants_done": max(done_at(result, QueryGrant)), "secret_done": max(done_at(result, OAuthSecret)),
        "first_create_at": first_create, "last_create_at": last_create,
        "all_ready_at": last_create + d, "overshoot": wall - (last_create + d),
        "max_creates_within_half_d": max_in_window(creates, d / 2),
        "rounds_if_4_workers": math.ceil(n / 4),
        "gate_reads_per_endpoint": (gets + lists) / n, "endpoint_gets": gets, "list_rounds": lists,
        "requests": len(log),
    }


def run(quick: bool = False) -> dict[str, Any]:
    grid = QUICK if quick else FULL
    import components.program  # noqa: F401 - imported once, before any clock starts

    rows = []
    with Emulator(ready_after=grid["d"][0]) as emulator, tempfile.TemporaryDirectory() as tmp:
        for d in grid["d"]:
            for n in grid["n"]:
                for mode in grid["modes"]:
                    if quick and mode == "inside" and n > QUICK_INSIDE_MAX_N:
                        continue
                    row = one_run(emulator, n, d, mode, Path(tmp))
                    rows.append(row)
                    progress(f"converge D={d:g}s N={n} {mode}: wall {row['wall']:.2f} s, "
                             f"wall/D {row['wall_over_d']:.2f}")
    at_goal = [r for r in rows if r["mode"] == "gate" and r["n"] == max(grid["n"])]
    goal = {"target": f"wall/D <= {GOAL} at N = {max(grid['n'])} (gate)",
            "worst": max(r["wall_over_d"] for r in at_goal),
            "met": all(r["wall_over_d"] <= GOAL for r in at_goal)}
    return {"rows": rows, "goal": goal}


def render(result: dict[str, Any]) -> str:
    cols = ("D s", "N", "design", "wall s", "wall/D", "1st create at s", "creates done s",
            "all ready at s", "gate done s", "overshoot s", "grants done s",
            "creates within D/2", "gate reads/endpoint", "list rounds")
    rows = [(r["d"], r["n"], r["mode"], r["wall"], r["wall_over_d"], r["first_create_at"],
             r["creates_done"], r["all_ready_at"], r["gate_done"], r["overshoot"],
             r["grants_done"], r["max_creates_within_half_d"], r["gate_reads_per_endpoint"],
             r["list_rounds"])
            for r in result["rows"]]
    g = result["goal"]
    return (table("converge: N endpoints, rollout D seconds", cols, rows)
            + f"\ngoal {g['target']}: worst {g['worst']:.2f} -> {'met' if g['met'] else 'NOT met'}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.converge")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.quick)
    print(render(result))
    print(f"written {write_results('converge', result, args.quick)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
