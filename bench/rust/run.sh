#!/usr/bin/env bash
# Builds and runs every oc2mqtt loopback benchmark (issue 3) and the dedup
# memory measurement (issue 2), each scenario 3 times (median reported),
# against a throwaway Mosquitto started by the benchmark itself.
#
#   bench/rust/run.sh                  # all scenarios, about 7 minutes
#   bench/rust/run.sh seq pipe         # some scenarios (c paho paho-pipe seq serve pipe pipe-serve broadcast memory nodelay,
#                                      # and paho-split paho-pipe-split seq-split serve-split pipe-split: consumer in a child process)
#   REPEAT=1 SECONDS_PER_RUN=1 MEMORY_COUNT=100000 bench/rust/run.sh   # quick look
#
# Writes the full JSON report to $OUT (default $CARGO_TARGET_DIR/oc2mqtt-bench-last-run.json).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/oc2mqtt-target}"
out="${OUT:-$CARGO_TARGET_DIR/oc2mqtt-bench-last-run.json}"

cargo build --release -p oc2mqtt-bench --manifest-path "$root/Cargo.toml"
cc -O2 -Wall -Wextra -o "$CARGO_TARGET_DIR/release/pingpong" "$here/c/pingpong.c" -lmosquitto -lpthread

echo "== dedup memory (counting allocator), 100 000 entries" >&2
"$CARGO_TARGET_DIR/release/dedup-memory" 100000 | tee "$out.dedup"

echo "== codec vs serde_json (best and median 50 ms batch)" >&2
"$CARGO_TARGET_DIR/release/codec-floor" | tee "$out.codec"

echo "== loopback scenarios" >&2
PINGPONG_BIN="$CARGO_TARGET_DIR/release/pingpong" "$CARGO_TARGET_DIR/release/oc2mqtt-bench" \
  --repeat "${REPEAT:-3}" --seconds "${SECONDS_PER_RUN:-3}" \
  --memory-count "${MEMORY_COUNT:-1000000}" --memory-budget "${MEMORY_BUDGET:-170}" "$@" > "$out"
python3 - "$out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for name, v in r.items():
    print(f"{name:10s} {json.dumps(v['median'])}")
PY
echo "full report: $out" >&2
