"""Run every benchmark in one go, on one machine, and print their tables.

    .venv/bin/python -m bench [--quick] [--only converge,calls,program,validate,state,scale]

`--quick` (what the smoke test and a quick look use) finishes in under two minutes on two
cores; the full run takes several minutes (the convergence runs wait for real rollouts).
Results: bench/results/<name>[-quick].json, plus summary[-quick].json with every goal.
"""

from __future__ import annotations

import argparse
import importlib
import time
from collections.abc import Sequence
from typing import Any

from bench.common import ROOT, machine, write_results

BENCHES = ("validate", "program", "calls", "converge", "state", "scale")


def goals_of(name: str, result: dict[str, Any]) -> dict[str, bool]:
    if "goals" in result:
        return dict(result["goals"])
    goal = result["goal"]
    return {goal["target"]: bool(goal["met"])}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="fewer sizes: under two minutes")
    parser.add_argument("--only", help="comma-separated subset of " + ",".join(BENCHES))
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(BENCHES)
    unknown = sorted(set(names) - set(BENCHES))
    if unknown:
        parser.error(f"unknown bench(es): {', '.join(unknown)}")
    print(f"machine: {machine()}\n")
    summary: dict[str, Any] = {}
    t0 = time.monotonic()
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        started = time.monotonic()
        result = module.run(args.quick)
        print(module.render(result))
        path = write_results(name, result, args.quick)
        summary[name] = {"seconds": time.monotonic() - started, "goals": goals_of(name, result),
                         "results": str(path.relative_to(ROOT))}
        print(f"({name}: {summary[name]['seconds']:.1f} s, written {path})\n")
    total = time.monotonic() - t0
    write_results("summary", {"seconds": total, "benches": summary}, args.quick)
    print(f"all benches: {total:.1f} s")
    for name, s in summary.items():
        for goal, met in s["goals"].items():
            print(f"  {name}: {goal}: {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
