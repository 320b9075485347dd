"""`python -m components ...` run in this process, through `components.cli.main`.

A subprocess per case cost about 0.4 s of interpreter start-up and imports; the CLI's own work is
milliseconds. The few tests that must prove what a real process does (exit status from
`python -m`, imports kept out of sys.modules, no traceback from the interpreter) keep
`run_cli_process`.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd: Path = ROOT) -> CliResult:
    """The CLI's exit code and output, as `python -m components *args` run in ``cwd`` gives them.
    argparse's own exits (usage errors, --help) are caught, as the interpreter would turn them
    into an exit status."""
    from components.cli import main

    out, err = io.StringIO(), io.StringIO()
    before = Path.cwd()
    os.chdir(cwd)  # the CLI resolves stacks/ against the working directory, as a user's shell does
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.chdir(before)
    return CliResult(code, out.getvalue(), err.getvalue())


def run_cli_process(*args: str, cwd: Path = ROOT, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The same, in a child `python -m components`: for what only a real process shows."""
    return subprocess.run([sys.executable, "-m", "components", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)
