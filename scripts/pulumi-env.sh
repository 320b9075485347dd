# Sourced by up.sh and down.sh (bash): the Pulumi CLI, and the environment of one stack.
# shellcheck shell=bash

# A stack name as Pulumi and components/spec take it (letters, digits, '-', '_', '.'; a letter or
# digit first, so it can never read as an option), checked before the name is used at all: STACK
# comes from the user (`make up STACK=...`). Prints one line and fails otherwise.
check_stack_name() {
  local LC_ALL=C  # the ranges below mean ASCII only
  if [[ ! "$1" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$ ]]; then
    printf 'error: %q is not a stack name: use letters, digits, "-", "_" and ".", starting with a letter or digit (make up STACK=dev)\n' "$1" >&2
    return 1
  fi
}

# `pulumi` on PATH, else the release matching the pinned SDK, installed into .venv/bin by
# scripts/install_pulumi.py (verified against the release's SHA-256 checksums). On failure it
# has printed one line saying what happened and what to do.
ensure_pulumi() {
  local root="$1" python dir
  python="${PYTHON:-python3}"
  if [[ -x "$root/.venv/bin/python" ]]; then python="$root/.venv/bin/python"; fi
  dir="$("$python" "$root/scripts/install_pulumi.py")" || return 1
  export PATH="$dir:$PATH"
}

# local: the emulator's credentials, the file backend inside the project, a passphrase that
# only protects local emulator tokens. Other stacks: the caller's own environment (CI secrets,
# `pulumi login`, PULUMI_CONFIG_PASSPHRASE or a cloud secrets provider), untouched.
stack_env() {
  local stack="$1" root="$2"
  if [[ "$stack" != "local" ]]; then
    return 0
  fi
  local dir="${EMULATOR_DIR:-$root/.emulator}" state="${PULUMI_STATE_DIR:-$root/.pulumi-state}"
  mkdir -p "$state"
  chmod 700 "$state"  # the stack's state holds the emulator's OAuth secret, encrypted or not
  export PULUMI_BACKEND_URL="file://$state"
  export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-local-emulator-only}"
  # Only the emulator's identity: no profile or OAuth client from the developer's environment.
  unset DATABRICKS_CLIENT_ID DATABRICKS_CLIENT_SECRET DATABRICKS_CONFIG_PROFILE DATABRICKS_AUTH_TYPE
  export DATABRICKS_HOST="http://127.0.0.1:${EMULATOR_PORT:-8787}"
  # Exported to pulumi's environment (never to a command line): the provider reads them there.
  DATABRICKS_TOKEN="$(cat "$dir/admin-token")"
  BRAINTRUST_API_KEY="$(cat "$dir/braintrust-api-key")"
  export DATABRICKS_TOKEN BRAINTRUST_API_KEY
}
