#!/usr/bin/env bash
# A fleet of devices (issue 22, item 3): builds and runs bench/fleet/fleet.rs
# (1 000 consumers in one process, one producer, a throwaway Mosquitto), then
# real otupy's producer against the same consumers, and draws fleet.svg.
#
#   bench/fleet/run.sh                       # 1 000 devices, 20 sends of each kind (about 2 minutes)
#   DEVICES=100 REPEAT=5 bench/fleet/run.sh  # a quick look
#
# otupy comes from OTUPY_PYTHON (default bindings-python/.venv/bin/python, which
# `make -C bindings-python setup` fills); without it the otupy part is skipped.
# Writes the JSON report to $OUT (default $CARGO_TARGET_DIR/fleet-last-run.json)
# and the plot to $SVG (default bench/fleet/fleet.svg); prints a Markdown table.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/oc2mqtt-target}"
out="${OUT:-$CARGO_TARGET_DIR/fleet-last-run.json}"
svg="${SVG:-$here/fleet.svg}"
devices="${DEVICES:-1000}"

# One descriptor per consumer connection here, one per client in the broker
# (started from this shell, so it inherits the limit).
want=$((devices * 2 + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want" ]; then
  ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want" ]; then
  echo "ulimit -n is $(ulimit -n); $devices devices need about $want (raise the hard limit)" >&2
  exit 1
fi

cargo build --release -p oc2mqtt-bench --bin fleet --manifest-path "$root/Cargo.toml"

otupy=()
py="${OTUPY_PYTHON:-$root/bindings-python/.venv/bin/python}"
if [ -x "$py" ] && (cd "$root/bindings-python/tests" && "$py" -W ignore -c "import otupy_env") 2>/dev/null; then
  otupy=(--otupy-python "$py" --otupy-repeat "${OTUPY_REPEAT:-5}" --otupy-timeout "${OTUPY_TIMEOUT:-10}")
else
  echo "otupy not found for $py: skipping otupy's producer (make -C bindings-python setup installs it)" >&2
fi

"$CARGO_TARGET_DIR/release/fleet" --devices "$devices" --repeat "${REPEAT:-20}" \
  --timeout "${TIMEOUT:-30}" ${otupy[@]+"${otupy[@]}"} > "$out"
python3 "$here/plot.py" "$out" "$svg"
echo "report: $out, plot: $svg" >&2
