#!/usr/bin/env python3
"""Throwaway Mosquitto brokers for tests, shared by every language.

Each broker gets its own directory, a generated config, a free port on
127.0.0.1, ``set_tcp_nodelay true``, and is stopped by PID, never by name.
It never touches the machine's shared broker on 1883.

Command line (used by the Rust, C and Node tests and by ``make demo``)::

    broker.py start --dir DIR [--tls] [--tls-version tlsv1.1] [--require-cert]
                    [--user NAME:PASSWORD]... [--acl LINE]... [--persistence]
                    [--port N] [--tls-port N]
        prints one JSON line: {"pid", "port", "tls_port", "dir", "ca", "wrong_ca",
                               "client_cert", "client_key", "log"}
    broker.py stop --pid PID
    broker.py certs --dir DIR      (only generate the certificates)

As a module (pytest)::

    with Broker(tmp_path, tls=True) as b:
        b.port, b.tls_port, b.ca ...
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


# Brokers started by this process, so stop() can reap them (no zombie, no
# "subprocess still running" ResourceWarning).
_STARTED: dict[int, subprocess.Popen] = {}


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


def _wait_listening(port: int, proc: subprocess.Popen, log: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"mosquitto did not listen on {port} within {timeout}s:\n{log.read_text(errors='replace')}")


def start(d: Path, *, tls: bool = False, tls_version: str | None = None, require_cert: bool = False,
          users: list[str] | None = None, acl: list[str] | None = None, persistence: bool = False,
          port: int | None = None, tls_port: int | None = None) -> dict:
    """Starts a broker; returns its description (see the module doc)."""
    d = Path(d).resolve()
    d.mkdir(parents=True, exist_ok=True)
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
    if users:
        pw = d / "passwords"
        pw.write_text("")
        for u in users:
            name, _, password = u.partition(":")
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
    info = {"port": port, "tls_port": None, "dir": str(d)}
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
        if require_cert:
            lines.append("require_certificate true")
    conf = d / "mosquitto.conf"
    conf.write_text("\n".join(l for l in lines if l) + "\n")
    log = d / "mosquitto.log"
    with open(d / "stdout.log", "ab") as out:
        proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_listening(port, proc, d / "stdout.log")
        if tls_port:
            _wait_listening(tls_port, proc, d / "stdout.log")
    except Exception:
        stop(proc.pid)
        raise
    _STARTED[proc.pid] = proc
    info.update({"pid": proc.pid, "log": str(log), "conf": str(conf)})
    return info


def stop(pid: int, timeout: float = 5.0) -> None:
    """Stops the broker with this PID (SIGTERM, then SIGKILL)."""
    proc = _STARTED.pop(pid, None)
    if proc is not None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return
        except ChildProcessError:
            # Not our child: poll for its disappearance.
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class Broker:
    """Context manager around :func:`start` / :func:`stop`."""

    def __init__(self, directory, **options):
        self.directory = Path(directory)
        self.options = options
        self.info: dict = {}

    def __enter__(self) -> "Broker":
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
                                             "tls_port": self.info.get("tls_port")})

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


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start")
    s.add_argument("--dir", required=True, type=Path)
    s.add_argument("--tls", action="store_true")
    s.add_argument("--tls-version")
    s.add_argument("--require-cert", action="store_true")
    s.add_argument("--user", action="append", default=[])
    s.add_argument("--acl", action="append", default=[])
    s.add_argument("--persistence", action="store_true")
    s.add_argument("--port", type=int)
    s.add_argument("--tls-port", type=int)
    k = sub.add_parser("stop")
    k.add_argument("--pid", required=True, type=int)
    c = sub.add_parser("certs")
    c.add_argument("--dir", required=True, type=Path)
    a = p.parse_args(argv)
    if a.cmd == "start":
        info = start(a.dir, tls=a.tls, tls_version=a.tls_version, require_cert=a.require_cert, users=a.user,
                     acl=a.acl, persistence=a.persistence, port=a.port, tls_port=a.tls_port)
        print(json.dumps(info), flush=True)
    elif a.cmd == "stop":
        stop(a.pid)
    else:
        print(json.dumps(make_certs(a.dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
