"""`python -m components diff BASE [HEAD]`: the change plan between two revisions, offline.

Every stack's plan (components/plan.py) is built at both revisions by the code running now
(the work tree's), from each revision's stack files (`git show REV:path`), or from two stack
files. Two plans are compared declaration by declaration:
- create / delete: a key on one side only;
- replace: an input in the resource's contract's replace_keys changed (components/args.py: the one table
  the providers' diff reads too), or a reference to an output that will change (an endpoint
  replaced gets a new endpoint_id, so its grant is replaced too);
- update: any other compared input (its inert_keys never count), each named.
Then what the change means: downtime, the Braintrust record's models, DBUs per hour
(components/cost.py) and the budget.

No pulumi, no databricks-sdk, no credentials, no network: a fork's pull request runs it.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from components import cost as costmod
from components import endpoint_rules
from components import spec as specmod
from components.args import (
    Args,
    BraintrustRecordArgs,
    EndpointArgs,
    OAuthSecretArgs,
    ReadinessArgs,
    Ref,
    RolloutRef,
    ServicePrincipalArgs,
    contract_of,
)
from components.plan import Declaration, Plan, build_plan

Action = Literal["create", "update", "replace", "delete"]
ALL = "*"  # every output changes: the resource is created or replaced

# Outputs that follow an in-place update, beyond the inputs each resource echoes: the endpoint's
# revision is a hash of its served entities and traffic (components/providers/endpoint.py); the
# gate's `ready` is read after every rollout it waits for. Ids never change in place.
DERIVED_OUTPUTS: dict[type[Args], dict[str, tuple[str, ...]]] = {
    EndpointArgs: {"revision": ("served_entities", "traffic")},
    ReadinessArgs: {"ready": ("endpoints",)},
}

# What no offline diff can show: it reads two revisions of the stack files, never state or
# the workspace.
CANNOT_SHOW = (
    "an OAuth secret rotation that falls due (it depends on the expiry stored in state: "
    "`pulumi preview` shows it)",
    "drift: changes made in the workspace or in Braintrust outside this stack (`pulumi refresh` shows it)",
    "a model version omitted from a stack file (the newest the workspace serves, resolved at create)",
    "the live throughput chunk and DBU rate (`pulumi up` checks each endpoint's before it writes)",
)


class DiffError(Exception):
    """Bad usage or a bad revision: exit 1, with this message."""


@dataclass
class ResourceChange:
    key: str
    action: Action
    fields: list[str] = field(default_factory=list)  # what changes (update), or forces it (replace)


@dataclass
class StackDiff:
    name: str
    base_file: str | None
    head_file: str | None
    changes: list[ResourceChange] = field(default_factory=list)
    downtime: list[str] = field(default_factory=list)
    models_added: list[str] = field(default_factory=list)
    models_removed: list[str] = field(default_factory=list)
    models_changed: list[str] = field(default_factory=list)  # flavor changed
    base_cost: costmod.StackCost | None = None
    head_cost: costmod.StackCost | None = None
    budget: costmod.BudgetCheck | None = None
    price_per_dbu: float | None = None
    problems: list[str] = field(default_factory=list)  # the stack is invalid on a side
    refused: list[str] = field(default_factory=list)  # changes the provider's Check refuses
    warnings: list[str] = field(default_factory=list)

    @property
    def whole(self) -> str | None:
        if self.base_file is None:
            return "create"
        if self.head_file is None:
            return "delete"
        return None

    @property
    def failed(self) -> bool:
        return bool(self.problems or self.refused) or (self.budget is not None and self.budget.refused)


@dataclass
class DiffReport:
    base: str
    head: str
    stacks: list[StackDiff]
    errors: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(s.changes or s.whole for s in self.stacks)

    def exit_code(self) -> int:
        """Terraform's `plan -detailed-exitcode`: 0 no change, 1 error, 2 changes."""
        if self.errors or any(s.failed for s in self.stacks):
            return 1
        return 2 if self.changed else 0


# ---------------------------------------------------------------------------------------------
# Two plans


def _refs(value: Any) -> list[Ref]:
    found: list[Ref] = []

    def walk(v: Any) -> None:
        if isinstance(v, RolloutRef):
            found.extend(v.parts())
        elif isinstance(v, Ref):
            found.append(v)
        elif isinstance(v, dict):
            for item in v.values():
                walk(item)
        elif isinstance(v, list | tuple):
            for item in v:
                walk(item)
    walk(value)
    return found


def _moves(value: Any, changed: dict[str, set[str]]) -> bool:
    """Whether a value holding references takes another value: one names an output that changes."""
    return any(ALL in changed.get(r.key, ()) or r.output in changed.get(r.key, ()) for r in _refs(value))


def _compared_keys(decl: Declaration, other: Declaration) -> tuple[str, ...]:
    assert decl.args is not None
    contract = contract_of(decl.type)
    inert = contract.inert_keys if contract else ()
    keys = tuple(k for k in decl.args.keys() if k not in inert)
    if isinstance(decl.args, EndpointArgs) and isinstance(other.args, EndpointArgs) \
            and decl.args.mode == other.args.mode == "pay_per_token":
        return ("name", "mode")  # Databricks' endpoint: only which one it is matters
    return keys


def _record_inputs(args: BraintrustRecordArgs) -> dict[str, Any]:
    # `after` only orders the record after the gate and the grants: its value is not in the record.
    return {k: v for k, v in args.inputs().items() if k != "after"}


def _as_is(value: Any) -> Any:
    return value


Refusal = tuple[str, str, str]  # (resource key, field, why and the fix)


def compare(base: Plan, head: Plan, refused: list[Refusal] | None = None
            ) -> tuple[list[ResourceChange], dict[str, set[str]]]:
    """Each resource's change, in head's order (what depends on a resource comes after it), then
    the deletes; and, per key, the outputs that take another value. A change the provider's
    Check would refuse (endpoint_rules.refusals) is added to ``refused``."""
    refused = [] if refused is None else refused
    changes: list[ResourceChange] = []
    moved: dict[str, set[str]] = {}
    base_keys = {d.key for d in base}
    for decl in head:
        if decl.args is None:
            continue
        if decl.key not in base_keys:
            moved[decl.key] = {ALL}
            if decl.custom:
                changes.append(ResourceChange(decl.key, "create"))
            continue
        old = base[decl.key]
        assert old.args is not None
        if isinstance(decl.args, BraintrustRecordArgs) and isinstance(old.args, BraintrustRecordArgs):
            new_in, old_in = _record_inputs(decl.args), _record_inputs(old.args)
            if new_in != old_in or _moves(new_in, moved):
                moved[decl.key] = {"record", "record_hash", "redacted"}
            continue
        new_in, old_in = decl.args.inputs(), old.args.inputs()
        same = endpoint_rules.comparable if isinstance(decl.args, EndpointArgs) else _as_is
        fields = [k for k in _compared_keys(decl, old)
                  if same(new_in.get(k)) != same(old_in.get(k)) or _moves(new_in.get(k), moved)]
        if not fields:
            continue
        contract = contract_of(decl.type)
        if isinstance(decl.args, EndpointArgs):
            # What a change to an endpoint does is endpoint_rules' table, as in the provider.
            replaces = endpoint_rules.replace_keys(old_in, new_in, fields)
            refused.extend((decl.key, field, why) for field, why in endpoint_rules.refusals(old_in, new_in))
        else:
            replaces = [k for k in fields if contract is not None and k in contract.replace_keys]
        if replaces:
            moved[decl.key] = {ALL}
            changes.append(ResourceChange(decl.key, "replace", replaces))
        else:
            outputs = set(fields)
            for output, inputs in DERIVED_OUTPUTS.get(type(decl.args), {}).items():
                if set(inputs) & set(fields):
                    outputs.add(output)
            moved[decl.key] = outputs
            changes.append(ResourceChange(decl.key, "update", fields))
    head_keys = {d.key for d in head}
    for decl in reversed(base.declarations):  # dependants first, as they are deleted
        if decl.custom and decl.key not in head_keys:
            changes.append(ResourceChange(decl.key, "delete"))
    return changes, moved


def _record_models(plan: Plan | None) -> dict[str, str]:
    if plan is None:
        return {}
    records = plan.of_type(BraintrustRecordArgs)
    return dict(records[0].args.models) if records and isinstance(records[0].args, BraintrustRecordArgs) else {}


def _downtime(base: Plan | None, head: Plan | None, changes: list[ResourceChange]) -> list[str]:
    flags: list[str] = []
    base_models = _record_models(base)
    for change in changes:
        plan = head if change.action != "delete" else base
        assert plan is not None
        decl = plan[change.key]
        args = decl.args
        if isinstance(args, EndpointArgs) and args.mode != "pay_per_token":
            if change.action == "delete":
                served = f" (Braintrust model {args.name!r})" if args.name in base_models else ""
                flags.append(f"endpoint {args.name} is deleted: it stops answering{served}")
            elif change.action == "replace":
                flags.append(f"endpoint {args.name} is replaced ({', '.join(change.fields)} changed): it is "
                             f"deleted and created again, so the Braintrust models it serves ({args.name!r}) "
                             "stop answering until the new one is ready")
        if isinstance(args, ServicePrincipalArgs | OAuthSecretArgs) and change.action in ("replace", "delete"):
            what = "principal" if isinstance(args, ServicePrincipalArgs) else "OAuth secret"
            flags.append(f"the query {what} is {change.action}d: the credentials Braintrust stores stop working "
                         "until the record is published again (publish: true does it in the same `pulumi up`; "
                         "otherwise paste the new record)")
    if base is not None and head is not None:
        for decl in head.of_type(EndpointArgs):
            if decl.key not in {d.key for d in base}:
                continue
            old, new = base[decl.key].args, decl.args
            assert isinstance(old, EndpointArgs) and isinstance(new, EndpointArgs)
            if new.mode != "pay_per_token" and not _scales_to_zero(old) and _scales_to_zero(new):
                flags.append(f"endpoint {new.name} now scales to zero (min 0): the first call after idle waits "
                             "for a cold start")
    return flags


def _scales_to_zero(args: EndpointArgs) -> bool:
    return any(e.scale_to_zero_enabled or e.min_provisioned_throughput == 0 for e in args.served_entities)


def diff_stack(name: str, base: specmod.Stack | None, head: specmod.Stack | None,
               price_per_dbu: float | None = None) -> StackDiff:
    """The change plan of one stack; None on a side: the stack does not exist there."""
    out = StackDiff(name, base.file if base else None, head.file if head else None)
    base_plan = build_plan(base) if base else None
    head_plan = build_plan(head) if head else None
    if base_plan is not None and head_plan is not None:
        refused: list[Refusal] = []
        out.changes, _ = compare(base_plan, head_plan, refused)
        out.refused = [f"{key}: {field}: {why}" for key, field, why in refused]
    elif head_plan is not None:
        out.changes = [ResourceChange(d.key, "create") for d in head_plan if d.custom]
    elif base_plan is not None:
        out.changes = [ResourceChange(d.key, "delete") for d in reversed(base_plan.declarations) if d.custom]
    out.downtime = _downtime(base_plan, head_plan, out.changes)
    old_models, new_models = _record_models(base_plan), _record_models(head_plan)
    out.models_added = sorted(set(new_models) - set(old_models))
    out.models_removed = sorted(set(old_models) - set(new_models))
    out.models_changed = sorted(m for m in set(old_models) & set(new_models) if old_models[m] != new_models[m])
    out.base_cost = costmod.estimate(base_plan) if base_plan else None
    out.head_cost = costmod.estimate(head_plan) if head_plan else None
    price = price_per_dbu
    if price is None:
        price = (head.spec.price_per_dbu if head else None) or (base.spec.price_per_dbu if base else None)
    out.price_per_dbu = price
    if head is not None and out.head_cost is not None:
        out.budget = costmod.check_budget(out.head_cost, head.spec.max_dbu_per_hour)
        out.warnings = [str(w) for w in head.warnings]
    return out


# ---------------------------------------------------------------------------------------------
# Reading the stack files of a revision


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False, timeout=60)
    except FileNotFoundError:
        raise DiffError("git is not installed (compare two stack files instead)") from None
    except subprocess.TimeoutExpired:
        raise DiffError(f"git {' '.join(args)} took longer than 60 s") from None


def check_revision(rev: str, cwd: Path) -> None:
    if rev.startswith("-") or not rev.strip():
        raise DiffError(f"{rev!r} is not a git revision")
    done = _git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"], cwd)
    if done.returncode != 0:
        raise DiffError(f"{rev!r} is not a revision of this repository (check the branch, tag or commit; "
                        "a shallow clone may need `git fetch --depth=...`)")


Source = tuple[str, str]  # (file as shown, its text)


def stack_texts_at(rev: str | None, stacks_dir: Path, cwd: Path) -> dict[str, Source]:
    """Each stack's (file, text) in the stacks folder at a revision, or in the work tree (None)."""
    found: dict[str, Source] = {}
    if rev is None:
        folder = cwd / stacks_dir
        for path in (specmod_stack_files(folder) if folder.is_dir() else []):
            found[specmod.stack_name_of(path)] = (str(stacks_dir / path.name), _read_text(path))
        return found
    done = _git(["ls-tree", "--name-only", "-z", "--end-of-options", rev, "--", f"./{stacks_dir.as_posix()}/"], cwd)
    if done.returncode != 0:
        raise DiffError(f"cannot list {stacks_dir}/ at {rev}: {done.stderr.decode(errors='replace').strip()}")
    for raw in sorted(filter(None, done.stdout.split(b"\0"))):
        name = PurePosixPath(raw.decode(errors="surrogateescape")).name
        if not (name.startswith("Pulumi.") and name.endswith((".yaml", ".yml"))):
            continue
        rel = f"{stacks_dir.as_posix()}/{name}"
        shown = _git(["show", "--end-of-options", f"{rev}:./{rel}"], cwd)
        if shown.returncode != 0:
            raise DiffError(f"cannot read {rel} at {rev}: {shown.stderr.decode(errors='replace').strip()}")
        found[specmod.stack_name_of(Path(name))] = (f"{rev}:{rel}", _decode(shown.stdout))
    return found


def specmod_stack_files(folder: Path) -> list[Path]:
    return sorted({p for pattern in ("Pulumi.*.yaml", "Pulumi.*.yml") for p in folder.glob(pattern) if p.is_file()})


def _read_text(path: Path) -> str:
    try:
        return _decode(path.read_bytes())
    except OSError as exc:
        return f"\0unreadable: {exc.strerror or exc}"


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return "\0not UTF-8"


def load_text(name: str, file: str, text: str) -> specmod.Stack:
    """A stack from its text, with every check `validate` makes (StackError when invalid)."""
    if text.startswith("\0"):
        reason = text[1:]
        raise specmod.StackError([specmod.Problem(file, "", (
            "is not UTF-8 text (save it as UTF-8)" if reason == "not UTF-8" else f"cannot be read: {reason}"))])
    document = specmod.read_stack_text(text, file)
    try:
        return specmod.validate_document(document, stack=name, file=file)
    except RecursionError:
        raise specmod.StackError([specmod.Problem(file, "", "is nested too deeply to be a stack file")]) from None


def _load_side(sources: dict[str, Source]) -> tuple[dict[str, specmod.Stack], dict[str, list[str]]]:
    stacks: dict[str, specmod.Stack] = {}
    problems: dict[str, list[str]] = {}
    for name, (file, text) in sources.items():
        try:
            stacks[name] = load_text(name, file, text)
        except specmod.StackError as exc:
            problems[name] = [str(p) for p in exc.problems]
    for problem in specmod.check_across(list(stacks.values())):
        owner = next(n for n, s in stacks.items() if s.file == problem.file)
        problems.setdefault(owner, []).append(str(problem))
    return stacks, problems


def diff_sources(base: dict[str, Source], head: dict[str, Source], base_label: str, head_label: str,
                 price_per_dbu: float | None = None) -> DiffReport:
    base_stacks, base_problems = _load_side(base)
    head_stacks, head_problems = _load_side(head)
    report = DiffReport(base_label, head_label, [])
    for name in sorted(set(base) | set(head)):
        problems = base_problems.get(name, []) + head_problems.get(name, [])
        if problems:
            sd = StackDiff(name, base[name][0] if name in base else None, head[name][0] if name in head else None)
            sd.problems = problems
            report.stacks.append(sd)
            continue
        report.stacks.append(diff_stack(name, base_stacks.get(name), head_stacks.get(name), price_per_dbu))
    return report


def diff_revisions(base: str, head: str | None, stacks_dir: Path = Path("stacks"), cwd: Path | None = None,
                   price_per_dbu: float | None = None) -> DiffReport:
    where = cwd or Path.cwd()
    check_revision(base, where)
    if head is not None:
        check_revision(head, where)
    base_texts, head_texts = stack_texts_at(base, stacks_dir, where), stack_texts_at(head, stacks_dir, where)
    if not base_texts and not head_texts:
        # Nothing to compare is not "no change": exit 0 would pass a review that read nothing
        # (the folder is relative to the current directory, as git's paths are).
        raise DiffError(f"no stack files (Pulumi.<stack>.yaml) in {stacks_dir.as_posix()}/ at {base} or at "
                        f"{head or 'the work tree'}, relative to {where} (run from the repository's root, or "
                        "name the folder with --stacks)")
    return diff_sources(base_texts, head_texts, base, head or "work tree", price_per_dbu)


def diff_files(base: Path, head: Path, price_per_dbu: float | None = None) -> DiffReport:
    """Two stack files, compared as one stack (named after the head file)."""
    name = specmod.stack_name_of(head)
    return diff_sources({name: (str(base), _read_text(base))}, {name: (str(head), _read_text(head))},
                        str(base), str(head), price_per_dbu)


# ---------------------------------------------------------------------------------------------
# Output

SYMBOL = {"create": "+ create", "update": "~ update", "replace": "± replace", "delete": "- delete"}


def _cost_rows(sd: StackDiff) -> list[tuple[str, str, str, str, str, str]]:
    before = sd.base_cost.by_name() if sd.base_cost else {}
    after = sd.head_cost.by_name() if sd.head_cost else {}
    rows = []
    for name in list(after) + [n for n in before if n not in after]:
        b, a = before.get(name), after.get(name)

        def pair(c: costmod.EndpointCost | None) -> tuple[str, str]:
            if c is None:
                return "—", "—"
            if c.billing == "per_token":
                return "per token", "per token"
            return costmod.fmt(c.min_dbu_per_hour), costmod.fmt(c.max_dbu_per_hour)
        bmin, bmax = pair(b)
        amin, amax = pair(a)
        changed = "" if (bmin, bmax) == (amin, amax) else " *"
        rows.append((name + changed, bmin, bmax, amin, amax, ""))
    return rows


def _total(cost: costmod.StackCost | None, bound: Literal["min", "max"]) -> str:
    if cost is None:
        return "—"
    total = cost.total(bound)
    if total is None:
        return f"unknown (≥ {costmod.fmt(cost.known_total(bound))})"
    return costmod.fmt(total)


def _money(cost: costmod.StackCost | None, price: float | None) -> str:
    if cost is None or price is None:
        return ""
    parts = []
    for bound in ("min", "max"):
        m = costmod.money(cost.total(bound), price)
        if m is None or m["per_hour"] is None:
            # Unknown, with the known part's money as a lower bound, as the DBU total shows it.
            known = costmod.money(cost.known_total(bound), price)
            floor = (f" (≥ {known['per_hour']:,.2f}/hour, ≥ {known['per_month']:,.0f}/month)"
                     if known and known["per_hour"] else "")
            parts.append(f"at {bound}: unknown{floor}")
        else:
            parts.append(f"at {bound}: {m['per_hour']:,.2f}/hour, {m['per_month']:,.0f}/month")
    return "; ".join(parts)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def markdown(report: DiffReport) -> str:
    lines = [f"## Change plan: `{_md_escape(report.base)}` → `{_md_escape(report.head)}`", ""]
    for error in report.errors:
        lines.append(f"**Error:** {_md_escape(error)}")
    if not report.stacks and not report.errors:
        lines.append("No stack files on either side.")
    summary = []
    for sd in report.stacks:
        if sd.problems:
            summary.append(f"`{sd.name}`: **invalid**")
        elif sd.whole:
            summary.append(f"`{sd.name}`: whole stack {sd.whole}d")
        else:
            counts = {a: sum(1 for c in sd.changes if c.action == a) for a in SYMBOL}
            text = ", ".join(f"{n} {a}" for a, n in counts.items() if n) or "no change"
            summary.append(f"`{sd.name}`: {text}")
    if summary:
        lines += ["", " · ".join(summary), ""]
    for sd in report.stacks:
        lines += _md_stack(sd, report)
    lines += ["", "<details><summary>What this offline diff does not show</summary>", ""]
    lines += [f"- {c}" for c in CANNOT_SHOW]
    lines += ["", "DBU rates come from components/catalog.py (each with its source); an unknown rate is shown as "
              "unknown, never as 0.", "</details>", ""]
    return "\n".join(lines)


def _md_stack(sd: StackDiff, report: DiffReport) -> list[str]:
    files = " → ".join(f"`{_md_escape(f)}`" for f in (sd.base_file, sd.head_file) if f)
    lines = ["", f"### Stack `{_md_escape(sd.name)}` ({files})", ""]
    if sd.problems:
        lines.append("**Invalid: not diffed.** Fix these first:")
        lines += [f"- {_md_escape(p)}" for p in sd.problems]
        return lines
    if sd.whole:
        lines.append(f"**The whole stack is {sd.whole}d** (the file is only on the "
                     f"{'head' if sd.whole == 'create' else 'base'} side).")
        lines.append("")
    if sd.changes:
        lines += ["| resource | change | fields |", "|---|---|---|"]
        for c in sd.changes:
            lines.append(f"| `{_md_escape(c.key)}` | {SYMBOL[c.action]} | {_md_escape(', '.join(c.fields))} |")
    else:
        lines.append("No resource changes.")
    if sd.refused:
        lines += ["", "**Refused:** `pulumi up` would stop at these, before any write:"]
        lines += [f"- ❌ {_md_escape(r)}" for r in sd.refused]
    if sd.downtime:
        lines += ["", "**Downtime:**"]
        lines += [f"- ⚠️ {_md_escape(d)}" for d in sd.downtime]
    if sd.models_added or sd.models_removed or sd.models_changed:
        lines += ["", "**Braintrust record models:**"]
        lines += [f"- added `{_md_escape(m)}`" for m in sd.models_added]
        lines += [f"- removed `{_md_escape(m)}`" for m in sd.models_removed]
        lines += [f"- flavor changed `{_md_escape(m)}`" for m in sd.models_changed]
    lines += ["", "**Cost (DBU per hour)**", "",
              "| endpoint | before, at min | before, at max | after, at min | after, at max |",
              "|---|---|---|---|---|"]
    for name, bmin, bmax, amin, amax, _ in _cost_rows(sd):
        lines.append(f"| `{_md_escape(name)}` | {bmin} | {bmax} | {amin} | {amax} |")
    lines.append(f"| **total** | {_total(sd.base_cost, 'min')} | {_total(sd.base_cost, 'max')} | "
                 f"{_total(sd.head_cost, 'min')} | {_total(sd.head_cost, 'max')} |")
    if sd.price_per_dbu is not None:
        lines += ["", f"At {sd.price_per_dbu:g} per DBU: before {_money(sd.base_cost, sd.price_per_dbu) or '—'}; "
                      f"after {_money(sd.head_cost, sd.price_per_dbu) or '—'}."]
    notes: list[str] = []
    in_head = {e.endpoint for e in sd.head_cost.endpoints} if sd.head_cost else set()
    for cost in (sd.head_cost, sd.base_cost):
        for e in cost.endpoints if cost else ():
            for n in (*e.notes, *(f"source: {s}" for s in e.sources)):
                line = f"`{e.endpoint}`: {n}"
                if line in notes:
                    continue
                # A base-side rate of an endpoint the head still has (it changed model): say which side.
                notes.append(f"`{e.endpoint}` (before): {n}" if cost is sd.base_cost and e.endpoint in in_head
                             else line)
    if notes:
        lines += ["", "<details><summary>Rates: sources and unknowns</summary>", ""]
        lines += [f"- {_md_escape(n)}" for n in notes]
        lines += ["", "</details>"]
    if sd.budget is not None and sd.budget.status != "none":
        mark = {"over": "❌ over budget", "unknown": "❔ budget not checkable offline", "within": "✅ within budget"}
        lines += ["", f"**Budget:** {mark[sd.budget.status]}: {_md_escape(sd.budget.message)}"]
    if sd.warnings:
        lines += ["", "**Warnings:**"] + [f"- {_md_escape(w)}" for w in sd.warnings]
    return lines


def as_json(report: DiffReport) -> str:
    def stack(sd: StackDiff) -> dict[str, Any]:
        out: dict[str, Any] = {"base_file": sd.base_file, "head_file": sd.head_file}
        if sd.problems:
            out["problems"] = sd.problems
            return out
        out["whole_stack"] = sd.whole
        out["changes"] = [{"resource": c.key, "action": c.action, "fields": c.fields} for c in sd.changes]
        out["downtime"] = sd.downtime
        out["refused"] = sd.refused
        out["braintrust_models"] = {"added": sd.models_added, "removed": sd.models_removed,
                                    "flavor_changed": sd.models_changed}
        out["cost"] = {
            "before": costmod.as_dict(sd.base_cost, sd.price_per_dbu) if sd.base_cost else None,
            "after": costmod.as_dict(sd.head_cost, sd.price_per_dbu) if sd.head_cost else None,
        }
        if sd.budget is not None:
            out["budget"] = {"max_dbu_per_hour": sd.budget.budget, "status": sd.budget.status,
                             "message": sd.budget.message}
        out["warnings"] = sd.warnings
        return out

    data = {
        "base": report.base, "head": report.head, "errors": report.errors,
        "changes": report.changed, "exit_code": report.exit_code(),
        "stacks": {sd.name: stack(sd) for sd in report.stacks},
        "not_shown": list(CANNOT_SHOW),
    }
    return json.dumps(data, indent=2) + "\n"
