"""oc2mqtt.otupy against REAL otupy 1.1.46: each side swapped, the wire
unchanged, and otupy's defects shown against otupy and fixed by the drop-in."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest

import oc2mqtt

from conftest import Serving
from otupy_env import JSONEncoder, MockupSlpfActuator, OtupyMQTTTransfer, OtupyRole, oc2, slpf

import oc2mqtt.otupy as dropin  # isort: skip  (needs otupy_env's light import of otupy first)

MOCKUP = slpf.Specifiers({"asset_id": "mockup"})


def query_cmd() -> Any:
    return oc2.Command(oc2.Actions.query, oc2.Features([oc2.Feature.versions, oc2.Feature.profiles]), actuator=MOCKUP)


def deny_cmd() -> Any:
    target = oc2.IPv4Connection(src_addr="10.0.0.1", protocol=oc2.L4Protocol.tcp, dst_port=443)
    return oc2.Command(oc2.Actions.deny, target, actuator=MOCKUP)


def otupy_transfer(broker: Any, role: Any, device_id: str, **kw: Any) -> Any:
    return OtupyMQTTTransfer(
        "127.0.0.1", broker.port, role=role, device_id=device_id, client_id=f"otupy-{device_id}", **kw
    )


class OtupyConsumerThread:
    """otupy's own Consumer with the mockup SLPF actuator, on any transfer."""

    def __init__(self, device_id: str, transfer: Any) -> None:
        self.transfer = transfer
        consumer = oc2.Consumer(
            device_id, {(slpf.Profile.nsid, "mockup"): MockupSlpfActuator()}, JSONEncoder(), transfer
        )
        self.thread = threading.Thread(target=consumer.run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if isinstance(self.transfer, dropin.MQTTTransfer):
            self.transfer.close()
            self.thread.join(5)
        else:
            # otupy's receive() is paho's loop_forever(): best effort, the thread is a daemon.
            self.transfer.client.disconnect()
            self.thread.join(5)


@pytest.fixture
def otupy_consumers() -> Iterator[Callable[[str, Any], OtupyConsumerThread]]:
    running: list[OtupyConsumerThread] = []

    def start(device_id: str, transfer: Any) -> OtupyConsumerThread:
        c = OtupyConsumerThread(device_id, transfer)
        running.append(c)
        time.sleep(0.3)  # otupy subscribes from its network loop, once receive() runs
        return c

    yield start
    for c in running:
        c.stop()


def statuses(responses: list[Any]) -> list[int]:
    return [r.content["status"].value for r in responses]


def test_otupy_producer_to_oc2mqtt_consumer(broker: Any, serve: Callable[..., Serving]) -> None:
    seen: list[dict[str, Any]] = []

    def handler(cmd: dict[str, Any]) -> dict[str, Any]:
        seen.append(cmd)
        return {"status": 200, "results": {"slpf": {"rule_number": 3}}}

    serve(oc2mqtt.Consumer(broker.url, "o1-fw", profiles=["slpf"]), handler)
    producer = oc2.Producer(
        "o1-p", JSONEncoder(), otupy_transfer(broker, OtupyRole.Producer, "o1-p", response_timeout=5)
    )
    responses = producer.sendcmd(deny_cmd(), consumers=["o1-fw"])
    assert statuses(responses) == [200]
    assert responses[0].from_ == "o1-fw"
    assert seen[0]["target"] == {"ipv4_connection": {"src_addr": "10.0.0.1/32", "protocol": "tcp", "dst_port": 443}}


def test_dropin_producer_to_otupy_consumer(broker: Any, otupy_consumers: Callable[..., OtupyConsumerThread]) -> None:
    otupy_consumers("o2-fw", otupy_transfer(broker, OtupyRole.Consumer, "o2-fw", profiles=["slpf"]))
    transfer = dropin.MQTTTransfer("127.0.0.1", broker.port, dropin.OpenC2Role.Producer, device_id="o2-p")
    producer = oc2.Producer("o2-p", JSONEncoder(), transfer)
    t0 = time.monotonic()
    responses = producer.sendcmd(query_cmd(), consumers=["o2-fw"])
    assert time.monotonic() - t0 < 5, "returns when the one addressed consumer answered"
    (r,) = responses
    assert isinstance(r, oc2.Message) and r.from_ == "o2-fw" and r.content["status"].value == 200
    assert dict(r.content["results"]) == {"versions": ["1.0"], "profiles": ["slpf"]}
    transfer.close()


def test_otupy_producer_to_otupy_consumer_on_the_dropin(
    broker: Any, otupy_consumers: Callable[..., OtupyConsumerThread]
) -> None:
    otupy_consumers(
        "o3-fw", dropin.MQTTTransfer("127.0.0.1", broker.port, dropin.OpenC2Role.Consumer, ["slpf"], "o3-fw")
    )
    producer = oc2.Producer(
        "o3-p", JSONEncoder(), otupy_transfer(broker, OtupyRole.Producer, "o3-p", response_timeout=5)
    )
    responses = producer.sendcmd(query_cmd(), consumers=["o3-fw"])
    assert statuses(responses) == [200] and responses[0].from_ == "o3-fw"
    # An action the mockup does not implement comes back as otupy's own 501.
    producer2 = oc2.Producer(
        "o3-q", JSONEncoder(), otupy_transfer(broker, OtupyRole.Producer, "o3-q", response_timeout=5)
    )
    assert statuses(producer2.sendcmd(deny_cmd(), consumers=["o3-fw"])) == [501]


def test_dropin_on_both_sides_accepts_otupy_roles(
    broker: Any, otupy_consumers: Callable[..., OtupyConsumerThread]
) -> None:
    otupy_consumers("o4-fw", dropin.MQTTTransfer("127.0.0.1", broker.port, OtupyRole.Consumer, ["slpf"], "o4-fw"))
    with dropin.MQTTTransfer("127.0.0.1", broker.port, OtupyRole.Producer, device_id="o4-p") as transfer:
        assert transfer.role is dropin.OpenC2Role.Producer and transfer.client_id == "oc2mqtt-producer-o4-p"
        responses = oc2.Producer("o4-p", JSONEncoder(), transfer).sendcmd(query_cmd(), consumers=["o4-fw"])
        assert statuses(responses) == [200]


def test_otupy_returns_stale_responses_and_the_dropin_does_not(broker: Any, serve: Callable[..., Serving]) -> None:
    serve(oc2mqtt.Consumer(broker.url, "o5-fw", profiles=["slpf"]), lambda c: None)

    def two_sends(transfer: Any) -> tuple[Any, Any, list[Any]]:
        producer = oc2.Producer("o5-p", JSONEncoder(), transfer)
        first = oc2.Message(deny_cmd())
        first.from_, first.to = "o5-p", ["o5-fw"]
        transfer.send(first, JSONEncoder())
        time.sleep(0.3)
        second = oc2.Message(deny_cmd())
        second.from_, second.to = "o5-p", ["o5-fw"]
        assert producer is not None
        return first, second, list(transfer.send(second, JSONEncoder()))

    first, second, got = two_sends(otupy_transfer(broker, OtupyRole.Producer, "o5-p", response_timeout=3))
    assert first.request_id in [r.request_id for r in got], "otupy hands back the first command's response again"

    transfer = dropin.MQTTTransfer("127.0.0.1", broker.port, dropin.OpenC2Role.Producer, device_id="o5-p")
    first, second, got = two_sends(transfer)
    assert [r.request_id for r in got] == [second.request_id]
    transfer.close()


def test_interim_102_does_not_end_the_dropins_wait(broker: Any) -> None:
    def device(consumer: oc2mqtt.Consumer) -> None:
        for _ in range(2):
            incoming = consumer.next(timeout=10)
            assert incoming is not None
            incoming.reply(102)
            time.sleep(1.5)  # long enough for otupy to have given up listening
            incoming.reply(200)

    with oc2mqtt.Consumer(broker.url, "o6-fw") as consumer:
        t = threading.Thread(target=device, args=(consumer,))
        t.start()
        otupy_side = otupy_transfer(broker, OtupyRole.Producer, "o6-p", response_timeout=5)
        got = oc2.Producer("o6-p", JSONEncoder(), otupy_side).sendcmd(deny_cmd(), consumers=["o6-fw"])
        assert statuses(got) == [102], "otupy stops waiting at the interim response"
        with dropin.MQTTTransfer("127.0.0.1", broker.port, dropin.OpenC2Role.Producer, device_id="o6-q") as ours:
            got = oc2.Producer("o6-q", JSONEncoder(), ours).sendcmd(deny_cmd(), consumers=["o6-fw"])
        assert statuses(got) == [102, 200]
        t.join(10)


@pytest.mark.parametrize("wire", ["otupy", "spec"])
def test_wire_dialect_is_otupys_unless_asked(broker: Any, wire: str) -> None:
    with oc2mqtt.Monitor(broker.url, "oc2/cmd/#") as monitor:
        with dropin.MQTTTransfer(
            "127.0.0.1",
            broker.port,
            dropin.OpenC2Role.Producer,
            device_id=f"o7-{wire}",
            response_timeout=0.2,
            wire=wire,
        ) as transfer:
            assert oc2.Producer(f"o7-{wire}", JSONEncoder(), transfer).sendcmd(deny_cmd(), consumers=["o7-none"]) == []
        event = monitor.next(timeout=5)
        assert event is not None and event.kind == "request" and event.dialect == wire
        assert event.topic == "oc2/cmd/device/o7-none" and event.sender == f"o7-{wire}"


def test_commands_without_mqtt_properties_are_answered(
    broker: Any, otupy_consumers: Callable[..., OtupyConsumerThread]
) -> None:
    import paho.mqtt.client as paho

    otupy_consumers(
        "o8-fw", dropin.MQTTTransfer("127.0.0.1", broker.port, dropin.OpenC2Role.Consumer, ["slpf"], "o8-fw")
    )
    got: list[bytes] = []
    arrived = threading.Event()

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        got.append(msg.payload)
        arrived.set()

    peer = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="o8-v311", protocol=paho.MQTTv311)
    peer.on_message = on_message
    peer.connect("127.0.0.1", broker.port)
    peer.subscribe("oc2/rsp", qos=1)
    peer.loop_start()
    try:
        time.sleep(0.3)
        command = {
            "content": {"request": {"action": "query", "target": {"features": ["versions"]}, "actuator": {"slpf": {}}}},
            "request_id": "v311-1",
            "from": "o8-v311",
            "to": ["o8-fw"],
        }
        peer.publish("oc2/cmd/device/o8-fw", json.dumps(command), qos=1)
        assert arrived.wait(10)
    finally:
        peer.loop_stop()
        peer.disconnect()
    answer = oc2mqtt.decode(got[0])
    assert answer.dialect == "otupy" and answer.request_id == "v311-1" and answer.status == 200


def test_mqtts_transfer_over_tls(broker: Any, serve: Callable[..., Serving]) -> None:
    serve(oc2mqtt.Consumer(oc2mqtt.ClientConfig(broker.tls_url, ca_file=broker.ca), "o9-fw"), lambda c: None)
    with dropin.MQTTSTransfer(
        "localhost", broker.tls_port, dropin.OpenC2Role.Producer, device_id="o9-p", ca_file=broker.ca
    ) as transfer:
        assert statuses(oc2.Producer("o9-p", JSONEncoder(), transfer).sendcmd(deny_cmd(), consumers=["o9-fw"])) == [200]
    with pytest.raises(oc2mqtt.TlsError):
        dropin.MQTTSTransfer(
            "localhost", broker.tls_port, dropin.OpenC2Role.Producer, device_id="o9-q", ca_file=broker.wrong_ca
        )


@pytest.fixture
def mosquitto_on_ipv6(tmp_path: Any) -> Iterator[int]:
    """A Mosquitto of this test's own, listening on ::1 only; its port."""
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        port = int(s.getsockname()[1])
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} ::1\nallow_anonymous true\npersistence false\n")
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    log = (tmp_path / "mosquitto.log").open("w")
    proc = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("::1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "mosquitto.log").read_text()
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_an_ipv6_broker_address_is_bracketed_and_reached(
    mosquitto_on_ipv6: int, otupy_consumers: Callable[..., OtupyConsumerThread]
) -> None:
    """otupy's ``f"{broker}:{port}"`` breaks on an IPv6 literal; the drop-in's URL is
    core's (``ClientConfig.broker_url``), with otupy's expiry and a stable client id."""
    port = mosquitto_on_ipv6
    otupy_consumers("o13-fw", dropin.MQTTTransfer("::1", port, dropin.OpenC2Role.Consumer, ["slpf"], "o13-fw"))
    with dropin.MQTTTransfer("::1", port, dropin.OpenC2Role.Producer, device_id="o13-p") as transfer:
        assert transfer.config.brokers == [f"mqtt://[::1]:{port}"]
        assert transfer.config.message_expiry_secs == 10
        assert transfer.client_id == "oc2mqtt-producer-o13-p"
        responses = oc2.Producer("o13-p", JSONEncoder(), transfer).sendcmd(query_cmd(), consumers=["o13-fw"])
        assert statuses(responses) == [200] and responses[0].from_ == "o13-fw"
    assert oc2mqtt._native._broker_url("fe80::1", 8883, True) == "mqtts://[fe80::1]:8883"
    assert oc2mqtt._native._broker_url("localhost", 1883) == "mqtt://localhost:1883"


def test_clean_errors_instead_of_assertions(broker: Any) -> None:
    with pytest.raises(ValueError, match="device_id: required"):
        dropin.MQTTTransfer("127.0.0.1", broker.port, dropin.OpenC2Role.Producer)
    with pytest.raises(TypeError, match=r"role: expected OpenC2Role\.Consumer or OpenC2Role\.Producer, found 'boss'"):
        dropin.MQTTTransfer("127.0.0.1", broker.port, "boss", device_id="x")
    with pytest.raises(ValueError, match="wire: expected otupy or spec, found 'flat'"):
        dropin.MQTTTransfer("127.0.0.1", broker.port, dropin.OpenC2Role.Producer, device_id="x", wire="flat")
    with dropin.MQTTTransfer("127.0.0.1", broker.port, dropin.OpenC2Role.Consumer, ["slpf"], "o10-fw") as consumer_side:
        with pytest.raises(oc2mqtt.ConfigError, match="send\\(\\) is for producers"):
            consumer_side.send(oc2.Message(deny_cmd()), JSONEncoder())
    with dropin.MQTTTransfer("127.0.0.1", broker.port, dropin.OpenC2Role.Producer, device_id="o10-p") as producer_side:
        with pytest.raises(oc2mqtt.ConfigError, match="receive\\(\\) is for consumers"):
            producer_side.receive(lambda m: None, JSONEncoder())

        class XMLEncoder:
            @staticmethod
            def getName() -> str:
                return "xml"

        # MQTT carries what core encodes; the text is core's, as in every language.
        with pytest.raises(ValueError, match="unsupported encoding 'xml'; expected json or cbor"):
            producer_side.send(oc2.Message(deny_cmd()), XMLEncoder())


def test_receive_returns_on_close(broker: Any) -> None:
    transfer = dropin.MQTTTransfer("127.0.0.1", broker.port, dropin.OpenC2Role.Consumer, ["slpf"], "o11-fw")
    c = OtupyConsumerThread("o11-fw", transfer)
    time.sleep(0.2)
    transfer.close()
    c.thread.join(10)
    assert not c.thread.is_alive(), "receive() did not return after close()"


def test_a_failing_actuator_is_answered_500_and_receiving_goes_on(broker: Any) -> None:
    def actuator(message: Any) -> Any:
        raise RuntimeError("the firewall is unreachable")

    transfer = dropin.MQTTTransfer("127.0.0.1", broker.port, dropin.OpenC2Role.Consumer, ["slpf"], "o12-fw")
    t = threading.Thread(target=transfer.receive, args=(actuator, JSONEncoder()), daemon=True)
    t.start()
    try:
        with oc2mqtt.Producer(broker.url, "o12-p") as p:
            for _ in range(2):
                (r,) = p.send({"action": "deny", "target": {"ipv4_net": "10.0.0.0/8"}}, to="o12-fw", timeout=5)
                assert (r.status, r.status_text) == (500, "the firewall is unreachable")
    finally:
        transfer.close()
        t.join(10)


def test_registered_in_otupys_transfers() -> None:
    assert oc2.Transfers["oc2mqtt"] is dropin.MQTTTransfer
    assert oc2.Transfers["oc2mqtts"] is dropin.MQTTSTransfer
    assert issubclass(dropin.MQTTTransfer, oc2.Transfer)


def run_without_otupy(code: str) -> subprocess.CompletedProcess[str]:
    """`code` in a fresh interpreter where `import otupy` fails, as without the extra."""
    script = "import sys\nsys.modules['otupy'] = None\n" + code
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)


def test_without_otupy_the_dropin_says_which_extra_to_install() -> None:
    out = run_without_otupy(
        "try:\n    import oc2mqtt.otupy\nexcept ImportError as e:\n    print(e)\nelse:\n    print('imported')\n"
    )
    assert (out.returncode, out.stdout.strip()) == (0, "oc2mqtt.otupy needs otupy: pip install 'oc2mqtt[otupy]'"), (
        out.stderr
    )
    # The rest of the package does not need otupy.
    out = run_without_otupy("import oc2mqtt\nprint(oc2mqtt.decode(b'{\"status\": 200}').msg_type)\n")
    assert (out.returncode, out.stdout.strip()) == (0, "response"), out.stderr
