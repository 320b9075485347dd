#!/usr/bin/env bash
# The one emulator of the local stack, shared by `make emulator`, `make up` and `make down`.
#
#   scripts/emulator.sh run     run it in the foreground (`make emulator`; Ctrl-C stops it)
#   scripts/emulator.sh start   start it in the background unless our emulator already answers
#   scripts/emulator.sh stop    stop our emulator (the pid file's, else the one using our state file), nothing else
#   scripts/emulator.sh status  0: answers and accepts our admin token; 3: answers but refuses it;
#                               4: something holds the port but does not speak HTTP;
#                               1: nothing answers. Each says what to do.
#
# Every way of running it uses the same folder $EMULATOR_DIR (default .emulator, mode 700): the
# admin token and Braintrust API key files (generated once, mode 600), the state file, the pid
# file and the log (mode 600), and the same --model seeds the local stack needs. Tokens are
# passed as file paths, never on a command line (/proc/<pid>/cmdline is world-readable), and
# nothing here prints them. EMULATOR_PORT (default 8787; Pulumi.local.yaml points there) and
# EMULATOR_DIR exist for tests.
set -euo pipefail
umask 077

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PORT="${EMULATOR_PORT:-8787}"
DIR="${EMULATOR_DIR:-$ROOT/.emulator}"
PY="${PY:-$ROOT/.venv/bin/python}"
URL="http://127.0.0.1:$PORT"
# The churn scorer answers completion requests, as the local stack's flavor for it says.
MODEL="main.ml.churn_scorer:3:llm/v1/completions"
START_TIMEOUT="${EMULATOR_START_TIMEOUT:-30}"
TOKEN_FILE="$DIR/admin-token"
KEY_FILE="$DIR/braintrust-api-key"

# 0: answers and accepts the admin token; 3: answers but refuses it; 4: something accepts
# connections on the port but does not answer HTTP; 1: nothing listens.
# The token is read from its file inside Python: it never sits on a command line.
probe() {
  "$PY" - "$URL" "$TOKEN_FILE" "$PORT" <<'PY'
import http.client, socket, sys, urllib.error, urllib.request
url, token_file, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
except OSError:
    sys.exit(1)  # nothing listens
try:
    token = open(token_file).read().strip()
except OSError:
    token = ""
req = urllib.request.Request(url + "/api/2.0/serving-endpoints", headers={"Authorization": "Bearer " + token})
import threading
result = []
def ask():
    try:
        urllib.request.urlopen(req, timeout=2).close()
        result.append(0)
    except urllib.error.HTTPError:
        result.append(3)
    except (OSError, http.client.HTTPException):
        result.append(4)  # it took the connection, then no HTTP answer: closed, garbage or silence
# timeout=2 bounds each read; the thread bounds the whole request: an answer sent a byte at a
# time is no HTTP answer either
worker = threading.Thread(target=ask, daemon=True)
worker.start()
worker.join(5)
sys.exit(result[0] if result else 4)
PY
}

not_http_line() {
  echo "something on port $PORT accepts connections but does not answer HTTP: not an emulator; find it with" \
    "\`ss -ltnp 'sport = :$PORT'\` (or \`lsof -iTCP:$PORT -sTCP:LISTEN\`), stop it, or set EMULATOR_PORT to a free port"
}

# Where the running emulator's output goes: its log file when `start` put it there.
log_hint() {
  local pid
  if pid="$(running_pid)"; then
    if [[ "$(readlink "/proc/$pid/fd/1" 2>/dev/null)" == "$DIR/emulator.log" ]]; then
      echo "pid $pid, its log: $DIR/emulator.log"
    else
      echo "pid $pid, in the foreground of the terminal that started it (make emulator): its output is there"
    fi
  elif [[ -f "$DIR/emulator.log" ]]; then
    echo "its log: $DIR/emulator.log"
  fi
}

secret_file() {  # generate once, keep, readable by the owner only (umask 077)
  local file="$1" prefix="$2"
  if [[ ! -s "$file" ]]; then
    "$PY" -c "import secrets, sys; open(sys.argv[1], 'w').write('$prefix' + secrets.token_hex(16) + '\n')" "$file"
  fi
  chmod 600 "$file"
}

prepare() {
  mkdir -p "$DIR"
  chmod 700 "$DIR"
  secret_file "$TOKEN_FILE" "dapi"
  secret_file "$KEY_FILE" "sk-bt-"
}

emulator_args() {
  printf '%s\n' -m emulator --host 127.0.0.1 --port "$PORT" --model "$MODEL" --state "$DIR/state.json" \
    --admin-token-file "$TOKEN_FILE" --braintrust-api-key-file "$KEY_FILE"
}

refused_line() {
  local pid
  if pid="$(running_pid)"; then
    # ours by its state file, yet the token file is not the one it started with (the folder was
    # removed or the file replaced while it ran): only a restart reads the new one
    echo "the emulator on $URL (pid $pid, started from $DIR) refuses the admin token in $TOKEN_FILE," \
      "which is missing or changed since it started: run 'scripts/emulator.sh stop', then 'make up' or 'make emulator' again"
  else
    echo "something on $URL answers but refuses the admin token in $TOKEN_FILE: another emulator (started" \
      "by hand, or with another EMULATOR_DIR) holds the port; stop it and run 'make emulator' or 'make up'" \
      "again, which share $DIR"
  fi
}

is_ours() {  # the process runs our emulator: `python -m emulator ... --state $DIR/state.json`
  local pid="$1" args
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  # 2> first: a process gone meanwhile (grep itself matches the path it searches for) is silent
  args="$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline")" || return 1
  grep -qxF -- "emulator" <<<"$args" && grep -qxF -- "$DIR/state.json" <<<"$args"
}

# Our emulator's pid: the pid file's, else (the folder was removed while it ran, and the pid file
# with it) the process started with our state file, found through /proc (Linux).
running_pid() {
  local pid
  if [[ -s "$DIR/emulator.pid" ]]; then
    pid="$(cat "$DIR/emulator.pid")"
    if is_ours "$pid"; then
      echo "$pid"
      return 0
    fi
  fi
  [[ -d /proc/self ]] || return 1
  # processes with an argument exactly equal to our state file's path; is_ours checks the rest
  local file
  while read -r file; do
    pid="${file#/proc/}"
    pid="${pid%/cmdline}"
    if is_ours "$pid"; then
      echo "$pid"
      return 0
    fi
  done < <(grep -lzxF -- "$DIR/state.json" /proc/[0-9]*/cmdline 2>/dev/null)
  return 1
}

# 0: ours answers; 3: a stranger answers; 4: a stranger not speaking HTTP (each message
# printed); 1: nothing answers.
check_port() {
  local rc=0 hint
  probe || rc=$?
  if [[ $rc -eq 0 ]]; then
    hint="$(log_hint)"
    echo "emulator already running at $URL (state $DIR${hint:+; $hint})"
  elif [[ $rc -eq 3 ]]; then
    refused_line >&2
  elif [[ $rc -eq 4 ]]; then
    not_http_line >&2
  fi
  return $rc
}

run() {
  prepare
  local rc=0
  check_port || rc=$?
  if [[ $rc -ne 1 ]]; then return $rc; fi
  local args=()
  mapfile -t args < <(emulator_args)
  echo "emulator on $URL, state and tokens in $DIR; Ctrl-C stops it"
  # exec keeps this pid: `make down` and `stop` find it. Exclusively, as in start: a symlink
  # left in its place is removed, never followed.
  rm -f "$DIR/emulator.pid"
  (set -C; echo "$$" >"$DIR/emulator.pid")
  exec "$PY" "${args[@]}"
}

start() {
  prepare
  local rc=0
  check_port || rc=$?
  if [[ $rc -ne 1 ]]; then return $rc; fi
  local args=()
  mapfile -t args < <(emulator_args)
  # Created here, before the background process opens it: mode 600, and exclusively (set -C:
  # O_EXCL), so a symlink left in its place is removed, never followed.
  rm -f "$DIR/emulator.log" "$DIR/emulator.pid"
  (set -C; umask 077; : >"$DIR/emulator.log")
  nohup "$PY" "${args[@]}" >>"$DIR/emulator.log" 2>&1 </dev/null &
  local pid=$!
  (set -C; echo "$pid" >"$DIR/emulator.pid")
  local deadline=$((SECONDS + START_TIMEOUT))
  until probe; do
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
  local rc=0
  probe || rc=$?
  case $rc in
    0) echo "emulator running at $URL and accepting the admin token in $TOKEN_FILE" ;;
    3) refused_line ;;
    4) not_http_line ;;
    *) echo "emulator not answering at $URL (the port is free): start it with 'make emulator' (foreground) or" \
         "'scripts/emulator.sh start' (background); 'make up STACK=local' starts it too" ;;
  esac
  return $rc
}

case "${1:-}" in
  run) run ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: scripts/emulator.sh run|start|stop|status" >&2; exit 2 ;;
esac
