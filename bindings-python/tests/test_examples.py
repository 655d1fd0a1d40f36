"""The examples in examples/python/ run as documented, against a real broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO

EXAMPLES = REPO / "examples" / "python"


def run(script: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


class Background:
    def __init__(self, script: str, *args: str, ready: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-u", str(EXAMPLES / script), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline().strip()
        assert first == ready, first + (self.proc.stderr.read() if self.proc.stderr else "")

    def stop(self) -> tuple[str, str, int]:
        self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=15)
        return out, err, self.proc.returncode


@pytest.fixture
def device(broker: Any) -> Iterator[Background]:
    d = Background("consumer.py", "--broker", broker.url, "--device-id", "ex-fw", ready="ex-fw ready")
    yield d
    if d.proc.poll() is None:
        d.stop()


def test_producer_consumer_and_monitor(broker: Any, device: Background) -> None:
    monitor = Background("monitor.py", "--broker", broker.url, "--window", "1", ready="monitoring")
    query = run("producer.py", "--broker", broker.url, "--device-id", "ex-fw")
    assert query.returncode == 0, query.stderr
    lines = query.stdout.splitlines()
    assert lines[0].startswith("sent query (") and lines[-1] == "1 response(s)"
    assert (
        lines[1].startswith("ex-fw 200 ") and '"versions": ["1.0"]' in lines[1] and '"profiles": ["slpf"]' in lines[1]
    )
    deny = run(
        "producer.py",
        "--broker",
        broker.url,
        "--device-id",
        "ex-fw",
        "--action",
        "deny",
        "--target",
        '{"ipv4_net": "198.51.100.0/24"}',
    )
    assert deny.returncode == 0 and '"rule_number": 1' in deny.stdout, deny.stdout + deny.stderr
    ghost = run("producer.py", "--broker", broker.url, "--device-id", "ex-ghost", "--timeout", "0.5")
    assert ghost.returncode == 1 and "no final response" in ghost.stderr
    time.sleep(2)  # past the monitor's pairing window, so it reports ex-ghost
    out, err, rc = monitor.stop()
    assert rc == 0, err
    assert "REQUEST oc2/cmd/device/ex-fw producer-1 deny" in out
    assert "RESPONSE oc2/rsp ex-fw 200" in out and " ms" in out
    assert "UNANSWERED" in out and "missing=ex-ghost" in out
    out, err, rc = device.stop()
    assert rc == 0 and 'deny {"ipv4_net": "198.51.100.0/24"}' in out and out.rstrip().endswith("stopped"), err


def test_otupy_swap_example(broker: Any, device: Background) -> None:
    r = run("otupy_swap.py", "--broker", "127.0.0.1", "--port", str(broker.port), "--device-id", "ex-fw")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ex-fw 200 ")


def test_producer_reports_errors_plainly(tmp_path: Path) -> None:
    from broker import free_port

    r = run("producer.py", "--broker", f"mqtt://127.0.0.1:{free_port()}", "--device-id", "x")
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr
    env = dict(os.environ, OC2_PASSWORD="x")
    r = subprocess.run(
        [sys.executable, str(EXAMPLES / "producer.py"), "--broker", "http://x"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert r.returncode == 2 and "unsupported scheme 'http'" in r.stderr
