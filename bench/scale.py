"""How the engine grows with the stack: `preview` and a no-op `up` of N foundation-model
endpoints (each endpoint is two custom resources, the endpoint and its grant, plus a component),
through the bundled engine (engine/) and the real provider process, against the emulator.

Goal (issue 23): the cost per endpoint stays flat up to 1000 endpoints: the no-op `up`'s time per
endpoint at the largest N is at most 1.5x that at N = 50 (the fixed start-up, the provider
process importing databricks-sdk, is taken out by subtracting the N = 1 time first).
Before the fix, on an idle 2-core machine: 5.6 s at N = 1, 6.0 at 50, 13.7 at 200, 32.1 at 400.

    .venv/bin/python -m bench.scale [--quick] [--sizes 50,200]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import ADMIN_TOKEN, Emulator, progress, stack_config, table, write_results, write_stack

FULL = (1, 50, 200, 400, 1000)
QUICK = (1, 50)  # `make bench QUICK=1` stays under two minutes: the goal needs the full run


def foundation_stack(n: int, host: str) -> dict[str, Any]:
    endpoints = [{"name": f"bench-fm-{i:04d}", "foundation_model": "meta-llama-3.1-8b-instruct",
                  "throughput": {"min": 0, "max": 1240}} for i in range(n)]
    return stack_config(endpoints, host=host)


def _cpu(pid: int) -> float:
    """A process's CPU seconds so far (Linux /proc), 0 where unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def one_size(emulator: Any, n: int, folder: Path) -> dict[str, Any]:
    from engine import StackEngine

    emulator.reset()
    stack_file = write_stack(folder, foundation_stack(n, emulator.url))
    state = folder / "state.json"
    state.unlink(missing_ok=True)

    def engine() -> StackEngine:
        return StackEngine(stack_file, state, secrets={"databricks_token": ADMIN_TOKEN})

    t0 = time.monotonic()
    created = engine().up()
    create = time.monotonic() - t0
    row: dict[str, Any] = {"n": n, "resources": len(created.steps), "create": create}
    for command in ("preview", "up"):
        cpu0 = time.process_time()
        t0 = time.monotonic()
        result = getattr(engine(), command)()
        row[command] = time.monotonic() - t0
        row[f"{command}_engine_cpu"] = time.process_time() - cpu0
        assert set(result.ops().values()) == {"same"}, f"{command} at N={n} changed something"
    progress(f"N={n}: create {create:.1f} s, preview {row['preview']:.1f} s, no-op up {row['up']:.1f} s")
    return row


def run(quick: bool = False, sizes: Sequence[int] | None = None) -> dict[str, Any]:
    import components.program  # noqa: F401 - imported once, before any clock starts

    sizes = tuple(sizes or (QUICK if quick else FULL))
    if 1 not in sizes:
        sizes = (1, *sizes)
    rows = []
    with Emulator(ready_after=0.0) as emulator, tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            rows.append(one_size(emulator, n, Path(tmp) / f"n{n}"))
    base = {r["n"]: r for r in rows}[1]
    for r in rows:
        for command in ("preview", "up"):
            r[f"{command}_ms_per_endpoint"] = (1000 * (r[command] - base[command]) / r["n"]
                                               if r["n"] > 1 else None)
    per = {r["n"]: r["up_ms_per_endpoint"] for r in rows if r["n"] > 1}
    ref = per.get(50) or next(iter(per.values()), None)
    top = max(per) if per else None
    ratio = per[top] / ref if top is not None and ref else None
    if top is None or top <= 50:
        return {"rows": rows, "ratio": None, "goals": {}}  # nothing to compare with N = 50
    goal = f"no-op up: ms per endpoint at N={top} <= 1.5x that at N=50"
    return {"rows": rows, "ratio": ratio, "goals": {goal: ratio is not None and ratio <= 1.5}}


def render(result: dict[str, Any]) -> str:
    rows = [(r["n"], r["resources"], r["create"], r["preview"], r["preview_ms_per_endpoint"], r["up"],
             r["up_ms_per_endpoint"], r["up_engine_cpu"]) for r in result["rows"]]
    out = table("scale: preview and no-op up of N foundation-model endpoints",
                ("N", "resources", "create s", "preview s", "preview ms/endpoint", "no-op up s",
                 "up ms/endpoint", "up engine CPU s"), rows)
    out += "(ms/endpoint: (time at N - time at N=1) / N, so the fixed start-up is left out)\n"
    for goal, met in result["goals"].items():
        out += f"goal {goal}: {'met' if met else 'NOT met'} (ratio {result['ratio']})\n"
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", help="comma-separated N, e.g. 50,200 (1 is always added)")
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",")] if args.sizes else None
    result = run(args.quick, sizes)
    print(render(result))
    print(f"written {write_results('scale', result, args.quick)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
