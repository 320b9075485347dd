"""What issue 21 promises, measured: the ACL race window that remains, and (pacing) the time
an `up` of N endpoints takes when every fifth call is answered 429 against none.

ACL window. Removing our entry from a shared (pay-per-token) endpoint's ACL is a GET then a PUT
of every other entry: an entry someone else adds between the two is lost (the permissions API
has no compare-and-set). The window is measured from the emulator's request log as the time
from the GET's answer to the PUT's answer (both logged once handled: an upper bound of the
time between reading and writing), over K deletes, fault-free and with every PUT first
answered 429 with `Retry-After: 1` (before issue 21 the PUT after the pause carried the read made
before it, so the window was the Retry-After and more).

Pacing. `up` of N = 120 endpoints from nothing (rollout 2 s), fault-free and with every fifth
call the providers make answered 429 with `Retry-After: 1` (the emulator's `every` fault): the
dynamic provider serves four calls at a time, so a call sleeping a Retry-After holds a worker
the other resources wait for. Goal: at most 1.5x the fault-free time.

    .venv/bin/python -m bench.state [--quick] [--only window,pacing]
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from typing import Any

from bench.common import Emulator, progress, provider_process, table, write_results

FULL: dict[str, Any] = {"k": 20, "n": 120, "d": 2.0, "repeat": 3}
QUICK: dict[str, Any] = {"k": 5, "n": 20, "d": 1.0, "repeat": 1}
EVERY = 5  # every fifth call answered 429
RETRY_AFTER = 1
PACING_GOAL = 1.5
PPT = "databricks-meta-llama-3-3-70b-instruct"
PERMS = r"^/api/2\.0/permissions/serving-endpoints/[^/]+$"


def _windows(log: list[dict[str, Any]]) -> list[float]:
    """For each PUT answered 200: its time minus that of the GET of the same ACL before it."""
    out: list[float] = []
    last_get: dict[str, float] = {}
    for r in log:
        if not r["path"].startswith("/api/2.0/permissions/"):
            continue
        if r["method"] == "GET" and r["status"] == 200:
            last_get[r["path"]] = r["time"]
        elif r["method"] == "PUT" and r["status"] == 200 and r["path"] in last_get:
            out.append(r["time"] - last_get[r["path"]])
    return out


def acl_window(k: int) -> dict[str, Any]:
    from components.providers.grant import QueryGrant, QueryGrantProvider
    from components.providers.principal import ServicePrincipal, ServicePrincipalProvider
    from testing.provider import Engine

    rows: dict[str, Any] = {}
    with Emulator(ready_after=1.0) as emulator:
        emulator.reset()
        proc = provider_process(emulator)
        try:
            engine = Engine(proc)
            sp = engine.register(ServicePrincipal, ServicePrincipalProvider, "principal", {
                "display_name": "braintrust-bench-acl", "external_id": "databricks-braintrust/b",
                "entitlements": []}).outputs
            ep = emulator.workspace_client().serving_endpoints.get(PPT)
            inputs = {"endpoint_id": ep.id, "endpoint_name": ep.name,
                      "service_principal_name": sp["application_id"],
                      "permission_level": "CAN_QUERY"}
            for case, retry_after in (("fault-free", None), ("every PUT first 429, Retry-After 1", 1)):
                emulator.clear_requests()
                for i in range(k):
                    engine.register(QueryGrant, QueryGrantProvider, f"g{i}", inputs)
                    if retry_after is not None:
                        emulator.inject_fault("PUT", PERMS, 429, count=1, retry_after=retry_after)
                    engine.destroy(QueryGrant, f"g{i}")
                w = _windows(emulator.requests())
                rows[case] = {"deletes": len(w), "median_ms": 1000 * statistics.median(w),
                              "max_ms": 1000 * max(w)}
                progress(f"acl window {case}: median {rows[case]['median_ms']:.1f} ms, "
                         f"max {rows[case]['max_ms']:.1f} ms over {len(w)} deletes")
        finally:
            proc.close()
    return rows


def pacing(n: int, d: float, repeat: int = 1) -> dict[str, Any]:
    """`up` of N endpoints from nothing, fault-free and with every fifth call answered 429,
    `repeat` times each, interleaved; the median run of each."""
    import tempfile
    import time
    from pathlib import Path

    import components.program  # noqa: F401 - imported once, before any clock starts
    from bench.common import ADMIN_TOKEN, custom_stack, write_stack
    from testing.engine import StackEngine

    rows: dict[str, Any] = {}
    runs: dict[str, list[dict[str, Any]]] = {}
    cases = ("fault-free", f"every {EVERY}th call 429, Retry-After {RETRY_AFTER}")
    with Emulator(ready_after=d) as emulator, tempfile.TemporaryDirectory() as tmp:
        for case in [c for _ in range(repeat) for c in cases]:  # interleaved: same load
            emulator.reset()
            emulator.set_ready_after(d)
            stack_file = write_stack(Path(tmp), custom_stack(n, host=emulator.url))
            proc = provider_process(emulator)
            try:
                if case != "fault-free":
                    emulator.inject_fault("*", ".*", 429, count=1_000_000, every=EVERY,
                                          retry_after=RETRY_AFTER)
                emulator.clear_requests()
                engine = StackEngine(stack_file, None, secrets={"databricks_token": ADMIN_TOKEN},
                                     proc=proc)
                t0 = time.monotonic()
                engine.up()
                wall = time.monotonic() - t0
            finally:
                proc.close()
            log = emulator.requests()
            one = {"n": n, "wall": wall, "requests": len(log),
                   "throttled": sum(1 for r in log if r["status"] == 429)}
            runs.setdefault(case, []).append(one)
            progress(f"pacing N={n} {case}: {wall:.1f} s, {len(log)} requests, "
                     f"{one['throttled']} answered 429")
    for case, done in runs.items():
        rows[case] = {**sorted(done, key=lambda r: r["wall"])[len(done) // 2],  # the median
                      "runs": len(done), "walls": [r["wall"] for r in done]}
    free = rows["fault-free"]["wall"]
    for row in rows.values():
        row["vs_fault_free"] = row["wall"] / free
    return rows


def run(quick: bool = False) -> dict[str, Any]:
    grid = QUICK if quick else FULL
    window = acl_window(grid["k"])
    worst = max(r["max_ms"] for r in window.values())
    paced = pacing(grid["n"], grid["d"], grid["repeat"])
    slowest = max(r["vs_fault_free"] for r in paced.values())
    return {"acl_window": window, "pacing": paced,
            "goals": {"ACL window under 429 stays one round trip (< 1 s)": worst < 1000,
                      f"up under 429s <= {PACING_GOAL}x fault-free": slowest <= PACING_GOAL}}


def render(result: dict[str, Any]) -> str:
    rows = [(case, r["deletes"], r["median_ms"], r["max_ms"])
            for case, r in result["acl_window"].items()]
    out = table("ACL window: GET answered to PUT answered, grant delete on a shared endpoint",
                ("case", "deletes", "median ms", "max ms"), rows)
    out += "\n" + table("pacing: up of N endpoints, every fifth call answered 429",
                         ("case", "N", "runs", "median wall s", "x fault-free", "requests",
                          "429s", "every run s"),
                         [(case, r["n"], r["runs"], r["wall"], r["vs_fault_free"], r["requests"],
                           r["throttled"], " ".join(f"{w:.1f}" for w in r["walls"]))
                          for case, r in result["pacing"].items()])
    for goal, met in result["goals"].items():
        out += f"goal {goal}: {'met' if met else 'NOT met'}\n"
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.state")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.quick)
    print(render(result))
    print(f"written {write_results('state', result, args.quick)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
