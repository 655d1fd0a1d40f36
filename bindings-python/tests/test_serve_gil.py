"""Consumer.serve(handler) runs every command already waiting under one GIL
hold (issue 21): handlers that block, and so release the GIL, still run side
by side, and a handler past its timeout still gives its place to another."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import oc2mqtt

from conftest import Serving

DENY = {"action": "deny", "target": {"ipv4_connection": {"protocol": "tcp", "dst_port": 80}}}


def send_all(url: str, producer_id: str, to: str, n: int, timeout: float) -> list[oc2mqtt.Summary]:
    """n commands in flight at once, each from its own thread."""
    with oc2mqtt.Producer(url, producer_id) as p, ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: p.send(DENY, to=[to], timeout=timeout).collect(), range(n)))


def test_handlers_that_block_run_side_by_side(broker: Any, serve: Callable[..., Serving]) -> None:
    # Each handler waits until all 8 are in: with one handler at a time under
    # the GIL, the barrier breaks and every command is answered 500.
    barrier = threading.Barrier(8, timeout=10)
    threads: set[int] = set()

    def handler(cmd: dict[str, Any]) -> dict[str, Any]:
        threads.add(threading.get_ident())
        barrier.wait()
        return {"status": 200}

    serve(oc2mqtt.Consumer(broker.url, "gil-fw"), handler)
    summaries = send_all(broker.url, "gil-p", "gil-fw", 8, 15)
    assert [s.responses[0].status for s in summaries] == [200] * 8
    assert len(threads) == 8


def test_a_handler_past_its_timeout_gives_its_place_to_another(broker: Any, serve: Callable[..., Serving]) -> None:
    release = threading.Event()

    def handler(cmd: dict[str, Any]) -> None:
        if cmd["target"]["ipv4_connection"].get("dst_port") == 80:
            release.wait(10)

    serve(oc2mqtt.Consumer(broker.url, "gto-fw", handler_timeout=0.5), handler)
    try:
        with oc2mqtt.Producer(broker.url, "gto-p") as p:
            stuck = p.send(DENY, to=["gto-fw"], timeout=10)
            started = time.monotonic()
            first = next(iter(stuck))
            assert first.status == 500 and first.status_text == "handler timed out after 0.5 s"
            assert time.monotonic() - started < 5
            # The stuck handler still holds its thread; the next command runs on another.
            other = dict(DENY, target={"ipv4_connection": {"protocol": "tcp", "dst_port": 443}})
            s = p.send(other, to=["gto-fw"], timeout=5).collect()
            assert s.complete and s.responses[0].status == 200
    finally:
        release.set()


def test_quick_handlers_answer_every_command_once(broker: Any, serve: Callable[..., Serving]) -> None:
    seen: list[str] = []
    lock = threading.Lock()

    def handler(cmd: dict[str, Any]) -> int:
        with lock:
            seen.append(cmd["command_id"])
        return 200

    serve(oc2mqtt.Consumer(broker.url, "gq-fw"), handler)
    summaries = send_all(broker.url, "gq-p", "gq-fw", 64, 15)
    assert all(s.complete and [r.status for r in s.responses] == [200] for s in summaries)
    assert sorted(seen) == sorted(s.request_id for s in summaries)


def test_a_handler_thread_keeps_its_thread_local_state_between_commands(
    broker: Any, serve: Callable[..., Serving]
) -> None:
    # A handler thread keeps one Python thread state for its life, so what a
    # handler keeps in a threading.local (a connection, a cache) is still
    # there for the next command on that thread. With a thread state made for
    # each GIL hold, every command would find the local empty.
    local = threading.local()
    seen: list[tuple[int, int]] = []

    def handler(cmd: dict[str, Any]) -> None:
        local.count = getattr(local, "count", 0) + 1
        seen.append((threading.get_ident(), local.count))

    serve(oc2mqtt.Consumer(broker.url, "tls-fw"), handler)
    with oc2mqtt.Producer(broker.url, "tls-p") as p:
        for _ in range(20):
            assert p.send(DENY, to=["tls-fw"], timeout=5).collect().responses[0].status == 200
    per_thread: dict[int, list[int]] = {}
    for ident, count in seen:
        per_thread.setdefault(ident, []).append(count)
    # One command after another: each thread's counts go 1, 2, 3, ...
    for counts in per_thread.values():
        assert counts == list(range(1, len(counts) + 1))
    assert max(len(c) for c in per_thread.values()) > 1
