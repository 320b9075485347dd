"""What every benchmark shares: the emulator in its own process, generated stacks, the request
log grouped by kind, tables, and JSON results under bench/results/ (ignored by git)."""

from __future__ import annotations

import json
import os
import platform
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PROJECT = "databricks-braintrust"
ADMIN_TOKEN = "dapi-bench-admin-0123456789abcdef"
MODEL = ("main.ml.churn_scorer", "3")
HOST = "https://acme-bench.cloud.databricks.com"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from components.files import write_file  # noqa: E402 - after the path
from testing.emulator import EmulatorClient, EmulatorProcess  # noqa: E402
from testing.provider import ProviderProcess  # noqa: E402

# ---------------------------------------------------------------- the emulator


class Emulator(EmulatorProcess):
    """`python -m emulator` for the benchmarks: the bench's admin token and seeded model."""

    def __init__(self, ready_after: float) -> None:
        super().__init__(ADMIN_TOKEN, ready_after, models=[f"{MODEL[0]}:{MODEL[1]}"])


def provider_process(emulator: EmulatorClient) -> ProviderProcess:
    """One real `python -m pulumi.dynamic` process (four workers), configured for the emulator."""
    proc = ProviderProcess()
    proc.configure({"workspace": {"host": emulator.url}, "databricks_token": ADMIN_TOKEN},
                   secret_keys=("databricks_token",))
    return proc


# ---------------------------------------------------------------- request kinds


def _route_kinds() -> list[tuple[str, re.Pattern[str], str]]:
    from emulator.server import ROUTES

    kinds = []
    for route in ROUTES:
        readable = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", route.pattern).replace("\\", "")
        readable = readable.replace("/api/2.0/preview/scim/v2", "/scim").replace("/api/2.0", "")
        kinds.append((route.method, route.regex, f"{route.method} {readable}"))
    return kinds


_KINDS: list[tuple[str, re.Pattern[str], str]] | None = None


def request_kind(method: str, path: str) -> str:
    """`GET /serving-endpoints/{name}`: the emulator's own route, so kinds never drift."""
    global _KINDS
    if _KINDS is None:
        _KINDS = _route_kinds()
    for m, regex, kind in _KINDS:
        if m == method and regex.match(path):
            return kind
    return f"{method} {path}"


def count_kinds(log: Iterable[dict[str, Any]]) -> dict[str, int]:
    counts = Counter(request_kind(r["method"], r["path"]) for r in log)
    return dict(sorted(counts.items()))


# ---------------------------------------------------------------- generated stacks


def endpoint_name(i: int) -> str:
    return f"bench-ep-{i:03d}"


def custom_endpoint(i: int) -> dict[str, Any]:
    return {"name": endpoint_name(i), "model": {"name": MODEL[0], "version": MODEL[1]},
            "workload_size": "Small", "scale_to_zero": True}


def stack_config(endpoints: Sequence[dict[str, Any]], host: str = HOST,
                 display_name: str = "braintrust-bench") -> dict[str, Any]:
    """The project's config keys (namespace stripped), as a stack file holds them."""
    return {
        "workspace": {"host": host},
        "endpoints": list(endpoints),
        "principal": {"display_name": display_name, "secret_lifetime_days": 90,
                      "rotate_before_days": 14},
        "braintrust": {"secret_name": "databricks-bench", "auth_type": "service_principal_oauth",
                       "publish": False},
        "tags": {"team": "ml-platform", "cost-center": "1234"},
    }


def stack_document(config: dict[str, Any]) -> dict[str, Any]:
    return {"config": {f"{PROJECT}:{k}": v for k, v in config.items()}}


def write_stack(folder: Path, config: dict[str, Any], stack: str = "bench") -> Path:
    """A stack file `Pulumi.<stack>.yaml` in `folder` holding `config` (keys without namespace)."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump(stack_document(config), sort_keys=False))
    return path


def progress(line: str) -> None:
    """One measured row, printed as soon as it is measured (a full bench runs for minutes)."""
    print(f"  {line}", flush=True)


def custom_stack(n: int, host: str = HOST) -> dict[str, Any]:
    return stack_config([custom_endpoint(i) for i in range(n)], host=host)


# ---------------------------------------------------------------- output


def machine() -> dict[str, Any]:
    return {"nproc": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "machine": platform.machine()}


def write_results(name: str, data: dict[str, Any], quick: bool) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}{'-quick' if quick else ''}.json"
    payload = {"bench": name, "quick": quick, "machine": machine(),
               "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **data}
    write_file(path, json.dumps(payload, indent=2, sort_keys=False) + "\n", mode=0o644)  # a symlink is replaced
    return path


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    if value is None:
        return "-"
    return str(value)


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (readable in a terminal, pasteable into README)."""
    cells = [[fmt(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = "| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) + " |"
            for r in cells]
    return "\n".join([f"### {title}", "", line, rule, *body, ""])
