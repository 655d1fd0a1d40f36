#!/usr/bin/env python3
"""An otupy producer script, unchanged but for one import line.

    python otupy_swap.py --broker 127.0.0.1 --port 1883 --device-id fw-1

The transfer is oc2mqtt's: responses are matched by request_id, the call
returns as soon as the device answered, and TLS is one class away
(MQTTSTransfer). Needs otupy: pip install 'oc2mqtt[otupy]'.
"""

from __future__ import annotations

import argparse
import sys

import otupy as oc2
from otupy.encoders.json import JSONEncoder

# Before: from otupy.transfers.mqtt import MQTTTransfer, OpenC2Role
from oc2mqtt.otupy import MQTTTransfer, OpenC2Role


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--broker", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--device-id", default="fw-1")
    p.add_argument("--producer-id", default="otupy-producer")
    args = p.parse_args()

    transfer = MQTTTransfer(args.broker, args.port, OpenC2Role.Producer, device_id=args.producer_id, response_timeout=5)
    producer = oc2.Producer(args.producer_id, JSONEncoder(), transfer)
    cmd = oc2.Command(oc2.Actions.query, oc2.Features([oc2.Feature.versions, oc2.Feature.profiles]))
    responses = producer.sendcmd(cmd, consumers=[args.device_id])
    for msg in responses:
        print(f"{msg.from_} {msg.content['status'].value} {msg.content['results']}")
    transfer.close()
    return 0 if responses else 1


if __name__ == "__main__":
    sys.exit(main())
