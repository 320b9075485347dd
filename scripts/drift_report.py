#!/usr/bin/env python3
"""Classify a `pulumi preview --refresh --json` of one stack: drift, a rotation that is due, or
nothing to do (.github/workflows/drift.yml runs it nightly per stack).

    pulumi preview --refresh --json --stack prod > preview.json
    python3 scripts/drift_report.py --stack prod preview.json > report.md
    # exit 0: no drift (a due rotation is reported, not failed); 1: drift, or the preview
    # reported errors; 2: unreadable input

What the next `pulumi up` would do is what counts, so refresh and read steps are not looked at:
- the query principal's OAuth secret replaced for `expire_time` alone (its provider asks for that
  when the secret expires within `rotate_before_days`) is "rotation due", not drift; so is the
  Braintrust record being re-published (`record`, `record_hash`) in the same run, since it
  carries the new secret, and the secret's sweep updated for `live_secret_id` alone (it follows
  the new secret, for orphans of runs that died);
- every other create, update, replace or delete is drift: someone changed, added or removed
  something the stack owns.

The report names resources, operations and property names, never values: a preview's states
hold the secret outputs (Pulumi writes `[secret]` for them, but the classifier does not rely on
that). Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Operations that change nothing remote.
NO_CHANGE = {"same", "read", "refresh", "discard", "read-discard", "import"}
REPLACE_FAMILY = {"replace", "create-replacement", "delete-replaced", "read-replacement",
                  "discard-replaced", "import-replacement"}
ROTATION_REASONS = {"expire_time"}
REPUBLISH_REASONS = {"record", "record_hash"}
SWEEP_REASONS = {"live_secret_id"}
SECRET_TYPE = "OAuthSecret"
RECORD_TYPE = "AiSecret"
SWEEP_TYPE = "OAuthSecretSweep"
STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass
class Change:
    urn: str
    op: str
    type: str
    name: str
    properties: list[str] = field(default_factory=list)  # every property named, for the report
    reasons: set[str] = field(default_factory=set)  # what the provider's diff named: the classification

    def line(self) -> str:
        props = f" ({', '.join(self.properties)})" if self.properties else ""
        return f"- `{self.op}` {self.type} `{self.name}`{props}"


@dataclass
class Report:
    stack: str
    drift: list[Change] = field(default_factory=list)
    rotation: list[Change] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Drift, or a preview that could not finish: either needs a person."""
        return bool(self.drift or self.errors)

    @property
    def status(self) -> str:
        if self.drift:
            return "drift"
        if self.errors:
            return "preview failed"
        return "rotation due" if self.rotation else "no drift"

    def markdown(self) -> str:
        out = [f"## Stack `{self.stack}`: {self.status}", ""]
        if self.drift:
            out += ["What the next `pulumi up` would change, because the workspace (or Braintrust) "
                    "no longer matches the stack:", "", *[c.line() for c in self.drift], ""]
        if self.rotation:
            out += ["Rotation due (not drift): the OAuth secret expires within `rotate_before_days`; "
                    "the next `pulumi up` replaces it, new secret first:", "",
                    *[c.line() for c in self.rotation], ""]
        if self.errors:
            out += ["The preview reported errors, so drift could not be checked completely "
                    "(does the deploy identity still have workspace admin rights?):", "",
                    *[f"- {e}" for e in self.errors], ""]
        if not self.drift and not self.rotation and not self.errors:
            out += ["The workspace matches the stack.", ""]
        if self.drift:
            out += ["To fix: run the deploy workflow (or `pulumi up --stack "
                    f"{self.stack}`) to put it back, or change `stacks/Pulumi.{self.stack}.yaml` "
                    "in a pull request if the change was intended.", ""]
        return "\n".join(out)


def _type_and_name(step: dict[str, Any]) -> tuple[str, str]:
    urn = str(step.get("urn") or "")
    state = step.get("newState") or step.get("oldState") or {}
    rtype = str(state.get("type") or "")
    head, _, name = urn.rpartition("::")
    if not rtype:
        # urn:pulumi:<stack>::<project>::<parent type>$<type>::<name>
        rtype = head.rpartition("::")[2].rpartition("$")[2]
    return rtype, name


def _short(rtype: str) -> str:
    return rtype.rpartition(":")[2]


def _properties(step: dict[str, Any]) -> list[str]:
    keys = [*(step.get("replaceReasons") or []), *(step.get("diffReasons") or []),
            *(step.get("detailedDiff") or {}).keys()]
    return sorted({str(k) for k in keys})


def _reasons(step: dict[str, Any]) -> set[str]:
    # The provider's own answer (replaceReasons, else diffReasons), not detailedDiff, which the
    # engine may fill in from a comparison of inputs and outputs.
    return {str(k) for k in (step.get("replaceReasons") or step.get("diffReasons") or [])}


def classify(preview: dict[str, Any], stack: str) -> Report:
    """Sort the preview's steps into drift and a due rotation."""
    report = Report(stack)
    changes: list[Change] = []
    for step in preview.get("steps") or []:
        op = str(step.get("op") or "")
        rtype, name = _type_and_name(step)
        if op in NO_CHANGE or rtype == STACK_TYPE:
            continue
        changes.append(Change(str(step.get("urn") or ""), op, _short(rtype), name, _properties(step),
                              _reasons(step)))
    # A secret replaced for its expiry alone, in any of the replace steps of its URN (the
    # delete-replaced step names no reason).
    rotating = {c.urn for c in changes if c.type == SECRET_TYPE and c.op in REPLACE_FAMILY
                and c.reasons and c.reasons <= ROTATION_REASONS}
    for c in changes:
        if c.urn in rotating and c.op in REPLACE_FAMILY and c.reasons <= ROTATION_REASONS:
            report.rotation.append(c)
        elif (rotating and c.type == RECORD_TYPE and c.op == "update"
              and c.reasons and c.reasons <= REPUBLISH_REASONS):
            report.rotation.append(c)  # the new secret published to Braintrust
        elif (rotating and c.type == SWEEP_TYPE and c.op == "update"
              and c.reasons and c.reasons <= SWEEP_REASONS):
            report.rotation.append(c)  # the sweep follows the new secret
        else:
            report.drift.append(c)
    for diag in preview.get("diagnostics") or []:
        if str(diag.get("severity") or "") == "error":
            # The message, minus anything after a newline (tracebacks); providers never log secrets.
            report.errors.append(str(diag.get("message") or "").strip().splitlines()[0][:300])
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("preview", type=Path, help="the output of `pulumi preview --refresh --json`")
    parser.add_argument("--stack", required=True, help="the stack's name, for the report")
    parser.add_argument("--github-output", type=Path, metavar="FILE",
                        help="append status=..., failed=true|false, rotation_due=true|false (GitHub step outputs)")
    args = parser.parse_args(argv)
    try:
        preview = json.loads(args.preview.read_text())
        if not isinstance(preview, dict):
            raise ValueError("the top level is not an object")
    except (OSError, ValueError, RecursionError) as e:
        print(f"drift_report: {args.preview} is not the JSON of `pulumi preview --json` ({e}); "
              f"run `pulumi preview --refresh --json --stack {args.stack} > {args.preview}`", file=sys.stderr)
        return 2
    report = classify(preview, args.stack)
    print(report.markdown())
    if args.github_output:
        with args.github_output.open("a") as f:
            f.write(f"status={report.status}\nfailed={str(report.failed).lower()}\n"
                    f"rotation_due={str(bool(report.rotation)).lower()}\n")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
