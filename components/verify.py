"""``python -m components verify (--stack NAME | --config FILE)``: prove a Braintrust record works.

It does for every model of the record exactly what Braintrust's AI proxy does:

1. ``service_principal_oauth``: ``POST {api_base}/oidc/v1/token`` with HTTP Basic
   ``client_id:client_secret`` and ``grant_type=client_credentials&scope=all-apis``; the token
   is fetched once and used for every model of the run. ``pat``: the secret is the token.
2. ``POST {api_base}/serving-endpoints/{model}/invocations`` with ``Authorization: Bearer``
   and a tiny OpenAI body: chat (``messages``, ``max_tokens: 16``), completion (``prompt``,
   ``max_tokens: 16``) or embedding (``input``), by the model's ``flavor``.

The record is validated first (``components.braintrust.validate_record``): an invalid one
exits 2 and nothing is sent. Every request has a timeout (``--timeout``) and is retried only
on 429, 503 and connection errors, at most ``--retries`` times (``Retry-After`` honoured,
capped); the table shows the attempts. Exit 0 only when every model answered.

It never prints a secret: client secret, PAT and access token are scrubbed from every line
before it is written, and no request follows a redirect, so a credential never reaches another
origin. It imports neither pulumi nor databricks-sdk (only pydantic and requests), so a CI job
runs it with nothing but the record and requirements.txt.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components import transport
from components.braintrust import REDACTED, BraintrustProviderConfig, validate_record
from components.transport import Secrets

OUTPUT_NAME = "braintrust_provider"
PROMPT = "Reply with one word: ok"
MAX_TOKENS = 16
RETRY_STATUSES = frozenset({429, 503})
RETRY_AFTER_CAP = 10.0
EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
MAX_TIMEOUT = 3600.0  # beyond it a socket timeout overflows on some platforms, and no proxy waits so long
INSTALL_HINT = ("verify --stack needs the Pulumi CLI (`make pulumi` installs it into .venv/bin), "
                "or pass the record with --config FILE")
SHOW_SECRETS_HINT = (f"get the record with its secret from the stack: `pulumi stack output {OUTPUT_NAME} "
                     "--show-secrets --json > provider.json` (or run `verify --stack NAME`)")


class UsageError(Exception):
    """The record could not be read: one line for the user, exit 2."""


@dataclass
class Row:
    model: str
    flavor: str
    status: str = "not sent"
    latency_ms: int | None = None
    attempts: int = 0
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# ------------------------------------------------------------------ reading the record


def _unwrap(data: Any) -> Any:
    """The record itself, from every shape the project prints: the record, a JSON string of
    it, a whole `pulumi stack output --json` object, or `render --format json` (whole, or its
    `braintrust.provider` part). A secret written as an object {client_id, client_secret} is
    turned into the JSON string Braintrust stores."""
    if isinstance(data, str):
        if data.strip() == "[secret]":
            raise UsageError(f"the record is hidden as [secret]: {SHOW_SECRETS_HINT}")
        try:
            data = transport.loads(data, "the record")
        except transport.TooDeeplyNested:
            raise UsageError("the record is nested too deeply to be a record") from None
        except ValueError:
            raise UsageError("the record is a string that is not JSON") from None
    if isinstance(data, dict) and "metadata" not in data:
        if OUTPUT_NAME in data:
            return _unwrap(data[OUTPUT_NAME])
        braintrust = data.get("braintrust")
        if isinstance(braintrust, dict) and "provider" in braintrust:  # render --format json
            return _unwrap(braintrust["provider"])
    if isinstance(data, dict) and isinstance(data.get("secret"), dict):
        secret = data["secret"]
        if set(secret) == {"client_id", "client_secret"} and not _redacted(secret):
            data = {**data, "secret": json.dumps(secret)}
    return data


def _redacted(secret: Any) -> bool:
    """A secret as review output shows it: `<redacted>`, or client_id/client_secret replaced by
    placeholders (`<...>`), in an object or in its JSON string."""
    if isinstance(secret, str):
        if secret.strip().startswith("{"):
            try:
                return _redacted(json.loads(secret))
            except (ValueError, RecursionError):
                return False
        return secret == REDACTED or secret == "[secret]"
    if isinstance(secret, dict):
        return any(isinstance(v, str) and (v == REDACTED or (v.startswith("<") and v.endswith(">")))
                   for v in secret.values())
    return False


def _parse(text: str, what: str) -> Any:
    if text.strip() == "[secret]":  # `pulumi stack output NAME` without --json and --show-secrets
        raise UsageError(f"{what} holds the record hidden as [secret]: {SHOW_SECRETS_HINT}")
    try:
        return _unwrap(transport.loads(text, what))
    except transport.TooDeeplyNested:
        raise UsageError(f"{what} is nested too deeply to be a record") from None
    except ValueError as exc:
        # json's message holds a position, never the text around it
        raise UsageError(f"{what} is not JSON: {exc}") from None


def load_config_file(path: Path) -> Any:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")  # JSON is UTF-8; a byte-order mark is tolerated
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}): "
                         "save it as UTF-8 JSON") from None
    return _parse(text, str(path))


def find_pulumi() -> str | None:
    """The Pulumi CLI where `make pulumi` looks for it (scripts/install_pulumi.py): on PATH, in
    $PULUMI_HOME/bin or ~/.pulumi/bin (Pulumi's own installer), or beside this Python (.venv/bin,
    where `make pulumi` installs it)."""
    home = Path(os.environ["PULUMI_HOME"]) if os.environ.get("PULUMI_HOME") else Path.home() / ".pulumi"
    return (shutil.which("pulumi")
            or shutil.which("pulumi", path=os.pathsep.join([str(home / "bin"), str(Path(sys.executable).parent)])))


def load_stack_output(stack: str, timeout: float = 120.0) -> Any:
    pulumi = find_pulumi()
    if pulumi is None:
        raise UsageError(INSTALL_HINT)
    cmd = [pulumi, "stack", "output", OUTPUT_NAME, "--show-secrets", "--json", "--stack", stack]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", errors="replace",
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise UsageError(f"`pulumi stack output` for stack {stack!r} took longer than {timeout:g} s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise UsageError(f"`pulumi stack output {OUTPUT_NAME} --stack {stack}` failed: {last}")
    return _parse(done.stdout, f"the output of `pulumi stack output` for stack {stack!r}")


def _listed_models(data: Any) -> list[tuple[str, str]]:
    """(model, flavor) pairs from a record that may be invalid, for the 'not sent' rows."""
    meta = data.get("metadata") if isinstance(data, dict) else None
    if not isinstance(meta, dict):
        return []
    found_custom, found_models = meta.get("customModels"), meta.get("models")
    custom: dict[Any, Any] = found_custom if isinstance(found_custom, dict) else {}
    names: list[Any] = found_models if isinstance(found_models, list) else list(custom)
    pairs = []
    for name in names:
        if not isinstance(name, str):  # an invalid record may list anything: the problems say where
            pairs.append(("?", "?"))
            continue
        spec = custom.get(name)
        pairs.append((name, str(spec.get("flavor") or "?") if isinstance(spec, dict) else "?"))
    return pairs


# ------------------------------------------------------------------ the proxy's calls


def request_body(flavor: str) -> dict[str, Any]:
    if flavor == "completion":
        return {"prompt": PROMPT, "max_tokens": MAX_TOKENS}
    if flavor == "embedding":
        return {"input": [PROMPT]}
    return {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": MAX_TOKENS}


def _answer_problem(flavor: str, body: Any) -> str | None:
    """None when the answer has the OpenAI shape Braintrust reads, else what is wrong."""
    if flavor == "embedding":
        ok = isinstance(body, dict) and isinstance(body.get("data"), list)
        return None if ok else "the answer is not an OpenAI embeddings response (no data)"
    if isinstance(body, dict) and isinstance(body.get("choices"), list) and body["choices"]:
        return None
    kind = "chat completion" if flavor == "chat" else "completion"
    return f"the answer is not an OpenAI {kind} (no choices): is the model's flavor right?"


def _hint(stage: str, result: transport.Result) -> str:
    """Why a call failed, in terms of the record, the principal and the workspace."""
    code = result.status
    if code in transport.REDIRECTS:
        return "set metadata.api_base to the workspace URL itself: the redirect's target, if you trust it"
    if stage == "token":
        if code in (400, 401):
            return ("the OAuth client id or secret was refused: the secret is wrong, expired or deleted, "
                    "or the principal is gone; `pulumi up` creates a new secret")
        if code == 404:
            return "no OAuth token endpoint at {api_base}/oidc/v1/token: is api_base the workspace URL?"
        return ""
    if code == 401:
        return "the workspace refused the token (a wrong or revoked PAT, or an expired token)"
    if code == 403:
        return "the identity may not query this endpoint: grant CAN_QUERY, or check the token's scopes"
    if code == 404:
        return "no serving endpoint of this name in the workspace: check models and customModels"
    body = result.body if isinstance(result.body, dict) else {}
    if body.get("error_code") == "INVALID_STATE":
        return "the endpoint is not ready yet: wait for its rollout, or check its state"
    return ""


def _failure(stage: str, result: transport.Result, secrets: Secrets) -> tuple[str, str]:
    status = f"HTTP {result.status}" if result.status else "error"
    summary = transport.error_summary(result, secrets)
    hint = _hint(stage, result)
    prefix = "OAuth token: " if stage == "token" else ""
    return status, f"{prefix}{summary}" + (f" ({hint})" if hint else "")


@dataclass
class Verifier:
    config: BraintrustProviderConfig
    timeout: float = 30.0
    retries: int = 2
    sleep: Callable[[float], None] = time.sleep
    secrets: Secrets = field(default_factory=Secrets)
    _token: str | None = field(default=None, repr=False)
    _token_failure: Row | None = None
    _token_attempts: int = 0

    def __post_init__(self) -> None:
        raw = self.config.secret.get_secret_value()
        self.secrets.add_credential(raw)
        if self.config.metadata.auth_type == "pat":
            self._token = raw

    @property
    def api_base(self) -> str:
        return self.config.metadata.api_base

    def _post(self, url: str, **kwargs: Any) -> transport.Result:
        return transport.request("POST", url, timeout=self.timeout, retries=self.retries,
                            retry_statuses=RETRY_STATUSES, retry_after_cap=RETRY_AFTER_CAP,
                            sleep=self.sleep, **kwargs)

    def token(self) -> str | None:
        """The bearer token, fetched once per run as the proxy does; None when it failed."""
        if self._token is not None or self._token_failure is not None:
            return self._token
        fields = json.loads(self.config.secret.get_secret_value())
        basic = base64.b64encode(
            f"{urllib.parse.quote(fields['client_id'], safe='')}:"
            f"{urllib.parse.quote(fields['client_secret'], safe='')}".encode()).decode()
        self.secrets.add(basic)
        result = self._post(
            f"{self.api_base}/oidc/v1/token",
            data=b"grant_type=client_credentials&scope=all-apis",
            headers={"Authorization": f"Basic {basic}",
                     "Content-Type": "application/x-www-form-urlencoded"})
        self._token_attempts = result.attempts
        body = result.body if isinstance(result.body, dict) else {}
        token = body.get("access_token")
        if result.ok and isinstance(token, str) and token and str(body.get("token_type", "")).lower() == "bearer":
            self._token = token
            self.secrets.add(token)
            return token
        self.secrets.add(token if isinstance(token, str) else None)
        if result.ok:
            status, error = "bad token", "OAuth token: the answer has no access_token of token_type Bearer"
        else:
            status, error = _failure("token", result, self.secrets)
        self._token_failure = Row("", "", status, None, result.attempts, error)
        return None

    def check(self, model: str, flavor: str) -> Row:
        row = Row(model, flavor)
        token = self.token()
        if token is None:
            failed = self._token_failure
            assert failed is not None
            row.status, row.attempts, row.error = failed.status, failed.attempts, failed.error
            return row
        url = f"{self.api_base}/serving-endpoints/{urllib.parse.quote(model, safe='')}/invocations"
        start = time.monotonic()
        result = self._post(url, json_body=request_body(flavor), headers={"Authorization": f"Bearer {token}"})
        row.latency_ms = round((time.monotonic() - start) * 1000)
        row.attempts = result.attempts
        if not result.ok:
            row.status, row.error = _failure("invoke", result, self.secrets)
        elif (problem := _answer_problem(flavor, result.body)) is not None:
            row.status, row.error = "bad answer", problem
        else:
            row.status = "ok"
        return row

    def models(self) -> list[tuple[str, str]]:
        """(model, flavor) in the record's order."""
        meta = self.config.metadata
        names = list(meta.models) if meta.models is not None else list(meta.customModels)
        return [(name, meta.customModels[name].flavor if name in meta.customModels else "chat") for name in names]

    def rows(self) -> Iterator[Row]:
        """Each model's row as soon as it has it."""
        for name, flavor in self.models():
            yield self.check(name, flavor)

    def run(self) -> list[Row]:
        return list(self.rows())


# ------------------------------------------------------------------ output

HEADER = ("MODEL", "FLAVOR", "STATUS", "LATENCY_MS", "ATTEMPTS", "ERROR")
# Column widths fixed before the first answer, so each row prints as soon as it is known.
MIN_WIDTHS = (0, len("completion"), len("bad answer"), len("LATENCY_MS"), len("ATTEMPTS"))


def widths(models: list[tuple[str, str]]) -> list[int]:
    return [max([len(HEADER[0]), MIN_WIDTHS[0]] + [len(m) for m, _ in models]),
            max([len(HEADER[1]), MIN_WIDTHS[1]] + [len(f) for _, f in models]),
            *(max(len(h), w) for h, w in zip(HEADER[2:5], MIN_WIDTHS[2:], strict=True))]


def _line(cells: tuple[str, ...], cols: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells[:-1], cols, strict=True)) + "  " + cells[-1]


def row_line(r: Row, cols: list[int]) -> str:
    return _line((r.model, r.flavor, r.status, "-" if r.latency_ms is None else str(r.latency_ms),
                  str(r.attempts), r.error or "-"), cols)


def table(rows: list[Row]) -> list[str]:
    cols = widths([(r.model, r.flavor) for r in rows])
    return [_line(HEADER, cols)] + [row_line(r, cols) for r in rows]


def _print(lines: list[str], secrets: Secrets, stream: Any = None) -> None:
    out = stream or sys.stdout
    for line in lines:
        out.write(secrets.scrub(line) + "\n")
    out.flush()


def cmd_verify(args: argparse.Namespace) -> int:
    secrets = Secrets()
    try:
        data = load_config_file(Path(args.config)) if args.config else load_stack_output(args.stack)
    except UsageError as exc:
        print(f"verify: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if isinstance(data, dict):  # whatever happens next, its secret is never printed
        secrets.add_credential(data.get("secret"))
    source = f"--config {args.config}" if args.config else f"stack {args.stack}"
    if not isinstance(data, dict):
        print(f"verify: the record from {source} is not a JSON object", file=sys.stderr)
        return EXIT_INVALID
    if _redacted(data.get("secret")):
        print(f"verify: the record from {source} has its secret redacted, as `render` and "
              f"{OUTPUT_NAME}_redacted show it, so nothing can be sent: {SHOW_SECRETS_HINT}", file=sys.stderr)
        return EXIT_INVALID
    config, problems = validate_record(data)
    if config is None:
        lines = [f"invalid record ({source}), nothing sent:"] + [f"  {p}" for p in problems]
        _print(lines, secrets, sys.stderr)
        reason = "not sent: the record is invalid: " + "; ".join(problems)
        rows = [Row(m, f, "invalid", None, 0, reason) for m, f in _listed_models(data)]
        if rows:
            _print(table(rows), secrets)
        return EXIT_INVALID
    verifier = Verifier(config, timeout=args.timeout, retries=args.retries, secrets=secrets)
    meta = config.metadata
    _print([f"verify {config.name!r} ({source}): {meta.api_base}, auth {meta.auth_type}, "
            f"timeout {args.timeout:g} s per request, at most {args.retries + 1} attempts "
            f"(retrying 429, 503 and connection errors)"], secrets)
    cols = widths(verifier.models())
    _print([_line(HEADER, cols)], secrets)
    rows = []
    for row in verifier.rows():
        rows.append(row)
        _print([row_line(row, cols)], secrets)
    answered = sum(r.ok for r in rows)
    _print([f"{answered} of {len(rows)} model(s) answered"], secrets)
    if not rows:
        _print(["the record lists no models: nothing to verify"], secrets, sys.stderr)
        return EXIT_FAILED
    return EXIT_OK if answered == len(rows) else EXIT_FAILED


def _seconds(value: str) -> float:
    """--timeout: a finite number of seconds, more than 0 and at most MAX_TIMEOUT."""
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(f"{value!r}: must be a number of seconds, more than 0 and at most "
                                         f"{MAX_TIMEOUT:g}")
    return seconds


def _count(value: str) -> int:
    """--retries: a whole number, 0 or more."""
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if count < 0:
        raise argparse.ArgumentTypeError(f"{value!r}: must be 0 or more")
    return count


def add_parser(sub: Any) -> None:
    """Register `verify` on the CLI's subparsers (components/cli.py calls this)."""
    p = sub.add_parser(
        "verify", help="query every model of a Braintrust record exactly as Braintrust's proxy does",
        description="Validate the record, obtain a token as Braintrust's proxy does, send one tiny request "
                    "per model and print a table. Exit 0 only when every model answered; 1 when one "
                    "did not; 2 when the record is invalid or cannot be read.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--stack", metavar="NAME",
                        help=f"read the stack output {OUTPUT_NAME} (needs the Pulumi CLI)")
    source.add_argument("--config", metavar="FILE",
                        help=f"read the record from a JSON file: `pulumi stack output {OUTPUT_NAME} --show-secrets "
                             "--json > FILE` (render's JSON is redacted: it shows the shape, never the secret)")
    p.add_argument("--timeout", type=_seconds, default=30.0, metavar="S",
                   help=f"seconds per request, more than 0 and at most {MAX_TIMEOUT:g} (default 30)")
    p.add_argument("--retries", type=_count, default=2, metavar="N",
                   help="retries per request on 429, 503 and connection errors (default 2)")
    p.set_defaults(func=cmd_verify)
