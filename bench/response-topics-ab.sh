#!/usr/bin/env bash
# Responses published once (oc2/rsp, the default) against twice (oc2/rsp and
# oc2/rsp/<producer>), alternating runs of one oc2mqtt-bench scenario on
# the same build: prints "<side> <exchanges/s> <client CPU us> <broker CPU us>"
# per run. Build first: cargo build --release -p oc2mqtt-bench
#
#   bench/response-topics-ab.sh seq 6; bench/response-topics-ab.sh pipe 6
set -euo pipefail
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
bin=${CARGO_TARGET_DIR:-$HOME/.cache/oc2mqtt-target}/release/oc2mqtt-bench
scenario=${1:-seq}; rounds=${2:-5}
for i in $(seq 1 $rounds); do
  for side in both shared; do
    OC2MQTT_BENCH_RESPONSE_TOPICS=$side $bin --repeat 1 --seconds 3 $scenario 2>/dev/null > "$out"
    python3 -c "
import json,sys
m=json.load(open('$out'))['$scenario']['median']
print('$side', round(m.get('rt_per_s', m.get('exchanges_per_s')),1), round(m['cpu_us_per_rt_client'],1), round(m['cpu_us_per_rt_broker'],1))
"
  done
done
