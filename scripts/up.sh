#!/usr/bin/env bash
# make up STACK=<stack>: pulumi up for one stack, then prove Braintrust can query every endpoint.
# Without `pulumi` on PATH it first installs the CLI release matching the pinned SDK into
# .venv/bin. For STACK=local it starts the emulator (unless it already answers: `make emulator`
# and `make up` share it) and uses Pulumi's file backend in .pulumi-state/, so no Pulumi
# account and no workspace are needed.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/pulumi-env.sh
source "$ROOT/scripts/pulumi-env.sh"
STACK="${1:-${STACK:-local}}"
check_stack_name "$STACK" || exit 2

cd "$ROOT"
ensure_pulumi "$ROOT" || exit 1
"${MAKE:-make}" --no-print-directory -s venv
PY="$ROOT/.venv/bin/python"
if [[ "$STACK" == "local" ]]; then
  "$ROOT/scripts/emulator.sh" start
fi
stack_env "$STACK" "$ROOT"
pulumi stack select --create "$STACK"
pulumi up --yes --stack "$STACK"
"$PY" -m components verify --stack "$STACK"
