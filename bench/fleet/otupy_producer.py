"""Real otupy's producer against the fleet of bench/fleet/fleet.rs.

Sends the bench deny ``--repeat`` times with otupy 1.1's ``Producer.sendcmd``
over its own ``MQTTTransfer`` (paho-mqtt), either with ``to`` naming every
device (``--mode to``: otupy waits until it has as many responses as names,
or its ``response_timeout``) or as a broadcast to the SLPF profile
(``--mode broadcast``: otupy has no way to expect a count, so it waits its
full ``response_timeout``). Prints one JSON object: per send, the time
``sendcmd`` took to return, the responses it returned, and when otupy queued
each response (ms since the call).

Run by ``fleet --otupy-python PY``; needs otupy (``make -C bindings-python setup``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings-python" / "tests"))

from otupy_env import JSONEncoder, OtupyMQTTTransfer, OtupyRole, oc2, slpf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--mode", choices=["to", "broadcast"], default="to")
    a = ap.parse_args()

    transfer = OtupyMQTTTransfer(
        "127.0.0.1",
        a.port,
        role=OtupyRole.Producer,
        device_id="otupy-fleet-p",
        client_id=f"otupy-fleet-p-{a.mode}",
        response_timeout=a.timeout,
    )
    producer = oc2.Producer("otupy-fleet-p", JSONEncoder(), transfer)
    target = oc2.IPv4Connection(
        src_addr="1.2.3.4", src_port=10996, dst_addr="198.2.3.4", dst_port=80, protocol=oc2.L4Protocol.tcp
    )
    cmd = oc2.Command(
        oc2.Actions.deny,
        target,
        args=oc2.Args({"response_requested": oc2.ResponseType.complete}),
        actuator=slpf.Specifiers({}),
    )
    devices = [f"fw-{i + 1:04d}" for i in range(a.devices)] if a.mode == "to" else None

    # When otupy queued each response (its own callback, wrapped on the instance).
    arrivals: list[float] = []
    t0 = [0.0]
    on_rsp = transfer._on_message_rsp

    def timed_on_rsp(client: Any, userdata: Any, msg: Any) -> None:
        before = len(userdata.msg_queue)
        on_rsp(client, userdata, msg)
        if len(userdata.msg_queue) > before:
            arrivals.append((time.perf_counter() - t0[0]) * 1e3)

    transfer._on_message_rsp = timed_on_rsp
    transfer.client.loop_start()
    time.sleep(0.5)  # otupy subscribes from its network loop
    transfer.client.loop_stop()

    sends = []
    for _ in range(a.repeat):
        # otupy never resets these between sends (bench/python/run.py has the same workaround).
        transfer.mqtt_userdata.msg_queue = []
        transfer.mqtt_userdata.event.clear()
        arrivals.clear()
        t0[0] = time.perf_counter()
        got = producer.sendcmd(cmd, consumers=devices)
        returned_ms = (time.perf_counter() - t0[0]) * 1e3
        senders = [r.from_ for r in got]
        ok = sum(1 for r in got if r.content["status"].value == 200)
        sends.append(
            {
                "returned_ms": returned_ms,
                "responses": len(got),
                "distinct_devices": len(set(senders)),
                "status_200": ok,
                "arrivals_ms": list(arrivals),
            }
        )
        print(
            f"otupy {a.mode}: returned after {returned_ms:.0f} ms with {len(got)} responses",
            file=sys.stderr,
            flush=True,
        )
        time.sleep(0.5)
    transfer.client.disconnect()
    print(json.dumps({"mode": a.mode, "devices": a.devices, "timeout_s": a.timeout, "sends": sends}))


if __name__ == "__main__":
    main()
