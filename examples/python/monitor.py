#!/usr/bin/env python3
"""Print every OpenC2 message on the broker (oc2/#), with response latency
and commands that addressed devices never answered.

    python monitor.py --broker mqtt://127.0.0.1:1883
    python monitor.py --filter 'oc2/cmd/#' --json
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import oc2mqtt


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--broker", default=os.environ.get("OC2_BROKER", "mqtt://127.0.0.1:1883"))
    p.add_argument("--filter", help="MQTT topic filter (default oc2/#)")
    p.add_argument("--window", type=float, default=30.0, help="seconds to wait for responses to a command")
    p.add_argument("--json", action="store_true", help="print whole messages")
    p.add_argument("--username", default=os.environ.get("OC2_USERNAME"), help="password from $OC2_PASSWORD")
    p.add_argument("--ca-file")
    p.add_argument("--cert-file")
    p.add_argument("--key-file")
    p.add_argument("--insecure", action="store_true", help="do not verify the broker's certificate (testing only)")
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
    try:
        with oc2mqtt.Monitor(config, args.filter, window=args.window) as monitor:
            print("monitoring", flush=True)
            for e in monitor:
                if e.kind == "unanswered":
                    line = f"UNANSWERED {e.request_id} missing={','.join(e.missing)}"
                elif e.kind == "undecodable":
                    line = f"UNDECODABLE {e.topic} {e.error} {e.payload!r:.80}"
                else:
                    body = e.message["body"]["openc2"] if e.message else {}
                    (what,) = body.values() if body else ({},)
                    summary = what.get("action") or what.get("status") or ""
                    latency = f" {e.latency * 1000:.1f} ms" if e.latency is not None else ""
                    line = f"{e.kind.upper()} {e.topic} {e.sender} {summary} {e.request_id} [{e.dialect}]{latency}"
                    if args.json:
                        line += " " + json.dumps(e.message)
                print(line, flush=True)
    except KeyboardInterrupt:
        pass
    except oc2mqtt.Error as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
