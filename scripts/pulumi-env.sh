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

# Where the bundled engine keeps a stack's state: apart from the Pulumi CLI's file backend.
bundled_state() {
  local stack="$1" root="$2"
  echo "${PULUMI_STATE_DIR:-$root/.pulumi-state}/bundled/$stack.json"
}

# Which engine runs STACK, chosen from the state found, never by probing the network first:
# the bundled engine (`python -m engine`) when its state for STACK exists; else the Pulumi CLI,
# found or installed (PATH updated); else the bundled engine, which itself refuses any stack
# whose workspace is not on this machine. Sets ENGINE (pulumi|bundled) and ENGINE_WHY.
# shellcheck disable=SC2034  # ENGINE and ENGINE_WHY are read by the caller
choose_engine() {
  local stack="$1" root="$2" python dir why_file state
  state="$(bundled_state "$stack" "$root")"
  if [[ -f "$state" ]]; then
    ENGINE=bundled
    ENGINE_WHY="the stack's state is the bundled engine's (${state#"$root"/}; make down, then make up, to move to the Pulumi CLI)"
    return 0
  fi
  python="${PYTHON:-python3}"
  if [[ -x "$root/.venv/bin/python" ]]; then python="$root/.venv/bin/python"; fi
  why_file="$(mktemp)"
  if dir="$("$python" "$root/scripts/install_pulumi.py" --why "$why_file")"; then
    rm -f "$why_file"
    export PATH="$dir:$PATH"
    ENGINE=pulumi
    ENGINE_WHY="found in $dir"
    return 0
  fi
  ENGINE=bundled
  local reason
  reason="$(head -n 1 "$why_file")"
  reason="${reason%%): *}"  # what happened, without the how-to-install advice (not needed now)
  [[ "$reason" == *"("* && "$reason" != *")" ]] && reason="$reason)"
  ENGINE_WHY="no Pulumi CLI here and none could be had ($reason)"
  rm -f "$why_file"
}

# The bundled engine's command for STACK, with the emulator wired in for the local stack (its
# host, Braintrust API and tokens from $EMULATOR_DIR; nothing of the developer's own identity).
bundled_engine() {
  local command="$1" stack="$2" root="$3" state
  state="$(bundled_state "$stack" "$root")"
  mkdir -p "$(dirname "$state")"
  chmod 700 "$(dirname "$(dirname "$state")")" "$(dirname "$state")"  # state holds the emulator's OAuth secret
  local args=("$command" "$stack" --state "$state")
  if [[ "$stack" == "local" ]]; then
    args+=(--emulator "http://127.0.0.1:${EMULATOR_PORT:-8787}")
    unset DATABRICKS_TOKEN DATABRICKS_CLIENT_ID DATABRICKS_CLIENT_SECRET DATABRICKS_CONFIG_PROFILE \
      DATABRICKS_AUTH_TYPE DATABRICKS_HOST BRAINTRUST_API_KEY
  fi
  if [[ "$command" == "up" ]]; then args+=(--outputs "${state%.json}.outputs.json"); fi
  BUNDLED_ENGINE_WHY="$ENGINE_WHY" "$root/.venv/bin/python" -m engine "${args[@]}"
}
