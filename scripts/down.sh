#!/usr/bin/env bash
# make down STACK=<stack>: pulumi destroy for one stack; for STACK=local also stop the emulator
# (after the destroy, which needs it; its state file stays in .emulator/). Without `pulumi` on
# PATH it installs the CLI as `make up` does.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/pulumi-env.sh
source "$ROOT/scripts/pulumi-env.sh"
STACK="${1:-${STACK:-local}}"
check_stack_name "$STACK" || exit 2
cd "$ROOT"

if ! ensure_pulumi "$ROOT"; then
  if [[ "$STACK" == "local" ]]; then "$ROOT/scripts/emulator.sh" stop >&2; fi
  exit 1
fi
"${MAKE:-make}" --no-print-directory -s venv
if [[ "$STACK" == "local" ]]; then
  "$ROOT/scripts/emulator.sh" start
fi
stack_env "$STACK" "$ROOT"
if pulumi stack select "$STACK" >/dev/null 2>&1; then
  pulumi destroy --yes --stack "$STACK"
else
  echo "no stack $STACK in this backend: nothing to destroy"
fi
if [[ "$STACK" == "local" ]]; then
  "$ROOT/scripts/emulator.sh" stop
fi
