"""What issue 21 promises, measured: the ACL race window that remains, and (pacing) the time
an `up` of N endpoints takes when every fifth call is answered 429 against none.

ACL window. Removing our entry from a shared (pay-per-token) endpoint's ACL is a GET then a PUT
of every other entry: an entry someone else adds between the two is lost (the permissions API
has no compare-and-set). The window is measured from the emulator's request log as the time
from the GET's answer to the PUT's answer (both logged once handled: an upper bound of the
time between reading and writing), over K deletes, fault-free and with every PUT first
answered 429 with `Retry-After: 1` (before issue 21 the PUT after the pause carried the read made
before it, so the window was the Retry-After and more).

    .venv/bin/python -m bench.state [--quick]
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from typing import Any

from bench.common import Emulator, progress, provider_process, table, write_results

FULL: dict[str, Any] = {"k": 20}
QUICK: dict[str, Any] = {"k": 5}
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


def run(quick: bool = False) -> dict[str, Any]:
    grid = QUICK if quick else FULL
    window = acl_window(grid["k"])
    worst = max(r["max_ms"] for r in window.values())
    return {"acl_window": window,
            "goals": {"ACL window under 429 stays one round trip (< 1 s)": worst < 1000}}


def render(result: dict[str, Any]) -> str:
    rows = [(case, r["deletes"], r["median_ms"], r["max_ms"])
            for case, r in result["acl_window"].items()]
    out = table("ACL window: GET answered to PUT answered, grant delete on a shared endpoint",
                ("case", "deletes", "median ms", "max ms"), rows)
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
