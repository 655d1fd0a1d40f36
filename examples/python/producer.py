#!/usr/bin/env python3
"""Send one OpenC2 command and print the responses as they arrive.

    python producer.py --broker mqtt://127.0.0.1:1883 --device-id fw-1
    python producer.py --device-id fw-1 --action deny --target '{"ipv4_net": "198.51.100.0/24"}'
    OC2_PASSWORD=secret python producer.py --broker mqtts://broker:8883 --ca-file ca.pem --username ops

Without --device-id the command is broadcast (to oc2/cmd/all, or to the
profile's topic with --profile) and every consumer that answers is printed
until --timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import oc2mqtt


def config(args: argparse.Namespace) -> oc2mqtt.ClientConfig:
    return oc2mqtt.ClientConfig(
        args.broker,
        username=args.username,
        password=os.environ.get("OC2_PASSWORD") if args.username else None,
        ca_file=args.ca_file,
        cert_file=args.cert_file,
        key_file=args.key_file,
        insecure_skip_verify=args.insecure,
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--broker", default=os.environ.get("OC2_BROKER", "mqtt://127.0.0.1:1883"))
    p.add_argument("--producer-id", default=os.environ.get("OC2_PRODUCER_ID", "producer-1"))
    p.add_argument("--device-id", action="append", help="recipient (repeatable); none = broadcast")
    p.add_argument("--profile", help="actuator profile, e.g. slpf")
    p.add_argument("--action", default="query")
    p.add_argument("--target", default='{"features": ["versions", "profiles", "pairs"]}', help="JSON object")
    p.add_argument("--args", dest="cmd_args", help="JSON object of command arguments")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for responses")
    p.add_argument("--username", default=os.environ.get("OC2_USERNAME"), help="password from $OC2_PASSWORD")
    p.add_argument("--ca-file")
    p.add_argument("--cert-file")
    p.add_argument("--key-file")
    p.add_argument("--insecure", action="store_true", help="do not verify the broker's certificate (testing only)")
    args = p.parse_args()

    command = {"action": args.action, "target": json.loads(args.target)}
    if args.cmd_args:
        command["args"] = json.loads(args.cmd_args)
    try:
        with oc2mqtt.Producer(config(args), args.producer_id) as producer:
            exchange = producer.send(command, to=args.device_id, profile=args.profile, timeout=args.timeout)
            print(f"sent {args.action} ({exchange.request_id})", flush=True)
            count = 0
            for reply in exchange:
                count += 1
                body = reply.message["body"]["openc2"]["response"]
                print(f"{reply.sender} {reply.status} {reply.latency * 1000:.1f} ms {json.dumps(body)}", flush=True)
            if not exchange.is_complete and args.device_id:
                print(f"no final response from some recipients after {args.timeout} s", file=sys.stderr)
                return 1
            print(f"{count} response(s)")
    except oc2mqtt.Error as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
