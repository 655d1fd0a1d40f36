"""An asyncio script exits cleanly, even with both cores busy (issue 19).

A runtime thread that waited for the GIL while the interpreter finalized was
ended by CPython, which aborted the process (SIGABRT, exit 134) in about 1
run of 13 here. The binding's atexit hook now stops runtime threads from
taking the GIL before finalization starts.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

SCRIPT = """
import asyncio, sys
import oc2mqtt

async def main():
    url, n = sys.argv[1], sys.argv[2]
    consumer = oc2mqtt.Consumer(url, f"fw-{n}")
    producer = await oc2mqtt.Producer.connect_async(url, f"p-{n}")

    async def answer():
        incoming = await consumer.next_async(timeout=5)
        await incoming.reply_async(200)

    task = asyncio.ensure_future(answer())
    exchange = await producer.send_async({"action": "deny", "target": {"ipv4_net": "10.0.0.1/32"}},
                                         to=[f"fw-{n}"], timeout=5)
    summary = await exchange.collect_async()
    await task
    assert summary.complete, summary

asyncio.run(main())
"""

RUNS = 200


@pytest.mark.timeout(180)
def test_an_asyncio_script_exits_cleanly_with_both_cores_busy(broker) -> None:
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:

        def run(n: int) -> tuple[int, str]:
            argv = [sys.executable, "-c", SCRIPT, broker.url, str(n)]
            p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            return p.returncode, p.stderr[-500:]

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(run, range(RUNS)))
    finally:
        for b in busy:
            b.kill()
            b.wait()
    codes = Counter(code for code, _ in results)
    failures = [err for code, err in results if code != 0]
    assert codes == {0: RUNS}, (codes, failures[:3])
