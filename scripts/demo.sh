#!/usr/bin/env bash
# `make demo`: a real OpenC2 exchange over MQTT in one command.
#
# Builds the `oc2mqtt` CLI (release), starts a throwaway Mosquitto on a free
# port, runs `monitor` and `serve` (device fw-1, profile slpf, pair
# deny:ipv4_connection) in the background, `send`s a `query features` and the
# MQTT-T example `deny`, prints the responses and the monitor's view, and
# cleans everything up (processes stopped by their saved PIDs) even on failure.
# Exits non-zero if any step failed.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/oc2mqtt-target}"
BIN="$CARGO_TARGET_DIR/release/oc2mqtt"

bold() { if [ -t 1 ]; then printf '\n\033[1m== %s\033[0m\n' "$*"; else printf '\n== %s\n' "$*"; fi; }
fail() { echo "demo: FAILED: $*" >&2; FAILED=1; }

FAILED=0
WORK=""
BROKER_PID=""
MONITOR_PID=""
SERVE_PID=""

stop_pid() { # PID SIGNAL: signals one of our background processes, reaps it, returns its exit status
  local pid="$1" sig="$2"
  [ -n "$pid" ] || return 0
  kill "-$sig" "$pid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$SERVE_PID" TERM || true
  stop_pid "$MONITOR_PID" INT || true
  if [ -n "$BROKER_PID" ]; then python3 tests/broker/broker.py stop --pid "$BROKER_PID" || true; fi
  [ -n "$WORK" ] && rm -rf "$WORK"
  if [ "$FAILED" -ne 0 ] && [ "$rc" -eq 0 ]; then rc=1; fi
  if [ "$rc" -eq 0 ]; then echo; echo "demo: OK"; else echo; echo "demo: FAILED (exit $rc)" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'FAILED=1; exit 130' INT TERM

# Waits until FILE has a line containing TEXT while process PID is alive.
wait_for_line() {
  local file="$1" text="$2" pid="$3"
  for _ in $(seq 200); do
    grep -q -- "$text" "$file" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { echo "demo: process $pid exited:" >&2; cat "$file" >&2; return 1; }
    sleep 0.05
  done
  echo "demo: timed out waiting for '$text' in $file" >&2
  cat "$file" >&2
  return 1
}

bold "Building the oc2mqtt CLI (release, target dir $CARGO_TARGET_DIR)"
cargo build --release -p oc2mqtt-cli || { fail "cargo build"; exit 1; }

command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || { fail "mosquitto is not installed: run 'make setup'"; exit 1; }

WORK="$(mktemp -d -t oc2mqtt-demo.XXXXXX)"
bold "Starting a throwaway Mosquitto"
INFO="$(python3 tests/broker/broker.py start --dir "$WORK/broker")" || { fail "broker start"; exit 1; }
read -r BROKER_PID PORT < <(python3 -c 'import json,sys; i=json.loads(sys.argv[1]); print(i["pid"], i["port"])' "$INFO")
URL="mqtt://127.0.0.1:$PORT"
echo "broker: $URL (pid $BROKER_PID)"

bold "oc2mqtt monitor --broker $URL   (in the background)"
"$BIN" monitor --broker "$URL" >"$WORK/monitor.log" 2>"$WORK/monitor.err" &
MONITOR_PID=$!
wait_for_line "$WORK/monitor.err" "watching" "$MONITOR_PID" || { fail "monitor did not start"; exit 1; }
cat "$WORK/monitor.err"

bold "oc2mqtt serve --broker $URL --device-id fw-1 --profile slpf --pair deny:ipv4_connection   (in the background)"
"$BIN" serve --broker "$URL" --device-id fw-1 --profile slpf --pair deny:ipv4_connection \
  >"$WORK/serve.log" 2>"$WORK/serve.err" &
SERVE_PID=$!
wait_for_line "$WORK/serve.err" "ready" "$SERVE_PID" || { fail "serve did not start"; exit 1; }
cat "$WORK/serve.err"

send() { # TITLE ARGS...: runs `oc2mqtt send`, shows the command line and the responses
  local title="$1"; shift
  bold "$title"
  echo "\$ oc2mqtt send --broker $URL --from demo-producer $*"
  "$BIN" send --broker "$URL" --from demo-producer "$@"
  local rc=$?
  echo "(exit $rc)"
  [ "$rc" -eq 0 ] || fail "send: $title (exit $rc)"
}

send "query features" --to fw-1 \
  '{"action":"query","target":{"features":["versions","profiles","pairs"]}}'

# The MQTT-T example command (bench/payloads/deny_command.json) asks for
# response_requested: ack, so the consumer answers 102 Processing.
DENY="$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["body"]["openc2"]["request"]))' \
  bench/payloads/deny_command.json)" || { fail "reading bench/payloads/deny_command.json"; exit 1; }
send "deny (the MQTT-T example command, response_requested: ack)" --to fw-1 "$DENY"

DENY_COMPLETE="$(python3 -c 'import json,sys; c=json.loads(sys.argv[1]); c["args"]["response_requested"]="complete"; print(json.dumps(c))' "$DENY")"
send "the same deny with response_requested: complete" --to fw-1 "$DENY_COMPLETE"

sleep 0.3 # let the monitor print the last responses
stop_pid "$MONITOR_PID" INT || fail "monitor did not exit 0 on SIGINT"
MONITOR_PID=""
bold "What the monitor saw"
cat "$WORK/monitor.log"
grep -v "watching" "$WORK/monitor.err" || true
grep -q " request " "$WORK/monitor.log" && grep -q " response " "$WORK/monitor.log" || fail "the monitor saw no exchange"

stop_pid "$SERVE_PID" TERM || fail "serve did not exit 0 on SIGTERM"
SERVE_PID=""
bold "What serve handled (the built-in query features answer is not listed)"
cat "$WORK/serve.log"
grep -v "ready" "$WORK/serve.err" || true
[ "$(grep -c 'handled deny ipv4_connection' "$WORK/serve.log")" -eq 2 ] || fail "serve did not handle both deny commands"
