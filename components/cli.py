"""``python -m components``: review a stack with no credentials and no network.

It imports neither databricks-sdk nor pulumi, so a pull-request job runs it on a bare runner.
Exit codes: 0 all good, 1 a stack is invalid (or a check failed), 2 bad usage. `diff` follows
Terraform's `plan -detailed-exitcode` instead: 0 no change, 2 changes, 1 any error, bad usage
included (so a usage error is never read as "changes").
"""

from __future__ import annotations

import argparse
import errno
import importlib
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from components import spec as specmod
from components.args import BraintrustRecordArgs, EndpointArgs, substitute
from components.braintrust import REDACTED, record_config
from components.cost import as_dict as cost_dict
from components.cost import check_budget, estimate
from components.files import write_file
from components.plan import Declaration, build_plan

STACKS_DIR = Path("stacks")


STACK_GLOBS = ("Pulumi.*.yaml", "Pulumi.*.yml")


def stack_files_in(folder: Path) -> list[Path]:
    """The stack files in a folder, Pulumi.<stack>.yaml (or .yml), sorted."""
    return sorted({p for pattern in STACK_GLOBS for p in folder.glob(pattern) if p.is_file()})


def all_stack_files(stacks_dir: Path = STACKS_DIR) -> list[Path]:
    return stack_files_in(stacks_dir)


def _not_found(target: str, folder: Path) -> specmod.StackError:
    names = [specmod.stack_name_of(p) for p in stack_files_in(folder)] if folder.is_dir() else []
    known = (f"the stacks in {folder}/ are: {', '.join(names)}" if names
             else f"{folder}/ holds no Pulumi.<stack>.yaml files")
    return specmod.StackError([specmod.Problem(target, "", f"no such stack or stack file ({known})")])


def _broken_link(target: str, path: Path) -> None:
    """A symlink loop or a dangling link is named as such, never as "no such stack"."""
    try:
        path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise specmod.StackError([specmod.Problem(target, "", (
                "is a symbolic link loop (it points back at itself through its links): point it at a stack file"
            ))]) from None
        if path.is_symlink():
            raise specmod.StackError([specmod.Problem(target, "", (
                f"is a dangling symbolic link (to {os.readlink(path)}, which does not exist): point it at a "
                "stack file"))]) from None


def resolve_target(target: str, stacks_dir: Path = STACKS_DIR) -> Path:
    """A stack name (``dev``, or ``Pulumi.dev``) or a path to a stack file (``stacks/Pulumi.dev.yaml``,
    or without its suffix). Raises StackError, listing the stacks that exist, when there is none."""
    path = Path(target)
    if path.is_file():
        return path
    _broken_link(target, path)
    if path.is_dir():
        raise specmod.StackError([specmod.Problem(target, "", (
            "is a folder, not a stack file (name one of its Pulumi.<stack>.yaml files)"
        ))])
    if path.suffix in (".yaml", ".yml") or len(path.parts) > 1:
        # A path: try it with the suffix left off, never rebuild it around a stack name.
        for suffix in (".yaml", ".yml"):
            candidate = path.with_name(path.name + suffix)
            if path.suffix not in (".yaml", ".yml") and candidate.is_file():
                return candidate
        raise _not_found(target, path.parent)
    name = target.removeprefix("Pulumi.")
    for suffix in (".yaml", ".yml"):
        candidate = stacks_dir / f"Pulumi.{name}{suffix}"
        if candidate.is_file():
            return candidate
    raise _not_found(target, stacks_dir)


def resolve_targets(targets: Sequence[str], stacks_dir: Path = STACKS_DIR) -> tuple[list[Path], list[specmod.Problem]]:
    """Every stack file the targets name: stack names, files, and folders (every stack file in
    them). Targets that name nothing become problems."""
    files: list[Path] = []
    problems: list[specmod.Problem] = []
    for target in targets:
        path = Path(target)
        if path.is_dir():
            found = stack_files_in(path)
            if not found:
                problems.append(specmod.Problem(target, "", (
                    "is a folder with no Pulumi.<stack>.yaml files (name a folder of stack files, or a file)"
                )))
            files.extend(found)
            continue
        try:
            files.append(resolve_target(target, stacks_dir))
        except specmod.StackError as exc:
            problems.extend(exc.problems)
    # One file named twice (`prod` and an absolute path to it) is one stack, not a copy of itself;
    # a symlink under another name stays a second stack.
    unique: dict[tuple[Path, str], Path] = {}
    for path in files:
        unique.setdefault((path.parent.resolve(), path.name), path)
    return list(unique.values()), problems


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate each stack file, then the rules across them; print one line per stack or problem."""
    if args.targets:
        files, problems = resolve_targets(args.targets)
    else:
        files, problems = all_stack_files(), []
        if not files:
            print(f"no stack files found under {STACKS_DIR}/ (expected Pulumi.<stack>.yaml)", file=sys.stderr)
            return 1
    stacks: list[specmod.Stack] = []
    for path in files:
        try:
            stacks.append(specmod.load_stack_file(path))
        except specmod.StackError as exc:
            problems.extend(exc.problems)
    problems.extend(specmod.check_across(stacks))
    budgets = {stack.file: check_budget(estimate(build_plan(stack)), stack.spec.max_dbu_per_hour)
               for stack in stacks}
    problems.extend(specmod.Problem(file, "max_dbu_per_hour", b.message) for file, b in budgets.items() if b.refused)
    refused = {p.file for p in problems}
    for stack in stacks:
        for warning in stack.warnings:
            print(warning, file=sys.stderr)
        if budgets[stack.file].status == "unknown":
            print(specmod.Problem(stack.file, "max_dbu_per_hour", f"warning: {budgets[stack.file].message}"),
                  file=sys.stderr)
        if stack.file not in refused:
            policy = "production" if stack.production else "standard"
            print(f"ok  {stack.file}  ({stack.name}: {len(stack.spec.endpoints)} endpoints, {policy} policy)")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(refused)} of {max(len(files), len(refused))} stack file(s) invalid", file=sys.stderr)
    return 1 if problems else 0


NEWEST = "newest, resolved at create"


def _shown(decl: Declaration) -> dict[str, Any]:
    """A declaration's inputs as render prints them: references as placeholders."""
    assert decl.args is not None
    inputs = substitute(decl.args.inputs(), str)
    if isinstance(decl.args, EndpointArgs):
        for entity, shown in zip(decl.args.served_entities, inputs["served_entities"], strict=True):
            if entity.entity_version is None:
                shown["entity_version"] = NEWEST
    return inputs


def render_plan(stack: specmod.Stack) -> dict[str, Any]:
    """The plan's declarations, secrets never included, in the order the program registers
    them, and the Braintrust record they lead to (its secret redacted)."""
    plan = build_plan(stack)
    resources: dict[str, dict[str, Any]] = {}
    for decl in plan:
        item: dict[str, Any] = {"type": decl.type, "name": decl.name}
        if decl.parent:
            item["parent"] = decl.parent
        if decl.aliases:
            item["formerly"] = [{k: v for k, v in vars(a).items() if v} for a in decl.aliases]
        if decl.args is not None:
            item["inputs" if decl.custom else "arguments"] = _shown(decl)
        if decl.custom:
            item["depends_on"] = list(plan.dependencies(decl.key))
        resources[decl.key] = item
    s = stack.spec
    (record,) = plan.of_type(BraintrustRecordArgs)
    assert isinstance(record.args, BraintrustRecordArgs)
    client_id = f"<application id of {s.principal.display_name}, known after pulumi up>"
    provider = record_config(record.args, client_id, REDACTED).redacted()
    return {
        "stack": stack.name,
        "file": stack.file,
        "policy": "production" if stack.production else "standard",
        "workspace": s.workspace.host,
        "resources": resources,
        "braintrust": {"publish": s.braintrust.publish, "api_url": s.braintrust.api_url, "provider": provider},
        "cost": cost_dict(estimate(plan), s.price_per_dbu),
    }


def dump(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, sort_keys=False) + "\n"
    # libyaml's emitter when present: the pure-Python one took seconds for a large stack.
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, sort_keys=False, default_flow_style=False, width=100)


def cmd_render(args: argparse.Namespace) -> int:
    try:
        stack = specmod.load_stack_file(resolve_target(args.stack))
    except specmod.StackError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    sys.stdout.write(dump(render_plan(stack), args.format))
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    text = json.dumps(specmod.spec_json_schema(), indent=2) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:  # beside it, then renamed over it: a symlink there is replaced, never followed
        write_file(args.output, text, mode=0o644)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m components",
        description="Validate, render and verify databricks-braintrust stacks.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("validate", help="check stack files offline (all of stacks/ by default), and the "
                       "rules across them")
    p.add_argument("targets", nargs="*", metavar="STACK_FILE_OR_FOLDER",
                   help="a stack name (dev), a stack file, or a folder of Pulumi.<stack>.yaml files")
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("render", help="what a stack will create, secrets redacted")
    p.add_argument("stack", metavar="STACK_OR_FILE")
    p.add_argument("--format", choices=("yaml", "json"), default="yaml")
    p.set_defaults(func=cmd_render)
    p = sub.add_parser("schema", help="JSON Schema of a stack file, for editors")
    p.add_argument("--output", "-o", type=Path, metavar="FILE", help="write it to FILE (default: stdout)")
    p.set_defaults(func=cmd_schema)
    p = sub.add_parser("diff", help="the change plan between two git revisions (HEAD: the work tree) or two "
                       "stack files, with downtime and cost; exit 0 no change, 2 changes, 1 error")
    p.add_argument("base", metavar="BASE", help="a git revision (main, a commit), or a stack file")
    p.add_argument("head", metavar="HEAD", nargs="?", help="a git revision, or a stack file when BASE is one "
                   "(default: the work tree)")
    p.add_argument("--format", choices=("markdown", "json"), default="markdown")
    p.add_argument("--price-per-dbu", type=_positive, metavar="PRICE",
                   help="your price of one DBU: shows cost per hour and per month (default: the stack's "
                   "price_per_dbu)")
    p.add_argument("--stacks", default=str(STACKS_DIR), metavar="DIR",
                   help="the folder of stack files, relative to the current directory (default: stacks)")
    p.set_defaults(func=cmd_diff)
    try:  # verify is the only subcommand that talks to a workspace
        verify = importlib.import_module("components.verify")
    except ModuleNotFoundError as exc:
        if exc.name != "components.verify":
            raise
    else:
        verify.add_parser(sub)
    return parser


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (write a price such as 0.07)") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number (write a price such as 0.07)")
    return value


def cmd_diff(args: argparse.Namespace) -> int:
    from components import diff as diffmod  # only this subcommand needs it

    base, head = Path(args.base), Path(args.head) if args.head else None
    try:
        if base.is_file() or (head is not None and head.is_file()):
            if head is None or not base.is_file() or not head.is_file():
                raise diffmod.DiffError("to compare stack files, name two existing files (BASE and HEAD); "
                                        "otherwise name git revisions")
            report = diffmod.diff_files(base, head, args.price_per_dbu)
        else:
            report = diffmod.diff_revisions(args.base, args.head, Path(args.stacks),
                                            price_per_dbu=args.price_per_dbu)
    except diffmod.DiffError as exc:
        print(f"diff: {specmod.Problem('', '', str(exc)).message}", file=sys.stderr)
        return 1
    sys.stdout.write(diffmod.as_json(report) if args.format == "json" else diffmod.markdown(report))
    for sd in report.stacks:
        for problem in (*sd.problems, *sd.refused):
            print(problem, file=sys.stderr)
        if sd.budget is not None and sd.budget.refused:
            print(f"{sd.head_file}: max_dbu_per_hour: {sd.budget.message}", file=sys.stderr)
    return report.exit_code()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        # `diff` speaks Terraform's -detailed-exitcode, where 2 means "changes": argparse's own
        # 2 for bad usage must not read as that.
        if exc.code == 2 and argv[:1] == ["diff"]:
            return 1
        raise
    return int(args.func(args))
