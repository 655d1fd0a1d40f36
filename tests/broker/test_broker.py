"""Tests of tests/broker/broker.py: every kind it starts, checked from outside
with mosquitto_pub/mosquitto_sub (-V mqttv311) and a raw MQTT socket.

Each real broker is started once per module (RabbitMQ takes ~3.5 s, ActiveMQ
~1 s). Run with: python3 -m pytest tests/broker/test_broker.py
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import broker

BROKER_PY = str(Path(__file__).resolve().parent / "broker.py")
REAL = ["mosquitto", "rabbitmq", "activemq"]
USERS = ["alice:apw", "bob:bpw"]
DENY = ["bob:read:secret/#", "bob:write:locked/t"]

# What each broker does when it refuses (observed; see broker.py's docstring).
REFUSED_SUBSCRIBE = {"mosquitto": "SUBACK 0x80", "rabbitmq": "closed", "activemq": "SUBACK 0x80"}
REFUSED_PUBLISH = {"mosquitto": "PUBACK", "rabbitmq": "closed", "activemq": "PUBACK"}
# A subscription to '#' by a user denied reading secret/#: (SUBACK, gets secret/z?)
OVERLAP = {"mosquitto": ("SUBACK 0x01", False), "rabbitmq": ("SUBACK 0x01", True),
           "activemq": ("SUBACK 0x01", True)}
# A 3.1.1 SUBSCRIBE to $share/g/share/t: (SUBACK, does a publish to share/t come through it?)
SHARED = {"mosquitto": ("SUBACK 0x01", True), "rabbitmq": ("SUBACK 0x01", False),
          "activemq": ("SUBACK 0x01", False)}
# 0x01: the 3.1.1 "unacceptable protocol version" CONNACK
V5_CONNECT = {"mosquitto": "CONNACK 0x00", "rabbitmq": "closed", "activemq": "CONNACK 0x01, closed"}


def _installed(kind: str) -> bool:
    return {"mosquitto": os.path.exists(broker.MOSQUITTO),
            "rabbitmq": os.path.exists(broker.RABBITMQ_SERVER),
            "activemq": os.path.exists(broker.ACTIVEMQ_JAR)}[kind]


def _need(kind: str) -> None:
    # make setup installs every broker: one missing is a failure, not a skip.
    if not _installed(kind):
        pytest.fail(f"{kind} is not installed: run make setup (scripts/setup.sh)")


# ---------------------------------------------------------------------------
# a raw MQTT client, to see exactly what a broker answers

def _s(b: bytes) -> bytes:
    return struct.pack("!H", len(b)) + b


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + broker._varint(len(body)) + body


class Raw:
    def __init__(self, port: int, user: str | None = None, password: str | None = None, *, level: int = 4,
                 client_id: str | None = None, clean: bool = True, sock: socket.socket | None = None):
        self.sock = sock or socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.settimeout(5)
        self.buf = bytearray()
        self.pending: list[bytes] = []  # PUBLISHes read while waiting for an ack
        self.level = level
        flags = 0x02 if clean else 0x00
        payload = _s((client_id or f"raw-{os.getpid()}-{time.monotonic_ns()}").encode())
        if user is not None:
            flags |= 0x80
            payload += _s(user.encode())
        if password is not None:
            flags |= 0x40
            payload += _s(password.encode())
        props = b"\x00" if level == 5 else b""
        self.sock.sendall(_packet(0x10, _s(b"MQTT") + bytes([level, flags]) + struct.pack("!H", 30) + props
                                  + payload))

    def read(self, timeout: float = 5.0) -> bytes | None:
        """One whole packet; None when the broker closed the connection."""
        self.sock.settimeout(timeout)
        while True:
            try:
                packet = broker._split_packet(self.buf)
            except ValueError:
                return None
            if packet is not None:
                return packet
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            if not data:
                return None
            self.buf += data

    def connack(self) -> str:
        p = self.read()
        if p is None:
            return "closed"
        assert p[0] == 0x20, p.hex()
        return f"CONNACK 0x{p[3]:02x}"

    def subscribe(self, topic: str, qos: int = 1, pid: int = 1, options: int = 0) -> str:
        props = b"\x00" if self.level == 5 else b""
        self.sock.sendall(_packet(0x82, struct.pack("!H", pid) + props + _s(topic.encode()) + bytes([qos | options])))
        return self._ack(0x90, pid)

    def publish(self, topic: str, payload: bytes, qos: int = 1, pid: int = 2, retain: bool = False) -> str:
        props = b"\x00" if self.level == 5 else b""
        body = _s(topic.encode()) + (struct.pack("!H", pid) if qos else b"") + props + payload
        self.sock.sendall(_packet(0x30 | (qos << 1) | int(retain), body))
        return self._ack(0x40, pid) if qos else "sent"

    def _ack(self, first: int, pid: int, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                p = self.read(max(0.01, deadline - time.monotonic()))
            except socket.timeout:
                return "timeout"
            if p is None:
                return "closed"
            if p[0] == first and struct.unpack_from("!H", p, 2)[0] == pid:
                if first == 0x90:
                    return f"SUBACK 0x{p[-1]:02x}"
                return "PUBACK"
            if p[0] >> 4 == 3:  # a PUBLISH meanwhile: keep it for messages()
                self.pending.append(p)

    def messages(self, timeout: float, count: int | None = None) -> list[tuple[str, bytes]]:
        """PUBLISHes received within timeout, or the first count of them (acknowledging QoS 1)."""
        out, deadline = [], time.monotonic() + timeout
        queue, self.pending = self.pending, []
        while count is None or len(out) < count:
            if queue:
                p = queue.pop(0)
            else:
                try:
                    p = self.read(max(0.01, deadline - time.monotonic()))
                except socket.timeout:
                    return out
                if p is None:
                    return out
            if p[0] >> 4 != 3:
                continue
            r = broker._Reader(p)
            r.byte()
            r.varint()
            topic = r.str()
            if (p[0] >> 1) & 3:
                pid = r.u16()
                self.sock.sendall(_packet(0x40, struct.pack("!H", pid)))
            if self.level == 5:
                r.props()
            out.append((topic, r.rest()))
        return out

    def close(self) -> None:
        try:
            self.sock.sendall(b"\xe0\x00")
        except OSError:
            pass
        self.sock.close()


def raw(port: int, user: str | None = None, password: str | None = None, **kw) -> Raw:
    c = Raw(port, user, password, **kw)
    ack = c.connack()
    assert ack == "CONNACK 0x00", ack
    return c


# ---------------------------------------------------------------------------
# mosquitto_pub / mosquitto_sub

def sub_start(port: int, topic: str, *extra: str, count: int = 1, version: str = "mqttv311",
              wait: float = 10) -> subprocess.Popen:
    """mosquitto_sub, returned once its SUBACK came."""
    # stdbuf: mosquitto_sub's stdout is block-buffered on a pipe, and we wait for its SUBACK line.
    p = subprocess.Popen(["stdbuf", "-oL", "mosquitto_sub", "-V", version, "-p", str(port), "-t", topic,
                          "-C", str(count), "-W", str(int(wait)), "-d", "-v", *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in p.stdout:
        lines.append(line)
        if "received SUBACK" in line:
            return p
    p.wait()
    raise AssertionError("mosquitto_sub got no SUBACK:\n" + "".join(lines))


def sub_result(p: subprocess.Popen) -> list[str]:
    p.wait(timeout=15)
    out = p.stdout.read()  # (communicate() with a timeout would skip what the line reader buffered)
    p.stdout.close()
    return [line for line in out.splitlines() if line and not line.startswith(("Client ", "Subscribed"))]


def pub(port: int, topic: str, message: str, *extra: str, version: str = "mqttv311") -> subprocess.CompletedProcess:
    return subprocess.run(["mosquitto_pub", "-V", version, "-p", str(port), "-t", topic, "-m", message, "-q", "1",
                           *extra], capture_output=True, text=True, timeout=15)


def roundtrip(port: int, topic: str, *auth: str, tls: tuple[str, ...] = ()) -> None:
    s = sub_start(port, topic, *auth, *tls)
    r = pub(port, topic, f"hello {topic}", *auth, *tls)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sub_result(s) == [f"{topic} hello {topic}"]


# ---------------------------------------------------------------------------
# fixtures: each real broker twice (open + persistent; secured + TLS + deny), once per module

@pytest.fixture(scope="module", params=REAL)
def kind(request):
    _need(request.param)
    return request.param


@pytest.fixture(scope="module")
def open_broker(kind, tmp_path_factory):
    """Anonymous, persistent."""
    t0 = time.monotonic()
    with broker.Broker(tmp_path_factory.mktemp(f"{kind}-open"), kind=kind, persistence=True) as b:
        b.start_seconds = time.monotonic() - t0
        yield b


@pytest.fixture(scope="module")
def secured_broker(kind, tmp_path_factory):
    """--user alice/bob, --deny for bob, --tls."""
    with broker.Broker(tmp_path_factory.mktemp(f"{kind}-secured"), kind=kind, users=USERS, deny=DENY,
                       tls=True) as b:
        yield b


# ---------------------------------------------------------------------------
# real brokers

def test_anonymous_roundtrip(open_broker):
    print(f"{open_broker.kind} started in {open_broker.start_seconds:.2f}s")
    roundtrip(open_broker.port, "oc2/anon/t")


def test_json_line_keys(open_broker, secured_broker):
    for b in (open_broker, secured_broker):
        for key in ("kind", "pid", "port", "tls_port", "ws_port", "dir", "log", "conf"):
            assert key in b.info, key
        assert Path(b.log).exists()
    assert secured_broker.tls_port and Path(secured_broker.ca).exists()
    assert open_broker.tls_port is None


def test_shared_subscriptions(open_broker):
    """$share/<group>/<filter>: a shared subscription on Mosquitto; RabbitMQ and
    ActiveMQ grant it but deliver nothing published to the filter."""
    kind, port = open_broker.kind, open_broker.port
    member = raw(port)
    answer = member.subscribe("$share/g/share/t")
    time.sleep(0.2)
    p = raw(port)
    assert p.publish("share/t", b"shared") == "PUBACK"
    got = member.messages(1, count=1)
    print(f"{kind}: SUBSCRIBE $share/g/share/t -> {answer}, gets share/t: {bool(got)}")
    assert (answer, bool(got)) == SHARED[kind]
    member.close()
    p.close()


def test_password_user(secured_broker):
    port = secured_broker.port
    roundtrip(port, "oc2/pw/t", "-u", "alice", "-P", "apw")
    bad = pub(port, "oc2/pw/t", "x", "-u", "alice", "-P", "wrong")
    assert bad.returncode != 0
    anon = pub(port, "oc2/pw/t", "x")
    assert anon.returncode != 0
    c = Raw(port, "alice", "wrong")
    assert c.connack() in ("CONNACK 0x04", "CONNACK 0x05", "closed")
    c.close()


def test_deny_read(secured_broker):
    """bob may not read secret/#: the refusal is what the broker does natively."""
    kind, port = secured_broker.kind, secured_broker.port
    bob = raw(port, "bob", "bpw")
    answer = bob.subscribe("secret/x")
    print(f"{kind}: refused SUBSCRIBE -> {answer}")
    assert answer == REFUSED_SUBSCRIBE[kind]
    alice = raw(port, "alice", "apw")
    assert alice.publish("secret/x", b"hidden") == "PUBACK"
    assert bob.messages(0.5) == []
    bob.close()
    # Everything else stays allowed for bob, and alice may read secret/#.
    bob = raw(port, "bob", "bpw")
    assert bob.subscribe("open/x") == "SUBACK 0x01"
    assert alice.subscribe("secret/#") == "SUBACK 0x01"
    time.sleep(0.2)
    assert alice.publish("open/x", b"seen") == "PUBACK"
    assert bob.messages(3, count=1) == [("open/x", b"seen")]
    # A filter that merely overlaps the denied topics.
    wide = raw(port, "bob", "bpw")
    answer = wide.subscribe("#")
    time.sleep(0.2)
    assert alice.publish("secret/z", b"overlap") == "PUBACK"
    got = wide.messages(1, count=1)
    print(f"{kind}: bob subscribing to '#' -> {answer}, gets secret/z: {bool(got)}")
    assert (answer, bool(got)) == OVERLAP[kind]
    wide.close()
    # mosquitto_sub as bob on a denied topic does not get its message either.
    s = subprocess.run(["mosquitto_sub", "-V", "mqttv311", "-p", str(port), "-u", "bob", "-P", "bpw",
                        "-t", "secret/y", "-C", "1", "-W", "1"], capture_output=True, text=True, timeout=15)
    assert s.stdout == ""
    bob.close()
    alice.close()


def test_deny_write(secured_broker):
    kind, port = secured_broker.kind, secured_broker.port
    alice = raw(port, "alice", "apw")
    assert alice.subscribe("locked/t") == "SUBACK 0x01"
    assert alice.subscribe("bob/out") == "SUBACK 0x01", "second subscription"
    time.sleep(0.2)
    bob = raw(port, "bob", "bpw")
    answer = bob.publish("locked/t", b"forbidden")
    print(f"{kind}: refused PUBLISH -> {answer}")
    assert answer == REFUSED_PUBLISH[kind]
    bob.close()
    bob = raw(port, "bob", "bpw")
    assert bob.publish("bob/out", b"allowed") == "PUBACK"
    # bob may read locked/t (only writing is denied)
    assert bob.subscribe("locked/t") == "SUBACK 0x01"
    # (the refused message would have come first)
    assert alice.messages(3, count=1) == [("bob/out", b"allowed")]
    r = pub(port, "locked/t", "via mosquitto_pub", "-u", "bob", "-P", "bpw")
    print(f"{kind}: mosquitto_pub of a refused PUBLISH exits {r.returncode}: {r.stderr.strip()}")
    assert alice.messages(0.5) == []
    bob.close()
    alice.close()


@pytest.mark.parametrize("kind", ["rabbitmq"], indirect=True)
def test_rabbitmqctl(secured_broker):
    t0 = time.monotonic()
    users = broker.rabbitmqctl(secured_broker.info, "list_users", "--quiet").stdout
    print(f"rabbitmqctl list_users took {time.monotonic() - t0:.2f}s")
    assert "alice" in users and "bob" in users and "guest" not in users
    perms = broker.rabbitmqctl(secured_broker.info, "list_topic_permissions", "--quiet").stdout
    assert "bob" in perms and "amq.topic" in perms


def test_tls(secured_broker):
    b = secured_broker
    tls = ("--cafile", b.ca, "-h", "localhost", "-p", str(b.tls_port))
    s = subprocess.Popen(["stdbuf", "-oL", "mosquitto_sub", "-V", "mqttv311", *tls, "-u", "alice", "-P", "apw",
                          "-t", "oc2/tls", "-C", "1", "-W", "10", "-d"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in s.stdout:
        if "received SUBACK" in line:
            break
    r = subprocess.run(["mosquitto_pub", "-V", "mqttv311", *tls, "-u", "alice", "-P", "apw", "-t", "oc2/tls",
                        "-m", "over tls", "-q", "1"], capture_output=True, text=True, timeout=15)
    assert r.returncode == 0, r.stderr
    s.wait(timeout=15)
    assert "over tls" in s.stdout.read()
    s.stdout.close()
    # The wrong CA is refused.
    bad = subprocess.run(["mosquitto_pub", "-V", "mqttv311", "--cafile", b.wrong_ca, "-h", "localhost", "-p",
                          str(b.tls_port), "-u", "alice", "-P", "apw", "-t", "oc2/tls", "-m", "x"],
                         capture_output=True, text=True, timeout=15)
    assert bad.returncode != 0


def test_v5_connect(open_broker):
    c = Raw(open_broker.port, level=5)
    answer = c.connack()
    if answer != "closed" and answer != "CONNACK 0x00":
        answer += ", closed" if c.read(2) is None else ", open"
    print(f"{open_broker.kind}: MQTT 5 CONNECT -> {answer}")
    assert answer == V5_CONNECT[open_broker.kind]
    c.close()


def test_websocket(open_broker):
    if open_broker.kind == "activemq":
        assert open_broker.ws_port is None
        with pytest.raises(ValueError):
            broker.start(Path(open_broker.dir) / "ws", kind="activemq", ws=True)
        return
    if open_broker.kind == "mosquitto":
        # ws is opt-in for Mosquitto
        assert open_broker.ws_port is None
        b = broker.Broker(Path(open_broker.dir) / "ws", ws=True)
        b.__enter__()
        try:
            _ws_connect(b.ws_port, "/mqtt")
        finally:
            b.stop()
        return
    _ws_connect(open_broker.ws_port, "/ws")


def _ws_connect(port: int, path: str) -> None:
    """WebSocket handshake (subprotocol mqtt), then an MQTT CONNECT in a frame → CONNACK."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n")
              .encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    rest = head.split(b"\r\n\r\n", 1)[1]
    connect = _packet(0x10, _s(b"MQTT") + bytes([4, 2]) + struct.pack("!H", 30) + _s(b"ws-client"))
    mask = os.urandom(4)
    s.sendall(bytes([0x82, 0x80 | len(connect)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(connect)))
    data = rest
    while len(data) < 6:
        chunk = s.recv(4096)
        assert chunk, data
        data += chunk
    assert data[0] == 0x82 and data[2:6] == b"\x20\x02\x00\x00", data.hex()
    s.close()


def test_restart_keeps_ports_and_data(open_broker):
    """--persistence: a persistent session's queued QoS 1 message (and, but on ActiveMQ,
    whose retained messages live in memory only, a retained message) survive a restart
    on the same ports."""
    b = open_broker
    keeper = raw(b.port, client_id="oc2-keeper", clean=False)
    assert keeper.subscribe("oc2/queued") == "SUBACK 0x01"
    keeper.close()
    c = raw(b.port)
    assert c.publish("oc2/keep", b"retained", retain=True) == "PUBACK"
    assert c.publish("oc2/queued", b"queued") == "PUBACK"
    c.close()
    time.sleep(1.2 if b.kind == "mosquitto" else 0.2)  # Mosquitto's autosave_interval is 1 s
    before = dict(b.info)
    t0 = time.monotonic()
    b.restart()
    print(f"{b.kind} restarted in {time.monotonic() - t0:.2f}s")
    assert (b.port, b.tls_port, b.ws_port) == (before["port"], before["tls_port"], before["ws_port"])
    assert b.pid != before["pid"]
    assert not broker._alive(before["pid"])
    if b.kind == "rabbitmq":
        assert not broker._alive(before["epmd_pid"]), "its epmd is stopped with it"
        assert broker._alive(b.epmd_pid)
    keeper = raw(b.port, client_id="oc2-keeper", clean=False)
    assert keeper.messages(5, count=1) == [("oc2/queued", b"queued")]
    keeper.close()
    c = raw(b.port)
    assert c.subscribe("oc2/keep") == "SUBACK 0x01"
    retained = c.messages(1 if b.kind == "activemq" else 5, count=1)
    assert retained == ([] if b.kind == "activemq" else [("oc2/keep", b"retained")])
    c.close()


def test_stop_by_pid_cli(open_broker, tmp_path):
    """The command line of the other languages: start prints one JSON line, stop --pid ends it all."""
    out = subprocess.run([sys.executable, BROKER_PY, "start", "--dir", str(tmp_path), "--kind", open_broker.kind],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["kind"] == open_broker.kind
    roundtrip(info["port"], "oc2/cli")
    extra = [info["epmd_pid"]] if open_broker.kind == "rabbitmq" else []
    children = [pid for pid, _ in broker._descendants(info["pid"])]  # e.g. erl_child_setup
    if open_broker.kind == "rabbitmq":
        assert children
    subprocess.run([sys.executable, BROKER_PY, "stop", "--pid", str(info["pid"])], check=True, timeout=60)
    for pid in [info["pid"], *extra, *children]:
        assert not broker._alive(pid)
    assert not broker._listening(info["port"])


# ---------------------------------------------------------------------------
# a RabbitMQ cluster

def _running_nodes(c: broker.Cluster, i: int) -> list[str]:
    return sorted(json.loads(c.rabbitmqctl(i, "cluster_status", "--formatter", "json").stdout)["running_nodes"])


def test_rabbitmq_cluster(tmp_path):
    """--cluster 2: one cluster (cluster_status lists both nodes), a message published
    on node 1 reaches a subscriber on node 2; a node killed alone leaves the other
    serving, and started again (start-node) rejoins on its ports."""
    _need("rabbitmq")
    t0 = time.monotonic()
    with broker.Cluster(tmp_path, size=2) as c:
        print(f"2-node cluster started in {time.monotonic() - t0:.2f}s")
        names = ["oc2c1@localhost", "oc2c2@localhost"]
        assert [n["node"] for n in c.nodes] == names
        assert len({n["port"] for n in c.nodes}) == 2 and c.nodes[0]["epmd_port"] == c.nodes[1]["epmd_port"]
        assert _running_nodes(c, 1) == names
        s = sub_start(c.nodes[1]["port"], "oc2/cluster/t")
        r = pub(c.nodes[0]["port"], "oc2/cluster/t", "across")
        assert r.returncode == 0, r.stdout + r.stderr
        assert sub_result(s) == ["oc2/cluster/t across"]

        before = dict(c.nodes[1])
        c.stop_node(1, kill=True)
        assert not broker._alive(before["pid"])
        assert broker._alive(c.nodes[0]["pid"]) and broker._alive(c.info["epmd_pid"])
        roundtrip(c.nodes[0]["port"], "oc2/cluster/alone")
        out = subprocess.run([sys.executable, BROKER_PY, "start-node", "--dir", str(tmp_path), "--index", "2"],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        again = json.loads(out.stdout)
        assert again["pid"] != before["pid"] and again["port"] == before["port"]
        c.nodes[1] = again
        assert _running_nodes(c, 0) == names
        s = sub_start(c.nodes[0]["port"], "oc2/cluster/back")
        assert pub(c.nodes[1]["port"], "oc2/cluster/back", "rejoined").returncode == 0
        assert sub_result(s) == ["oc2/cluster/back rejoined"]
        pids = [n["pid"] for n in c.nodes] + [c.info["epmd_pid"]]
    assert not any(broker._alive(p) for p in pids), "stop ends every node and the cluster's epmd"


def test_rabbitmq_cluster_bad_options(tmp_path):
    for bad in ({"cluster": 1}, {"cluster": 2, "tls": True}, {"cluster": 2, "queues": "sharded"},
                {"cluster": 2, "kind": "mosquitto"}):
        with pytest.raises(ValueError) as e:
            broker.start(tmp_path, **{"kind": "rabbitmq", **bad})
        assert "--cluster" in str(e.value) or "--queues" in str(e.value), e.value
    out = subprocess.run([sys.executable, BROKER_PY, "start-node", "--dir", str(tmp_path), "--index", "1"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and "cluster.json" in out.stderr and out.stdout == ""


# ---------------------------------------------------------------------------
# options that are not per kind

def test_mosquitto_ciphers(tmp_path):
    _need("mosquitto")
    with broker.Broker(tmp_path, tls=True, tls_version="tlsv1.2", ciphers="AES128-SHA") as b:
        ctx = ssl.create_default_context(cafile=b.ca)
        ctx.set_ciphers("AES128-SHA:@SECLEVEL=0")
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection(("127.0.0.1", b.tls_port), timeout=5) as s:
            with ctx.wrap_socket(s, server_hostname="localhost") as t:
                assert t.cipher()[0] == "AES128-SHA"
        other = ssl.create_default_context(cafile=b.ca)
        other.set_ciphers("ECDHE-RSA-AES256-GCM-SHA384")
        other.maximum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection(("127.0.0.1", b.tls_port), timeout=5) as s:
            with pytest.raises(ssl.SSLError):
                other.wrap_socket(s, server_hostname="localhost")
        r = subprocess.run(["mosquitto_pub", "-V", "mqttv311", "--cafile", b.ca, "-h", "localhost", "-p",
                            str(b.tls_port), "--tls-version", "tlsv1.2", "--ciphers", "AES128-SHA", "-t", "c",
                            "-m", "x"], capture_output=True, text=True, timeout=15)
        assert r.returncode == 0, r.stderr


def test_mosquitto_dynsec(tmp_path):
    """--dynsec: only the admin client exists, which may publish to the
    plugin's topics only; clients and roles come from mosquitto_ctrl; a role given to
    or taken from a connected client closes its connection; a restart keeps them."""
    _need("mosquitto")
    with broker.Broker(tmp_path, dynsec=True) as b:
        assert b.admin_user == "admin" and len(b.admin_password) >= 16
        # The admin may read everything, but publish only to the plugin's topics.
        admin = raw(b.port, b.admin_user, b.admin_password)
        assert admin.subscribe("a/t") == "SUBACK 0x01"
        assert admin.publish("a/t", b"x") == "PUBACK"  # 3.1.1: dropped, still acknowledged
        assert admin.messages(0.5) == []
        admin.close()
        for args in (("createClient", "carol", "-p", "cpw"), ("createRole", "reader"),
                     ("addRoleACL", "reader", "subscribeLiteral", "a/t", "allow"),
                     ("addRoleACL", "reader", "publishClientSend", "a/t", "allow")):
            r = broker.mosquitto_ctrl(b.info, *args)
            assert "Error" not in r.stdout + r.stderr, r.stderr
        # mosquitto_ctrl exits 0 even when the plugin refuses: read what it says.
        r = broker.mosquitto_ctrl(b.info, "createRole", "reader")
        assert r.returncode == 0 and "createRole: Error: Role already exists" in r.stderr, r.stderr
        carol = raw(b.port, "carol", "cpw")
        assert carol.subscribe("a/t") == "SUBACK 0x80"  # no role yet: the defaults deny
        broker.mosquitto_ctrl(b.info, "addClientRole", "carol", "reader")
        assert carol.read(3) is None, "a role change closes carol's connection, even one that adds"
        carol = raw(b.port, "carol", "cpw")
        assert carol.subscribe("a/t") == "SUBACK 0x01"
        assert carol.publish("a/t", b"mine") == "PUBACK"
        assert carol.messages(3, count=1) == [("a/t", b"mine")]
        broker.mosquitto_ctrl(b.info, "removeClientRole", "carol", "reader")
        assert carol.read(3) is None, "the role change closes carol's connection"
        c = Raw(b.port, "carol", "wrong")
        assert c.connack() == "CONNACK 0x05"
        c.close()
        broker.mosquitto_ctrl(b.info, "addClientRole", "carol", "reader")
        password = b.admin_password
        b.restart()
        assert b.admin_password == password
        carol = raw(b.port, "carol", "cpw")
        assert carol.subscribe("a/t") == "SUBACK 0x01"
        carol.close()
    for bad in ({"users": ["x:y"]}, {"kind": "rabbitmq"}):
        with pytest.raises(ValueError, match="--dynsec"):
            broker.start(tmp_path / "bad", dynsec=True, **bad)


def test_start_failure_shows_the_log(tmp_path):
    """A broker that does not come up: start fails with the tail of its log, leaves nothing running."""
    _need("rabbitmq")
    with pytest.raises(RuntimeError) as e:
        broker.start(tmp_path, kind="rabbitmq", tls=True, tls_version="tlsv9")
    assert "rabbitmq exited" in str(e.value) and "tlsv9" in str(e.value)
    # Its processes (epmd, beam) ran in tmp_path: none is left.
    left = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd").startswith(str(tmp_path)) and broker._alive(int(entry)):
                    left.append(entry)
            except OSError:
                pass
    assert left == []


def test_bad_options(tmp_path):
    with pytest.raises(ValueError):
        broker.start(tmp_path, kind="rabbitmq", acl=["topic read #"])
    with pytest.raises(ValueError):
        broker.start(tmp_path, users=["a:b"], deny=["carol:read:x"])
    with pytest.raises(ValueError):
        broker.start(tmp_path, users=["a:b"], deny=["a:delete:x"])
    with pytest.raises(ValueError):
        broker.start(tmp_path, kind="recorder")
    out = subprocess.run([sys.executable, BROKER_PY, "start", "--dir", str(tmp_path), "--kind", "v311-proxy"],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "--upstream" in out.stderr and out.stdout == ""


# ---------------------------------------------------------------------------
# fake servers

@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    _need("mosquitto")
    with broker.Broker(tmp_path_factory.mktemp("upstream")) as b:
        yield b


def test_v311_proxy(upstream, tmp_path):
    with broker.Broker(tmp_path, kind="v311-proxy", upstream=upstream.port) as p:
        assert p.upstream == upstream.port and p.port != upstream.port
        roundtrip(p.port, "oc2/proxy")
        c = Raw(p.port, level=5)
        assert c.connack() == "closed"
        c.close()
        r = pub(p.port, "oc2/proxy", "x", version="mqttv5")
        assert r.returncode != 0
        c = raw(p.port)  # 3.1.1 still goes through
        c.close()


def test_recorder(upstream, tmp_path):
    with broker.Broker(tmp_path, kind="recorder", upstream=upstream.port) as rec:
        s = sub_start(rec.port, "oc2/rec/#", "-q", "1", "-c", "-i", "rec-sub", "-x", "600",
                      "-D", "SUBSCRIBE", "user-property", "k", "v", version="mqttv5")
        r = pub(rec.port, "oc2/rec/a", "payload", "-r")
        assert r.returncode == 0, r.stderr
        assert sub_result(s) == ["oc2/rec/a payload"]
        c = Raw(rec.port, level=5, client_id="rec-raw")
        assert c.connack() == "CONNACK 0x00"
        # no local, retain as published, retain handling 2
        assert c.subscribe("oc2/rec/opts", qos=2, options=0x04 | 0x08 | 0x20).startswith("SUBACK")
        c.close()
        time.sleep(0.2)
        packets = [json.loads(line) for line in Path(rec.packets).read_text().splitlines()]
    connects = [p for p in packets if p["type"] == "CONNECT"]
    v5 = next(p for p in connects if p["client_id"] == "rec-sub")
    assert v5["protocol_level"] == 5 and v5["clean_start"] is False
    assert v5["properties"]["17"] == 600
    assert v5["keep_alive"] == 60 and not v5["will_flag"] and not v5["username_flag"]
    assert not v5["password_flag"]
    v311 = next(p for p in connects if p["protocol_level"] == 4)
    assert v311["clean_start"] is True and "properties" not in v311
    subs = [p for p in packets if p["type"] == "SUBSCRIBE"]
    assert subs[0]["subscriptions"] == [{"filter": "oc2/rec/#", "max_qos": 1, "no_local": False,
                                         "retain_as_published": False, "retain_handling": 0}]
    assert subs[0]["properties"] == {"38": [["k", "v"]]}
    assert subs[1]["subscriptions"] == [{"filter": "oc2/rec/opts", "max_qos": 2, "no_local": True,
                                         "retain_as_published": True, "retain_handling": 2}]
    pub_ = next(p for p in packets if p["type"] == "PUBLISH")
    assert (pub_["topic"], pub_["qos"], pub_["retain"], pub_["dup"]) == ("oc2/rec/a", 1, True, False)
    assert bytes.fromhex(pub_["hex"]).endswith(b"payload")
    assert all(isinstance(p["t"], float) for p in packets)
    assert [p["t"] for p in packets] == sorted(p["t"] for p in packets)
    assert {"PUBACK", "DISCONNECT"} <= {p["type"] for p in packets}


def test_silent(tmp_path):
    with broker.Broker(tmp_path, kind="silent") as b:
        c = Raw(b.port)
        with pytest.raises(socket.timeout):
            c.read(1.0)
        c.close()


def test_http(tmp_path):
    with broker.Broker(tmp_path, kind="http") as b:
        s = socket.create_connection(("127.0.0.1", b.port), timeout=5)
        s.sendall(_packet(0x10, _s(b"MQTT") + bytes([4, 2]) + struct.pack("!H", 30) + _s(b"x")))
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        s.close()


def test_fake_cli(tmp_path):
    out = subprocess.run([sys.executable, BROKER_PY, "start", "--dir", str(tmp_path), "--kind", "silent"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["kind"] == "silent" and broker._listening(info["port"])
    subprocess.run([sys.executable, BROKER_PY, "stop", "--pid", str(info["pid"])], check=True, timeout=30)
    assert not broker._alive(info["pid"])
    assert not broker._listening(info["port"])


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v", *sys.argv[1:]]))
