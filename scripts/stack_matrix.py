#!/usr/bin/env python3
"""The stacks CI works on, derived from stacks/ and ordered by stacks/promotion.txt.

    python3 scripts/stack_matrix.py                 # every CI stack, in promotion order, as JSON
    git diff --name-only BASE...HEAD | python3 scripts/stack_matrix.py --changed
                                                    # the stacks a pull request's files affect

Standard library only: it runs before any virtual environment exists.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STACK_FILE = re.compile(r"^stacks/Pulumi\.(?P<name>[^/]+)\.yaml$")
# Files whose change cannot alter any stack's resources: everything else is the program (or its
# dependencies) and previews every stack.
NOT_THE_PROGRAM = re.compile(r"^(docs/|README|\.github/|tests/|bench/|stacks/promotion\.txt$)")


# components/spec's rule (this script runs before any virtual environment, so it is repeated here):
# a letter or digit first, so that no command a workflow runs reads the name as an option.
STACK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


class OrderError(ValueError):
    """stacks/promotion.txt cannot place a stack."""


def read_order(path: Path) -> tuple[list[str], list[str]]:
    """(patterns in order, excluded patterns) from the promotion file."""
    order, excluded = [], []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("!"):
            excluded.append(line[1:].strip())
        else:
            order.append(line)
    return order, excluded


def all_stacks(stacks_dir: Path) -> list[str]:
    names = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in stacks_dir.glob("Pulumi.*.yaml"))
    bad = [n for n in names if not STACK_NAME.fullmatch(n)]
    if bad:
        raise OrderError(f"a stack file names the stack {bad[0]!r}, which is not a stack name (letters, digits, "
                         "'-', '_' and '.', starting with a letter or digit): rename the file")
    return names


def promotion_order(stacks: list[str], order: list[str], excluded: list[str],
                    source: str = "stacks/promotion.txt") -> list[str]:
    """The CI stacks sorted by the place of the first line that names each (then by name)."""
    def place(stack: str) -> int:
        named = [i for i, p in enumerate(order) if p != "*" and fnmatch.fnmatchcase(stack, p)]
        if named:
            return named[0]
        if "*" in order:
            return order.index("*")
        raise OrderError(f"{source}: no line places stack {stack!r}; add a line `{stack}` where it "
                         f"should deploy, or a `*` line for every stack not named")

    chosen = [s for s in stacks if not any(fnmatch.fnmatchcase(s, p) for p in excluded)]
    return sorted(chosen, key=lambda s: (place(s), s))


def changed_stacks(files: list[str], ordered: list[str]) -> list[str]:
    """The stacks whose resources the changed files can alter: a change to the program (any file
    outside stacks/, docs, tests and CI) alters them all; otherwise each changed stack file."""
    files = [f.strip() for f in files if f.strip()]
    if any(not STACK_FILE.match(f) and not NOT_THE_PROGRAM.match(f) for f in files):
        return list(ordered)
    named = {m.group("name") for f in files if (m := STACK_FILE.match(f))}
    return [s for s in ordered if s in named]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changed", action="store_true",
                        help="read changed file paths from stdin; print only the stacks they affect")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        order, excluded = read_order(args.root / "stacks" / "promotion.txt")
        ordered = promotion_order(all_stacks(args.root / "stacks"), order, excluded)
    except (OSError, OrderError) as e:
        print(f"stack_matrix: {e}", file=sys.stderr)
        return 2
    if args.changed:
        ordered = changed_stacks(sys.stdin.read().splitlines(), ordered)
    print(json.dumps(ordered))
    return 0


if __name__ == "__main__":
    sys.exit(main())
