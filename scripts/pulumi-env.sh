# Sourced by up.sh and down.sh (bash): the Pulumi CLI check and the environment of one stack.
# shellcheck shell=bash

INSTALL_LINE="the Pulumi CLI is not on PATH: install it with 'curl -fsSL https://get.pulumi.com | sh' (make test and python -m components render local work without it)"

require_pulumi() {
  if ! command -v pulumi >/dev/null 2>&1; then
    echo "$INSTALL_LINE" >&2
    exit 1
  fi
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
  export PULUMI_BACKEND_URL="file://$state"
  export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-local-emulator-only}"
  # Only the emulator's identity: no profile or OAuth client from the developer's environment.
  unset DATABRICKS_CLIENT_ID DATABRICKS_CLIENT_SECRET DATABRICKS_CONFIG_PROFILE DATABRICKS_AUTH_TYPE
  export DATABRICKS_HOST="http://127.0.0.1:${EMULATOR_PORT:-8787}"
  DATABRICKS_TOKEN="$(cat "$dir/admin-token")"
  BRAINTRUST_API_KEY="$(cat "$dir/braintrust-api-key")"
  export DATABRICKS_TOKEN BRAINTRUST_API_KEY
}
