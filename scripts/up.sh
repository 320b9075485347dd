#!/usr/bin/env bash
# make up STACK=<stack>: deploy one stack, then prove Braintrust can query every endpoint.
# The engine is Pulumi's CLI (on PATH, or the release matching the pinned SDK installed into
# .venv/bin), or, when none can be had, the bundled engine (`python -m engine`), which runs only
# against a workspace on this machine; once a stack's state is the bundled engine's
# (.pulumi-state/bundled/), it stays with it until `make down`. One line says which and why.
# For STACK=local it starts the emulator (unless it already answers: `make emulator` and
# `make up` share it) and keeps state in .pulumi-state/, so no account and no workspace are needed.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/pulumi-env.sh
source "$ROOT/scripts/pulumi-env.sh"
STACK="${1:-${STACK:-local}}"
check_stack_name "$STACK" || exit 2

cd "$ROOT"
choose_engine "$STACK" "$ROOT"
"${MAKE:-make}" --no-print-directory -s venv
PY="$ROOT/.venv/bin/python"
if [[ "$STACK" == "local" ]]; then
  "$ROOT/scripts/emulator.sh" start
fi
if [[ "$ENGINE" == "bundled" ]]; then
  bundled_engine up "$STACK" "$ROOT"
  STATE="$(bundled_state "$STACK" "$ROOT")"
  "$PY" -m components verify --config "${STATE%.json}.outputs.json"
  exit 0
fi
echo "engine: the Pulumi CLI ($(command -v pulumi)), $ENGINE_WHY"
stack_env "$STACK" "$ROOT"
pulumi stack select --create "$STACK"
pulumi up --yes --stack "$STACK"
"$PY" -m components verify --stack "$STACK"
