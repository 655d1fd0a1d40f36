#!/usr/bin/env python3
"""Throwaway MQTT brokers (and fake servers) for tests, shared by every language.

Each broker gets its own directory, a generated config, free ports on
127.0.0.1, and is stopped by PID, never by name. It never touches the
machine's own services (Mosquitto on 1883, RabbitMQ on 5672/25672 with epmd
on 4369, ...).

Command line (used by the Rust, C and Node tests and by ``make demo``)::

    broker.py start --dir DIR [--kind KIND] [--tls] [--tls-version tlsv1.2]
                    [--ciphers STRING] [--require-cert] [--user NAME:PASSWORD]...
                    [--deny USER:read|write:TOPIC]... [--acl LINE]... [--persistence]
                    [--port N] [--tls-port N] [--ws] [--ws-port N] [--upstream PORT] [--dynsec]
        prints one JSON line:
          {"kind", "pid", "port", "tls_port", "ws_port", "dir", "log", "conf",
           "ca", "wrong_ca", "server_cert", "server_key", "client_cert", "client_key"  (with --tls),
           "upstream" (proxies), "packets" (recorder), "admin_user", "admin_password" (--dynsec),
           "amqp_port", "dist_port", "epmd_port", "epmd_pid", "node", "env" (rabbitmq)}
    broker.py start --dir DIR --kind rabbitmq --cluster N [--queues classic|mirrored|quorum]
                    [--user NAME:PASSWORD]... [--deny USER:read|write:TOPIC]...
        a RabbitMQ cluster of N nodes; prints one JSON line:
          {"kind", "cluster", "queues", "pid" (= "epmd_pid": stop it to stop the whole cluster),
           "epmd_port", "dir", "port" (node 1's), "nodes": [one rabbitmq line per node, plus "index"]}
    broker.py start-node --dir DIR --index I
                                  (node I, 1-based, of the cluster in DIR again, after it was
                                  stopped or killed: same name, ports, data; prints its line)
    broker.py stop --pid PID      (the "pid" printed by start; also ends what that broker left behind)
    broker.py certs --dir DIR     (only generate the certificates)
    broker.py prepare [--kind rabbitmq|activemq]
                                  (build the cached RabbitMQ node template / ActiveMQ plugin ahead)
    broker.py serve-fake ...      (internal: the process behind the fake kinds)

Kinds (``--kind``, default ``mosquitto``):

``mosquitto``
    Mosquitto 2.0 (``set_tcp_nodelay true``, ``user root`` when root).
    ``--ws`` with ``--tls`` also opens a websockets listener over TLS
    (``wss_port``). ``--acl LINE`` writes raw acl_file lines. ``--ciphers`` sets ``ciphers``
    of the TLS listener (TLS <= 1.2, e.g. ``--tls-version tlsv1.2 --ciphers
    AES128-SHA``). ``--ws`` adds a websockets listener (``ws_port``).
    ``--deny`` uses the dynamic-security plugin (``dynamic-security.json``,
    everything allowed by default, per-user deny ACLs).
    ``--dynsec`` runs the dynamic-security plugin as operators set it up:
    ``mosquitto_ctrl dynsec init`` writes ``dynamic-security.json`` with one
    client, ``admin`` (rights on ``$CONTROL/dynamic-security/#`` only), and
    Mosquitto's defaults (publishing and subscribing denied unless a role
    allows them); clients and roles are then made with ``mosquitto_ctrl -h
    127.0.0.1 -p PORT -u admin -P PASSWORD dynsec createClient/createRole/
    addRoleACL/addClientRole ...`` against the running broker. Prints
    ``admin_user`` and ``admin_password`` (kept in DIR/dynsec-admin, so a
    restart keeps the clients, roles and password). Not with --user, --deny
    or --acl. Observed with Mosquitto 2.0.11: ``mosquitto_ctrl`` exits 0
    even when the plugin refuses (``createRole: Error: Role already
    exists`` on stderr); a change to a client's roles (``removeClientRole``,
    ``addClientRole``) or to the ACLs of a role it has (``removeRoleACL``,
    ``addRoleACL``) closes that client's connections at once (MQTT 5:
    DISCONNECT 0x98 "administrative action"; 3.1.1: closed), so they
    reconnect under the new rights; the subscribe ACL of a shared
    subscription is checked against the whole filter (``$share/g/t``, not
    ``t``).
``rabbitmq``
    Debian's rabbitmq-server 3.10 with rabbitmq_mqtt and rabbitmq_web_mqtt
    (websocket on ``ws_port``, path ``/ws``; always on). A node of its own:
    HOME, mnesia, logs and config in DIR, its own epmd on a free port
    (``epmd_port``), free AMQP and distribution ports, node name
    ``oc2test@localhost`` (unique on its own epmd; constant so that a cached,
    pre-booted node database can be copied in, which halves the start time).
    Users, permissions and topic permissions come from a definitions file
    imported at boot (what ``rabbitmqctl add_user/set_permissions/
    set_topic_permissions`` would do, without a CLI call of ~0.5 s each); without
    --user, anonymous MQTT logs in as guest. ``env`` holds the environment for
    running ``rabbitmqctl`` against the node.
``activemq``
    Debian's ActiveMQ 5.17 (``java -jar activemq.jar start xbean:file:...``,
    mqtt-client/hawtdispatch on ``activemq.classpath``); only MQTT
    connectors (no openwire, JMX or web console). No websocket: Debian does
    not package activemq-http, so ``ws_port`` is null (``--ws`` is an error).
    --user → simpleAuthenticationPlugin; --deny → a small broker plugin
    (compiled once with javac, cached) that raises the same SecurityException
    as ActiveMQ's authorizationPlugin, whose entries can only grant.
``v311-proxy`` (needs --upstream PORT)
    Proxies TCP to a broker on 127.0.0.1:PORT, but closes a connection whose
    first packet is an MQTT 5 CONNECT without answering (as RabbitMQ 3.10
    does; ActiveMQ 5.17 first sends CONNACK 0x01).
``recorder`` (needs --upstream PORT)
    Transparent proxy that appends one JSON line per client→broker packet to
    DIR/packets.jsonl (``packets``): {"t": monotonic seconds, "conn": n,
    "type": "CONNECT"|..., "hex": whole packet} plus, for CONNECT:
    protocol_level, clean_start, keep_alive, will_flag, will_qos, will_retain,
    username_flag, password_flag, client_id, username, properties; SUBSCRIBE:
    packet_id, properties, subscriptions [{filter, max_qos, no_local,
    retain_as_published, retain_handling}]; PUBLISH: topic, qos, retain, dup,
    packet_id, properties, payload_hex. ``properties`` (MQTT 5 only) maps the
    decimal property id as a string to its value ("17" = session expiry
    interval 0x11); user properties (38) are a list of [key, value].
``silent``
    Accepts TCP connections and never answers.
``http``
    Answers the first bytes of a connection with ``HTTP/1.1 400 Bad
    Request`` and closes it.

``--deny USER:read:TOPIC`` / ``--deny USER:write:TOPIC`` (USER must be one of
--user; TOPIC a topic name, may end with ``/#``): that user may not subscribe
to / publish to TOPIC; everything else stays allowed. What each broker does
(observed by tests/broker/test_broker.py with mosquitto_sub/pub -V mqttv311):

* Mosquitto 2.0.11: refused SUBSCRIBE → SUBACK 0x80, connection stays
  open; refused PUBLISH → dropped, QoS 1 still gets its PUBACK, connection
  stays open (mosquitto_pub exits 0).
* RabbitMQ 3.10: refused SUBSCRIBE → the connection is closed, no SUBACK;
  refused PUBLISH → the connection is closed, no PUBACK (mosquitto_pub: "The
  connection was lost", exit 7).
* ActiveMQ 5.17: refused SUBSCRIBE → SUBACK 0x80, connection stays open;
  refused PUBLISH → dropped, QoS 1 still gets its PUBACK, connection stays
  open (logged as "not authorized to write to").

Subscriptions whose filter merely overlaps a denied topic (``#`` when
``a/#`` is denied) are accepted: Mosquitto then withholds the denied
messages, RabbitMQ and ActiveMQ deliver them (they check the filter only).

A shared subscription, ``$share/g/t`` (what a consumer group subscribes;
observed by test_broker.py and with mosquitto_sub/pub -V mqttv311):

* Mosquitto 2.0.11: SUBACK 0x01 (granted); a publish to ``t`` reaches one
  member of group ``g``. Its MQTT 5 CONNACK has no Shared Subscription
  Available property (so: available).
* RabbitMQ 3.10: SUBACK 0x01, connection stays open, but ``$share/g/t`` is
  an ordinary topic to it: a publish to ``t`` is not delivered (one to the
  literal ``$share/g/t`` is).
* ActiveMQ 5.17: SUBACK 0x01, connection stays open, and nothing is
  delivered, neither a publish to ``t`` nor one to ``$share/g/t``.

An MQTT 5 CONNECT: Mosquitto accepts it; RabbitMQ 3.10 closes the
connection without a CONNACK; ActiveMQ 5.17 answers a 3.1.1 CONNACK 0x01
(unacceptable protocol version) and closes. ``v311-proxy`` closes without
answering.

``--persistence`` keeps the broker's data in DIR across stop/start (Mosquitto
persistence file, RabbitMQ mnesia, ActiveMQ KahaDB); without it every start
is fresh, and RabbitMQ/ActiveMQ are stopped with SIGKILL (nothing to save).
ActiveMQ keeps MQTT retained messages in memory only: they do not survive a
restart even with --persistence (persistent sessions and their queued QoS 1
messages do).
Restarting with the same DIR and ``--port/--tls-port/--ws-port`` (what
``Broker.restart()`` does) brings the broker back on the same ports.

``--kind rabbitmq --cluster N`` (2 to 9): nodes ``oc2c1@localhost`` ...
in DIR/n1 ... (each its own ports, data, logs; one template per node name),
one epmd and one Erlang cookie for all, booted at once, then nodes 2..N
joined to node 1 (``rabbitmqctl stop_app; join_cluster; start_app``):
about 8 s for 2 nodes, 12 s for 3. ``--queues`` says what holds an MQTT
session's messages: ``classic`` (RabbitMQ's default: a classic queue on the
node the session began on), ``mirrored`` (a policy ``ha-mode: all``,
``ha-sync-mode: automatic`` on ``^mqtt-subscription-``), ``quorum``
(``mqtt.durable_queue_type = quorum``; needs a majority of 3 replicas).
Each node is stopped by its own PID (SIGTERM: a clean shutdown; or SIGKILL
it) and started again with ``start-node``; it rejoins the cluster.
``stop --pid`` with the cluster's PID kills every node, then the epmd.

As a module (pytest)::

    with Broker(tmp_path, kind="rabbitmq", tls=True) as b:
        b.port, b.tls_port, b.ws_port, b.ca ...
        b.restart()

    with Cluster(tmp_path, size=3, queues="quorum") as c:
        c.nodes[0]["port"], c.url(1), c.stop_node(1, kill=True), c.start_node(1),
        c.rabbitmqctl(0, "cluster_status")
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import concurrent.futures
import contextlib
import fcntl
import glob
import hashlib
import json
import os
import re
import secrets
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
DYNSEC_PLUGIN = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"
MOSQUITTO_CTRL = shutil.which("mosquitto_ctrl") or "/usr/bin/mosquitto_ctrl"
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
EPMD = shutil.which("epmd") or "/usr/bin/epmd"
ACTIVEMQ_HOME = "/usr/share/activemq"
ACTIVEMQ_JAR = f"{ACTIVEMQ_HOME}/bin/activemq.jar"
JAVA = shutil.which("java") or "/usr/bin/java"
# ActiveMQ's MQTT transport needs the fusesource MQTT codec (libmqtt-client-java).
ACTIVEMQ_EXTRA_JARS = ["/usr/share/java/mqtt-client.jar", "/usr/share/java/hawtbuf.jar",
                       "/usr/share/java/hawtdispatch.jar", "/usr/share/java/hawtdispatch-transport.jar"]
ACTIVEMQ_JVM_OPTS = ["-Xms64m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss512k",
                     "-Xshare:auto", "-Djava.awt.headless=true"]
RABBIT_NODE = "oc2test@localhost"

REAL_KINDS = ("mosquitto", "rabbitmq", "activemq")
FAKE_KINDS = ("v311-proxy", "recorder", "silent", "http")
KINDS = REAL_KINDS + FAKE_KINDS

# How long stop() waits after SIGTERM before SIGKILL, per kind.
STOP_GRACE = {"mosquitto": 5.0, "rabbitmq": 20.0, "activemq": 15.0}
START_TIMEOUT = {"mosquitto": 10.0, "rabbitmq": 60.0, "activemq": 60.0}

# Brokers started by this process, so stop() can reap them (no zombie, no
# "subprocess still running" ResourceWarning).
_STARTED: dict[int, subprocess.Popen] = {}


def _cache_dir() -> Path:
    base = os.environ.get("OC2_BROKER_CACHE")
    if base:
        return Path(base)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "oc2mqtt-broker"


def _registry() -> Path:
    """One JSON file per running broker (by main PID): what stop() must also end."""
    return Path(tempfile.gettempdir()) / "oc2mqtt-brokers"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(d: Path) -> dict:
    """A CA, a server certificate for localhost/127.0.0.1, a client
    certificate, and an unrelated CA; generated once per directory."""
    d.mkdir(parents=True, exist_ok=True)
    out = {
        "ca": str(d / "ca.crt"),
        "wrong_ca": str(d / "wrong-ca.crt"),
        "server_cert": str(d / "server.crt"),
        "server_key": str(d / "server.key"),
        "client_cert": str(d / "client.crt"),
        "client_key": str(d / "client.key"),
    }
    if all(Path(p).exists() for p in out.values()):
        return out
    days = "3650"
    for ca in ("ca", "wrong-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.crt",
                 "-days", days, "-subj", f"/CN=oc2mqtt test {ca}", cwd=d)
    (d / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, cn in (("server", "localhost"), ("client", "oc2-test-client")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={cn}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.crt", "-days", days, "-extfile", f"{name}.ext", cwd=d)
    return out


# ---------------------------------------------------------------------------
# processes

def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, starttime) of a live process, None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[19])


def _alive(pid: int, starttime: int | None = None) -> bool:
    st = _proc_stat(pid)
    if st is None or st[0] in ("Z", "X"):
        return False
    return starttime is None or st[2] == starttime


def _descendants(pid: int) -> list[tuple[int, int]]:
    """(pid, starttime) of every live descendant of pid."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _proc_stat(int(entry))
            if st:
                children.setdefault(st[1], []).append((int(entry), st[2]))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child[0])
    return out


def _kill(pid: int, sig: int, starttime: int | None = None) -> None:
    if starttime is not None and not _alive(pid, starttime):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _wait_gone(pid: int, timeout: float, starttime: int | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not _alive(pid, starttime):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def _register(pid: int, record: dict) -> None:
    reg = _registry()
    reg.mkdir(parents=True, exist_ok=True)
    st = _proc_stat(pid)
    record = {**record, "pid": pid, "starttime": st[2] if st else None}
    tmp = reg / f".{pid}.tmp"
    tmp.write_text(json.dumps(record))
    os.replace(tmp, reg / f"{pid}.json")


def _companion(pid: int) -> dict:
    st = _proc_stat(pid)
    return {"pid": pid, "starttime": st[2] if st else None}


def _tail(*paths: Path, lines: int = 60) -> str:
    out = []
    for p in paths:
        with contextlib.suppress(OSError):
            text = Path(p).read_text(errors="replace").splitlines()
            out.append(f"--- {p} (last {min(lines, len(text))} lines)\n" + "\n".join(text[-lines:]))
    return "\n".join(out)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _wait_listening(port: int, proc: subprocess.Popen, log: Path | list[Path], timeout: float = 10.0,
                    what: str = "mosquitto") -> None:
    logs = log if isinstance(log, list) else [log]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{_tail(*logs)}")
        if _listening(port):
            return
        time.sleep(0.02)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout}s:\n{_tail(*logs)}")


def _mqtt_probe(port: int, user: str | None, password: str | None, timeout: float = 2.0) -> int | None:
    """Sends an MQTT 3.1.1 CONNECT; returns the CONNACK return code (None: no CONNACK)."""
    def s(b: bytes) -> bytes:
        return struct.pack("!H", len(b)) + b
    flags = 0x02
    payload = s(b"oc2-broker-probe-" + secrets.token_hex(4).encode())
    if user is not None:
        flags |= 0x80
        payload += s(user.encode())
        if password is not None:
            flags |= 0x40
            payload += s(password.encode())
    body = s(b"MQTT") + bytes([4, flags]) + struct.pack("!H", 30) + payload
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
            c.sendall(bytes([0x10]) + _varint(len(body)) + body)
            data = b""
            while len(data) < 4:
                chunk = c.recv(4 - len(data))
                if not chunk:
                    return None
                data += chunk
            with contextlib.suppress(OSError):
                c.sendall(b"\xe0\x00")
            return data[3] if data[0] == 0x20 else None
    except OSError:
        return None


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _wait_mqtt_ready(port: int, proc: subprocess.Popen, logs: list[Path], timeout: float, what: str,
                     user: str | None, password: str | None) -> None:
    deadline = time.monotonic() + timeout
    _wait_listening(port, proc, logs, timeout, what)
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{_tail(*logs)}")
        last = _mqtt_probe(port, user, password)
        if last == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} on {port} did not accept an MQTT CONNECT within {timeout}s "
                       f"(last CONNACK code {last}):\n{_tail(*logs)}")


def _popen(cmd: list[str], d: Path, *, env: dict | None = None, stdout_name: str = "stdout.log") -> subprocess.Popen:
    """A broker process in its own session (so a test's Ctrl-C does not reach it), output to DIR."""
    with open(d / stdout_name, "ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True,
                                env=env, cwd=d)


# ---------------------------------------------------------------------------
# options shared by the kinds

def _parse_users(users: list[str] | None) -> list[tuple[str, str]]:
    out = []
    for u in users or []:
        name, _, password = u.partition(":")
        out.append((name, password))
    return out


def _parse_deny(deny: list[str] | None, users: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    out = []
    names = {n for n, _ in users}
    for rule in deny or []:
        parts = rule.split(":", 2)
        if len(parts) != 3 or parts[1] not in ("read", "write") or not parts[2]:
            raise ValueError(f"--deny wants USER:read:TOPIC or USER:write:TOPIC, not {rule!r}")
        if parts[0] not in names:
            raise ValueError(f"--deny {rule!r}: user {parts[0]!r} is not one of --user")
        out.append((parts[0], parts[1], parts[2]))
    return out


# ---------------------------------------------------------------------------
# Mosquitto

def _dynsec_client(name: str, password: str, roles: list[str]) -> dict:
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 101, 64)
    return {"username": name, "password": base64.b64encode(digest).decode(),
            "salt": base64.b64encode(salt).decode(), "iterations": 101,
            "roles": [{"rolename": r} for r in roles]}


def _start_mosquitto(d: Path, info: dict, *, tls, tls_version, require_cert, users, acl, persistence, port,
                     tls_port, ws, ws_port, deny, ciphers, dynsec=False) -> subprocess.Popen:
    port = port or free_port()
    lines = [
        f"pid_file {d / 'mosquitto.pid'}",
        f"log_dest file {d / 'mosquitto.log'}",
        "log_type error", "log_type warning", "log_type notice",
        "per_listener_settings false",
        "set_tcp_nodelay true",
        "max_inflight_messages 0",
        "max_queued_messages 100000",
        f"persistence {'true' if persistence else 'false'}",
        f"persistence_location {d}/",
        "autosave_interval 1" if persistence else "",
        f"listener {port} 127.0.0.1",
    ]
    if os.geteuid() == 0:
        # Mosquitto drops to user 'mosquitto' before reading keys, passwords and ACLs.
        lines.insert(0, "user root")
    if dynsec:
        ds = d / "dynamic-security.json"
        admin = d / "dynsec-admin"
        if not ds.exists() or not admin.exists():
            # What an operator runs; the password stays in DIR for a restart.
            password = secrets.token_urlsafe(18)
            ds.unlink(missing_ok=True)
            subprocess.run([MOSQUITTO_CTRL, "dynsec", "init", str(ds), "admin", password],
                           check=True, capture_output=True)
            admin.write_text(password)
            os.chmod(admin, 0o600)
        os.chmod(ds, 0o600)
        info.update({"admin_user": "admin", "admin_password": admin.read_text()})
        lines += [f"plugin {DYNSEC_PLUGIN}", f"plugin_opt_config_file {ds}", "allow_anonymous false"]
    elif deny:
        # acl_file can only deny both directions at once; the dynamic-security
        # plugin has per-direction allow/deny ACLs over an allow-all default.
        roles = []
        for i, (name, mode, topic) in enumerate(deny):
            acls = ([{"acltype": t, "topic": topic, "priority": 10, "allow": False}
                     for t in ("subscribeLiteral", "subscribePattern", "publishClientReceive")]
                    if mode == "read" else
                    [{"acltype": "publishClientSend", "topic": topic, "priority": 10, "allow": False}])
            roles.append((name, {"rolename": f"deny{i}", "acls": acls}))
        clients = [_dynsec_client(n, p, [r["rolename"] for u, r in roles if u == n]) for n, p in users]
        dynsec = {"clients": clients, "roles": [r for _, r in roles], "groups": [],
                  "defaultACLAccess": {"publishClientSend": True, "publishClientReceive": True,
                                       "subscribe": True, "unsubscribe": True}}
        ds = d / "dynamic-security.json"
        ds.write_text(json.dumps(dynsec, indent=1))
        os.chmod(ds, 0o600)
        lines += [f"plugin {DYNSEC_PLUGIN}", f"plugin_opt_config_file {ds}", "allow_anonymous false"]
    elif users:
        pw = d / "passwords"
        pw.write_text("")
        for name, password in users:
            subprocess.run(["mosquitto_passwd", "-b", str(pw), name, password], check=True, capture_output=True)
        os.chmod(pw, 0o600)
        lines += [f"password_file {pw}", "allow_anonymous false"]
    else:
        lines.append("allow_anonymous true")
    if acl:
        acl_file = d / "acl"
        acl_file.write_text("\n".join(acl) + "\n")
        os.chmod(acl_file, 0o600)
        lines.append(f"acl_file {acl_file}")
    info["port"] = port
    if tls:
        certs = make_certs(d / "certs")
        info.update(certs)
        tls_port = tls_port or free_port()
        info["tls_port"] = tls_port
        lines += [
            f"listener {tls_port} 127.0.0.1",
            f"cafile {certs['ca']}",
            f"certfile {certs['server_cert']}",
            f"keyfile {certs['server_key']}",
        ]
        if tls_version:
            lines.append(f"tls_version {tls_version}")
        if ciphers:
            lines.append(f"ciphers {ciphers}")
        if require_cert:
            lines.append("require_certificate true")
    if ws or ws_port:
        ws_port = ws_port or free_port()
        info["ws_port"] = ws_port
        lines += [f"listener {ws_port} 127.0.0.1", "protocol websockets"]
        if tls:
            # MQTT over WebSocket over TLS (wss://), with the TLS listener's certificate.
            info["wss_port"] = free_port()
            lines += [
                f"listener {info['wss_port']} 127.0.0.1",
                "protocol websockets",
                f"cafile {certs['ca']}",
                f"certfile {certs['server_cert']}",
                f"keyfile {certs['server_key']}",
            ]
    conf = d / "mosquitto.conf"
    conf.write_text("\n".join(line for line in lines if line) + "\n")
    proc = _popen([MOSQUITTO, "-c", str(conf)], d)
    try:
        for p in (port, info["tls_port"], info["ws_port"], info["wss_port"]):
            if p:
                _wait_listening(p, proc, d / "stdout.log")
    except Exception:
        stop(proc.pid)
        raise
    info.update({"log": str(d / "mosquitto.log"), "conf": str(conf)})
    return proc


def mosquitto_ctrl(info: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Runs ``mosquitto_ctrl ... dynsec ARGS`` as the admin of a broker started with dynsec=True."""
    return subprocess.run([MOSQUITTO_CTRL, "-h", "127.0.0.1", "-p", str(info["port"]), "-u", info["admin_user"],
                           "-P", info["admin_password"], "dynsec", *args], check=check, capture_output=True,
                          text=True, timeout=30)


# ---------------------------------------------------------------------------
# RabbitMQ

def _rabbit_version() -> str:
    dirs = sorted(glob.glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*"))
    if not dirs or not os.path.exists(RABBITMQ_SERVER):
        raise RuntimeError("rabbitmq-server is not installed (scripts/setup.sh installs it)")
    return dirs[-1].rsplit("-", 1)[1]


def _rabbit_hash(password: str) -> str:
    salt = secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def _rabbit_topic(topic: str) -> str:
    """MQTT topic → AMQP routing key, as rabbitmq_mqtt maps them ('/' ↔ '.')."""
    return "".join({"/": ".", ".": "/"}.get(c, c) for c in topic)


def _rabbit_exclude(topics: list[str]) -> str:
    """A regex matching every routing key except these MQTT topics (and what lies under a '/#' one)."""
    alts = []
    for t in topics:
        if t == "#":
            return "^$"
        if t.endswith("/#"):
            alts.append(_pcre_escape(_rabbit_topic(t[:-2])) + r"(\..*)?")
        else:
            alts.append(_pcre_escape(_rabbit_topic(t)))
    return "^(?!(" + "|".join(alts) + ")$).*"


def _pcre_escape(s: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "\\" + c for c in s)


def _rabbit_plugins_dir() -> str:
    """A directory of symlinks to just the Erlang applications the node runs (the
    dependency closure of rabbit, rabbitmq_mqtt and rabbitmq_web_mqtt, from their
    .app files): RabbitMQ reads and loads every application in its plugins
    directory at boot, and 25 instead of 70 saves ~1.5 s per start."""
    src = sorted(glob.glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins"))[-1]
    target = _cache_dir() / f"rabbitmq-{_rabbit_version()}-plugins"
    if (target / ".ok").exists():
        return str(target)
    apps: dict[str, tuple[str, list[str]]] = {}
    for entry in os.listdir(src):
        for app_file in glob.glob(f"{src}/{entry}/ebin/*.app"):
            text = Path(app_file).read_text(errors="replace")
            deps = []
            for key in ("applications", "included_applications"):
                m = re.search(r"\{" + key + r",\s*\[([^\]]*)\]", text)
                if m:
                    deps += [x.strip().strip("'") for x in m.group(1).split(",") if x.strip()]
            apps[Path(app_file).stem] = (entry, deps)
    need: set[str] = set()
    todo = ["rabbit", "rabbit_common", "rabbitmq_prelaunch", "rabbitmq_mqtt", "rabbitmq_web_mqtt"]
    while todo:
        app = todo.pop()
        if app in apps and app not in need:
            need.add(app)
            todo += apps[app][1]
    if not {"rabbit", "rabbitmq_mqtt", "rabbitmq_web_mqtt"} <= need:
        return src
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="rabbitmq-plugins-", dir=target.parent))
    for app in sorted(need):
        os.symlink(f"{src}/{apps[app][0]}", work / apps[app][0])
    (work / ".ok").write_text("\n".join(sorted(need)) + "\n")
    try:
        os.rename(work, target)
    except OSError:  # built meanwhile by another process
        shutil.rmtree(work, ignore_errors=True)
    return str(target)


def _rabbit_env(d: Path, ports: dict, node: str = RABBIT_NODE) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("RABBITMQ_") or k.startswith("ERL_") or k in ("NOTIFY_SOCKET",))}
    env.update({
        "HOME": str(d / "home"),
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
        "RABBITMQ_LOG_BASE": str(d / "log"),
        "RABBITMQ_LOGS": str(d / "log" / "rabbit.log"),
        "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
        "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
        "RABBITMQ_PID_FILE": str(d / "rabbitmq.pid"),
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_PLUGINS_DIR": _rabbit_plugins_dir(),
        "RABBITMQ_NODE_PORT": str(ports["amqp"]),
        "RABBITMQ_DIST_PORT": str(ports["dist"]),
        "ERL_EPMD_PORT": str(ports["epmd"]),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        # exec the VM in place of the script, so the PID we hold is beam's.
        "RUNNING_UNDER_SYSTEMD": "true",
    })
    return env


def _start_epmd(d: Path, port: int) -> subprocess.Popen:
    epmd = _popen([EPMD, "-port", str(port), "-address", "127.0.0.1"], d, stdout_name="epmd.log")
    try:
        _wait_listening(port, epmd, d / "epmd.log", 10.0, "epmd")
    except Exception:
        epmd.kill()
        epmd.wait()
        raise
    return epmd


def _rabbit_node(d: Path, conf_lines: list[str], ports: dict, timeout: float,
                 probe: tuple[str | None, str | None], node: str = RABBIT_NODE,
                 own_epmd: bool = True) -> tuple[subprocess.Popen, subprocess.Popen | None]:
    """Boots the node described by DIR's files; returns (beam, epmd). Without
    own_epmd, the node registers with the epmd already on ports["epmd"] (a
    cluster's), and epmd is None."""
    for sub in ("home", "log"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    (d / "rabbitmq-env.conf").write_text("# all settings come from the environment (tests/broker/broker.py)\n")
    (d / "enabled_plugins").write_text("[rabbitmq_mqtt,rabbitmq_web_mqtt].\n")
    (d / "rabbitmq.conf").write_text("\n".join(conf_lines) + "\n")
    env = _rabbit_env(d, ports, node)
    epmd = _start_epmd(d, ports["epmd"]) if own_epmd else None
    beam = None
    try:
        beam = _popen([RABBITMQ_SERVER], d, env=env)
        logs = [d / "log" / "rabbit.log", d / "stdout.log"]
        start = time.monotonic()
        _wait_mqtt_ready(ports["mqtt"], beam, logs, timeout, "rabbitmq", *probe)
        for p in (ports.get("tls"), ports.get("ws")):
            if p:
                _wait_listening(p, beam, logs, max(1.0, timeout - (time.monotonic() - start)), "rabbitmq")
    except Exception:
        if beam is not None:
            _kill(beam.pid, signal.SIGKILL)
            beam.wait()
            for pid, st in _descendants(beam.pid):
                _kill(pid, signal.SIGKILL, st)
        if epmd is not None:
            epmd.kill()
            epmd.wait()
        raise
    return beam, epmd


def _rabbit_template(node: str = RABBIT_NODE) -> Path | None:
    """A stopped, freshly booted node database (mnesia base of node `node`:
    mnesia is tied to the node name, so one template per name), built once
    per machine and RabbitMQ version; None if it cannot be built. Copying it
    saves the first boot's ~5 s (feature flags, the MQTT plugin's Raft
    cluster formation wait)."""
    if os.environ.get("OC2_BROKER_NO_TEMPLATE"):
        return None
    cache = _cache_dir()
    target = cache / f"rabbitmq-{_rabbit_version()}-{node.split('@')[0]}"
    if (target / "ok").exists():
        return target / "mnesia"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / "rabbitmq-template.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "ok").exists():
            return target / "mnesia"
        work = Path(tempfile.mkdtemp(prefix="rabbitmq-template-", dir=cache))
        try:
            ports = {"mqtt": free_port(), "amqp": free_port(), "dist": free_port(), "epmd": free_port()}
            secret = secrets.token_hex(16)
            conf = [
                f"listeners.tcp.default = 127.0.0.1:{ports['amqp']}",
                f"mqtt.listeners.tcp.default = 127.0.0.1:{ports['mqtt']}",
                "web_mqtt.tcp.ip = 127.0.0.1", f"web_mqtt.tcp.port = {free_port()}",
                # An unusable default user: each broker adds its own users by definitions.
                f"default_user = oc2-template-{secret[:8]}", f"default_pass = {secret}",
                "loopback_users = none", "mqtt.allow_anonymous = false", "log.console = false",
            ]
            beam, epmd = _rabbit_node(work, conf, ports, 90.0, (f"oc2-template-{secret[:8]}", secret), node)
            beam.terminate()
            try:
                beam.wait(30)
            except subprocess.TimeoutExpired:
                beam.kill()
                beam.wait()
                raise RuntimeError("the template node did not stop") from None
            finally:
                epmd.kill()
                epmd.wait()
            (work / "ok").write_text(f"{work / 'mnesia'}\n")  # where it was built: see the copy
            if target.exists():
                shutil.rmtree(target)
            os.rename(work, target)
            return target / "mnesia"
        except Exception as e:  # fall back to a plain first boot
            print(f"broker.py: no RabbitMQ template ({e}); booting from scratch", file=sys.stderr)
            return None
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)


def _start_rabbitmq(d: Path, info: dict, *, tls, tls_version, require_cert, users, persistence, port,
                    tls_port, ws_port, deny, ciphers, node: str = RABBIT_NODE, cluster: dict | None = None
                    ) -> tuple[subprocess.Popen, list[dict]]:
    """One node. With `cluster` ({"epmd_port", "cookie", "ports" (fixed, for a
    restart), "conf", "policies"}), a cluster member: the cluster's epmd and
    Erlang cookie, no epmd of its own."""
    fixed = (cluster or {}).get("ports") or {}
    ports = {"mqtt": port or fixed.get("mqtt") or free_port(), "ws": ws_port or fixed.get("ws") or free_port(),
             "amqp": fixed.get("amqp") or free_port(), "dist": fixed.get("dist") or free_port(),
             "epmd": cluster["epmd_port"] if cluster else free_port()}
    if tls:
        ports["tls"] = tls_port or fixed.get("tls") or free_port()
    if cluster:
        cookie = d / "home" / ".erlang.cookie"
        cookie.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            cookie.chmod(0o600)
        cookie.write_text(cluster["cookie"])
        cookie.chmod(0o400)
    mnesia = d / "mnesia"
    if not persistence and mnesia.exists():
        shutil.rmtree(mnesia)
    if not mnesia.exists():
        template = _rabbit_template(node)
        if template is not None:
            shutil.copytree(template, mnesia, symlinks=True)
            # Ra (the MQTT plugin's client-id tracker) keeps absolute paths in its server configs.
            built_at = (template.parent / "ok").read_text().strip().encode()
            for cfg in mnesia.glob("*/*/*/*/config"):
                cfg.write_bytes(cfg.read_bytes().replace(built_at, str(mnesia).encode()))
    # Users, permissions and topic permissions, imported at every boot.
    people = users or [("guest", "guest")]
    defs = {
        "rabbit_version": _rabbit_version(),
        "vhosts": [{"name": "/"}],
        "users": [{"name": n, "password_hash": _rabbit_hash(p), "hashing_algorithm": "rabbit_password_hashing_sha256",
                   "tags": "administrator" if not users else ""} for n, p in people],
        "permissions": [{"user": n, "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"} for n, _ in people],
        "topic_permissions": [],
        "policies": (cluster or {}).get("policies", []),
    }
    for name, _ in people:
        reads = [t for u, m, t in deny if u == name and m == "read"]
        writes = [t for u, m, t in deny if u == name and m == "write"]
        if reads or writes:
            defs["topic_permissions"].append({
                "user": name, "vhost": "/", "exchange": "amq.topic",
                "read": _rabbit_exclude(reads) if reads else ".*",
                "write": _rabbit_exclude(writes) if writes else ".*"})
    (d / "definitions.json").write_text(json.dumps(defs, indent=1))
    conf = [
        "loopback_users = none",
        f"listeners.tcp.default = 127.0.0.1:{ports['amqp']}",
        f"mqtt.listeners.tcp.default = 127.0.0.1:{ports['mqtt']}",
        "mqtt.tcp_listen_options.nodelay = true",
        "mqtt.vhost = /",
        "mqtt.exchange = amq.topic",
        f"mqtt.allow_anonymous = {'false' if users else 'true'}",
        "mqtt.default_user = guest",
        "mqtt.default_pass = guest",
        "web_mqtt.tcp.ip = 127.0.0.1",
        f"web_mqtt.tcp.port = {ports['ws']}",
        "web_mqtt.ws_path = /ws",
        f"load_definitions = {d / 'definitions.json'}",
        "log.console = false",
        "log.file.level = info",
        *(cluster or {}).get("conf", []),
    ]
    if tls:
        certs = make_certs(d / "certs")
        info.update(certs)
        conf += [
            f"mqtt.listeners.ssl.default = 127.0.0.1:{ports['tls']}",
            f"ssl_options.cacertfile = {certs['ca']}",
            f"ssl_options.certfile = {certs['server_cert']}",
            f"ssl_options.keyfile = {certs['server_key']}",
            f"ssl_options.verify = {'verify_peer' if require_cert else 'verify_none'}",
            f"ssl_options.fail_if_no_peer_cert = {'true' if require_cert else 'false'}",
        ]
        if tls_version:
            conf.append(f"ssl_options.versions.1 = {tls_version}")
        for i, c in enumerate((ciphers or "").split(":") if ciphers else [], 1):
            conf.append(f"ssl_options.ciphers.{i} = {c}")
    probe = people[0] if users else (None, None)
    beam, epmd = _rabbit_node(d, conf, ports, START_TIMEOUT["rabbitmq"], probe, node, own_epmd=not cluster)
    info.update({"port": ports["mqtt"], "tls_port": ports.get("tls"), "ws_port": ports["ws"],
                 "amqp_port": ports["amqp"], "dist_port": ports["dist"], "epmd_port": ports["epmd"],
                 "epmd_pid": epmd.pid if epmd else None,
                 "node": node, "log": str(d / "log" / "rabbit.log"), "conf": str(d / "rabbitmq.conf"),
                 "env": {k: v for k, v in _rabbit_env(d, ports, node).items()
                         if k.startswith(("RABBITMQ_", "ERL_")) or k == "HOME"}})
    if epmd is None:
        return beam, []
    _STARTED[epmd.pid] = epmd
    return beam, [_companion(epmd.pid)]


def rabbitmqctl(info: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Runs rabbitmqctl against a broker started with kind="rabbitmq"."""
    env = {**os.environ, **info["env"]}
    env.pop("RUNNING_UNDER_SYSTEMD", None)
    return subprocess.run(["/usr/lib/rabbitmq/bin/rabbitmqctl", *args], env=env, check=check,
                          capture_output=True, text=True)


# ---------------------------------------------------------------------------
# RabbitMQ cluster

# What holds an MQTT subscription's messages (a session with a stable client
# id, Clean Session 0): a classic queue on the node the client was connected
# to; the same, mirrored to every node (classic mirrored queues, policy
# ha-mode all); or a quorum queue (mqtt.durable_queue_type = quorum; replicas
# on up to 3 nodes, available while a majority of them runs).
CLUSTER_QUEUES = ("classic", "mirrored", "quorum")


def _cluster_node_name(i: int) -> str:
    return f"oc2c{i}@localhost"


def _cluster_settings(queues: str) -> dict:
    if queues not in CLUSTER_QUEUES:
        raise ValueError(f"--queues {queues!r}: one of {', '.join(CLUSTER_QUEUES)}")
    conf = ["mqtt.durable_queue_type = quorum"] if queues == "quorum" else []
    policies = [{"vhost": "/", "name": "oc2-mqtt-mirrored", "pattern": "^mqtt-subscription-",
                 "apply-to": "queues", "priority": 0,
                 "definition": {"ha-mode": "all", "ha-sync-mode": "automatic"}}] if queues == "mirrored" else []
    return {"conf": conf, "policies": policies}


@contextlib.contextmanager
def _cluster_state(d: Path):
    """The cluster's description (DIR/cluster.json), locked while read and updated."""
    with open(d / "cluster.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = json.loads((d / "cluster.json").read_text())
        yield state
        tmp = d / ".cluster.json.tmp"
        tmp.write_text(json.dumps(state, indent=1))
        tmp.chmod(0o600)
        os.replace(tmp, d / "cluster.json")


def _free_ports(n: int) -> list[int]:
    """n distinct free ports (all bound at once, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _cluster_node(d: Path, state: dict, i: int, ports: dict | None) -> dict:
    """Boots node i (1-based) of the cluster in DIR/n<i>; registers it for stop().
    A first boot whose free port was taken meanwhile (eaddrinuse) gets new ports, once."""
    nd = d / f"n{i}"
    info: dict = {"kind": "rabbitmq", "index": i, "port": None, "tls_port": None, "ws_port": None,
                  "wss_port": None, "dir": str(nd)}
    people = _parse_users(state["users"])
    for attempt in (1, 2):
        try:
            beam, _ = _start_rabbitmq(nd, info, tls=False, tls_version=None, require_cert=False, users=people,
                                      persistence=True, port=None, tls_port=None, ws_port=None,
                                      deny=_parse_deny(state["deny"], people), ciphers=None,
                                      node=_cluster_node_name(i),
                                      cluster={"epmd_port": state["epmd_port"], "cookie": state["cookie"],
                                               "ports": ports, **_cluster_settings(state["queues"])})
            break
        except RuntimeError as e:
            if attempt == 2 or state["nodes"] or "eaddrinuse" not in str(e):
                raise
            shutil.rmtree(nd / "mnesia", ignore_errors=True)
            ports = dict(zip(("mqtt", "ws", "amqp", "dist"), _free_ports(4)))
    _STARTED[beam.pid] = beam
    _register(beam.pid, {"kind": "rabbitmq", "dir": str(nd), "companions": [], "grace": STOP_GRACE["rabbitmq"]})
    info["pid"] = beam.pid
    return info


def _node_ports(n: dict) -> dict:
    return {"mqtt": n["port"], "ws": n["ws_port"], "amqp": n["amqp_port"], "dist": n["dist_port"]}


def _start_cluster(d: Path, size: int, *, users: list[str], deny: list[str], queues: str) -> dict:
    """N nodes on one epmd, joined to node 1 with rabbitmqctl join_cluster."""
    if not 2 <= size <= 9:
        raise ValueError(f"--cluster {size}: 2 to 9 nodes")
    _cluster_settings(queues)
    for i in range(1, size + 1):  # a new cluster: no node database of an earlier one
        shutil.rmtree(d / f"n{i}" / "mnesia", ignore_errors=True)
    epmd_port = free_port()
    epmd = _start_epmd(d, epmd_port)
    _STARTED[epmd.pid] = epmd
    state = {"size": size, "queues": queues, "users": users, "deny": deny, "epmd_port": epmd_port,
             "epmd_pid": epmd.pid, "cookie": secrets.token_hex(20), "nodes": []}
    (d / "cluster.json").write_text(json.dumps(state, indent=1))
    (d / "cluster.json").chmod(0o600)
    _register(epmd.pid, {"kind": "rabbitmq-cluster", "dir": str(d), "companions": [], "grace": 0.0,
                         "cluster": str(d / "cluster.json")})
    try:
        # Boot every node at once (each from its own template), then join them to node 1.
        with concurrent.futures.ThreadPoolExecutor(size) as pool:
            free = _free_ports(4 * size)
            futures = [pool.submit(_cluster_node, d, state, i, dict(zip(("mqtt", "ws", "amqp", "dist"),
                                                                         free[4 * (i - 1):4 * i])))
                       for i in range(1, size + 1)]
            errors = [f.exception() for f in futures]
            nodes = [f.result() for f, e in zip(futures, errors) if e is None]
        state["nodes"] = nodes
        (d / "cluster.json").write_text(json.dumps(state, indent=1))
        for e in errors:
            if e is not None:
                raise e
        seed = nodes[0]["node"]
        for n in nodes[1:]:
            for args in (["stop_app"], ["join_cluster", seed], ["start_app"]):
                r = rabbitmqctl(n, *args, check=False)
                if r.returncode != 0:
                    raise RuntimeError(f"rabbitmqctl -n {n['node']} {' '.join(args)} failed: "
                                       f"{r.stdout}{r.stderr}\n{_tail(Path(n['log']))}")
            people = _parse_users(users)
            _wait_mqtt_ready(n["port"], _STARTED[n["pid"]], [Path(n["log"])], START_TIMEOUT["rabbitmq"],
                             "rabbitmq", *(people[0] if people else (None, None)))
    except Exception:
        stop(epmd.pid)
        raise
    return {"kind": "rabbitmq", "cluster": size, "queues": queues, "pid": epmd.pid, "epmd_pid": epmd.pid,
            "epmd_port": epmd_port, "dir": str(d), "port": nodes[0]["port"], "tls_port": None,
            "ws_port": nodes[0]["ws_port"], "wss_port": None, "nodes": nodes}


def start_node(d: Path, index: int) -> dict:
    """Starts node `index` (1-based) of the cluster in DIR again, after it was
    stopped or killed: same name, ports and node database; it rejoins the cluster."""
    d = Path(d).resolve()
    if not (d / "cluster.json").exists():
        raise RuntimeError(f"{d} holds no cluster (no cluster.json): start one with --cluster N")
    with _cluster_state(d) as state:
        old = state["nodes"][index - 1]
        if old.get("pid") and _alive(old["pid"]):
            raise RuntimeError(f"node {index} ({old['node']}) still runs as PID {old['pid']}")
        with contextlib.suppress(OSError):
            (_registry() / f"{old['pid']}.json").unlink()
        info = _cluster_node(d, state, index, _node_ports(old))
        state["nodes"][index - 1] = info
    return info


class Cluster:
    """A RabbitMQ cluster (context manager): ``nodes[i]`` are node descriptions
    (pid, port, node, env, ...); each node can be stopped and started alone.

        with Cluster(tmp_path, size=3, queues="quorum") as c:
            c.url(0), c.stop_node(1, kill=True), c.start_node(1), c.rabbitmqctl(0, "cluster_status")
    """

    def __init__(self, directory, size: int = 3, **options):
        self.directory = Path(directory)
        self.options = {"size": size, **options}
        self.info: dict = {}

    def __enter__(self) -> Cluster:
        self.info = start(self.directory, kind="rabbitmq", cluster=self.options["size"],
                          **{k: v for k, v in self.options.items() if k != "size"})
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def nodes(self) -> list[dict]:
        return self.info["nodes"]

    def url(self, i: int) -> str:
        return f"mqtt://127.0.0.1:{self.nodes[i]['port']}"

    def stop_node(self, i: int, kill: bool = False) -> None:
        """Stops node i (0-based): SIGKILL, or SIGTERM (a clean shutdown)."""
        stop(self.nodes[i]["pid"], timeout=0.0 if kill else None)

    def start_node(self, i: int) -> dict:
        self.nodes[i] = start_node(self.directory, i + 1)
        return self.nodes[i]

    def rabbitmqctl(self, i: int, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return rabbitmqctl(self.nodes[i], *args, check=check)

    def stop(self) -> None:
        if self.info.get("pid"):
            stop(self.info["pid"])
            self.info["pid"] = None


# ---------------------------------------------------------------------------
# ActiveMQ

DENY_PLUGIN_JAVA = r"""
package oc2test;

import java.util.ArrayList;
import java.util.List;
import org.apache.activemq.broker.Broker;
import org.apache.activemq.broker.BrokerFilter;
import org.apache.activemq.broker.BrokerPlugin;
import org.apache.activemq.broker.ConnectionContext;
import org.apache.activemq.broker.ProducerBrokerExchange;
import org.apache.activemq.broker.region.Subscription;
import org.apache.activemq.command.ActiveMQDestination;
import org.apache.activemq.command.ActiveMQTopic;
import org.apache.activemq.command.ConsumerInfo;
import org.apache.activemq.command.Message;
import org.apache.activemq.filter.DestinationFilter;

/** Refuses a user reading from / writing to some destinations, allows the rest
 *  (tests/broker/broker.py --deny). Throws what AuthorizationBroker throws. */
public class DenyPlugin implements BrokerPlugin {
    private final List<String[]> rules = new ArrayList<>();

    /** Each rule is USER:read|write:DESTINATION-PATTERN (ActiveMQ wildcards). */
    public void setRules(List<String> specs) {
        for (String s : specs) {
            rules.add(s.split(":", 3));
        }
    }

    public Broker installPlugin(Broker next) {
        return new BrokerFilter(next) {
            private void check(ConnectionContext ctx, ActiveMQDestination dest, String mode) {
                if (ctx == null || dest == null) {
                    return;
                }
                String user = ctx.getUserName();
                for (String[] r : rules) {
                    if (r[0].equals(user) && r[1].equals(mode)
                            && DestinationFilter.parseFilter(new ActiveMQTopic(r[2])).matches(dest)) {
                        throw new SecurityException("User " + user + " is not authorized to "
                                + ("read".equals(mode) ? "read from: " : "write to: ") + dest);
                    }
                }
            }

            @Override
            public Subscription addConsumer(ConnectionContext ctx, ConsumerInfo info) throws Exception {
                check(ctx, info.getDestination(), "read");
                return super.addConsumer(ctx, info);
            }

            @Override
            public void send(ProducerBrokerExchange exchange, Message message) throws Exception {
                check(exchange.getConnectionContext(), message.getDestination(), "write");
                super.send(exchange, message);
            }
        };
    }
}
"""


def _activemq_deny_plugin() -> Path:
    """Compiles DenyPlugin once (cached by source hash); returns its class directory."""
    digest = hashlib.sha256(DENY_PLUGIN_JAVA.encode()).hexdigest()[:12]
    out = _cache_dir() / f"activemq-deny-{digest}"
    if (out / "oc2test" / "DenyPlugin.class").exists():
        return out
    javac = shutil.which("javac")
    if not javac:
        raise RuntimeError("--deny with --kind activemq needs javac (default-jdk-headless; scripts/setup.sh)")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="activemq-deny-", dir=out.parent))
    try:
        src = work / "src" / "oc2test" / "DenyPlugin.java"
        src.parent.mkdir(parents=True)
        src.write_text(DENY_PLUGIN_JAVA)
        cp = ":".join(f"{ACTIVEMQ_HOME}/lib/{j}" for j in ("activemq-broker.jar", "activemq-client.jar",
                                                            "geronimo-jms_1.1_spec.jar", "slf4j-api.jar"))
        classes = work / "classes"
        subprocess.run([javac, "--release", "11", "-nowarn", "-cp", cp, "-d", str(classes), str(src)],
                       check=True, capture_output=True, text=True)
        with contextlib.suppress(OSError):
            os.rename(classes, out)
    except subprocess.CalledProcessError as e:
        raise RuntimeError(f"javac DenyPlugin failed:\n{e.stdout}\n{e.stderr}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _xml(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _activemq_topic(topic: str) -> str:
    """MQTT topic filter → ActiveMQ destination pattern ('/' ↔ '.', '+' → '*', '#' → '>')."""
    return "".join({"/": ".", ".": "/", "+": "*", "#": ">"}.get(c, c) for c in topic)


def _start_activemq(d: Path, info: dict, *, tls, tls_version, require_cert, users, persistence, port,
                    tls_port, ws, ws_port, deny, ciphers) -> subprocess.Popen:
    if ws or ws_port:
        raise ValueError("--kind activemq has no websocket transport (Debian does not package activemq-http)")
    if not os.path.exists(ACTIVEMQ_JAR):
        raise RuntimeError("activemq is not installed (scripts/setup.sh installs it)")
    missing = [j for j in ACTIVEMQ_EXTRA_JARS if not os.path.exists(j)]
    if missing:
        raise RuntimeError(f"missing {missing} (apt-get install libmqtt-client-java; scripts/setup.sh)")
    port = port or free_port()
    data = d / "data"
    if not persistence and data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True, exist_ok=True)
    connectors = [f'<transportConnector name="mqtt" uri="mqtt://127.0.0.1:{port}?transport.tcpNoDelay=true"/>']
    ssl_context = ""
    if tls:
        certs = make_certs(d / "certs")
        info.update(certs)
        tls_port = tls_port or free_port()
        info["tls_port"] = tls_port
        ks, ts = d / "certs" / "server.p12", d / "certs" / "trust.p12"
        if not ks.exists():
            _openssl("pkcs12", "-export", "-in", certs["server_cert"], "-inkey", certs["server_key"],
                     "-certfile", certs["ca"], "-name", "server", "-out", str(ks), "-passout", "pass:oc2test",
                     cwd=d)
        if not ts.exists():
            subprocess.run(["keytool", "-importcert", "-noprompt", "-alias", "ca", "-file", certs["ca"],
                            "-keystore", str(ts), "-storetype", "PKCS12", "-storepass", "oc2test"],
                           check=True, capture_output=True)
        ssl_context = (f'<sslContext><sslContext keyStore="file:{_xml(str(ks))}" keyStoreType="pkcs12" '
                       f'keyStorePassword="oc2test" trustStore="file:{_xml(str(ts))}" trustStoreType="pkcs12" '
                       f'trustStorePassword="oc2test"/></sslContext>')
        params = ["transport.tcpNoDelay=true"]
        if require_cert:
            params.append("needClientAuth=true")
        if tls_version:
            params.append("transport.enabledProtocols=" + {"tlsv1": "TLSv1", "tlsv1.1": "TLSv1.1",
                                                           "tlsv1.2": "TLSv1.2", "tlsv1.3": "TLSv1.3"}
                          .get(tls_version, tls_version))
        if ciphers:
            params.append("transport.enabledCipherSuites=" + ciphers.replace(":", ","))
        connectors.append(f'<transportConnector name="mqtt+ssl" '
                          f'uri="{_xml(f"mqtt+ssl://127.0.0.1:{tls_port}?" + "&".join(params))}"/>')
    plugins = []
    if users:
        entries = "".join(f'<authenticationUser username="{_xml(n)}" password="{_xml(p)}" groups="users"/>'
                          for n, p in users)
        plugins.append(f'<simpleAuthenticationPlugin anonymousAccessAllowed="false"><users>{entries}</users>'
                       f'</simpleAuthenticationPlugin>')
    classpath = list(ACTIVEMQ_EXTRA_JARS)
    if deny:
        classpath.append(str(_activemq_deny_plugin()))
        values = "".join(f"<value>{_xml(f'{u}:{m}:{_activemq_topic(t)}')}</value>" for u, m, t in deny)
        plugins.append('<bean xmlns="http://www.springframework.org/schema/beans" class="oc2test.DenyPlugin">'
                       f'<property name="rules"><list>{values}</list></property></bean>')
    store = (f'<persistenceAdapter><kahaDB directory="{_xml(str(data / "kahadb"))}" '
             f'journalMaxFileLength="8mb"/></persistenceAdapter>' if persistence else "")
    xml = f"""<beans xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans-2.0.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="oc2test" useJmx="false"
          persistent="{'true' if persistence else 'false'}" dataDirectory="{_xml(str(data))}"
          advisorySupport="false" schedulerSupport="false" useShutdownHook="true">
    <managementContext><managementContext createConnector="false"/></managementContext>
    {store}
    <systemUsage><systemUsage>
      <memoryUsage><memoryUsage percentOfJvmHeap="70"/></memoryUsage>
      <storeUsage><storeUsage limit="1 gb"/></storeUsage>
      <tempUsage><tempUsage limit="1 gb"/></tempUsage>
    </systemUsage></systemUsage>
    {ssl_context}
    <plugins>{''.join(plugins)}</plugins>
    <transportConnectors>
      {chr(10).join('      ' + c for c in connectors).strip()}
    </transportConnectors>
  </broker>
</beans>
"""
    conf = d / "activemq.xml"
    conf.write_text(xml)
    log = d / "activemq.log"
    (d / "log4j.properties").write_text(
        "log4j.rootLogger=INFO, logfile\n"
        "log4j.logger.org.springframework=WARN\n"
        "log4j.logger.org.apache.xbean=WARN\n"
        "log4j.appender.logfile=org.apache.log4j.FileAppender\n"
        f"log4j.appender.logfile.file={log}\n"
        "log4j.appender.logfile.append=true\n"
        "log4j.appender.logfile.layout=org.apache.log4j.PatternLayout\n"
        "log4j.appender.logfile.layout.ConversionPattern=%d | %-5p | %m | %c | %t%n\n")
    cmd = [JAVA, *ACTIVEMQ_JVM_OPTS,
           f"-Dactivemq.home={ACTIVEMQ_HOME}", f"-Dactivemq.base={d}", f"-Dactivemq.conf={d}",
           f"-Dactivemq.data={data}", f"-Dactivemq.classpath={':'.join([str(d), *classpath])}",
           f"-Dlog4j.configuration=file:{d / 'log4j.properties'}",
           f"-Djava.io.tmpdir={data}",
           "-jar", ACTIVEMQ_JAR, "start", f"xbean:file:{conf}"]
    proc = _popen(cmd, d)
    try:
        probe = users[0] if users else (None, None)
        _wait_mqtt_ready(port, proc, [log, d / "stdout.log"], START_TIMEOUT["activemq"], "activemq", *probe)
        if tls:
            _wait_listening(tls_port, proc, [log, d / "stdout.log"], 10.0, "activemq")
    except Exception:
        _kill(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    info.update({"port": port, "log": str(log), "conf": str(conf)})
    return proc


# ---------------------------------------------------------------------------
# fake servers (run as `broker.py serve-fake`, a process of their own)

def _start_fake(d: Path, info: dict, kind: str, *, port, upstream) -> subprocess.Popen:
    if kind in ("v311-proxy", "recorder") and not upstream:
        raise ValueError(f"--kind {kind} needs --upstream PORT")
    cmd = [sys.executable, os.path.abspath(__file__), "serve-fake", "--kind", kind, "--dir", str(d),
           "--port", str(port or 0)]
    if upstream:
        cmd += ["--upstream", str(upstream)]
    log = d / "fake.log"
    with open(log, "ab") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=d)
    line = b""
    deadline = time.monotonic() + 10
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while not line.endswith(b"\n") and time.monotonic() < deadline:
            if sel.select(timeout=0.1):
                chunk = os.read(proc.stdout.fileno(), 64)
                if not chunk:
                    break
                line += chunk
    proc.stdout.close()
    if not line.strip().isdigit():
        _kill(proc.pid, signal.SIGKILL)
        proc.wait()
        raise RuntimeError(f"fake {kind} did not start:\n{_tail(log)}")
    info.update({"port": int(line), "log": str(log), "conf": None})
    if upstream:
        info["upstream"] = upstream
    if kind == "recorder":
        info["packets"] = str(d / "packets.jsonl")
    return proc


PACKET_TYPES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL", 7: "PUBCOMP",
                8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK", 12: "PINGREQ", 13: "PINGRESP",
                14: "DISCONNECT", 15: "AUTH"}
# MQTT 5 property id → value type.
_PROP_TYPES = {1: "byte", 2: "u32", 3: "str", 8: "str", 9: "bin", 11: "varint", 17: "u32", 18: "str", 19: "u16",
               21: "str", 22: "bin", 23: "byte", 24: "u32", 25: "byte", 26: "str", 28: "str", 31: "str",
               33: "u16", 34: "u16", 35: "u16", 36: "byte", 37: "byte", 38: "pair", 39: "u32", 40: "byte",
               41: "byte", 42: "byte"}


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def byte(self) -> int:
        self.pos += 1
        return self.data[self.pos - 1]

    def u16(self) -> int:
        self.pos += 2
        return struct.unpack_from("!H", self.data, self.pos - 2)[0]

    def u32(self) -> int:
        self.pos += 4
        return struct.unpack_from("!I", self.data, self.pos - 4)[0]

    def varint(self) -> int:
        n, mult = 0, 1
        while True:
            b = self.byte()
            n += (b & 0x7F) * mult
            if not b & 0x80:
                return n
            mult *= 128

    def bin(self) -> bytes:
        n = self.u16()
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def str(self) -> str:
        return self.bin().decode("utf-8", "replace")

    def props(self) -> dict:
        end = self.varint()
        end += self.pos
        out: dict = {}
        while self.pos < end:
            pid = self.varint()
            kind = _PROP_TYPES.get(pid)
            if kind is None:
                out["unknown"] = self.data[self.pos:end].hex()
                self.pos = end
                break
            if kind == "pair":
                out.setdefault(str(pid), []).append([self.str(), self.str()])
            elif kind == "bin":
                out[str(pid)] = self.bin().hex()
            else:
                out[str(pid)] = getattr(self, kind)()
        return out

    def rest(self) -> bytes:
        return self.data[self.pos:]


def decode_packet(packet: bytes, level: int | None) -> dict:
    """Decodes a client→broker MQTT packet (fixed header included) into a JSON-able dict."""
    first = packet[0]
    ptype = first >> 4
    rec: dict = {"type": PACKET_TYPES.get(ptype, f"TYPE{ptype}"), "hex": packet.hex()}
    r = _Reader(packet)
    r.byte()
    r.varint()
    try:
        if ptype == 1:
            rec["protocol_name"] = r.str()
            rec["protocol_level"] = lvl = r.byte()
            flags = r.byte()
            rec.update({"clean_start": bool(flags & 0x02), "will_flag": bool(flags & 0x04),
                        "will_qos": (flags >> 3) & 3, "will_retain": bool(flags & 0x20),
                        "password_flag": bool(flags & 0x40), "username_flag": bool(flags & 0x80)})
            rec["keep_alive"] = r.u16()
            if lvl == 5:
                rec["properties"] = r.props()
            rec["client_id"] = r.str()
            if flags & 0x04:
                if lvl == 5:
                    rec["will_properties"] = r.props()
                rec["will_topic"] = r.str()
                rec["will_payload_hex"] = r.bin().hex()
            if flags & 0x80:
                rec["username"] = r.str()
        elif ptype == 8:
            rec["packet_id"] = r.u16()
            if level == 5:
                rec["properties"] = r.props()
            subs = []
            while r.pos < len(packet):
                flt = r.str()
                opts = r.byte()
                subs.append({"filter": flt, "max_qos": opts & 3, "no_local": bool(opts & 4),
                             "retain_as_published": bool(opts & 8), "retain_handling": (opts >> 4) & 3})
            rec["subscriptions"] = subs
        elif ptype == 3:
            qos = (first >> 1) & 3
            rec.update({"qos": qos, "retain": bool(first & 1), "dup": bool(first & 8), "topic": r.str()})
            if qos:
                rec["packet_id"] = r.u16()
            if level == 5:
                rec["properties"] = r.props()
            rec["payload_hex"] = r.rest().hex()
        elif ptype == 10:
            rec["packet_id"] = r.u16()
            if level == 5:
                rec["properties"] = r.props()
            filters = []
            while r.pos < len(packet):
                filters.append(r.str())
            rec["filters"] = filters
        elif ptype in (4, 5, 6, 7):
            rec["packet_id"] = r.u16()
            if level == 5 and r.pos < len(packet):
                rec["reason_code"] = r.byte()
        elif ptype in (14, 15) and level == 5 and r.pos < len(packet):
            rec["reason_code"] = r.byte()
            if r.pos < len(packet):
                rec["properties"] = r.props()
    except (IndexError, struct.error, UnicodeDecodeError) as e:
        rec["decode_error"] = str(e)
    return rec


def _split_packet(buf: bytearray) -> bytes | None:
    """Removes and returns one whole MQTT packet from buf, None if incomplete."""
    if len(buf) < 2:
        return None
    n, mult, i = 0, 1, 1
    while True:
        if i >= len(buf):
            return None
        b = buf[i]
        n += (b & 0x7F) * mult
        i += 1
        if not b & 0x80:
            break
        mult *= 128
        if i > 4:
            raise ValueError("malformed remaining length")
    if len(buf) < i + n:
        return None
    packet = bytes(buf[:i + n])
    del buf[:i + n]
    return packet


async def _serve_fake(kind: str, d: Path, port: int, upstream: int | None) -> None:
    conn_ids = iter(range(1, 1 << 30))
    packets = open(d / "packets.jsonl", "a", buffering=1) if kind == "recorder" else None

    def nodelay(w: asyncio.StreamWriter) -> None:
        sock = w.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record=None) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if record:
                    record(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = next(conn_ids)
        nodelay(writer)
        try:
            if kind == "silent":
                while await reader.read(65536):
                    pass
                return
            if kind == "http":
                if await reader.read(65536):
                    body = b"not an MQTT broker\n"
                    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                                 b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n"
                                 + body)
                    await writer.drain()
                return
            buf = bytearray()
            first = None
            while first is None:
                data = await reader.read(65536)
                if not data:
                    return
                buf += data
                try:
                    first = _split_packet(bytearray(buf))
                except ValueError:
                    first = bytes(buf)
            level = None
            if first[0] >> 4 == 1:
                with contextlib.suppress(Exception):
                    level = decode_packet(first, None).get("protocol_level")
            if kind == "v311-proxy" and level == 5:
                print(f"conn {conn}: MQTT 5 CONNECT, closing", file=sys.stderr, flush=True)
                return
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
            except OSError as e:
                print(f"conn {conn}: upstream {upstream}: {e}", file=sys.stderr, flush=True)
                return
            nodelay(up_writer)
            record: object = None
            if packets is not None:
                pending = bytearray()
                state = {"level": level}

                def record_packets(data: bytes) -> None:
                    t = time.monotonic()
                    pending.extend(data)
                    while True:
                        try:
                            packet = _split_packet(pending)
                        except ValueError:
                            packets.write(json.dumps({"t": t, "conn": conn, "type": "MALFORMED",
                                                      "hex": bytes(pending).hex()}) + "\n")
                            pending.clear()
                            return
                        if packet is None:
                            return
                        rec = decode_packet(packet, state["level"])
                        if rec["type"] == "CONNECT" and "protocol_level" in rec:
                            state["level"] = rec["protocol_level"]
                        packets.write(json.dumps({"t": t, "conn": conn, **rec}) + "\n")

                record = record_packets
            if callable(record):
                record(bytes(buf))
            up_writer.write(bytes(buf))
            await up_writer.drain()
            await asyncio.gather(pipe(reader, up_writer, record), pipe(up_reader, writer))
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    bound = server.sockets[0].getsockname()[1]
    os.write(1, f"{bound}\n".encode())
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    print(f"fake {kind} listening on {bound}" + (f", upstream {upstream}" if upstream else ""),
          file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


# ---------------------------------------------------------------------------
# start / stop

def start(d: Path, *, kind: str = "mosquitto", tls: bool = False, tls_version: str | None = None,
          require_cert: bool = False, users: list[str] | None = None, acl: list[str] | None = None,
          persistence: bool = False, port: int | None = None, tls_port: int | None = None,
          ws: bool = False, ws_port: int | None = None, deny: list[str] | None = None,
          ciphers: str | None = None, upstream: int | None = None, cluster: int | None = None,
          queues: str = "classic", dynsec: bool = False) -> dict:
    """Starts a broker (or fake server); returns its description (see the module doc)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r} (one of {', '.join(KINDS)})")
    d = Path(d).resolve()
    d.mkdir(parents=True, exist_ok=True)
    people = _parse_users(users)
    rules = _parse_deny(deny, people)
    if cluster is not None:
        if kind != "rabbitmq":
            raise ValueError("--cluster is for --kind rabbitmq")
        if tls or acl or persistence or port or tls_port or ws or ws_port or ciphers or upstream:
            raise ValueError("--cluster takes only --user, --deny and --queues")
        return _start_cluster(d, cluster, users=users or [], deny=deny or [], queues=queues)
    if acl and kind != "mosquitto":
        raise ValueError("--acl is Mosquitto's acl_file syntax; use --deny for the other kinds")
    if dynsec and (kind != "mosquitto" or people or rules or acl):
        raise ValueError("--dynsec is for --kind mosquitto, without --user, --deny or --acl "
                         "(make clients and roles with mosquitto_ctrl)")
    if kind in FAKE_KINDS and (tls or people or rules or persistence or ws or ws_port):
        raise ValueError(f"--kind {kind} takes only --port and --upstream")
    info: dict = {"kind": kind, "port": None, "tls_port": None, "ws_port": None, "wss_port": None, "dir": str(d)}
    companions: list[dict] = []
    if kind == "mosquitto":
        proc = _start_mosquitto(d, info, tls=tls, tls_version=tls_version, require_cert=require_cert,
                                users=people, acl=acl, persistence=persistence, port=port, tls_port=tls_port,
                                ws=ws, ws_port=ws_port, deny=rules, ciphers=ciphers, dynsec=dynsec)
    elif kind == "rabbitmq":
        proc, companions = _start_rabbitmq(d, info, tls=tls, tls_version=tls_version, require_cert=require_cert,
                                           users=people, persistence=persistence, port=port, tls_port=tls_port,
                                           ws_port=ws_port, deny=rules, ciphers=ciphers)
    elif kind == "activemq":
        proc = _start_activemq(d, info, tls=tls, tls_version=tls_version, require_cert=require_cert,
                               users=people, persistence=persistence, port=port, tls_port=tls_port, ws=ws,
                               ws_port=ws_port, deny=rules, ciphers=ciphers)
    else:
        proc = _start_fake(d, info, kind, port=port, upstream=upstream)
    _STARTED[proc.pid] = proc
    # Nothing to save without persistence: the JVM/BEAM brokers are killed outright.
    hard = kind in ("rabbitmq", "activemq") and not persistence
    _register(proc.pid, {"kind": kind, "dir": str(d), "companions": companions,
                         "grace": 0.0 if hard else STOP_GRACE.get(kind, 5.0)})
    info["pid"] = proc.pid
    return info


def stop(pid: int, timeout: float | None = None) -> None:
    """Stops the broker with this PID (SIGTERM, then SIGKILL), then what it left behind
    (RabbitMQ's epmd and erl_child_setup)."""
    reg = _registry() / f"{pid}.json"
    record: dict = {}
    with contextlib.suppress(OSError, ValueError):
        record = json.loads(reg.read_text())
    if record.get("cluster"):  # a RabbitMQ cluster (PID: its epmd): every node first, outright
        nodes = []
        with contextlib.suppress(OSError, ValueError):
            nodes = json.loads(Path(record["cluster"]).read_text())["nodes"]
        for n in nodes:
            if n.get("pid"):
                stop(n["pid"], timeout=0.0)
    grace = timeout if timeout is not None else record.get("grace", 5.0)
    proc = _STARTED.pop(pid, None)
    starttime = record.get("starttime")
    # A recorded start time that no longer matches means the PID was reused: leave it alone.
    ours = proc is not None or starttime is None or _alive(pid, starttime)
    children = _descendants(pid) if ours else []
    if proc is not None:
        if grace > 0:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(grace)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    elif ours:
        _kill(pid, signal.SIGTERM if grace > 0 else signal.SIGKILL, starttime)
        if not _wait_gone(pid, grace, starttime):
            _kill(pid, signal.SIGKILL, starttime)
            _wait_gone(pid, 5.0, starttime)
    for cpid, cst in children:  # e.g. erl_child_setup, normally gone with beam
        _kill(cpid, signal.SIGKILL, cst)
    for c in record.get("companions", []):  # e.g. the broker's own epmd
        companion = _STARTED.pop(c["pid"], None)
        _kill(c["pid"], signal.SIGTERM, c.get("starttime"))
        if companion is not None:
            try:
                companion.wait(2)
            except subprocess.TimeoutExpired:
                companion.kill()
                companion.wait()
        elif not _wait_gone(c["pid"], 2.0, c.get("starttime")):
            _kill(c["pid"], signal.SIGKILL, c.get("starttime"))
    with contextlib.suppress(OSError):
        reg.unlink()


class Broker:
    """Context manager around :func:`start` / :func:`stop`."""

    def __init__(self, directory, **options):
        self.directory = Path(directory)
        self.options = options
        self.info: dict = {}

    def __enter__(self) -> Broker:
        self.info = start(self.directory, **self.options)
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self.info.get("pid"):
            stop(self.info["pid"])
            self.info["pid"] = None

    def restart(self) -> None:
        """Stops and starts again on the same ports (and persistence file)."""
        self.stop()
        self.info = start(self.directory, **{**self.options, "port": self.info["port"],
                                             "tls_port": self.info.get("tls_port"),
                                             "ws_port": self.info.get("ws_port")})

    def __getattr__(self, name):
        try:
            return self.info[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.info['port']}"

    @property
    def tls_url(self) -> str:
        return f"mqtts://localhost:{self.info['tls_port']}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.info['ws_port']}/ws" if self.info.get("kind") == "rabbitmq" \
            else f"ws://127.0.0.1:{self.info['ws_port']}"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start")
    s.add_argument("--dir", required=True, type=Path)
    s.add_argument("--kind", choices=KINDS, default="mosquitto")
    s.add_argument("--tls", action="store_true")
    s.add_argument("--tls-version")
    s.add_argument("--ciphers")
    s.add_argument("--require-cert", action="store_true")
    s.add_argument("--user", action="append", default=[])
    s.add_argument("--deny", action="append", default=[], metavar="USER:read|write:TOPIC")
    s.add_argument("--acl", action="append", default=[])
    s.add_argument("--persistence", action="store_true")
    s.add_argument("--port", type=int)
    s.add_argument("--tls-port", type=int)
    s.add_argument("--ws", action="store_true")
    s.add_argument("--ws-port", type=int)
    s.add_argument("--upstream", type=int)
    s.add_argument("--cluster", type=int, metavar="N")
    s.add_argument("--queues", choices=CLUSTER_QUEUES, default="classic")
    s.add_argument("--dynsec", action="store_true")
    sn = sub.add_parser("start-node")
    sn.add_argument("--dir", required=True, type=Path)
    sn.add_argument("--index", required=True, type=int)
    k = sub.add_parser("stop")
    k.add_argument("--pid", required=True, type=int)
    c = sub.add_parser("certs")
    c.add_argument("--dir", required=True, type=Path)
    pr = sub.add_parser("prepare")
    pr.add_argument("--kind", choices=("rabbitmq", "activemq"), action="append")
    f = sub.add_parser("serve-fake")
    f.add_argument("--kind", choices=FAKE_KINDS, required=True)
    f.add_argument("--dir", required=True, type=Path)
    f.add_argument("--port", type=int, default=0)
    f.add_argument("--upstream", type=int)
    a = p.parse_args(argv)
    if a.cmd == "start":
        try:
            info = start(a.dir, kind=a.kind, tls=a.tls, tls_version=a.tls_version, require_cert=a.require_cert,
                         users=a.user, acl=a.acl, persistence=a.persistence, port=a.port, tls_port=a.tls_port,
                         ws=a.ws, ws_port=a.ws_port, deny=a.deny, ciphers=a.ciphers, upstream=a.upstream,
                         cluster=a.cluster, queues=a.queues, dynsec=a.dynsec)
        except (RuntimeError, ValueError) as e:
            print(f"broker.py: {e}", file=sys.stderr)
            return 1
        print(json.dumps(info), flush=True)
    elif a.cmd == "start-node":
        try:
            info = start_node(a.dir, a.index)
        except (RuntimeError, ValueError, OSError, IndexError) as e:
            print(f"broker.py: {e}", file=sys.stderr)
            return 1
        print(json.dumps(info), flush=True)
    elif a.cmd == "stop":
        stop(a.pid)
    elif a.cmd == "prepare":
        for kind in a.kind or ["rabbitmq", "activemq"]:
            if kind == "rabbitmq":
                print(f"rabbitmq template: {_rabbit_template()}")
            else:
                print(f"activemq deny plugin: {_activemq_deny_plugin()}")
    elif a.cmd == "serve-fake":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve_fake(a.kind, a.dir.resolve(), a.port, a.upstream))
    else:
        print(json.dumps(make_certs(a.dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
