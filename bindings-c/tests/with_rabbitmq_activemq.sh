#!/usr/bin/env bash
# Runs a command with a throwaway RabbitMQ 3.10 and ActiveMQ 5.17
# (tests/broker/broker.py, started side by side, one user each) in its
# environment: OC2_TEST_RABBITMQ / OC2_TEST_ACTIVEMQ=mqtt://127.0.0.1:PORT,
# OC2_TEST_USER, OC2_TEST_PASSWORD. Both brokers are stopped by PID however
# the command ends.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
broker_py="$here/../../tests/broker/broker.py"
dir=$(mktemp -d "${TMPDIR:-/tmp}/oc2-c-brokers.XXXXXX")
user=oc2
password=s3cret-pw
kinds=(rabbitmq activemq)

field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

cleanup() {
    for kind in "${kinds[@]}"; do
        # The JSON line of a broker that started (also when the other did not).
        if [ -s "$dir/$kind.json" ]; then
            python3 "$broker_py" stop --pid "$(field "$(tail -n 1 "$dir/$kind.json")" pid)" >/dev/null || true
        fi
    done
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM  # so that the EXIT trap runs

starts=()
for kind in "${kinds[@]}"; do
    python3 "$broker_py" start --dir "$dir/$kind" --kind "$kind" --user "$user:$password" \
        >"$dir/$kind.json" 2>"$dir/$kind.err" &
    starts+=($!)
done
failed=0
for i in "${!kinds[@]}"; do
    if ! wait "${starts[$i]}"; then
        echo "with_rabbitmq_activemq.sh: ${kinds[$i]} did not start:" >&2
        cat "$dir/${kinds[$i]}.err" >&2
        failed=1
    fi
done
[ "$failed" = 0 ] || exit 1

OC2_TEST_RABBITMQ="mqtt://127.0.0.1:$(field "$(tail -n 1 "$dir/rabbitmq.json")" port)"
OC2_TEST_ACTIVEMQ="mqtt://127.0.0.1:$(field "$(tail -n 1 "$dir/activemq.json")" port)"
export OC2_TEST_RABBITMQ OC2_TEST_ACTIVEMQ OC2_TEST_USER="$user" OC2_TEST_PASSWORD="$password"
"$@"
