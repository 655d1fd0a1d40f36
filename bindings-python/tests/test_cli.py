"""The command line from the wheel: the ``oc2mqtt`` console script and
``python -m oc2mqtt`` run the Rust command line linked into the extension
(issue 19 item 3), with the binary's output, exit codes and signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import oc2mqtt

SCRIPT = Path(sysconfig.get_path("scripts")) / ("oc2mqtt.exe" if os.name == "nt" else "oc2mqtt")
PYTHON_M = [sys.executable, "-m", "oc2mqtt"]
DENY = '{"action": "deny", "target": {"ipv4_net": "10.0.0.0/8"}}'


def run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False, **kw)


class Serving:
    """``oc2mqtt serve`` in a process of its own, ready once it said so on stderr."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        assert "ready on" in line, line + self.proc.stderr.read()

    def stop(self, sig: int) -> tuple[int, str, str]:
        self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=10)
        return self.proc.returncode, out, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture
def serving() -> Iterator[list[Serving]]:
    started: list[Serving] = []
    yield started
    for s in started:
        s.kill()


def test_the_console_script_is_installed_and_shows_the_rust_help() -> None:
    assert SCRIPT.exists(), f"{SCRIPT}: the wheel installed no console script"
    out = run([str(SCRIPT), "--help"])
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("OpenC2 command and control over MQTT")
    for sub in ("send", "serve", "monitor"):
        assert f"\n  {sub} " in out.stdout
    assert "Usage: oc2mqtt <COMMAND>" in out.stdout
    assert run([*PYTHON_M, "--help"]).stdout == out.stdout
    version = run([*PYTHON_M, "--version"])
    assert (version.returncode, version.stdout) == (0, f"oc2mqtt {oc2mqtt.__version__}\n")


def test_usage_errors_exit_2_with_clap_s_message() -> None:
    out = run([*PYTHON_M, "send", DENY])
    assert out.returncode == 2
    assert "error: the following required arguments were not provided" in out.stderr
    assert "--broker <URL>" in out.stderr and out.stdout == ""
    out = run([str(SCRIPT), "explode"])
    assert out.returncode == 2 and "unrecognized subcommand 'explode'" in out.stderr


def test_python_m_send_to_the_console_script_s_serve(broker: Any, serving: list[Serving]) -> None:
    s = Serving([str(SCRIPT), "serve", "--broker", broker.url, "--device-id", "cli-fw", "--pair", "deny:ipv4_net"])
    serving.append(s)
    out = run([*PYTHON_M, "send", "--broker", broker.url, "--from", "cli-p", "--to", "cli-fw", "--timeout", "5", DENY])
    assert out.returncode == 0, out.stderr
    (line,) = out.stdout.splitlines()
    response = json.loads(line)
    assert response["headers"]["from"] == "cli-fw"
    assert response["body"]["openc2"]["response"]["status"] == 200
    # An undeclared pair: the core's 501, through the same command line.
    query = '{"action": "allow", "target": {"ipv4_net": "10.0.0.0/8"}}'
    out = run([*PYTHON_M, "send", "--broker", broker.url, "--from", "cli-p", "--to", "cli-fw", "--timeout", "5", query])
    assert json.loads(out.stdout)["body"]["openc2"]["response"]["status"] == 501
    code, stdout, stderr = s.stop(signal.SIGTERM)
    assert code == 0, stderr
    assert "SIGTERM: stopped; 1 commands handled" in stderr
    assert '"deny"' in stdout or "deny" in stdout


@pytest.mark.parametrize("how", [[*PYTHON_M], [str(SCRIPT)]], ids=["python -m", "console script"])
def test_ctrl_c_stops_serve_with_exit_0(broker: Any, serving: list[Serving], how: list[str]) -> None:
    s = Serving([*how, "serve", "--broker", broker.url, "--device-id", "cli-sig"])
    serving.append(s)
    code, _, stderr = s.stop(signal.SIGINT)
    assert code == 0, stderr
    assert "SIGINT: stopped" in stderr and "Traceback" not in stderr and "KeyboardInterrupt" not in stderr


def test_send_that_times_out_exits_3(broker: Any) -> None:
    out = run(
        [*PYTHON_M, "send", "--broker", broker.url, "--from", "cli-p", "--to", "cli-nobody", "--timeout", "0.3", DENY]
    )
    assert out.returncode == 3, out.stderr
    assert "cli-nobody" in out.stderr


def test_the_command_line_refuses_to_run_after_a_client_was_made(broker: Any) -> None:
    script = f"""
import oc2mqtt
from oc2mqtt._native import _cli
oc2mqtt.Producer({broker.url!r}, "cli-twice").close()
try:
    _cli(["oc2mqtt", "--version"])
except RuntimeError as e:
    print(e)
"""
    out = run([sys.executable, "-c", script])
    assert out.returncode == 0, out.stderr
    assert "runs in a process of its own" in out.stdout
