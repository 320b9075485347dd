"""python -m engine {up,preview,refresh,destroy} STACK [--state FILE] [--emulator URL]
    [--config KEY=VALUE ...] [--secret KEY=VALUE ...] [--secret-env KEY=VARIABLE ...]
    [--stack NAME] [--registrations FILE] [--outputs FILE]

The bundled engine: runs the project's program for STACK through a stand-in for Pulumi's engine
(engine/engine.py) and the real dynamic-provider process, printing one line per resource step as
it happens. It runs only against a loopback workspace, the local emulator: it is no substitute
for Pulumi's engine against a real workspace, and it says so and stops for any other host.
(`python -m testing.engine` is the same command under its old name.)

STACK is a stack name (`local`: stacks/Pulumi.local.yaml) or a stack file's path. State goes in
--state FILE, by default .pulumi-state/bundled/<stack>.json ($PULUMI_STATE_DIR/bundled/), apart
from the Pulumi CLI's file backend; it is checkpointed after each step, so Ctrl-C (or a kill)
keeps every finished step and the same command carries on. --emulator URL points the stack at
that emulator (its workspace host and Braintrust API) and takes its admin token and Braintrust
API key from $EMULATOR_DIR (default .emulator/), as `make up STACK=local` does; without it, a
loopback stack with no DATABRICKS_TOKEN in the environment also gets the emulator's tokens.

KEY is a config key with or without the project's namespace; VALUE is text, JSON for structured
values (`--config 'workspace={"host": "..."}'`). `--secret-env KEY=VARIABLE` takes a secret from
an environment variable, so it never shows on a command line (which other users of the machine
can read). Secrets never reach the terminal: exports print as [secret]. `--registrations` writes
every registered resource (secrets replaced); `--outputs` writes the exports with their secrets,
in a file only you can read, for `python -m components verify --config`.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import json
import os
import re
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from components.files import write_file
from engine.engine import FORGOTTEN, CommandResult, EngineError, StackEngine
from engine.props import redact, strip_secrets

ROOT = Path(__file__).resolve().parents[1]
STACK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
NO_SUBSTITUTE = "the bundled engine runs only against the local emulator: it is no substitute for Pulumi's engine"
INSTALL = "install the Pulumi CLI (make pulumi, or https://www.pulumi.com/docs/install/) for a real workspace"


class UserError(Exception):
    """One line for the user: what is wrong and what to do."""


class Refused(UserError):
    """A workspace not on this machine: the Pulumi CLI's job."""


def is_loopback(url: str) -> bool:
    """The URL's host is this machine: localhost or a loopback address (127.0.0.0/8, ::1)."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def stack_file(target: str) -> Path:
    """A stack name (`local`: stacks/Pulumi.local.yaml) or a stack file's path; a missing file,
    a dangling link and a link loop are each named as what they are, by the path given."""
    path = Path(target)
    if STACK_NAME.fullmatch(target) and not target.endswith((".yaml", ".yml")) and not path.exists():
        path = ROOT / "stacks" / f"Pulumi.{target}.yaml"
        shown = f"no stack {target!r} (no stacks/Pulumi.{target}.yaml)"
    else:
        shown = f"{target}: no such stack file"
    try:
        path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UserError(f"{target}: a symbolic link loop ({path} points back at itself "
                            "through its links): point it at a stack file") from None
        if path.is_symlink():
            raise UserError(f"{target}: a dangling symbolic link ({path} -> {os.readlink(path)}, "
                            "which does not exist): point it at a stack file") from None
        if exc.errno == errno.ENOENT:
            raise UserError(shown) from None
        raise UserError(f"{target}: cannot read the stack file ({exc.strerror})") from None
    if not path.is_file():
        raise UserError(f"{target}: not a file (name a Pulumi.<stack>.yaml stack file)")
    return path


def default_state(stack: str) -> Path:
    """Where `make up` keeps the bundled engine's state: apart from the Pulumi CLI's backend."""
    return Path(os.environ.get("PULUMI_STATE_DIR") or ROOT / ".pulumi-state") / "bundled" / f"{stack}.json"


def _emulator_secret(name: str) -> str | None:
    folder = Path(os.environ.get("EMULATOR_DIR") or ROOT / ".emulator")
    try:
        return (folder / name).read_text().strip() or None
    except OSError:
        return None


def _config_json(engine: StackEngine, key: str) -> Any:
    text = engine.config.get(f"{engine.project}:{key}")
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def wire_emulator(engine: StackEngine, emulator: str | None, env: dict[str, str]) -> None:
    """Point the stack at the emulator and give it the emulator's tokens; refuse any workspace
    or Braintrust API that is not on this machine."""
    workspace = _config_json(engine, "workspace") or {}
    braintrust = _config_json(engine, "braintrust") or {}
    if emulator is not None:
        if not is_loopback(emulator):
            raise Refused(f"refused: --emulator {emulator} is not on this machine; {NO_SUBSTITUTE}")
        workspace = {**workspace, "host": emulator.rstrip("/")} if isinstance(workspace, dict) else workspace
        engine.set_config("workspace", workspace)
        if isinstance(braintrust, dict) and braintrust:
            braintrust = {**braintrust, "api_url": emulator.rstrip("/") + "/braintrust"}
            engine.set_config("braintrust", braintrust)
    host = workspace.get("host", "") if isinstance(workspace, dict) else ""
    if not is_loopback(str(host)):
        raise Refused(f"refused: stack {engine.stack}'s workspace is {host or '(not set)'}, not on this "
                      f"machine; {NO_SUBSTITUTE}")
    api_url = braintrust.get("api_url", "https://api.braintrust.dev") if isinstance(braintrust, dict) else ""
    if isinstance(braintrust, dict) and braintrust.get("publish") and not is_loopback(str(api_url)):
        raise Refused(f"refused: stack {engine.stack} publishes to Braintrust at {api_url}, not on this "
                      f"machine; {NO_SUBSTITUTE}")
    given = {k.split(":")[-1] for k in engine.secret_keys}
    if "databricks_token" not in given and not env.get("DATABRICKS_TOKEN"):
        token = _emulator_secret("admin-token")
        if token is None and emulator is not None:
            raise UserError(f"no token for the emulator at {host}: start it with `make emulator` (or "
                            "scripts/emulator.sh start), which writes .emulator/admin-token, or set "
                            "DATABRICKS_TOKEN")
        if token is not None:
            engine.set_config("databricks_token", token, secret=True)
    if "braintrust_api_key" not in given and not env.get("BRAINTRUST_API_KEY"):
        key = _emulator_secret("braintrust-api-key")
        if key is not None:
            engine.set_config("braintrust_api_key", key, secret=True)


def _pairs(values: list[str], flag: str, parser: argparse.ArgumentParser) -> dict[str, str]:
    pairs = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"{flag} {item.split('=')[0]!r}: expected KEY=VALUE")
        pairs[key] = value
    return pairs


_PRINT_LOCK = threading.Lock()


def _say(line: str) -> None:
    """A progress line, whole: steps and the provider's lines come from many threads."""
    with _PRINT_LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _summary(result: CommandResult) -> str:
    """The command's totals and exports (each step had its line as it happened)."""
    lines = [f"{result.command}: {len(result.steps)} resources, {result.wall:.1f} s"]
    counts: dict[str, int] = {}
    for step in result.steps.values():
        op = FORGOTTEN if step.forgotten else step.op
        counts[op] = counts.get(op, 0) + 1
    lines.append("  " + ", ".join(f"{n} {op}" for op, n in sorted(counts.items())))
    if result.exports:
        lines.append("outputs:")
        for name, value in sorted(redact(result.exports).items()):
            lines.append(f"  {name}: {json.dumps(value)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    prog = "python -m testing.engine" if sys.argv[0].endswith(os.path.join("testing", "engine", "__main__.py")) \
        else "python -m engine"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("up", "preview", "refresh", "destroy"))
    parser.add_argument("stack_file", metavar="STACK", help="a stack name (local) or a stack file's path")
    parser.add_argument("--state", type=Path, metavar="FILE",
                        help="the stack's state between runs (mode 0600; default "
                             ".pulumi-state/bundled/<stack>.json)")
    parser.add_argument("--emulator", metavar="URL",
                        help="run against this emulator: its host, Braintrust API and tokens (.emulator/)")
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
    config = _pairs(args.config, "--config", parser)
    secrets = _pairs(args.secret, "--secret", parser)
    for key, variable in _pairs(args.secret_env, "--secret-env", parser).items():
        if variable not in os.environ:
            parser.error(f"--secret-env {key}: environment variable {variable} is not set")
        secrets[key] = os.environ[variable]
    # Credentials from the environment reach the provider, as they would under the CLI.
    env = {k: v for k, v in os.environ.items() if k.startswith(("DATABRICKS_", "BRAINTRUST_"))}
    try:
        path = stack_file(args.stack_file)
        stack = args.stack or path.name.split(".")[1]
        state = args.state or default_state(stack)
        engine = StackEngine(path, state, config=config, secrets=secrets,
                             stack=stack, provider_env=env,
                             echo=lambda severity, msg: print(f"{severity}: {msg}", file=sys.stderr),
                             progress=_say)
        # messages about the file name it as the user did: a name is stacks/Pulumi.<name>.yaml
        engine.stack_display = (f"stacks/Pulumi.{stack}.yaml" if path == ROOT / "stacks" / f"Pulumi.{stack}.yaml"
                                and not Path(args.stack_file).exists() else args.stack_file)
        wire_emulator(engine, args.emulator, env)
    except UserError as exc:
        why = os.environ.get("BUNDLED_ENGINE_WHY")
        tail = (f"; {why}" if why else "") + (f": {INSTALL}" if isinstance(exc, Refused) else "")
        print(f"error: {exc}{tail}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    why = os.environ.get("BUNDLED_ENGINE_WHY")  # set by make up / make down
    if why:
        shown = os.path.relpath(state) if state.resolve().is_relative_to(Path.cwd()) else state
        print(f"engine: the bundled engine (python -m engine {args.command} {stack}, state {shown}), because {why}",
              flush=True)
    command = getattr(engine, args.command)
    status = 0
    result: CommandResult | None = None
    try:
        result = command()
    except KeyboardInterrupt:
        engine.abort()
        print(f"\ninterrupted: {args.command} stopped; every finished step is kept in {state}"
              " (checkpointed after each step): run the same command again to carry on",
              file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(130)  # the program's threads are waiting on the provider: do not wait for them
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
