#!/usr/bin/env bash
# A/B comparison of two builds of the Rust benchmark on one scenario, run
# alternately (A, B, A, B, ...) so that the machine's drift between runs
# (±30 % on the project's VMs) hits both sides alike. Prints every run
# (rate, client CPU and client context switches per exchange) and the
# median of each side.
#
#   cp $CARGO_TARGET_DIR/release/oc2mqtt-bench /tmp/bench-a    # before a change
#   cargo build --release -p oc2mqtt-bench                     # after it
#   bench/ab.sh /tmp/bench-a $CARGO_TARGET_DIR/release/oc2mqtt-bench seq 6
#
# SCENARIO is one of oc2mqtt-bench's (seq serve pipe paho paho-pipe ...);
# ROUNDS (default 5) runs of SECONDS_PER_RUN (default 3) seconds per side.
set -euo pipefail
if [ $# -lt 3 ]; then
  sed -n '2,13p' "$0" >&2
  exit 2
fi
a="$1" b="$2" scenario="$3" rounds="${4:-5}"
for bin in "$a" "$b"; do
  [ -x "$bin" ] || { echo "ab.sh: $bin is not an executable" >&2; exit 2; }
done
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for i in $(seq 1 "$rounds"); do
  for side in A B; do
    bin="$a"; [ "$side" = B ] && bin="$b"
    "$bin" --repeat 1 --seconds "${SECONDS_PER_RUN:-3}" "$scenario" 2>/dev/null > "$out/run.json"
    python3 - "$out/run.json" "$scenario" "$side" "$i" <<'PY' | tee -a "$out/$side"
import json, sys
path, scenario, side, i = sys.argv[1:]
m = json.load(open(path))[scenario]["median"]
rate = m.get("rt_per_s", m.get("exchanges_per_s"))
cpu = m.get("cpu_us_per_rt_client", float("nan"))
sw = m.get("switches_per_rt_client", float("nan"))
print(f"{rate:.1f} {cpu:.1f} {sw:.2f}  # {side} run {i}: {rate:.0f}/s, client CPU {cpu:.0f} us, {sw:.1f} switches per exchange")
PY
  done
done
python3 - "$out/A" "$out/B" <<'PY'
import statistics, sys
med = {}
for side, path in zip("AB", sys.argv[1:]):
    rows = [tuple(map(float, l.split()[:3])) for l in open(path)]
    med[side] = tuple(statistics.median(r[k] for r in rows) for k in range(3))
    print(f"{side}: median {med[side][0]:.0f}/s, client CPU {med[side][1]:.0f} us, {med[side][2]:.1f} switches per exchange")
print(f"B/A: rate {med['B'][0] / med['A'][0]:.3f}, CPU {med['B'][1] / med['A'][1]:.3f}, switches {med['B'][2] / med['A'][2]:.3f}")
PY
