"""Producer.send_collect / send_message_collect / send_collect_async (issue
21): ``send(...).collect()`` in one call and one wait, against a real
Mosquitto. Each behaves as the two calls it replaces: the same Summary, the
same errors (a refusal, a broker that does not acknowledge in time), the
same end of the exchange on Ctrl-C or a cancelled await."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import oc2mqtt

from conftest import BROKER_DIR, Serving

DENY = {"action": "deny", "target": {"ipv4_net": "10.0.0.0/8"}}
QUERY = {"action": "query", "target": {"features": ["versions", "profiles", "pairs"]}}


def rule_seven(cmd: dict[str, Any]) -> dict[str, Any]:
    return {"status": 200, "results": {"slpf": {"rule_number": 7}}}


def shape(s: oc2mqtt.Summary) -> dict[str, Any]:
    """What two exchanges of the same command must have in common (not the request id)."""
    return {
        "complete": s.complete,
        "missing": s.missing,
        "missing_count": s.missing_count,
        "len": len(s),
        "replies": sorted(
            (r.sender or "", r.status or 0, r.dialect, r.encoding, str(r.message["body"]["openc2"]["response"]))
            for r in s.responses
        ),
    }


def wait_until(cond: Callable[[], bool], seconds: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_unicast_summary_is_the_one_send_then_collect_gives(broker: Any, serve: Callable[..., Serving]) -> None:
    serve(oc2mqtt.Consumer(broker.url, "sc-fw", profiles=["slpf"]), rule_seven)
    with oc2mqtt.Producer(broker.url, "sc-p") as p:
        two_calls = p.send(DENY, to="sc-fw", timeout=5).collect()
        one_call = p.send_collect(DENY, to="sc-fw", timeout=5)
        assert isinstance(one_call, oc2mqtt.Summary)
        assert shape(one_call) == shape(two_calls)
        assert one_call.complete and one_call.missing == [] and len(one_call) == 1
        (reply,) = one_call.responses
        assert (reply.status, reply.sender) == (200, "sc-fw")
        assert reply.request_id == one_call.request_id != two_calls.request_id
        assert reply.message["headers"]["to"] == ["sc-p"] and 0 < reply.latency < 5
        assert p.open_exchanges == 0


def test_broadcast_with_expect_completes_as_send_then_collect_does(broker: Any, serve: Callable[..., Serving]) -> None:
    for name in ("sb-a", "sb-b", "sb-c"):
        serve(oc2mqtt.Consumer(broker.url, name, profiles=["scbcast"]), lambda c: None)
    with oc2mqtt.Producer(broker.url, "sb-p") as p:
        two_calls = p.send(DENY, profile="scbcast", expect=3, timeout=10).collect()
        t0 = time.monotonic()
        one_call = p.send_collect(DENY, profile="scbcast", expect=3, timeout=10)
        assert time.monotonic() - t0 < 5, "completes at the third response, not at the timeout"
        assert shape(one_call) == shape(two_calls)
        assert one_call.complete and sorted(r.sender or "" for r in one_call.responses) == ["sb-a", "sb-b", "sb-c"]
        # Asking for one more responder than there are: incomplete at the timeout, one missing.
        t0 = time.monotonic()
        short = p.send_collect(DENY, profile="scbcast", expect=4, timeout=0.5)
        assert 0.45 < time.monotonic() - t0 < 3
        assert shape(short) == shape(p.send(DENY, profile="scbcast", expect=4, timeout=0.5).collect())
        assert not short.complete and short.missing_count == 1 and len(short) == 3


def test_addressed_consumers_that_do_not_answer_are_missing(broker: Any, serve: Callable[..., Serving]) -> None:
    serve(oc2mqtt.Consumer(broker.url, "sm-a"), lambda c: None)
    with oc2mqtt.Producer(broker.url, "sm-p") as p:
        s = p.send_collect(DENY, to=["sm-a", "sm-ghost"], timeout=0.5)
        assert not s.complete and s.missing == ["sm-ghost"] and [r.sender for r in s.responses] == ["sm-a"]
        assert shape(s) == shape(p.send(DENY, to=["sm-a", "sm-ghost"], timeout=0.5).collect())


def test_interim_102_is_in_the_summary_before_the_final_response(broker: Any) -> None:
    with oc2mqtt.Consumer(broker.url, "si-fw") as consumer, oc2mqtt.Producer(broker.url, "si-p") as p:

        def device() -> None:
            incoming = consumer.next(timeout=5)
            assert incoming is not None
            incoming.reply(102)
            time.sleep(0.2)
            incoming.reply(200, results={"rule": 1})

        t = threading.Thread(target=device)
        t.start()
        s = p.send_collect(DENY, to="si-fw", timeout=5)
        t.join(5)
        assert [r.status for r in s.responses] == [102, 200] and s.complete


def test_response_requested_none_completes_on_the_puback(broker: Any) -> None:
    with oc2mqtt.Producer(broker.url, "sn-p") as p:
        t0 = time.monotonic()
        s = p.send_collect(dict(DENY, args={"response_requested": "none"}), to="sn-nobody", timeout=5)
        assert s.complete and s.responses == [] and time.monotonic() - t0 < 2


def test_send_message_collect_fills_in_the_headers(broker: Any, serve: Callable[..., Serving]) -> None:
    serve(oc2mqtt.Consumer(broker.url, "sg-fw"), rule_seven)
    with oc2mqtt.Producer(broker.url, "sg-p") as p:
        msg = oc2mqtt.request(DENY, to="sg-fw")
        s = p.send_message_collect(msg, timeout=5, encoding="cbor")
        (reply,) = s.responses
        assert s.complete and s.request_id == msg["headers"]["request_id"] == reply.request_id
        assert reply.status == 200 and reply.message["headers"]["to"] == ["sg-p"]
        assert shape(s) == shape(
            p.send_message(oc2mqtt.request(DENY, to="sg-fw"), timeout=5, encoding="cbor").collect()
        )


def test_a_refused_command_raises_what_send_raises(tmp_path: Path) -> None:
    from broker import Broker

    acl = ["user p", "topic write oc2/cmd/device/allowed", "topic read oc2/rsp/#", "topic read oc2/rsp"]
    with Broker(tmp_path, users=["p:pw"], acl=acl) as b:
        config = oc2mqtt.ClientConfig(b.url, username="p", password="pw")
        with oc2mqtt.Producer(config, "sr-p") as p:
            with pytest.raises(oc2mqtt.PublishError) as by_send:
                p.send(QUERY, to=["forbidden"], timeout=2)
            t0 = time.monotonic()
            with pytest.raises(oc2mqtt.PublishError) as by_send_collect:
                p.send_collect(QUERY, to=["forbidden"], timeout=2)
            assert time.monotonic() - t0 < 1, "a refusal ends the wait at once, not at the timeout"
            assert str(by_send_collect.value) == str(by_send.value)
            assert (
                str(by_send_collect.value) == "broker refused the publish to oc2/cmd/device/forbidden: not authorized"
            )
            assert (p.stats["publish_errors"], p.stats["published"]) == (2, 0)
            assert p.open_exchanges == 0

            async def refused() -> str:
                with pytest.raises(oc2mqtt.PublishError) as info:
                    await p.send_collect_async(QUERY, to=["forbidden"], timeout=2)
                return str(info.value)

            assert asyncio.run(refused()) == str(by_send.value)
            assert p.open_exchanges == 0


def test_a_broker_that_does_not_acknowledge_ends_it_at_the_timeout(tmp_path: Path) -> None:
    from broker import Broker

    with Broker(tmp_path) as b, oc2mqtt.Producer(b.url, "st-p") as p:
        os.kill(b.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            with pytest.raises(oc2mqtt.TimeoutExpired) as info:
                p.send_collect(QUERY, to="st-nobody", timeout=1)
            took = time.monotonic() - t0
        finally:
            os.kill(b.pid, signal.SIGCONT)
        assert isinstance(info.value, TimeoutError)
        assert str(info.value).startswith("timed out: the broker did not acknowledge the command within 1.0 s"), str(
            info.value
        )
        assert 0.9 < took < 1.8, took
        # Once it answers again, so does the producer (the exchange only times out).
        s = p.send_collect(QUERY, to="st-nobody", timeout=0.3)
        assert not s.complete and s.missing == ["st-nobody"]


def test_blocking_send_collect_releases_the_gil(broker: Any) -> None:
    counter = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal counter
        while not stop.is_set():
            counter += 1

    with oc2mqtt.Producer(broker.url, "sl-p") as p:
        t = threading.Thread(target=count)
        t.start()
        try:
            s = p.send_collect(DENY, to=["sl-nobody"], timeout=0.5)
        finally:
            stop.set()
            t.join()
        assert not s.complete
    # A thread starved of the GIL would count a few thousand at most in 0.5 s.
    assert counter > 200_000, counter


def test_send_collect_from_several_threads_at_once(broker: Any, serve: Callable[..., Serving]) -> None:
    serve(oc2mqtt.Consumer(broker.url, "sh-fw"), lambda c: {"status": 200, "results": {"echo": c["target"]}})
    errors: list[str] = []
    with oc2mqtt.Producer(broker.url, "sh-p") as p:

        def worker(n: int) -> None:
            for i in range(15):
                net = f"10.{n}.{i}.0/24"
                s = p.send_collect({"action": "deny", "target": {"ipv4_net": net}}, to="sh-fw", timeout=5)
                (r,) = s.responses
                if r.request_id != s.request_id or r.message["body"]["openc2"]["response"]["results"] != {
                    "echo": {"ipv4_net": net}
                }:
                    errors.append(f"{n}/{i}: {r.message}")

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
        assert p.open_exchanges == 0 and p.stats["published"] == 90


@pytest.mark.parametrize(
    ("kwargs", "exc", "text"),
    [
        ({"timeout": "5"}, TypeError, "timeout: expected a number of seconds"),
        ({"timeout": -1}, ValueError, "timeout: expected a finite, non-negative number of seconds"),
        ({"encoding": "xml"}, ValueError, "encoding"),
        ({"command": {"action": "explode", "target": {"x": 1}}}, oc2mqtt.MessageError, "unknown action 'explode'"),
        ({"command": "deny"}, TypeError, "command"),
    ],
)
def test_bad_arguments_raise_as_for_send(broker: Any, kwargs: dict[str, Any], exc: type[Exception], text: str) -> None:
    args = dict({"command": DENY}, **kwargs)
    command = args.pop("command")
    with oc2mqtt.Producer(broker.url, "sa-p") as p:
        with pytest.raises(exc, match=text) as by_send:
            p.send(command, **args)
        with pytest.raises(exc, match=text) as by_send_collect:
            p.send_collect(command, **args)
        assert type(by_send_collect.value) is type(by_send.value)
        assert str(by_send_collect.value) == str(by_send.value)

        async def main() -> None:
            with pytest.raises(exc) as info:
                await p.send_collect_async(command, **args)
            assert str(info.value) == str(by_send.value)

        asyncio.run(main())
        assert p.stats["published"] == 0


def test_send_collect_async_gives_the_summary(broker: Any, serve: Callable[..., Serving]) -> None:
    serve(oc2mqtt.Consumer(broker.url, "sy-fw", profiles=["slpf"]), rule_seven)

    async def main() -> tuple[oc2mqtt.Summary, oc2mqtt.Summary, list[bool]]:
        async with oc2mqtt.Producer.connect_async(broker.url, "sy-p") as p:
            two_calls = await (await p.send_async(DENY, to="sy-fw", timeout=5)).collect_async()
            one_call = await p.send_collect_async(DENY, to="sy-fw", timeout=5)
            # Many in flight on one loop, as a pipelining producer has them.
            many = await asyncio.gather(*(p.send_collect_async(DENY, to="sy-fw", timeout=10) for _ in range(200)))
            assert p.open_exchanges == 0
            return two_calls, one_call, [s.complete and s.responses[0].status == 200 for s in many]

    two_calls, one_call, many = asyncio.run(main())
    assert isinstance(one_call, oc2mqtt.Summary) and shape(one_call) == shape(two_calls)
    assert one_call.complete and len(many) == 200 and all(many)


def test_cancelling_send_collect_async_ends_the_exchange(broker: Any) -> None:
    with oc2mqtt.Consumer(broker.url, "sk-fw") as consumer:
        answered = threading.Event()

        def device() -> None:
            # Answers only after the producer gave up waiting.
            incoming = consumer.next(timeout=5)
            assert incoming is not None
            time.sleep(0.6)
            incoming.reply(200, results={"late": True})
            answered.set()

        t = threading.Thread(target=device)
        t.start()

        async def main() -> tuple[int, oc2mqtt.Reply | None]:
            p = await oc2mqtt.Producer.connect_async(broker.url, "sk-p")
            task = asyncio.ensure_future(p.send_collect_async(DENY, to="sk-fw", timeout=30))
            await asyncio.sleep(0.3)
            assert p.open_exchanges == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # The exchange is closed on the runtime, off the loop's thread.
            deadline = time.monotonic() + 2
            while p.open_exchanges and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            still_open = p.open_exchanges
            # Its late answer matches no exchange any more.
            late = await p.next_unsolicited_async(timeout=5)
            await p.close_async()
            return still_open, late

        still_open, late = asyncio.run(main())
        t.join(5)
        assert answered.is_set() and still_open == 0
        assert late is not None and late.status == 200 and late.sender == "sk-fw"


INTERRUPT_SCRIPT = """
import sys, time
sys.path.insert(0, {broker_dir!r})
import oc2mqtt
with oc2mqtt.Producer({url!r}, "sint-p") as p:
    print("ready", flush=True)
    t0 = time.monotonic()
    try:
        p.send_collect({{"action": "deny", "target": {{"ipv4_net": "10.0.0.0/8"}}}}, to="sint-nobody", timeout=30)
        print("returned", flush=True)
    except KeyboardInterrupt:
        print("interrupted", time.monotonic() - t0 < 10, p.open_exchanges, flush=True)
"""


def test_ctrl_c_ends_a_blocking_send_collect_and_its_exchange(broker: Any) -> None:
    script = INTERRUPT_SCRIPT.format(broker_dir=str(BROKER_DIR), url=broker.url)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=20)  # generous: builds may share the 2 cores
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    # At the next 100 ms signal check, not at the 30 s timeout; no exchange left open.
    assert out.split() == ["interrupted", "True", "0"], out
