"""The docs stand on their own and match the code.

- Every command in the README's shell blocks names a make target the Makefile has, a
  subcommand and flags `python -m components` parses, an action scripts/emulator.sh takes, and
  secret config keys the code reads.
- No file in the repository refers to a path outside it: a `../` path that climbs out of the
  repository, a path to a Markdown file or a Markdown link that does not exist in it.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from components.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CLI = ".venv/bin/python -m components"


def _blocks(text: str) -> list[str]:
    """The lines of every ```sh block, comments and continuation joined away."""
    lines = []
    for block in re.findall(r"^```(?:sh|bash|shell)\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"(^|\s)#.*$", "", line).strip()
            if line:
                lines.append(line)
    return lines


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][A-Za-z0-9_.-]*)\s*:(?!=)", text, re.MULTILINE))


def _words(line: str) -> list[str]:
    """The command's words, up to a redirection or a pipe."""
    words = []
    for word in shlex.split(line):
        if word in (">", ">>", "|", "&&", ";") or word.startswith((">", "2>")):
            break
        words.append(word)
    return words


README_COMMANDS = _blocks(README.read_text())


def test_the_readme_has_commands_to_check() -> None:
    assert any(c.startswith("make up") for c in README_COMMANDS)
    assert any(c.startswith(CLI + " verify") for c in README_COMMANDS)


@pytest.mark.parametrize("line", [c for c in README_COMMANDS if c.startswith("make")])
def test_readme_make_commands_name_existing_targets(line: str) -> None:
    targets = [w for w in _words(line)[1:] if not w.startswith("-") and "=" not in w]
    assert targets, line
    missing = [t for t in targets if t not in _make_targets()]
    assert not missing, f"README runs `{line}`: the Makefile has no target {missing}"


def test_every_make_target_the_readme_mentions_inline_exists() -> None:
    mentioned = set(re.findall(r"`make (?:-s )?([a-z][a-z-]*)", README.read_text()))
    assert mentioned - _make_targets() == set()


@pytest.mark.parametrize("line", [c for c in README_COMMANDS if c.startswith(CLI)])
def test_readme_cli_commands_parse(line: str) -> None:
    args = _words(line)[len(CLI.split()):]
    try:
        build_parser().parse_args(args)
    except SystemExit as exc:  # argparse's way of refusing a subcommand or a flag
        pytest.fail(f"README runs `{line}`: python -m components refuses it (exit {exc.code})")


@pytest.mark.parametrize("line", [c for c in README_COMMANDS if c.startswith("scripts/emulator.sh")])
def test_readme_emulator_script_actions_exist(line: str) -> None:
    usage = re.search(r"usage: scripts/emulator.sh ([a-z|]+)", (ROOT / "scripts" / "emulator.sh").read_text())
    assert usage is not None
    assert _words(line)[1] in usage.group(1).split("|"), line


@pytest.mark.parametrize("line", [c for c in README_COMMANDS if c.startswith("pulumi config set")])
def test_readme_secret_config_keys_are_read_by_the_code(line: str) -> None:
    key = next(w for w in _words(line) if w.startswith("databricks-braintrust:"))
    name = key.split(":", 1)[1]
    code = "\n".join(p.read_text() for p in (ROOT / "components").rglob("*.py"))
    assert re.search(rf"['\"](databricks-braintrust:)?{re.escape(name)}['\"]", code), (
        f"README sets {key}, which no code in components/ reads")


def test_readme_verify_flags_and_output_name_match_the_code() -> None:
    from components import verify

    text = README.read_text()
    assert f"pulumi stack output {verify.OUTPUT_NAME} --show-secrets" in text
    assert "managed-by: databricks-braintrust/<stack>" in text


# ------------------------------------------------------------------ nothing outside the repository


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    files = []
    for name in listed.decode().split("\0"):
        path = ROOT / name
        if not name or not path.is_file() or path.stat().st_size > 1_000_000:
            continue
        try:
            path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        files.append(path)
    return files


UP, MD = "." + "./", "." + "md"  # written so that this file's examples do not match themselves
CLIMB = re.compile(r"(?<![\w./])((?:\.\./)+[A-Za-z0-9_.<>-][A-Za-z0-9_./<>-]*)")
# a path with a folder, ending in .md; not after `$VAR/` or `${VAR}/`, which CI fills in
MD_PATH = re.compile(r"(?<![\w./:${}-])((?:\.\./|\./)?[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]*\.md)\b")
MD_LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


def _inside(path: Path) -> bool:
    return path.resolve().is_relative_to(ROOT)


def _outside_references(path: Path, text: str) -> list[str]:
    """The paths `text`, the content of `path`, names outside the repository or not in it."""
    found = []
    for match in CLIMB.finditer(text):
        if not _inside(path.parent / match.group(1)):
            found.append(match.group(1))
    for match in MD_PATH.finditer(text):
        ref = match.group(1)
        if ref.startswith(("http", "www.")):
            continue
        candidates = [path.parent / ref, ROOT / ref]
        if not any(_inside(c) and c.exists() for c in candidates):
            found.append(ref)
    if path.suffix == ".md":
        for match in MD_LINK.finditer(text):
            ref = match.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", ref):  # https:, mailto:
                continue
            target = path.parent / ref
            if not (_inside(target) and target.exists()):
                found.append(ref)
    return sorted(set(found))


def test_no_file_refers_to_a_path_outside_the_repository() -> None:
    bad = {str(p.relative_to(ROOT)): refs for p in _tracked_text_files()
           if (refs := _outside_references(p, p.read_text(encoding="utf-8")))}
    assert bad == {}, "references to paths outside the repository (or missing in it): " + repr(bad)


@pytest.mark.parametrize(("text", "bad"), [
    (f"See {UP}shared/reference/braintrust{MD}.", True),
    (f"See {UP}{UP}DESIGN{MD}", True),
    (f"See [the design](docs/no-such-file{MD})", True),
    (f"See reference/databricks{MD}", True),
    ("See docs/gitops.md and [bench](../bench/README.md)", False),
    ("See [bench](bench/README.md)", True),  # relative to docs/, where there is no bench/
    (f"tar member pulumi/{UP}x stays inside", False),
    ("the file rendered.md is generated; https://example.com/a/b.md is a URL", False),
    ('cat "$RUNNER_TEMP/report.md" "${RUNNER_TEMP}/issue.md"', False),
])
def test_the_outside_reference_check_itself(text: str, bad: bool) -> None:
    assert bool(_outside_references(ROOT / "docs" / "x.md", text)) is bad


# ------------------------------------------------------------------ files the docs name exist

PY_PATH = re.compile(r"(?<![\w./-])((?:components|engine|tests|testing|emulator|scripts|bench)/[\w./-]*\w\.py)\b")


def _missing_python_files(text: str) -> set[str]:
    """Python files `text` names that do not exist, but for one said to be `(removed)`."""
    return {m.group(1) for m in PY_PATH.finditer(text)
            if not (ROOT / m.group(1)).exists() and "(removed)" not in text[m.end():m.end() + 12]}


def test_every_python_file_the_docs_name_exists() -> None:
    # A module moved or renamed (components/spec.py became components/spec/) leaves the docs
    # pointing a reader at nothing.
    missing = {str(p.relative_to(ROOT)): sorted(refs) for p in _tracked_text_files() if p.suffix == ".md"
               if (refs := _missing_python_files(p.read_text()))}
    assert missing == {}, "Markdown files name Python files that do not exist: " + repr(missing)


@pytest.mark.parametrize(("text", "missing"), [
    ("`components/spec.py` validates", {"components/spec.py"}),
    ("not `tests/stackrun.py` (removed), so", set()),
    ("`components/verify.py` and `tests/test_docs.py`", set()),
    ("see mycomponents/x.py", set()),
])
def test_the_python_file_check_itself(text: str, missing: set[str]) -> None:
    assert _missing_python_files(text) == missing


def test_the_readmes_stack_file_example_validates(tmp_path, capsys) -> None:
    # A newcomer copies it to start a stack: it must pass `validate` as it stands.
    from components.cli import main

    (example,) = re.findall(r"^```yaml\n(config:.*?)^```", README.read_text(), re.MULTILINE | re.DOTALL)
    (tmp_path / "Pulumi.dev.yaml").write_text(example)
    code = main(["validate", str(tmp_path / "Pulumi.dev.yaml")])
    assert code == 0, capsys.readouterr().out


def test_every_test_the_docs_name_exists() -> None:
    # The docs cite a test as the proof of each guarantee: a renamed test must not leave the
    # guarantee citing nothing.
    tests = ROOT / "tests"
    files = {p.stem for p in tests.rglob("test_*.py")}
    defined = set()
    for p in tests.rglob("*.py"):
        defined |= set(re.findall(r"^\s*(?:async )?def (test_\w+)", p.read_text(), re.MULTILINE))
    named = {str(p.relative_to(ROOT)): sorted(set(re.findall(r"\b(test_[a-z0-9_]+)", p.read_text()))
                                               - files - defined)
             for p in _tracked_text_files() if p.suffix == ".md"}
    assert {k: v for k, v in named.items() if v} == {}
