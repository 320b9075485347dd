"""Program scale: the Pulumi program (`components.program.build(load_stack())`, what `__main__.py`
runs) under Pulumi's mocks for stacks of 1, 10, 100, 500 custom-model endpoints, against a bare
program registering the same number of plain dynamic resources (as many as the plan's: an
Endpoint and a QueryGrant per endpoint, the gate, the principal, the secret and its sweep) with
a provider that does nothing, its class made by the same `resource_class`. Each measurement
runs in a fresh process (`python -c`), so module caches and the mock runtime's state never
carry over; imports happen before the clock starts.

Reported: seconds from the first line of the program until every registration is resolved,
peak Python memory (tracemalloc, in a separate run: tracing slows the program down), and
seconds per endpoint. Goal: <= 1.5x the bare program at 500 endpoints, growth linear.

    .venv/bin/python -m bench.program [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pulumi.dynamic import CreateResult

from bench.common import PROJECT, ROOT, custom_stack, progress, table, write_results
from components.args import Args, Contract, Outputs
from components.providers._contract import ContractProvider, resource_class

FULL = (1, 10, 100, 500)
QUICK = (10, 100)
GOAL = 1.5


@dataclass(frozen=True)
class BareArgs(Args):
    TYPE_NAME: ClassVar[str] = "Bare"

    name: str
    value: int


@dataclass(frozen=True)
class BareOutputs(Outputs):
    pass


class BareProvider(ContractProvider[BareArgs, BareOutputs]):
    """A provider with nothing in it; pickled by reference like the project's."""

    CONTRACT = Contract(BareArgs, BareOutputs)

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult("bare", props)


Bare = resource_class(BareProvider)


def child(variant: str, n: int, metric: str, profile: str | None = None) -> None:
    """One measurement in this (fresh) process; prints one JSON line."""
    import time
    import tracemalloc

    import pulumi
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from components import program as prog
    from components.plan import build_plan
    from testing.mocks import PlaceholderMocks

    mocks = PlaceholderMocks()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack="bench", preview=False)
    config = {f"{PROJECT}:{k}": json.dumps(v) for k, v in custom_stack(n).items()}
    pulumi.runtime.set_all_config(config, [])
    count = sum(d.custom for d in build_plan(prog.load_stack()))

    def body() -> Any:
        if variant == "real":
            exports: Any = prog.build(prog.load_stack())
        else:
            exports = [Bare(f"bare-{i}", {"name": f"bare-{i}", "value": i}).id for i in range(count)]
        return _sync_await(pulumi.Output.from_input(exports).future())

    profiler = None
    if metric == "memory":
        tracemalloc.start()
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    t0 = time.perf_counter()
    _sync_await(run_pulumi_func(body))
    elapsed = time.perf_counter() - t0
    if profiler is not None and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    peak = tracemalloc.get_traced_memory()[1] if metric == "memory" else None
    print(json.dumps({"variant": variant, "n": n, "metric": metric, "seconds": elapsed,
                      "peak_bytes": peak, "registered": len(mocks.resources)}))


def measure(variant: str, n: int, metric: str, profile: str | None = None) -> dict[str, Any]:
    code = ("import sys; from bench.program import child; "
            "child(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] or None)")
    out = subprocess.run([sys.executable, "-c", code, variant, str(n), metric, profile or ""],
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, check=False, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"program bench {variant} n={n} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    rows = []
    for n in sizes:
        row: dict[str, Any] = {"n": n}
        for variant in ("real", "bare"):
            timed = measure(variant, n, "time")
            mem = measure(variant, n, "memory")
            row[f"{variant}_s"] = timed["seconds"]
            row[f"{variant}_peak_mb"] = mem["peak_bytes"] / 1e6
            row[f"{variant}_registered"] = timed["registered"]
        row["ratio_time"] = row["real_s"] / row["bare_s"]
        row["ratio_memory"] = row["real_peak_mb"] / row["bare_peak_mb"]
        row["real_ms_per_endpoint"] = 1000 * row["real_s"] / n
        rows.append(row)
        progress(f"program N={n}: real {row['real_s']:.3f} s, bare {row['bare_s']:.3f} s, "
                 f"ratio {row['ratio_time']:.2f}")
    big = rows[-1]
    # Linear: seconds per endpoint at the largest size within 1.5x of the next smaller one.
    per = [r["real_s"] / r["n"] for r in rows if r["n"] >= 10]
    linear = len(per) < 2 or per[-1] <= 1.5 * per[-2]
    goal = {"target": f"real <= {GOAL}x bare at N = {big['n']}, linear growth",
            "ratio_time": big["ratio_time"], "ratio_memory": big["ratio_memory"],
            "linear": linear, "met": big["ratio_time"] <= GOAL and linear}
    return {"rows": rows, "goal": goal}


def render(result: dict[str, Any]) -> str:
    cols = ("endpoints", "resources (real/bare)", "real s", "bare s", "time ratio",
            "real peak MB", "bare peak MB", "memory ratio", "real ms/endpoint")
    rows = [(r["n"], f"{r['real_registered']}/{r['bare_registered']}", r["real_s"], r["bare_s"],
             r["ratio_time"], r["real_peak_mb"], r["bare_peak_mb"], r["ratio_memory"],
             r["real_ms_per_endpoint"]) for r in result["rows"]]
    g = result["goal"]
    return (table("program: build(load_stack()) under mocks vs a bare program", cols, rows)
            + f"\ngoal {g['target']}: time ratio {g['ratio_time']:.2f}, memory ratio "
              f"{g['ratio_memory']:.2f}, linear {g['linear']} -> {'met' if g['met'] else 'NOT met'}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.program")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--profile", metavar="N", type=int,
                        help="write cProfile stats of the real program at N endpoints and stop")
    args = parser.parse_args(argv)
    if args.profile:
        path = str(ROOT / "bench" / "results" / f"program-{args.profile}.prof")
        (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
        print(measure("real", args.profile, "time", profile=path))
        print(f"written {path} (python -m pstats {path})")
        return 0
    result = run(args.quick)
    print(render(result))
    print(f"written {write_results('program', result, args.quick)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
