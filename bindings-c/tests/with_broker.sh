#!/usr/bin/env bash
# Runs a command with a throwaway Mosquitto (tests/broker/broker.py) on a
# free port: OC2_TEST_BROKER=mqtt://127.0.0.1:PORT in its environment, and
# OC2_TEST_BROKER_PY for tests that start (and restart) a broker of their own.
# The broker is stopped by PID however the command ends.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
broker_py="$here/../../tests/broker/broker.py"
dir=$(mktemp -d "${TMPDIR:-/tmp}/oc2-c-broker.XXXXXX")
info=$(python3 "$broker_py" start --dir "$dir")
pid=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["pid"])' "$info")
port=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["port"])' "$info")
trap 'python3 "$broker_py" stop --pid "$pid" >/dev/null; rm -rf "$dir"' EXIT
export OC2_TEST_BROKER="mqtt://127.0.0.1:$port"
export OC2_TEST_BROKER_PY="$broker_py"
"$@"
