"""python -m emulator: a local Databricks workspace (and Braintrust AI-secret API) over HTTP."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .seed import parse_model_arg
from .server import EmulatorServer


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8787, help="0 picks a free port")
    p.add_argument("--admin-token", help="the admin PAT (generated when absent)")
    p.add_argument("--braintrust-api-key", help="the Braintrust API key (generated when absent)")
    p.add_argument("--ready-after", type=float, default=5.0,
                   help="seconds a config rollout takes (default 5)")
    p.add_argument("--model", action="append", default=[], metavar="CATALOG.SCHEMA.NAME:VERSION",
                   help="a Unity Catalog model version to serve (repeatable); append :TASK, e.g. "
                        ":llm/v1/completions, for an LLM task")
    p.add_argument("--state", help="a JSON file holding the state across restarts")
    args = p.parse_args(argv)
    for m in args.model:
        try:
            parse_model_arg(m)
        except ValueError as e:
            p.error(str(e))

    server = EmulatorServer(host=args.host, port=args.port, admin_token=args.admin_token,
                            ready_after=args.ready_after, braintrust_api_key=args.braintrust_api_key,
                            models=args.model, state_file=args.state)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    print(f"Databricks emulator listening on {server.url}", flush=True)
    print(f"  DATABRICKS_HOST={server.url}", flush=True)
    print(f"  DATABRICKS_TOKEN={server.admin_token}", flush=True)
    print(f"  BRAINTRUST_BASE_URL={server.url}/braintrust", flush=True)
    print(f"  BRAINTRUST_API_KEY={server.braintrust_api_key}", flush=True)
    if args.state:
        print(f"  state: {args.state}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        print("emulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
