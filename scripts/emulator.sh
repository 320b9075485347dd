#!/usr/bin/env bash
# The local emulator as a background process of this project, for `make up` / `make down`.
#
#   scripts/emulator.sh start   start it on 127.0.0.1:$EMULATOR_PORT unless something answers there
#   scripts/emulator.sh stop    stop the process this script started (its pid file), nothing else
#   scripts/emulator.sh status  say whether it answers
#
# Its admin token and Braintrust API key are generated once and kept in $EMULATOR_DIR (mode 600),
# with its pid file, log and state file, so a restarted emulator keeps its workspace and tokens.
# EMULATOR_PORT (default 8787; Pulumi.local.yaml points there) and EMULATOR_DIR (default
# .emulator) exist for tests.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PORT="${EMULATOR_PORT:-8787}"
DIR="${EMULATOR_DIR:-$ROOT/.emulator}"
PY="${PY:-$ROOT/.venv/bin/python}"
URL="http://127.0.0.1:$PORT"
# The churn scorer answers completion requests, as the local stack's flavor for it says.
MODEL="main.ml.churn_scorer:3:llm/v1/completions"
START_TIMEOUT="${EMULATOR_START_TIMEOUT:-30}"

# 0: answers and accepts the admin token; 3: answers but refuses it; 1: nothing answers.
probe() {
  "$PY" - "$URL" "${1:-}" <<'PY'
import sys, urllib.error, urllib.request
url, token = sys.argv[1], sys.argv[2]
req = urllib.request.Request(url + "/api/2.0/serving-endpoints", headers={"Authorization": "Bearer " + token})
try:
    urllib.request.urlopen(req, timeout=2).close()
except urllib.error.HTTPError:
    sys.exit(3)
except OSError:
    sys.exit(1)
PY
}

secret_file() {  # generate once, keep, readable by the owner only
  local file="$1" prefix="$2"
  if [[ ! -s "$file" ]]; then
    (umask 077 && "$PY" -c "import secrets; print('$prefix' + secrets.token_hex(16))" >"$file")
  fi
}

running_pid() {  # the pid in our pid file, if that process is still our emulator
  local pid
  [[ -s "$DIR/emulator.pid" ]] || return 1
  pid="$(cat "$DIR/emulator.pid")"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "-m emulator" || return 1
  echo "$pid"
}

start() {
  mkdir -p "$DIR"
  secret_file "$DIR/admin-token" "dapi"
  secret_file "$DIR/braintrust-api-key" "sk-bt-"
  local token rc=0
  token="$(cat "$DIR/admin-token")"
  probe "$token" || rc=$?
  if [[ $rc -eq 0 ]]; then
    echo "emulator already running at $URL"
    return 0
  elif [[ $rc -eq 3 ]]; then
    echo "something on $URL refuses the admin token in $DIR/admin-token: stop it, or remove $DIR to start afresh" >&2
    return 1
  fi
  nohup "$PY" -m emulator --host 127.0.0.1 --port "$PORT" --model "$MODEL" --state "$DIR/state.json" \
    --admin-token "$token" --braintrust-api-key "$(cat "$DIR/braintrust-api-key")" \
    >"$DIR/emulator.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$DIR/emulator.pid"
  local deadline=$((SECONDS + START_TIMEOUT))
  until probe "$token"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "the emulator exited at start; its log ($DIR/emulator.log) ends:" >&2
      tail -n 5 "$DIR/emulator.log" >&2
      rm -f "$DIR/emulator.pid"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      echo "the emulator did not answer on $URL within ${START_TIMEOUT}s (log: $DIR/emulator.log)" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "emulator started at $URL (pid $pid, state $DIR/state.json)"
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$DIR/emulator.pid"
    echo "emulator not running (no live pid file in $DIR)"
    return 0
  fi
  kill "$pid"
  local deadline=$((SECONDS + 10))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      echo "emulator (pid $pid) did not stop within 10s" >&2
      return 1
    fi
    sleep 0.1
  done
  rm -f "$DIR/emulator.pid"
  echo "emulator stopped (pid $pid)"
}

status() {
  local token=""
  [[ -s "$DIR/admin-token" ]] && token="$(cat "$DIR/admin-token")"
  if probe "$token"; then echo "emulator running at $URL"; else echo "emulator not answering at $URL"; return 1; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: scripts/emulator.sh start|stop|status" >&2; exit 2 ;;
esac
