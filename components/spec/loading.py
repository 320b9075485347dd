"""Reading a stack file: the file, its YAML, the project's namespace, then the spec. Every
defect becomes a Problem naming the file and the field; nothing raises anything but StackError."""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from components.spec.constants import MODES, PROJECT, SECRET_KEYS
from components.spec.credentials import WHERE_SECRETS_GO, credential_lines, credential_paths, redact, userinfo_paths
from components.spec.endpoints import MAX_ENDPOINTS, FoundationModelEndpoint, lifecycle_warnings
from components.spec.messages import (
    VERSION_FIELDS,
    all_field_names,
    boolean_field_names,
    document_path,
    endpoint_labels,
    field_path,
    message_for,
)
from components.spec.problems import FieldError, Problem, StackError
from components.spec.stack import Stack, StackSpec
from components.spec.yamlfile import MAX_BYTES, YamlProblem, read_yaml, resolve_plain

# A file with more problems is reported this far: the rest would take long to word and longer to read.
MAX_PROBLEMS = 100

# Where pydantic reports an endpoint's own name: after the union's tag.
MODE_NAME_LOCS = {(mode, "name") for mode in MODES}


def validate_config(raw: Mapping[str, Any], *, stack: str, file: str) -> Stack:
    """Validate the project's config keys (namespace already stripped). Raises StackError."""
    errors: list[tuple[tuple[Any, ...], str]] = []
    spec: StackSpec | None = None
    endpoints = raw.get("endpoints")
    if isinstance(endpoints, list) and len(endpoints) > MAX_ENDPOINTS:
        # Before validating them: thousands of entries would take seconds to check and to report.
        raise StackError([Problem(file, "endpoints", (
            f"lists {len(endpoints)} endpoints, more than the {MAX_ENDPOINTS} a workspace serves by default "
            "(split them across stacks, or remove the ones no longer needed)"))])
    try:
        spec = StackSpec.model_validate(dict(raw), context={"stack": stack})
    except ValidationError as exc:
        for err in exc.errors(include_url=False)[:MAX_PROBLEMS + 1]:  # one more shows there are more
            loc = tuple(err["loc"])
            given = err.get("input")  # only its type is looked at: a value is never echoed
            ctx_error = (err.get("ctx") or {}).get("error")
            if isinstance(ctx_error, FieldError):
                # The rule names a field below the model it was raised in.
                errors.append((loc + ctx_error.loc, str(ctx_error)))
            elif err["type"] == "string_type" and isinstance(given, int | float | bool | datetime.date):
                # `cost-center: 1234`, `environment: 2024-01-01`: YAML made a number, a true/false
                # value or a date of what is meant as text.
                what = ("true/false value" if isinstance(given, bool) else
                        "date" if isinstance(given, datetime.date) else "number")
                errors.append((loc, f"is read by YAML as a {what} where text belongs (quote it)"))
            elif err["type"].endswith("_type") and given is None:
                errors.append((loc, "is empty (write a value, or remove the key)"))
            else:
                errors.append((loc, message_for(err)))
    # An endpoint is named by its name in messages, unless that name is itself refused.
    refused_names = {loc[1] for loc, _ in errors
                     if loc[:1] == ("endpoints",) and (len(loc) == 3 and loc[2] == "name" or loc[2:] in MODE_NAME_LOCS)}
    labels = [None if i in refused_names else label
              for i, label in enumerate(endpoint_labels(raw.get("endpoints")))]
    problems: list[Problem] = []
    reported: set[str] = set()

    def report(loc: tuple[Any, ...], message: str, *, tagged: bool) -> None:
        path = field_path(loc, tagged=tagged, labels=labels)
        if path not in reported:
            reported.add(path)
            problems.append(Problem(file, redact(path), redact(message)))  # a map key may be the credential

    for loc in userinfo_paths(dict(raw)):
        report(loc, "holds a URL with a user name or password in it, which is never shown back (remove the "
                    "part before '@': credentials go in secret config, never in a URL)", tagged=False)
    for loc in credential_paths(dict(raw), all_field_names()):
        if loc and loc[0] in SECRET_KEYS:
            continue  # reported by the field's own validator
        report(loc, f"looks like a credential written in plain text (remove it; {WHERE_SECRETS_GO})", tagged=False)
    for loc, message in errors:
        report(loc, message, tagged=True)
    if len(problems) > MAX_PROBLEMS:
        problems[MAX_PROBLEMS:] = [Problem(file, "", f"has more problems than the {MAX_PROBLEMS} above, not listed "
                                                     "(fix these first, then validate again)")]
    if problems or spec is None:
        raise StackError(problems)
    warnings = [
        Problem(file, field_path(("endpoints", index, *path.split(".")), labels=labels), f"warning: {message}")
        for index, endpoint in enumerate(spec.endpoints)
        if isinstance(endpoint, FoundationModelEndpoint)
        for path, message in endpoint.chunk_mismatches()
    ]
    warnings += [Problem(file, field_path(loc, labels=labels), f"warning: {message}")
                 for loc, message in lifecycle_warnings(spec.endpoints)]
    warnings += [Problem(file, field_path(("endpoints", index, *path), labels=labels), f"warning: {message}")
                 for index, endpoint in enumerate(spec.endpoints)
                 for path, message in endpoint.limit_warnings()]
    return Stack(name=stack, file=file, spec=spec, warnings=tuple(warnings))


_TOP_LEVEL = {"config", "encryptionsalt", "secretsprovider", "encryptedkey", "environment"}


# What `pulumi stack init` accepts; the name also goes into tags and the principal's externalId.
_STACK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")  # never read as an option


def stack_name_of(path: Path) -> str:
    match = re.fullmatch(r"Pulumi\.(.+)\.ya?ml", path.name, re.DOTALL)  # fullmatch: no stray newline
    return match.group(1) if match else path.stem


def _raw_endpoints(document: Any) -> Any:
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        return None
    return next((v for k, v in config.items() if str(k).rpartition(":")[2] == "endpoints"), None)


_TOO_LARGE = (f"is larger than {MAX_BYTES // 1024} KiB, far more than a stack file needs "
              "(check that this is the right file)")


def read_stack_text(text: str, file: str) -> Any:
    """Parse a stack file's text defensively (components/spec/yamlfile.py): the document, with
    every unquoted number and boolean resolved by its field. Raises StackError for syntax
    errors and YAML-level defects (size, aliases, repeated keys, YAML 1.1 traps), which only
    the file shows: Pulumi hands the program values, not text."""

    def refuse(message: str, where: str = "") -> StackError:
        return StackError([Problem(file, where, message)])

    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise refuse(_TOO_LARGE)
    try:
        document = read_yaml(text)
    except YamlProblem as exc:
        raise refuse(redact(exc.message), document_path(exc.path, exc.endpoints)) from None
    except yaml.MarkedYAMLError as exc:
        if "nesting depth" in str(exc.problem):  # libyaml's own bound
            raise refuse("is nested too deeply to be a stack file (flatten it)") from None
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise refuse(f"{where}YAML syntax error: {exc.problem or exc} "
                     "(fix the indentation or quoting there)") from None
    except yaml.YAMLError as exc:
        raise refuse(f"YAML syntax error: {exc} (fix the YAML there)") from None
    except RecursionError:
        raise refuse("is nested too deeply to be a stack file (flatten it)") from None
    document, traps = resolve_plain(document, bool_fields=boolean_field_names(), text_fields=VERSION_FIELDS)
    if traps:
        endpoints = _raw_endpoints(document)
        raise StackError([Problem(file, document_path(t.path, endpoints), t.message) for t in traps])
    lines = credential_lines(text, document)
    if lines:
        raise StackError([Problem(file, "", (
            f"line {line}: a comment holds what looks like a credential or a URL with a password (remove it: "
            f"comments are committed and reviewed like the rest; {WHERE_SECRETS_GO})")) for line in lines])
    return document


def load_stack_file(path: Path | str, *, display: str | None = None) -> Stack:
    """Read and validate ``stacks/Pulumi.<stack>.yaml``. Raises StackError for any defect,
    including unreadable files and YAML syntax errors (with the line)."""
    path = Path(path)
    file = display or str(path)
    document = read_stack_file(path, display=file)
    try:
        return validate_document(document, stack=stack_name_of(path), file=file)
    except RecursionError:
        raise StackError([Problem(file, "", "is nested too deeply to be a stack file (flatten it)")]) from None


def read_stack_file(path: Path | str, *, display: str | None = None) -> Any:
    """The parsed document of a stack file, after every check only its text can show (size,
    encoding, the stack name in its file name, and read_stack_text's). The program runs it too:
    Pulumi's own reader hands it values in which `010` is already 8 and a repeated key gone."""
    path = Path(path)
    file = display or str(path)

    def refuse(message: str, where: str = "") -> StackError:
        return StackError([Problem(file, where, message)])

    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except IsADirectoryError:
        raise refuse("is a folder, not a stack file (name a Pulumi.<stack>.yaml file in it, "
                     "or validate the folder)") from None
    except OSError as exc:
        raise refuse(f"cannot be read: {exc.strerror or exc} (check the path)") from None
    if len(data) > MAX_BYTES:
        raise refuse(_TOO_LARGE)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise refuse("is not UTF-8 text (save it as UTF-8)") from None
    stack = stack_name_of(path)
    if not _STACK_NAME.fullmatch(stack):
        raise refuse(f"names the stack {stack[:80]!r}, which Pulumi refuses: a stack name holds only letters, "
                     "digits, '-', '_' and '.', starting with a letter or digit so that no command reads it as an "
                     "option (rename the file to Pulumi.<stack>.yaml with such a name)")
    return read_stack_text(text, file)


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
    problems += [
        Problem(file, key, "must be text, as Pulumi writes it (restore the value `pulumi config` wrote, or remove it)")
        for key in ("encryptionsalt", "secretsprovider", "encryptedkey")
        if key in document and not isinstance(document[key], str)
    ]
    config = document.get("config")
    if not isinstance(config, dict):
        problems.append(Problem(file, "config", f"must be a map of {PROJECT}:* keys"))
        raise StackError(problems)
    # What validate_config does not read (Pulumi's own keys and the file's top level) is still
    # in the reviewed file: no URL password and no plain credential there either.
    outside: dict[tuple[Any, ...], Any] = {("config", key): value for key, value in config.items()
               if str(key).rpartition(":")[0] not in ("", PROJECT)}
    outside.update({(key,): value for key, value in document.items() if key != "config"})
    for where, value in outside.items():
        for loc in userinfo_paths(value, where):
            problems.append(Problem(file, field_path(loc, tagged=False), (
                "holds a URL with a user name or password in it, which is never shown back (remove the part "
                "before '@': credentials go in secret config, never in a URL)")))
        for loc in credential_paths(value, all_field_names(), where):
            problems.append(Problem(file, field_path(loc, tagged=False),
                                    f"looks like a credential written in plain text (remove it; {WHERE_SECRETS_GO})"))
    raw: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for key, value in config.items():
        key = str(key)
        namespace, _, name = key.rpartition(":")
        if namespace in ("", PROJECT):
            if name in raw:
                problems.append(Problem(file, name, (
                    f"is written twice, as {spelled[name]!r} and {key!r} (keep one)"
                )))
            raw[name] = value
            spelled[name] = key
        elif namespace != "pulumi":
            problems.append(Problem(file, f"config.{key}", (
                f"belongs to namespace {namespace!r}, which this project does not read "
                f"(use {PROJECT}:{name}, or remove it)"
            )))
    if problems:
        raise StackError(problems)
    return validate_config(raw, stack=stack, file=file)
