#!/usr/bin/env bash
# make down STACK=<stack>: destroy one stack with the engine its state belongs to, chosen from
# the state found (never by probing the network): the bundled engine's in .pulumi-state/bundled/,
# else the Pulumi CLI's (installed as `make up` does). For STACK=local also stop the emulator
# (after the destroy, which needs it; its state file stays in .emulator/).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/pulumi-env.sh
source "$ROOT/scripts/pulumi-env.sh"
STACK="${1:-${STACK:-local}}"
check_stack_name "$STACK" || exit 2
cd "$ROOT"

STATE="$(bundled_state "$STACK" "$ROOT")"
if [[ -f "$STATE" ]]; then
  ENGINE_WHY="the stack's state is the bundled engine's (${STATE#"$ROOT"/})"
  "${MAKE:-make}" --no-print-directory -s venv
  if [[ "$STACK" == "local" ]]; then
    "$ROOT/scripts/emulator.sh" start
  fi
  bundled_engine destroy "$STACK" "$ROOT"
  rm -f "$STATE" "${STATE%.json}.outputs.json"  # everything was deleted: back to no state
  if [[ "$STACK" == "local" ]]; then
    "$ROOT/scripts/emulator.sh" stop
  fi
  exit 0
fi

BACKEND="${PULUMI_STATE_DIR:-$ROOT/.pulumi-state}/.pulumi/stacks"
if [[ "$STACK" == "local" && -z "$(find "$BACKEND" -name "$STACK.json" -print -quit 2>/dev/null)" ]]; then
  echo "no state for stack $STACK (neither ${STATE#"$ROOT"/} nor Pulumi's file backend in ${BACKEND#"$ROOT"/}): nothing to destroy"
  "$ROOT/scripts/emulator.sh" stop
  exit 0
fi
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
