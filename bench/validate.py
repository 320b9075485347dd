"""Offline review speed: `python -m components validate` over 1, 10 and 100 generated stack files
(five endpoints each: foundation models, custom models, a pay-per-token reference), in a
temporary directory, as a pull-request job runs it.

Reported: wall time of the command (best of REPEAT runs), the start-up (wall with one file minus
one stack's own time), time per stack after start-up (the slope between the smallest and the
largest run), the same per-stack time measured in-process (`load_stack_file`), a bare
interpreter's start for reference, and what dominates start-up (`-X importtime`: the slowest
top-level imports, cumulative). Goals: < 50 ms per stack after start-up, start-up < 0.5 s.

    .venv/bin/python -m bench.validate [--quick]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from bench.common import HOST, MODEL, ROOT, progress, stack_config, stack_document, table, write_results

FULL = (1, 10, 100)
QUICK = (1, 10)
REPEAT = 3
QUICK_REPEAT = 2
GOAL_PER_STACK = 0.050
GOAL_STARTUP = 0.5


def stack_file_config(i: int) -> dict[str, Any]:
    endpoints: list[dict[str, Any]] = [
        {"name": f"bt-{i:03d}-llama-8b", "foundation_model": "meta-llama-3.1-8b-instruct",
         "throughput": {"min": 0, "max": 1240}, "rate_limits": [{"calls": 100, "key": "user"}]},
        {"name": f"bt-{i:03d}-llama-70b", "foundation_model": "meta-llama-3.3-70b-instruct",
         "throughput": {"min": 0, "max": 4800}, "usage_tracking": True},
        {"name": f"bt-{i:03d}-churn", "model": {"name": MODEL[0], "version": MODEL[1]},
         "workload_size": "Small", "scale_to_zero": True, "flavor": "completion"},
        {"name": f"bt-{i:03d}-ranker", "model": {"name": "main.ml.ranker", "version": 7},
         "workload_size": "Medium", "workload_type": "GPU_SMALL"},
        {"name": "databricks-meta-llama-3-3-70b-instruct", "pay_per_token": True},
    ]
    config = stack_config(endpoints, host=HOST, display_name=f"braintrust-bench-{i:03d}")
    config["braintrust"]["secret_name"] = f"databricks-bench-{i:03d}"  # one per stack, as validate wants
    return config


def write_stacks(folder: Path, count: int) -> list[Path]:
    paths = []
    for i in range(count):
        path = folder / f"Pulumi.bench-{i:03d}.yaml"
        path.write_text(yaml.safe_dump(stack_document(stack_file_config(i)), sort_keys=False))
        paths.append(path)
    return paths


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def timed(cmd: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - t0
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:6])} ... failed:\n{out.stderr[-2000:]}")
        best = min(best, elapsed)
    return best


def in_process_per_stack(paths: list[Path]) -> float:
    """Seconds per stack inside one process, imports done: the spec layer's own cost."""
    code = ("import sys, time; from pathlib import Path; from components.spec import load_stack_file\n"
            "paths = [Path(p) for p in sys.argv[1:]]; load_stack_file(paths[0])\n"
            "t0 = time.perf_counter()\n"
            "for p in paths: load_stack_file(p)\n"
            "print((time.perf_counter() - t0) / len(paths))")
    out = subprocess.run([sys.executable, "-c", code, *map(str, paths)], cwd=ROOT, env=_env(),
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def import_times(path: Path, top: int = 10) -> list[dict[str, Any]]:
    """The slowest imports below `components` and at top level, cumulative (-X importtime)."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "components", "validate",
                          str(path)], cwd=ROOT, env=_env(), capture_output=True, text=True,
                         check=True)
    rows: list[dict[str, Any]] = []
    for line in out.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            depth = len(m.group(3)) // 2
            rows.append({"module": m.group(4), "self_ms": int(m.group(1)) / 1000,
                         "cumulative_ms": int(m.group(2)) / 1000, "depth": depth})
    total = sum(r["cumulative_ms"] for r in rows if r["depth"] == 0)
    # Depth 0: imported by the command itself; depths 1-2 show what each package costs.
    shown = sorted((r for r in rows if r["depth"] <= 2), key=lambda r: -r["cumulative_ms"])[:top]
    return [{"total_ms": total}, *shown]


def run(quick: bool = False) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    repeat = QUICK_REPEAT if quick else REPEAT
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        paths = write_stacks(Path(tmp), max(sizes))
        bare = timed([sys.executable, "-c", "pass"], repeat)
        for n in sizes:
            wall = timed([sys.executable, "-m", "components", "validate", *map(str, paths[:n])],
                         repeat)
            rows.append({"stacks": n, "wall": wall, "per_stack_avg": wall / n})
            progress(f"validate {n} stack file(s): {wall:.3f} s")
        in_proc = in_process_per_stack(paths[: max(sizes)])
        imports = import_times(paths[0])
    lo, hi = rows[0], rows[-1]
    per_stack = (hi["wall"] - lo["wall"]) / (hi["stacks"] - lo["stacks"])
    startup = lo["wall"] - lo["stacks"] * per_stack
    goals = {"per stack < 50 ms": per_stack < GOAL_PER_STACK, "start-up < 0.5 s": startup < GOAL_STARTUP}
    return {"rows": rows, "python_start": bare, "startup": startup, "per_stack": per_stack,
            "per_stack_in_process": in_proc, "imports": imports, "goals": goals}


def render(result: dict[str, Any]) -> str:
    out = table("validate: python -m components validate <files>",
                ("stack files", "wall s", "avg s per file"),
                [(r["stacks"], r["wall"], r["per_stack_avg"]) for r in result["rows"]])
    out += (f"\nstart-up {result['startup']:.3f} s (bare `python -c pass`: "
            f"{result['python_start']:.3f} s); per stack after start-up "
            f"{1000 * result['per_stack']:.1f} ms (in-process load_stack_file: "
            f"{1000 * result['per_stack_in_process']:.1f} ms)\n\n")
    total, *imports = result["imports"]
    out += table(f"start-up imports (-X importtime, all top-level imports: {total['total_ms']:.0f} ms)",
                 ("module", "depth", "cumulative ms", "self ms"),
                 [(r["module"], r["depth"], r["cumulative_ms"], r["self_ms"]) for r in imports])
    for goal, met in result["goals"].items():
        out += f"\ngoal {goal}: {'met' if met else 'NOT met'}"
    return out + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.validate")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.quick)
    print(render(result))
    print(f"written {write_results('validate', result, args.quick)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
