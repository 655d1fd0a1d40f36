#!/usr/bin/env bash
# Alternating A/B runs of bench.mjs between two builds of the Node package:
#
#   bench/node/ab.sh snapshot DIR        # copy the current build of bindings-node (index.js, native.js, the .node) to DIR
#   bench/node/ab.sh DIR_A DIR_B ROUNDS [bench.mjs args...]
#
# Each round runs bench.mjs (default: --only oc2-seq,oc2-pipe,oc2-ingest --repeat 1
# --seconds 3) once with A then once with B, by pointing
# bench/node/node_modules/oc2mqtt at each, under the shared benchmark lock,
# and puts it back at the end. Prints every line of every round. The Rust
# binaries (the ingest publisher) are built once, before the first round.
# AB_ENV_A / AB_ENV_B: environment assignments ("K=V K2=V2") for each side's
# run, to compare two settings of one build (DIR_A and DIR_B may be the same).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ "${1:-}" = snapshot ]; then
  mkdir -p "$2"
  cp "$here/../../bindings-node/"{package.json,index.js,native.js,oc2mqtt.linux-x64-gnu.node} "$2/"
  exit 0
fi
a="$(cd "$1" && pwd)"; b="$(cd "$2" && pwd)"; rounds="$3"; shift 3
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--only oc2-seq,oc2-pipe,oc2-ingest --repeat 1 --seconds 3)
(cd "$here" && flock /tmp/oc2mqtt-bench.lock node bench.mjs --only build >/dev/null)
link="$here/node_modules/oc2mqtt"
original="$(readlink "$link")"
trap 'ln -sfn "$original" "$link"' EXIT
for i in $(seq 1 "$rounds"); do
  for side in A B; do
    dir=$a; envs=${AB_ENV_A:-}
    [ $side = B ] && { dir=$b; envs=${AB_ENV_B:-}; }
    ln -sfn "$dir" "$link"
    echo "== round $i $side ${envs:+[$envs] }($(uptime | sed 's/.*load/load/'))"
    # shellcheck disable=SC2086
    (cd "$here" && flock /tmp/oc2mqtt-bench.lock env $envs node bench.mjs --no-build "${args[@]}" | grep --line-buffered "^round")
  done
done
