"""The README's asyncio and send_collect examples run as printed, against a
real broker, with every warning an error (and asyncio's debug mode on)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import oc2mqtt

from conftest import Serving

README = Path(__file__).resolve().parents[1] / "README.md"


def block(name: str) -> str:
    text = README.read_text()
    found = re.search(rf"<!-- tested: {name} -->\n```python\n(.*?)```", text, re.S)
    assert found, f"README.md has no block marked 'tested: {name}'"
    return found.group(1)


def test_the_asyncio_example_runs(broker: Any) -> None:
    code = block("asyncio").replace("mqtt://127.0.0.1:1883", broker.url)
    out = subprocess.run(
        [sys.executable, "-W", "error", "-X", "dev", "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    lines = out.stdout.splitlines()
    assert re.fullmatch(
        r"Reply\(sender='fw-1', status=200, topic='oc2/rsp(/controller-1)?', latency=[0-9.e-]+\)", lines[0]
    )
    assert lines[1:] == ["request controller-1", "response fw-1"]


def test_the_send_collect_example_runs(broker: Any, serve: Callable[..., Serving]) -> None:
    # Both addressed consumers answer `query features` themselves (the core does).
    for name in ("fw-1", "fw-2"):
        serve(oc2mqtt.Consumer(broker.url, name), lambda c: None)
    code = block("send_collect").replace("mqtt://127.0.0.1:1883", broker.url)
    out = subprocess.run(
        [sys.executable, "-W", "error", "-X", "dev", "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert sorted(out.stdout.splitlines()) == ["fw-1 200", "fw-2 200"]
