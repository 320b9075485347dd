"""The cheap benchmarks still run end to end in quick mode and write the JSON README's tables
come from. No timing is asserted here: timings belong to `python -m bench`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def test_quick_validate_and_calls_benches_write_their_tables_as_json() -> None:
    out = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "validate,calls"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "### calls:" in out.stdout and "### validate:" in out.stdout

    validate = json.loads((RESULTS / "validate-quick.json").read_text())
    assert {"machine", "rows", "startup", "per_stack", "imports", "goals"} <= set(validate)
    assert [r["stacks"] for r in validate["rows"]] == [1, 10]

    calls = json.loads((RESULTS / "calls-quick.json").read_text())
    scenarios = calls["scenarios"]
    assert set(scenarios) == {"create", "no-op up", "refresh", "tag change (1 endpoint)",
                              "config change (1 endpoint)", "rotation (up after expiry)", "destroy"}
    for s in scenarios.values():
        assert {"requests", "per_resource", "writes", "by_kind"} <= set(s)
    assert scenarios["create"]["by_kind"]["POST /serving-endpoints"] == calls["n"]
    assert {"gate_reads_per_endpoint", "list_rounds"} <= set(scenarios["create"])

    summary = json.loads((RESULTS / "summary-quick.json").read_text())
    assert set(summary["benches"]) == {"validate", "calls"}
