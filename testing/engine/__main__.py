"""python -m testing.engine {up,preview,refresh,destroy} STACK_FILE --state FILE
    [--config KEY=VALUE ...] [--secret KEY=VALUE ...] [--secret-env KEY=VARIABLE ...]
    [--registrations FILE] [--outputs FILE]

Runs the project's program for STACK_FILE through the stand-in engine (testing/engine/engine.py)
and the real dynamic-provider process. KEY is a config key with or without the project's
namespace; VALUE is text, JSON for structured values (`--config 'workspace={"host": "..."}'`).
`--secret-env KEY=VARIABLE` takes a secret from an environment variable, so it never shows on
a command line (which other users of the machine can read).
Secrets never reach the terminal: exports print as [secret]. `--registrations` writes every
registered resource (secrets replaced); `--outputs` writes the exports with their secrets, in a
file only you can read, for `python -m components verify --config`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from components.files import write_file
from testing.engine.engine import CommandResult, EngineError, StackEngine
from testing.engine.props import redact, strip_secrets


def _pairs(values: list[str], flag: str, parser: argparse.ArgumentParser) -> dict[str, str]:
    pairs = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"{flag} {item.split('=')[0]!r}: expected KEY=VALUE")
        pairs[key] = value
    return pairs


def _summary(result: CommandResult) -> str:
    lines = [f"{result.command}: {len(result.steps)} resources, {result.wall:.1f} s"]
    for step in result.steps.values():
        lines.append(f"  {step.op:<8} {step.type} {step.name}")
    counts: dict[str, int] = {}
    for step in result.steps.values():
        counts[step.op] = counts.get(step.op, 0) + 1
    lines.append("  " + ", ".join(f"{n} {op}" for op, n in sorted(counts.items())))
    if result.exports:
        lines.append("outputs:")
        for name, value in sorted(redact(result.exports).items()):
            lines.append(f"  {name}: {json.dumps(value)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testing.engine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("up", "preview", "refresh", "destroy"))
    parser.add_argument("stack_file", type=Path, metavar="STACK_FILE")
    parser.add_argument("--state", type=Path, required=True, metavar="FILE",
                        help="the stack's state between runs (created with mode 0600)")
    parser.add_argument("--config", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--secret", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--secret-env", action="append", default=[], metavar="KEY=VARIABLE",
                        help="a secret config value read from an environment variable")
    parser.add_argument("--stack", help="the stack's name (default: from Pulumi.<stack>.yaml)")
    parser.add_argument("--registrations", type=Path, metavar="FILE",
                        help="write every registered resource as JSON, secrets replaced")
    parser.add_argument("--outputs", type=Path, metavar="FILE",
                        help="write the stack's exports as JSON, secrets included (mode 0600)")
    args = parser.parse_args(argv)
    if not args.stack_file.is_file():
        parser.error(f"{args.stack_file}: no such stack file")
    config = _pairs(args.config, "--config", parser)
    secrets = _pairs(args.secret, "--secret", parser)
    for key, variable in _pairs(args.secret_env, "--secret-env", parser).items():
        if variable not in os.environ:
            parser.error(f"--secret-env {key}: environment variable {variable} is not set")
        secrets[key] = os.environ[variable]
    # Credentials from the environment reach the provider, as they would under the CLI.
    env = {k: v for k, v in os.environ.items() if k.startswith(("DATABRICKS_", "BRAINTRUST_"))}
    try:
        engine = StackEngine(args.stack_file, args.state, config=config, secrets=secrets,
                             stack=args.stack, provider_env=env,
                             echo=lambda severity, msg: print(f"{severity}: {msg}", file=sys.stderr))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    command = getattr(engine, args.command)
    status = 0
    result: CommandResult | None = None
    try:
        result = command()
    except EngineError as exc:
        print(f"error: {args.command} failed:\n{exc.message}", file=sys.stderr)
        result, status = exc.result, 1
    if args.registrations is not None and result is not None:
        write_file(args.registrations, json.dumps([r.as_json() for r in result.registrations], indent=1) + "\n")
    if result is None or (status and not result.steps):
        return status
    print(_summary(result))
    if args.outputs is not None:
        plain: Any = strip_secrets(result.exports)
        write_file(args.outputs, json.dumps(plain, indent=1) + "\n")  # 0600; a symlink is replaced
    return status


if __name__ == "__main__":
    raise SystemExit(main())
