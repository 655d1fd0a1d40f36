#!/usr/bin/env bash
# Runs the examples of examples/c (built in $1) against the broker in
# $OC2_TEST_BROKER: a consumer device, the producer asking it three things,
# and the monitor watching. Fails on any unexpected output.
set -euo pipefail
bin=$1
out=$(mktemp -d "${TMPDIR:-/tmp}/oc2-c-examples.XXXXXX")
"$bin/monitor" "$OC2_TEST_BROKER" 6 > "$out/monitor.txt" &
monitor=$!
"$bin/consumer" "$OC2_TEST_BROKER" fw-ex > "$out/consumer.txt" &
consumer=$!
trap 'kill $consumer $monitor 2>/dev/null || true; rm -rf "$out"' EXIT
for _ in $(seq 50); do grep -q "waiting for commands" "$out/consumer.txt" && break; sleep 0.1; done

expect() { # expect FILE TEXT
    grep -qF -- "$2" "$1" || { echo "examples: '$2' not in $1:"; cat "$1"; exit 1; }
}
"$bin/producer" "$OC2_TEST_BROKER" fw-ex > "$out/p1.txt"
expect "$out/p1.txt" '200 from fw-ex'
expect "$out/p1.txt" '"versions":["1.0"]'
"$bin/producer" "$OC2_TEST_BROKER" fw-ex '{"action":"deny","target":{"ipv4_net":"10.1.0.0/16"}}' > "$out/p2.txt"
expect "$out/p2.txt" '"status_text":"rule installed"'
"$bin/producer" "$OC2_TEST_BROKER" fw-ex '{"action":"contain","target":{"device":{"hostname":"h"}}}' > "$out/p3.txt"
expect "$out/p3.txt" '501 from fw-ex'
status=0
"$bin/producer" "$OC2_TEST_BROKER" nobody > "$out/p4.txt" 2>&1 || status=$?
[ "$status" = 3 ] || { echo "examples: producer to nobody exited $status, expected 3"; exit 1; }

kill -TERM $consumer
wait $consumer
expect "$out/consumer.txt" 'fw-ex from example-producer: deny "10.1.0.0/16"'
wait $monitor
expect "$out/monitor.txt" "connected to $OC2_TEST_BROKER (MQTT 5)"
expect "$out/monitor.txt" 'oc2/cmd/device/fw-ex'
expect "$out/monitor.txt" ' ms  {"body":{"openc2":{"response"'
echo "examples: consumer, producer and monitor ok"
