"""The asyncio API as aiomqtt users expect it (issue 19 item 2): ``async
with``, ``async for`` on Consumer and Monitor, awaitable connects,
``serve_async`` with async and plain handlers, and cancellation that
cleans up: no task, thread or warning left behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

import oc2mqtt

from conftest import BROKER_DIR, HANDLER_RESULTS, result_by_mode

DENY = {"action": "deny", "target": {"ipv4_net": "10.0.0.0/8"}}
T = TypeVar("T")


def run(main: Callable[[], Awaitable[T]]) -> T:
    """asyncio.run, failing the test on anything the loop reports (a task
    destroyed while pending, an exception never retrieved, ...) and on tasks
    or Python threads left behind."""
    reported: list[dict[str, Any]] = []
    threads = threading.active_count()

    async def checked() -> T:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: reported.append(context))
        result = await main()
        left = asyncio.all_tasks() - {asyncio.current_task()}
        assert not left, f"tasks left behind: {left}"
        return result

    result = asyncio.run(checked())
    assert not reported, reported
    assert threading.active_count() == threads, threading.enumerate()
    return result


@pytest.fixture
def url(broker: Any) -> Iterator[str]:
    yield broker.url


def test_async_with_connect_async_for_every_role(url: str) -> None:
    async def main() -> None:
        async with oc2mqtt.Consumer.connect_async(url, "aw-fw", pairs={"deny": ["ipv4_net"]}) as consumer:
            assert isinstance(consumer, oc2mqtt.Consumer) and consumer.device_id == "aw-fw"
            async with oc2mqtt.Monitor.connect_async(url, window=1) as monitor:
                async with oc2mqtt.Producer.connect_async(url, "aw-p") as producer:
                    ex = await producer.send_async(DENY, to="aw-fw", timeout=5)
                    incoming = await consumer.next_async(timeout=5)
                    assert incoming is not None
                    await incoming.reply_async(200)
                    summary = await ex.collect_async()
                    assert summary.complete
                    kinds = [(await monitor.next_async(timeout=5)).kind for _ in range(2)]  # type: ignore[union-attr]
                    assert kinds == ["request", "response"]
                # Closed at the end of the block.
                with pytest.raises(oc2mqtt.ClosedError):
                    await producer.send_async(DENY, to="aw-fw", timeout=1)
            assert await monitor.next_async(timeout=1) is None
        assert await consumer.next_async(timeout=1) is None

    run(main)


def test_awaiting_connect_async_gives_the_connected_object(url: str) -> None:
    async def main() -> None:
        connecting = oc2mqtt.Monitor.connect_async(url)
        assert repr(connecting).startswith("<Connecting Monitor")
        monitor = await connecting
        assert isinstance(monitor, oc2mqtt.Monitor) and monitor.broker == url
        await monitor.close_async()

    run(main)


def test_async_with_an_object_connected_by_its_constructor(url: str) -> None:
    async def main() -> None:
        async with oc2mqtt.Producer(url, "awc-p") as producer, oc2mqtt.Consumer(url, "awc-fw") as consumer:
            assert isinstance(producer, oc2mqtt.Producer) and isinstance(consumer, oc2mqtt.Consumer)
        assert await consumer.next_async(timeout=1) is None

    run(main)


def test_a_failed_connect_async_raises_and_skips_the_block() -> None:
    from broker import free_port

    config = oc2mqtt.ClientConfig(f"mqtt://127.0.0.1:{free_port()}", connect_timeout_secs=2)
    entered = False

    async def main() -> None:
        nonlocal entered
        with pytest.raises(oc2mqtt.ConnectError):
            async with oc2mqtt.Consumer.connect_async(config, "nobody"):
                entered = True

    run(main)
    assert not entered


def test_async_for_on_a_consumer_until_close(url: str) -> None:
    async def main() -> list[str]:
        consumer = await oc2mqtt.Consumer.connect_async(url, "af-fw")
        seen: list[str] = []

        async def device() -> None:
            async for incoming in consumer:
                seen.append(incoming.command["action"])
                await incoming.reply_async(200)
                if len(seen) == 2:
                    await consumer.close_async()

        task = asyncio.ensure_future(device())
        async with oc2mqtt.Producer.connect_async(url, "af-p") as producer:
            for action in ("deny", "allow"):
                cmd = {"action": action, "target": {"ipv4_net": "10.0.0.0/8"}}
                assert (await (await producer.send_async(cmd, to="af-fw", timeout=5)).collect_async()).complete
        await asyncio.wait_for(task, 5)  # the loop ended at close()
        return seen

    assert run(main) == ["deny", "allow"]


def test_async_for_on_a_monitor(url: str) -> None:
    async def main() -> list[str]:
        kinds: list[str] = []
        async with oc2mqtt.Monitor.connect_async(url, window=0.3) as monitor:
            async with oc2mqtt.Producer.connect_async(url, "am-p") as producer:
                await producer.send_async(DENY, to="am-nobody", timeout=0.1)
            async for event in monitor:
                kinds.append(event.kind)
                if event.kind == "unanswered":
                    assert event.missing == ["am-nobody"]
                    break
        return kinds

    assert run(main) == ["request", "unanswered"]


def test_cancelling_async_for_loses_no_command(url: str) -> None:
    async def main() -> str | None:
        async with oc2mqtt.Consumer.connect_async(url, "ac-fw") as consumer:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(consumer.__anext__(), 0.2)
            async with oc2mqtt.Producer.connect_async(url, "ac-p") as producer:
                await producer.send_async(DENY, to="ac-fw", timeout=0.1)
                incoming = await asyncio.wait_for(consumer.__anext__(), 5)
                return incoming.request_id

    assert run(main)


def test_a_command_taken_for_a_cancelled_await_goes_to_the_next_one(url: str) -> None:
    """The race a cancelled ``async for`` or ``wait_for`` can lose: the Rust
    side took the command from the queue and handed it over, and the await
    was cancelled before the event loop got to it."""

    async def main() -> tuple[str | None, str | None]:
        async with oc2mqtt.Consumer.connect_async(url, "uc-fw") as consumer:
            pending = consumer.__anext__()
            # Block the event loop while the command arrives and is handed over.
            with oc2mqtt.Producer(url, "uc-p") as p:
                sent = p.send(DENY, to="uc-fw", timeout=0.1).request_id
            time.sleep(0.5)
            pending.cancel()
            incoming = await consumer.next_async(timeout=2)
            return sent, incoming.request_id if incoming else None

    sent, got = run(main)
    assert got == sent


async def statuses(
    producer: oc2mqtt.Producer, commands: list[dict[str, Any]], to: str
) -> list[tuple[int | None, str | None]]:
    async def one(cmd: dict[str, Any]) -> tuple[int | None, str | None]:
        (reply,) = (await (await producer.send_async(cmd, to=to, timeout=5)).collect_async()).responses
        return reply.status, reply.status_text

    return list(await asyncio.gather(*(one(c) for c in commands)))


def command(action: str) -> dict[str, Any]:
    return {"action": action, "target": {"ipv4_net": "10.0.0.0/8"}}


def test_serve_async_stops_a_handler_past_handler_timeout_and_answers_500(url: str) -> None:
    stopped: list[str] = []

    async def handler(cmd: dict[str, Any]) -> Any:
        if cmd["action"] == "contain":
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                stopped.append("contain")
                raise
        return None

    async def main() -> tuple[list[Any], float]:
        async with oc2mqtt.Consumer.connect_async(url, "ht-fw", handler_timeout=0.5) as consumer:
            serving = asyncio.ensure_future(consumer.serve_async(handler))
            async with oc2mqtt.Producer.connect_async(url, "ht-p") as producer:
                started = time.monotonic()
                got = await statuses(producer, [command("contain"), command("deny"), command("allow")], "ht-fw")
                took = time.monotonic() - started
        await serving
        return got, took

    got, took = run(main)
    assert got == [(500, "handler timed out after 0.5 s"), (200, None), (200, None)]
    assert took < 3, took
    assert stopped == ["contain"]


def test_serve_async_answers_async_and_plain_handlers_by_the_core_s_rules(url: str) -> None:
    async def async_handler(cmd: dict[str, Any]) -> Any:
        await asyncio.sleep(0)
        action = cmd["action"]
        if action == "deny":
            return {"status": 200, "results": {"slpf": {"rule_number": 7}}}
        if action == "allow":
            return None
        if action == "update":
            return 404
        if action == "contain":
            raise RuntimeError("firewall unreachable")
        return {"status": 999}

    def plain_handler(cmd: dict[str, Any]) -> Any:
        return 404 if cmd["action"] == "deny" else None

    async def main() -> tuple[list[Any], list[Any]]:
        async with (
            oc2mqtt.Consumer.connect_async(url, "sa-fw") as c1,
            oc2mqtt.Consumer.connect_async(url, "sp-fw") as c2,
        ):
            serving = [
                asyncio.ensure_future(c1.serve_async(async_handler)),
                asyncio.ensure_future(c2.serve_async(plain_handler)),
            ]
            async with oc2mqtt.Producer.connect_async(url, "sa-p") as producer:
                got_async = await statuses(
                    producer, [command(a) for a in ("deny", "allow", "update", "contain", "restart")], "sa-fw"
                )
                got_plain = await statuses(producer, [command("deny"), command("allow")], "sp-fw")
        # close() at the end of the blocks ends both serve_async calls.
        await asyncio.wait_for(asyncio.gather(*serving), 5)
        return got_async, got_plain

    got_async, got_plain = run(main)
    assert got_async[:4] == [(200, None), (200, None), (404, None), (500, "firewall unreachable")]
    assert got_async[4] == (
        500,
        "the handler returned an invalid response: status: unknown status code 999; "
        "expected one of 102, 200, 400, 401, 403, 404, 500, 501, 503",
    )
    assert got_plain == [(404, None), (200, None)]


def test_serve_async_answers_every_handler_result_as_serve_does(url: str) -> None:
    async def handler(cmd: dict[str, Any]) -> Any:
        await asyncio.sleep(0)
        return result_by_mode(cmd)

    modes = [mode for mode, _, _ in HANDLER_RESULTS]

    async def main() -> list[Any]:
        async with oc2mqtt.Consumer.connect_async(url, "sm-fw") as c:
            serving = asyncio.ensure_future(c.serve_async(handler))
            async with oc2mqtt.Producer.connect_async(url, "sm-p") as producer:
                commands = [{**command("deny"), "args": {"mode": m}} for m in modes]
                got = await statuses(producer, commands, "sm-fw")
        await asyncio.wait_for(serving, 5)
        return got

    assert run(main) == [(status, text) for _, status, text in HANDLER_RESULTS]


def test_serve_async_runs_async_handlers_concurrently(url: str) -> None:
    async def slow(cmd: dict[str, Any]) -> None:
        await asyncio.sleep(0.5)

    async def main() -> float:
        async with oc2mqtt.Consumer.connect_async(url, "sc-fw") as consumer:
            serving = asyncio.ensure_future(consumer.serve_async(slow))
            async with oc2mqtt.Producer.connect_async(url, "sc-p") as producer:
                t0 = time.monotonic()
                assert await statuses(producer, [DENY] * 20, "sc-fw") == [(200, None)] * 20
                took = time.monotonic() - t0
        await asyncio.wait_for(serving, 5)
        return took

    assert run(main) < 2.5, "20 handlers of 0.5 s each ran one after another"


def test_close_ends_serve_async_once_the_running_handlers_finished(url: str) -> None:
    async def main() -> list[str]:
        consumer = await oc2mqtt.Consumer.connect_async(url, "sx-fw")
        started = asyncio.Event()
        finished: list[str] = []

        async def handler(cmd: dict[str, Any]) -> int:
            started.set()
            await asyncio.sleep(0.3)
            finished.append(cmd["action"])
            return 200

        serving = asyncio.ensure_future(consumer.serve_async(handler))
        async with oc2mqtt.Producer.connect_async(url, "sx-p") as producer:
            await producer.send_async(DENY, to="sx-fw", timeout=0.1)
            await asyncio.wait_for(started.wait(), 5)
            await consumer.close_async()
            await asyncio.wait_for(serving, 5)
        return finished

    assert run(main) == ["deny"]


def test_cancelling_serve_async_cancels_handlers_answers_500_and_cleans_up(url: str) -> None:
    async def main() -> tuple[list[Any], Any]:
        async with oc2mqtt.Consumer.connect_async(url, "sk-fw") as consumer:
            started = asyncio.Event()
            cancelled: list[str] = []

            async def forever(cmd: dict[str, Any]) -> None:
                started.set()
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    cancelled.append(cmd["action"])
                    raise

            serving = asyncio.ensure_future(consumer.serve_async(forever))
            async with oc2mqtt.Producer.connect_async(url, "sk-p") as producer:
                ex = await producer.send_async(DENY, to="sk-fw", timeout=5)
                await asyncio.wait_for(started.wait(), 5)
                serving.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await serving
                assert cancelled == ["deny"]
                replies = [(r.status, r.status_text) for r in (await ex.collect_async()).responses]
                # The consumer is still connected and can be served again.
                again = asyncio.ensure_future(consumer.serve_async(lambda cmd: 200))
                (r,) = (await (await producer.send_async(DENY, to="sk-fw", timeout=5)).collect_async()).responses
                again.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await again
                return replies, r.status

    replies, status = run(main)
    # The core's answer to a handler stopped before it finished.
    assert replies == [(500, "serving stopped before the handler finished")]
    assert status == 200


def test_serve_async_with_a_timeout(url: str) -> None:
    async def main() -> None:
        async with oc2mqtt.Consumer.connect_async(url, "st-fw") as consumer:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(consumer.serve_async(lambda cmd: None), 0.3)

    run(main)


def test_serve_async_refuses_what_is_not_callable(url: str) -> None:
    with oc2mqtt.Consumer(url, "sn-fw") as consumer:
        with pytest.raises(TypeError, match="handler: expected a callable"):
            consumer.serve_async(42)  # type: ignore[arg-type,unused-coroutine]


SIGINT_SCRIPT = """
import asyncio, sys
sys.path.insert(0, {broker_dir!r})
import oc2mqtt

async def handler(cmd):
    return 200

async def main():
    async with oc2mqtt.Consumer.connect_async({url!r}, "sig-async-fw") as consumer:
        print("ready", flush=True)
        await consumer.serve_async(handler)

try:
    asyncio.run(main())
except KeyboardInterrupt:
    print("stopped", flush=True)
"""


def test_ctrl_c_stops_serve_async_cleanly(url: str) -> None:
    script = SIGINT_SCRIPT.format(broker_dir=str(BROKER_DIR), url=url)
    proc = subprocess.Popen(
        [sys.executable, "-W", "error", "-X", "dev", "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out.strip() == "stopped" and err == ""
