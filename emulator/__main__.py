"""python -m emulator: a local Databricks workspace (and Braintrust AI-secret API) over HTTP."""

from __future__ import annotations

import argparse
import errno
import signal
import sys
import threading

from .credentials import CredentialError, resolve
from .models import (
    BRAINTRUST_OTHER_ORG,
    BRAINTRUST_PUT_NULL_SECRET,
    BRAINTRUST_PUT_OMITTED,
    BRAINTRUST_UNKNOWN_ID,
    PAY_PER_TOKEN_ACL,
    PT_CONFIG_SWITCH,
    SCIM_EXTERNAL_ID,
    Switches,
)
from .seed import parse_model_arg
from .server import EmulatorServer, new_admin_token, new_braintrust_api_key

ADMIN_TOKEN_ENV = "EMULATOR_ADMIN_TOKEN"
BRAINTRUST_KEY_ENV = "EMULATOR_BRAINTRUST_API_KEY"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8787, help="0 picks a free port")
    p.add_argument("--admin-token-file", metavar="PATH",
                   help=f"the admin PAT: read from PATH, or generated (or taken from "
                        f"${ADMIN_TOKEN_ENV}) and written there with mode 0600")
    p.add_argument("--braintrust-api-key-file", metavar="PATH",
                   help=f"the Braintrust API key, likewise (${BRAINTRUST_KEY_ENV})")
    p.add_argument("--admin-token", help="deprecated: visible in the process list; use "
                                         "--admin-token-file or $" + ADMIN_TOKEN_ENV)
    p.add_argument("--braintrust-api-key", help="deprecated: visible in the process list; use "
                                                "--braintrust-api-key-file or $" + BRAINTRUST_KEY_ENV)
    p.add_argument("--ready-after", type=float, default=5.0,
                   help="seconds a config rollout takes (default 5)")
    p.add_argument("--model", action="append", default=[], metavar="CATALOG.SCHEMA.NAME:VERSION",
                   help="a Unity Catalog model version to serve (repeatable); append :TASK, e.g. "
                        ":llm/v1/completions, for an LLM task")
    p.add_argument("--state", help="a JSON file holding the state across restarts (mode 0600)")
    p.add_argument("--pay-per-token-acl", choices=PAY_PER_TOKEN_ACL, default="accept",
                   help="whether ACL writes on databricks-* endpoints are accepted (default accept)")
    p.add_argument("--propagation-delay", type=float, default=0.0, metavar="SECONDS",
                   help="seconds (emulator clock) a new service principal stays unknown to get by "
                        "id, the permissions API and the secrets API (default 0)")
    p.add_argument("--retired", action="append", default=[], metavar="ENTITY",
                   help="a system.ai model this workspace refuses to serve (repeatable)")
    p.add_argument("--scim-external-id", choices=SCIM_EXTERNAL_ID, default="keep",
                   help="whether SCIM stores externalId (default keep)")
    p.add_argument("--pt-config-switch", choices=PT_CONFIG_SWITCH, default="refuse",
                   help="whether an endpoint made through /serving-endpoints/pt takes a /config "
                        "update, and the reverse (default refuse; no public source says)")
    p.add_argument("--seed", type=int, help="seed of the ACL entry order (random when absent)")
    p.add_argument("--braintrust-unknown-id", choices=BRAINTRUST_UNKNOWN_ID, default="404",
                   help="Braintrust's status for an unknown or deleted ai_secret (default 404)")
    p.add_argument("--braintrust-put-omitted", choices=BRAINTRUST_PUT_OMITTED, default="clear",
                   help="whether a Braintrust PUT onto an existing name clears or keeps an omitted "
                        "type and metadata (default clear)")
    p.add_argument("--braintrust-put-null-secret", choices=BRAINTRUST_PUT_NULL_SECRET, default="keep",
                   help='whether a Braintrust PUT with "secret": null keeps or clears the stored '
                        "secret (default keep)")
    p.add_argument("--braintrust-other-org", choices=BRAINTRUST_OTHER_ORG, default="403",
                   help="Braintrust's answer to another organization's org_name: 403, 400, or "
                        "empty (lists nothing; writes 403) (default 403)")
    return p


def main(argv: list[str] | None = None) -> int:
    p = _parser()
    args = p.parse_args(argv)
    for m in args.model:
        try:
            parse_model_arg(m)
        except ValueError as e:
            p.error(str(e))
    try:
        Switches(ready_after=args.ready_after, propagation_delay=args.propagation_delay,
                 retired=tuple(args.retired))
    except ValueError as e:
        p.error(str(e).replace("_", "-"))
    try:
        if args.admin_token:
            print("warning: --admin-token is deprecated: any local user can read it in the "
                  f"process list; use --admin-token-file or ${ADMIN_TOKEN_ENV}", file=sys.stderr)
            admin_token, admin_from = args.admin_token, "--admin-token"
        else:
            admin_token, admin_from = resolve(args.admin_token_file, ADMIN_TOKEN_ENV,
                                              new_admin_token)
        if args.braintrust_api_key:
            print("warning: --braintrust-api-key is deprecated: any local user can read it in "
                  f"the process list; use --braintrust-api-key-file or ${BRAINTRUST_KEY_ENV}",
                  file=sys.stderr)
            bt_key, bt_from = args.braintrust_api_key, "--braintrust-api-key"
        else:
            bt_key, bt_from = resolve(args.braintrust_api_key_file, BRAINTRUST_KEY_ENV,
                                      new_braintrust_api_key)
    except CredentialError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    server = EmulatorServer(host=args.host, port=args.port, admin_token=admin_token,
                            ready_after=args.ready_after, braintrust_api_key=bt_key,
                            models=args.model, state_file=args.state,
                            pay_per_token_acl=args.pay_per_token_acl,
                            propagation_delay=args.propagation_delay, retired=args.retired,
                            scim_external_id=args.scim_external_id, seed=args.seed,
                            pt_config_switch=args.pt_config_switch,
                            braintrust_unknown_id=args.braintrust_unknown_id,
                            braintrust_put_omitted=args.braintrust_put_omitted,
                            braintrust_put_null_secret=args.braintrust_put_null_secret,
                            braintrust_other_org=args.braintrust_other_org)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        server.start()
    except OSError as exc:  # the port taken (by anything: we never got to speak HTTP to it)
        if exc.errno == errno.EADDRINUSE:
            print(f"error: port {args.port} on {args.host} is in use by another program; find it with "
                  f"`ss -ltnp 'sport = :{args.port}'` (or `lsof -iTCP:{args.port} -sTCP:LISTEN`), stop it, "
                  "or choose another port (--port, EMULATOR_PORT)", file=sys.stderr)
        else:
            print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    # Stdout usually ends in a log file: a token is shown only on a terminal, and only when
    # it exists nowhere else (generated without a file).
    print(f"Databricks emulator listening on {server.url}", flush=True)
    print(f"  DATABRICKS_HOST={server.url}", flush=True)
    print(f"  DATABRICKS_TOKEN: {_where(admin_from, admin_token)}", flush=True)
    print(f"  BRAINTRUST_BASE_URL={server.url}/braintrust", flush=True)
    print(f"  BRAINTRUST_API_KEY: {_where(bt_from, bt_key)}", flush=True)
    settings = server.workspace.settings()
    print("  settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()), flush=True)
    if args.state:
        print(f"  state: {args.state}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        print("emulator stopped", flush=True)
    return 0


def _where(source: str, value: str) -> str:
    if source != "generated":
        return f"from {source}"
    if sys.stdout.isatty():
        return value
    return "generated, not shown (stdout is not a terminal); pass a --...-file to keep it"


if __name__ == "__main__":
    sys.exit(main())
