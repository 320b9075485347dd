"""API economy: how many requests each engine command spends against the workspace, by kind,
read from the emulator's request log (admin calls are never logged).

The real program (`__main__.py`) through the stand-in engine (testing/engine) and one provider
process. Scenarios, in order, on one stack of N custom-model endpoints, the stack file edited
between them as a user would:
  create        `pulumi up` from nothing (principal, secret, N endpoints, N grants, the gate)
  no-op up      same spec again: Check + Diff only, in a fresh provider process
                                                              goal: 0 writes, <= 1 read (the
                                                              workspace's clock)
  refresh       Read of every resource                        goal: <= 1 request per resource
  tag change    one tag on one endpoint                       goal: writes touch only that endpoint
  config change scale_to_zero on one endpoint (a rollout, so the gate waits again)
  rotation      the secret expired (emulator clock), refreshed, then `pulumi up`
  destroy       everything, dependents first
and what the readiness gate reads while the first rollout (D seconds) runs: gate reads per endpoint
(every `GET /serving-endpoints/{name}` and `GET /serving-endpoints` list, over N) and list rounds
(one list per round while more than one endpoint is pending; a round waits an eighth of the time
waited so far, at least 0.5 s, at most 10 s).

    .venv/bin/python -m bench.calls [--quick]
"""

from __future__ import annotations

import argparse
import copy
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.common import (
    ADMIN_TOKEN,
    Emulator,
    EmulatorClient,
    count_kinds,
    custom_stack,
    endpoint_name,
    progress,
    provider_process,
    request_kind,
    table,
    write_results,
    write_stack,
)

FULL: dict[str, Any] = {"n": 20, "d": 2.0}
QUICK: dict[str, Any] = {"n": 4, "d": 1.0}
GET_ONE = "GET /serving-endpoints/{name}"
LIST = "GET /serving-endpoints"
ENDPOINT_PATH = "/api/2.0/serving-endpoints/"


def touched_endpoints(log: list[dict[str, Any]], writes_only: bool) -> list[str]:
    """Endpoints named in the paths of the requests (by name; permissions are keyed by id)."""
    names: set[str] = set()
    for r in log:
        if writes_only and r["method"] == "GET":
            continue
        if r["method"] == "POST" and r["path"] == ENDPOINT_PATH.rstrip("/"):
            names.add(f"<created {len(names)}>")  # a create names the endpoint in its body
        elif r["path"].startswith(ENDPOINT_PATH):
            names.add(r["path"][len(ENDPOINT_PATH):].split("/")[0])
    return sorted(names)


def changed_names(result: Any) -> list[str]:
    return result.changed()


def measure(emulator: EmulatorClient, action: Callable[[], Any]) -> tuple[Any, list[dict[str, Any]]]:
    """What `action` returned, and the requests the emulator logged while it ran."""
    emulator.clear_requests()
    result = action()
    return result, emulator.requests()


def run(quick: bool = False) -> dict[str, Any]:
    from testing.engine import StackEngine

    grid = QUICK if quick else FULL
    n, d = grid["n"], grid["d"]
    scenarios: dict[str, dict[str, Any]] = {}
    resources = 0

    def record(name: str, log: list[dict[str, Any]], resources: int, **extra: Any) -> None:
        scenarios[name] = {"requests": len(log), "per_resource": len(log) / resources,
                           "writes": sum(1 for r in log if r["method"] != "GET"),
                           "by_kind": count_kinds(log),
                           "endpoints_written": touched_endpoints(log, writes_only=True),
                           "endpoints_read": touched_endpoints(log, writes_only=False), **extra}
        s = scenarios[name]
        progress(f"calls {name}: {s['requests']} requests, {s['writes']} writes")

    with Emulator(ready_after=d) as emulator, tempfile.TemporaryDirectory() as tmp:
        emulator.reset()
        emulator.set_ready_after(d)
        proc = provider_process(emulator)
        folder, state = Path(tmp), Path(tmp) / "state.json"

        def engine(config: dict[str, Any]) -> StackEngine:
            return StackEngine(write_stack(folder, config), state, proc=proc,
                               secrets={"databricks_token": ADMIN_TOKEN})

        try:
            config = custom_stack(n, host=emulator.url)
            result, log = measure(emulator, engine(config).up)
            # Endpoints, grants, the gate, the principal, its secret and the secret's sweep.
            resources = len(result.ops())
            kinds = [request_kind(r["method"], r["path"]) for r in log]
            gets = Counter(r["path"] for r, k in zip(log, kinds, strict=True) if k == GET_ONE)
            lists = kinds.count(LIST)
            record("create", log, resources,
                   gate_reads_per_endpoint=(sum(gets.values()) + lists) / n, list_rounds=lists,
                   max_gets_one_endpoint=max(gets.values(), default=0))

            # A fresh provider process, as every `pulumi up` starts one: it learns the
            # workspace's clock (secret rotation, issue 21) with one read.
            fresh = provider_process(emulator)
            try:
                result, log = measure(emulator, StackEngine(
                    write_stack(folder, config), state, proc=fresh,
                    secrets={"databricks_token": ADMIN_TOKEN}).up)
            finally:
                fresh.close()
            record("no-op up", log, resources, changed=changed_names(result))

            result, log = measure(emulator, engine(config).refresh)
            record("refresh", log, resources,
                   gone=sorted(s.name for s in result.steps.values() if s.op == "gone"))

            target = endpoint_name(0)
            changed = copy.deepcopy(config)
            changed["endpoints"][0]["tags"] = {"purpose": "bench"}
            result, log = measure(emulator, engine(changed).up)
            record("tag change (1 endpoint)", log, resources, target=target,
                   changed=changed_names(result))

            changed = copy.deepcopy(changed)
            changed["endpoints"][0]["scale_to_zero"] = False
            result, log = measure(emulator, engine(changed).up)
            record("config change (1 endpoint)", log, resources, target=target,
                   changed=changed_names(result))

            # The provider decides rotation on its own clock; the emulator's clock moves the
            # secret past its expiry, which `read` sees (status), as a later real run would.
            emulator.advance_clock(91 * 86400)
            engine(changed).refresh()  # costs what the refresh row shows
            result, log = measure(emulator, engine(changed).up)
            record("rotation (up after expiry)", log, resources, changed=changed_names(result))

            _, log = measure(emulator, engine(changed).destroy)
            record("destroy", log, resources)
        finally:
            proc.close()

    goals = {
        "no-op up: 0 writes, <= 1 read": (scenarios["no-op up"]["writes"] == 0
                                          and scenarios["no-op up"]["requests"] <= 1),
        "refresh <= 1 request per resource": scenarios["refresh"]["per_resource"] <= 1,
        "tag change writes only the changed endpoint":
            scenarios["tag change (1 endpoint)"]["endpoints_written"] == [endpoint_name(0)],
        "config change writes only the changed endpoint":
            scenarios["config change (1 endpoint)"]["endpoints_written"] == [endpoint_name(0)],
        "config change reads only the changed endpoint":
            scenarios["config change (1 endpoint)"]["endpoints_read"] == [endpoint_name(0)],
    }
    return {"n": n, "d": d, "resources": resources, "scenarios": scenarios, "goals": goals}


def render(result: dict[str, Any]) -> str:
    scen = result["scenarios"]
    cols = ("scenario", "requests", "per resource", "writes", "endpoints written",
            "endpoints read")
    rows = [(name, s["requests"], s["per_resource"], s["writes"], len(s["endpoints_written"]),
             len(s["endpoints_read"])) for name, s in scen.items()]
    out = table(f"calls: stack of N = {result['n']} endpoints ({result['resources']} resources), "
                f"rollout {result['d']:g} s", cols, rows)
    kinds = sorted({k for s in scen.values() for k in s["by_kind"]})
    short = {name: name.split(" (")[0] for name in scen}
    out += "\n" + table("requests by kind", ("kind", *short.values()),
                        [(k, *(scen[s]["by_kind"].get(k, 0) for s in scen)) for k in kinds])
    c = scen["create"]
    out += (f"\ngate reads per endpoint during the first rollout: {c['gate_reads_per_endpoint']:.2f} "
            f"({c['list_rounds']} list rounds; most GETs of one endpoint: "
            f"{c['max_gets_one_endpoint']})\n")
    for goal, met in result["goals"].items():
        out += f"goal {goal}: {'met' if met else 'NOT met'}\n"
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.calls")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.quick)
    print(render(result))
    print(f"written {write_results('calls', result, args.quick)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
