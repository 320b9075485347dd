"""Reading a stack file: the file, its YAML, the project's namespace, then the spec. Every
defect becomes a Problem naming the file and the field; nothing raises anything but StackError."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from components.spec.constants import PROJECT, SECRET_KEYS
from components.spec.credentials import WHERE_SECRETS_GO, credential_paths, redact
from components.spec.messages import all_field_names, field_path, message_for
from components.spec.problems import FieldError, Problem, StackError
from components.spec.stack import Stack, StackSpec


def validate_config(raw: Mapping[str, Any], *, stack: str, file: str) -> Stack:
    """Validate the project's config keys (namespace already stripped). Raises StackError."""
    problems: list[Problem] = []
    flagged: set[str] = set()
    for loc in credential_paths(dict(raw), all_field_names()):
        if loc and loc[0] in SECRET_KEYS:
            continue  # reported by the field's own validator
        flagged.add(field_path(loc, tagged=False))
        problems.append(Problem(file, field_path(loc, tagged=False), (
            f"looks like a credential written in plain text (remove it; {WHERE_SECRETS_GO})"
        )))
    try:
        spec = StackSpec.model_validate(dict(raw), context={"stack": stack})
    except ValidationError as exc:
        for err in exc.errors(include_input=False, include_url=False):
            loc = tuple(err["loc"])
            ctx_error = (err.get("ctx") or {}).get("error")
            if isinstance(ctx_error, FieldError):
                # The rule names a field below the model it was raised in.
                loc, message = loc + ctx_error.loc, str(ctx_error)
            else:
                message = message_for(err)
            if field_path(loc) in flagged:
                continue
            problems.append(Problem(file, field_path(loc), redact(message)))
        raise StackError(problems) from None
    if problems:
        raise StackError(problems)
    return Stack(name=stack, file=file, spec=spec)


_TOP_LEVEL = {"config", "encryptionsalt", "secretsprovider", "encryptedkey", "environment"}


def stack_name_of(path: Path) -> str:
    match = re.match(r"^Pulumi\.(.+)\.ya?ml$", path.name)
    return match.group(1) if match else path.stem


def load_stack_file(path: Path | str, *, display: str | None = None) -> Stack:
    """Read and validate ``stacks/Pulumi.<stack>.yaml``. Raises StackError for any defect,
    including unreadable files and YAML syntax errors (with the line)."""
    path = Path(path)
    file = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StackError([Problem(file, "", f"cannot be read: {exc.strerror or exc}")]) from None
    except UnicodeDecodeError:
        raise StackError([Problem(file, "", "is not UTF-8 text (save it as UTF-8)")]) from None
    try:
        document = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise StackError([Problem(file, "", f"{where}YAML syntax error: {exc.problem or exc} "
                                            "(fix the indentation or quoting there)")]) from None
    except yaml.YAMLError as exc:
        raise StackError([Problem(file, "", f"YAML syntax error: {exc}")]) from None
    except RecursionError:
        raise StackError([Problem(file, "", "is nested too deeply to be a stack file (flatten it)")]) from None
    try:
        return validate_document(document, stack=stack_name_of(path), file=file)
    except RecursionError:
        raise StackError([Problem(file, "", "is nested too deeply to be a stack file (flatten it)")]) from None


def validate_document(document: Any, *, stack: str, file: str) -> Stack:
    """Validate a parsed stack file: top-level keys, the project namespace, then the spec."""
    if document is None:
        raise StackError([Problem(file, "", f"is empty (it needs a `config:` map with {PROJECT}:* keys)")])
    if not isinstance(document, dict):
        raise StackError([Problem(file, "", "must be a YAML map with a `config:` key")])
    problems = [
        Problem(file, str(key), f"is not a stack file key (allowed: {', '.join(sorted(_TOP_LEVEL))})")
        for key in document
        if key not in _TOP_LEVEL
    ]
    config = document.get("config")
    if not isinstance(config, dict):
        problems.append(Problem(file, "config", f"must be a map of {PROJECT}:* keys"))
        raise StackError(problems)
    raw: dict[str, Any] = {}
    for key, value in config.items():
        key = str(key)
        namespace, _, name = key.rpartition(":")
        if namespace in ("", PROJECT):
            raw[name] = value
        elif namespace != "pulumi":
            problems.append(Problem(file, f"config.{key}", (
                f"belongs to namespace {namespace!r}, which this project does not read "
                f"(use {PROJECT}:{name}, or remove it)"
            )))
    if problems:
        raise StackError(problems)
    return validate_config(raw, stack=stack, file=file)
