#!/usr/bin/env python3
"""A device that answers OpenC2 commands (an SLPF-like firewall, in memory).

    python consumer.py --broker mqtt://127.0.0.1:1883 --device-id fw-1

`query features` is answered by oc2mqtt from the declared profile and
pairs; duplicates, commands for other devices, malformed commands, retained
commands and commands older than the freshness window (--freshness; 0: off)
never reach the handler. Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import threading
from typing import Any

import oc2mqtt

PAIRS = [("deny", "ipv4_net"), ("deny", "ipv4_connection"), ("allow", "ipv4_net"), ("delete", "slpf:rule_number")]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--broker", default=os.environ.get("OC2_BROKER", "mqtt://127.0.0.1:1883"))
    p.add_argument("--device-id", default=os.environ.get("OC2_DEVICE_ID", "fw-1"))
    p.add_argument("--profile", action="append", default=None, help="actuator profile (default: slpf)")
    p.add_argument("--username", default=os.environ.get("OC2_USERNAME"), help="password from $OC2_PASSWORD")
    p.add_argument("--ca-file")
    p.add_argument("--cert-file")
    p.add_argument("--key-file")
    p.add_argument("--insecure", action="store_true", help="do not verify the broker's certificate (testing only)")
    p.add_argument(
        "--freshness", type=int, metavar="SECONDS", help="do not run commands created longer ago (default: oc2mqtt's)"
    )
    args = p.parse_args()

    config = oc2mqtt.ClientConfig(
        args.broker,
        username=args.username,
        password=os.environ.get("OC2_PASSWORD") if args.username else None,
        ca_file=args.ca_file,
        cert_file=args.cert_file,
        key_file=args.key_file,
        insecure_skip_verify=args.insecure,
    )
    rules: dict[int, dict[str, Any]] = {}
    numbers = itertools.count(1)
    lock = threading.Lock()  # the handler may run on several threads at once

    def handle(command: dict[str, Any]) -> dict[str, Any]:
        print(f"{command['action']} {json.dumps(command['target'])}", flush=True)
        with lock:
            if command["action"] == "delete":
                number = command["target"]["slpf:rule_number"]
                if rules.pop(number, None) is None:
                    return {"status": 404, "status_text": f"no rule {number}"}
                return {"status": 200}
            number = next(numbers)
            rules[number] = command
        return {"status": 200, "results": {"slpf": {"rule_number": number}}}

    try:
        with oc2mqtt.Consumer(
            config, args.device_id, profiles=args.profile or ["slpf"], pairs=PAIRS, freshness_secs=args.freshness
        ) as consumer:
            print(f"{args.device_id} ready", flush=True)
            consumer.serve(handle)
    except KeyboardInterrupt:
        print("stopped", flush=True)
    except oc2mqtt.Error as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
