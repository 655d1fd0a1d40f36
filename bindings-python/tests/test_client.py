"""Producer, Consumer and Monitor against a real Mosquitto."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Callable

import pytest

import oc2mqtt

from conftest import BROKER_DIR, HANDLER_RESULTS, Serving, result_by_mode

DENY = {"action": "deny", "target": {"ipv4_net": "10.0.0.0/8"}}
QUERY = {"action": "query", "target": {"features": ["versions", "profiles", "pairs"]}}


def slpf_handler(cmd: dict[str, Any]) -> dict[str, Any] | int | None:
    if cmd["action"] == "deny":
        return {"status": 200, "results": {"slpf": {"rule_number": 7}}}
    if cmd["action"] == "allow":
        return None
    if cmd["action"] == "update":
        return 404
    if cmd["action"] == "contain":
        raise RuntimeError("firewall unreachable")
    if cmd["action"] == "restart":
        return {"status": 999}
    if cmd["action"] == "stop":
        return 102
    return {"status": 501}


def test_round_trip_to_one_consumer(broker: Any, serve: Callable[..., Serving]) -> None:
    serve(oc2mqtt.Consumer(broker.url, "rt-fw", profiles=["slpf"]), slpf_handler)
    with oc2mqtt.Producer(broker.url, "rt-p") as p:
        assert p.id == "rt-p"
        ex = p.send(DENY, to=["rt-fw"], timeout=5)
        summary = ex.collect()
        assert summary.complete and summary.missing == [] and len(summary) == 1
        (reply,) = summary.responses
        assert (reply.status, reply.sender, reply.request_id) == (200, "rt-fw", ex.request_id)
        assert reply.message["body"]["openc2"]["response"]["results"] == {"slpf": {"rule_number": 7}}
        assert reply.message["headers"]["to"] == ["rt-p"]
        assert reply.topic in ("oc2/rsp", "oc2/rsp/rt-p") and reply.dialect == "spec" and reply.encoding == "json"
        assert 0 < reply.latency < 5
        assert p.stats["published"] >= 1 and p.stats["received"] >= 1
        assert "Summary(request_id=" in repr(summary) and repr(reply).startswith("Reply(sender='rt-fw', status=200")


@pytest.mark.parametrize(
    ("action", "status", "text"),
    [
        ("allow", 200, None),
        ("update", 404, None),
        ("contain", 500, "firewall unreachable"),
        (
            "restart",
            500,
            "the handler returned an invalid response: status: unknown status code 999; "
            "expected one of 102, 200, 400, 401, 403, 404, 500, 501, 503",
        ),
        # An interim status is no final answer: the command would never get one.
        ("stop", 500, "the handler returned the interim status 102 as its final answer"),
        ("scan", 501, None),
    ],
)
def test_handler_results_and_failures_become_responses(
    broker: Any, serve: Callable[..., Serving], action: str, status: int, text: str | None
) -> None:
    serve(oc2mqtt.Consumer(broker.url, f"hr-{action}"), slpf_handler)
    with oc2mqtt.Producer(broker.url, f"hr-p-{action}") as p:
        (reply,) = p.send({"action": action, "target": {"ipv4_net": "10.0.0.1"}}, to=[f"hr-{action}"], timeout=5)
        assert reply.status == status
        if text is not None:
            assert reply.status_text is not None and text in reply.status_text
        # The consumer keeps serving after a failure.
        (again,) = p.send(DENY, to=[f"hr-{action}"], timeout=5)
        assert again.status == 200


def test_every_handler_result_is_answered_by_the_core_s_rule(broker: Any, serve: Callable[..., Serving]) -> None:
    serve(oc2mqtt.Consumer(broker.url, "hm-fw"), result_by_mode)
    with oc2mqtt.Producer(broker.url, "hm-p") as p:
        for mode, status, text in HANDLER_RESULTS:
            (reply,) = p.send({**DENY, "args": {"mode": mode}}, to=["hm-fw"], timeout=5)
            assert (mode, reply.status, reply.status_text) == (mode, status, text)
        (reply,) = p.send({**DENY, "args": {"mode": "unreadable"}}, to=["hm-fw"], timeout=5)
        assert reply.status == 500
        assert (reply.status_text or "").startswith("the handler returned an invalid response: response.results.x: ")


def test_query_features_is_answered_by_the_core(broker: Any, serve: Callable[..., Serving]) -> None:
    calls: list[dict[str, Any]] = []
    consumer = oc2mqtt.Consumer(broker.url, "qf-fw", profiles=["slpf"], pairs=[("deny", "ipv4_net")])
    serve(consumer, lambda c: calls.append(c))
    with oc2mqtt.Producer(broker.url, "qf-p") as p:
        (reply,) = p.send(QUERY, to=["qf-fw"], timeout=5)
        assert reply.message["body"]["openc2"]["response"] == {
            "status": 200,
            "results": {
                "versions": ["1.0"],
                "profiles": ["slpf"],
                "pairs": {"query": ["features"], "deny": ["ipv4_net"]},
            },
        }
        (undeclared,) = p.send({"action": "deny", "target": {"ipv6_net": "::1"}}, to=["qf-fw"], timeout=5)
        assert undeclared.status == 501
    assert calls == []


def test_broadcast_completes_at_the_expected_count(broker: Any, serve: Callable[..., Serving]) -> None:
    for name in ("bc-a", "bc-b", "bc-c"):
        serve(oc2mqtt.Consumer(broker.url, name, profiles=["bcast"]), lambda c: None)
    with oc2mqtt.Producer(broker.url, "bc-p") as p:
        t0 = time.monotonic()
        s = p.send(DENY, profile="bcast", expect=3, timeout=10).collect()
        assert s.complete and time.monotonic() - t0 < 5
        assert sorted(r.sender for r in s.responses if r.sender) == ["bc-a", "bc-b", "bc-c"]
        # With neither `to` nor `expect` the audience is unknown: it ends at the timeout.
        t0 = time.monotonic()
        s = p.send(DENY, profile="bcast", timeout=0.5).collect()
        assert not s.complete and len(s.responses) == 3 and 0.45 < time.monotonic() - t0 < 3


def test_addressed_consumers_that_do_not_answer_are_missing(broker: Any, serve: Callable[..., Serving]) -> None:
    serve(oc2mqtt.Consumer(broker.url, "ms-a"), lambda c: None)
    with oc2mqtt.Producer(broker.url, "ms-p") as p:
        s = p.send(DENY, to=["ms-a", "ms-ghost"], timeout=0.5).collect()
        assert not s.complete and s.missing == ["ms-ghost"] and [r.sender for r in s.responses] == ["ms-a"]


def test_interim_102_does_not_end_the_exchange(broker: Any) -> None:
    with oc2mqtt.Consumer(broker.url, "ia-fw") as consumer, oc2mqtt.Producer(broker.url, "ia-p") as p:

        def device() -> None:
            incoming = consumer.next(timeout=5)
            assert incoming is not None
            # LS 3.3.1: a command without command_id gets its request_id as one.
            command = dict(incoming.command)
            assert command.pop("command_id") == incoming.request_id
            assert command == DENY and incoming.sender == "ia-p"
            assert incoming.response_requested == "complete" and incoming.dialect == "spec"
            incoming.reply(102)
            time.sleep(0.2)
            incoming.reply(200, status_text="done", results={"rule": 1})

        t = threading.Thread(target=device)
        t.start()
        ex = p.send(DENY, to=["ia-fw"], timeout=5)
        statuses = [r.status for r in ex]
        t.join(5)
        assert statuses == [102, 200] and ex.is_complete and ex.is_closed


def test_response_requested_none_completes_on_puback(broker: Any) -> None:
    with oc2mqtt.Producer(broker.url, "rn-p") as p:
        t0 = time.monotonic()
        s = p.send(dict(DENY, args={"response_requested": "none"}), to=["rn-nobody"], timeout=5).collect()
        assert s.complete and s.responses == [] and time.monotonic() - t0 < 2


def test_a_command_older_than_the_freshness_window_is_not_run(broker: Any, serve: Callable[..., Serving]) -> None:
    ran: list[str] = []
    lock = threading.Lock()

    def handler(cmd: dict[str, Any]) -> int:
        with lock:
            ran.append(cmd["action"])
        return 200

    consumer = oc2mqtt.Consumer(broker.url, "fresh-fw")  # the core's default window
    serve(consumer, handler)
    now_ms = int(time.time() * 1000)
    with oc2mqtt.Producer(broker.url, "fresh-p") as p:
        stale = oc2mqtt.request(DENY, to=["fresh-fw"])
        stale["headers"]["created"] = now_ms - 3_600_000  # an hour ago
        s = p.send_message(stale, timeout=1).collect()
        assert s.responses == [] and not s.complete
        fresh = oc2mqtt.request({"action": "allow", "target": {"ipv4_net": "10.0.0.0/8"}}, to=["fresh-fw"])
        fresh["headers"]["created"] = now_ms - 5_000  # within the window
        s = p.send_message(fresh, timeout=5).collect()
        assert s.complete and [r.status for r in s.responses] == [200]
    assert ran == ["allow"]
    assert consumer.stats["stale"] == 1, consumer.stats


def test_freshness_secs_is_a_consumer_option(broker: Any, serve: Callable[..., Serving]) -> None:
    with oc2mqtt.Consumer(broker.url, "fresh-default") as c:
        assert c.freshness_secs > 0
    with pytest.raises(TypeError, match="freshness_secs"):
        oc2mqtt.Consumer(broker.url, "fresh-bad", freshness_secs="soon")  # type: ignore[arg-type]
    # 0 turns the check off: an hour-old command runs.
    consumer = oc2mqtt.Consumer(broker.url, "fresh-off", freshness_secs=0)
    assert consumer.freshness_secs == 0
    serve(consumer, lambda c: 200)
    with oc2mqtt.Producer(broker.url, "fresh-off-p") as p:
        old = oc2mqtt.request(DENY, to=["fresh-off"])
        old["headers"]["created"] = int(time.time() * 1000) - 3_600_000
        s = p.send_message(old, timeout=5).collect()
        assert s.complete and [r.status for r in s.responses] == [200]
    assert consumer.stats["stale"] == 0


@pytest.mark.parametrize(("version", "spoken"), [(None, "5"), ("3.1.1", "3.1.1")])
def test_stats_name_the_mqtt_version_and_the_broker(broker: Any, version: str | None, spoken: str) -> None:
    config = oc2mqtt.ClientConfig(broker.url, mqtt_version=version)
    with oc2mqtt.Producer(config, "ver-p") as p, oc2mqtt.Monitor(config) as m:
        for role in (p, m):
            assert role.stats["mqtt_version"] == spoken and role.stats["stale"] == 0
            assert role.broker == broker.url
    with oc2mqtt.Consumer(config, "ver-fw") as c:
        assert c.stats["mqtt_version"] == spoken and c.broker == broker.url


def test_sends_from_several_threads_are_correlated(broker: Any, serve: Callable[..., Serving]) -> None:
    serve(oc2mqtt.Consumer(broker.url, "th-fw"), lambda c: {"status": 200, "results": {"echo": c["target"]}})
    errors: list[str] = []
    with oc2mqtt.Producer(broker.url, "th-p") as p:

        def worker(n: int) -> None:
            for i in range(15):
                net = f"10.{n}.{i}.0/24"
                ex = p.send({"action": "deny", "target": {"ipv4_net": net}}, to=["th-fw"], timeout=5)
                (r,) = ex.collect().responses
                if r.request_id != ex.request_id or r.message["body"]["openc2"]["response"]["results"] != {
                    "echo": {"ipv4_net": net}
                }:
                    errors.append(f"{n}/{i}: {r.message}")

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
        assert p.open_exchanges == 0


def test_blocking_send_releases_the_gil(broker: Any) -> None:
    counter = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal counter
        while not stop.is_set():
            counter += 1

    with oc2mqtt.Producer(broker.url, "gil-p") as p:
        t = threading.Thread(target=count)
        t.start()
        try:
            s = p.send(DENY, to=["gil-nobody"], timeout=0.5).collect()
        finally:
            stop.set()
            t.join()
        assert not s.complete
    # A thread starved of the GIL would count a few thousand at most in 0.5 s.
    assert counter > 200_000, counter


def test_asyncio_api(broker: Any) -> None:
    async def main() -> tuple[list[int | None], list[int | None]]:
        consumer = oc2mqtt.Consumer(broker.url, "as-fw")

        async def device() -> None:
            for _ in range(2):
                incoming = await consumer.next_async(timeout=5)
                assert incoming is not None
                await incoming.reply_async(102)
                await incoming.reply_async(200, results={"n": 1})

        task = asyncio.ensure_future(device())
        p = await oc2mqtt.Producer.connect_async(broker.url, "as-p")
        ex = await p.send_async(DENY, to=["as-fw"], timeout=5)
        streamed = [r.status async for r in ex]
        ex2 = await p.send_async(DENY, to=["as-fw"], timeout=5)
        summary = await ex2.collect_async()
        await task
        p.close()
        consumer.close()
        return streamed, [r.status for r in summary.responses]

    streamed, collected = asyncio.run(main())
    assert streamed == [102, 200] and collected == [102, 200]


def test_asyncio_pipelines_many_exchanges(broker: Any, serve: Callable[..., Serving]) -> None:
    serve(oc2mqtt.Consumer(broker.url, "pl-fw"), lambda c: None)

    async def main() -> list[bool]:
        p = await oc2mqtt.Producer.connect_async(broker.url, "pl-p")

        async def one() -> bool:
            ex = await p.send_async(DENY, to=["pl-fw"], timeout=10)
            return (await ex.collect_async()).complete

        done = await asyncio.gather(*(one() for _ in range(200)))
        p.close()
        return list(done)

    assert all(asyncio.run(main()))


def test_asyncio_event_loops_one_after_another_and_side_by_side(broker: Any, serve: Callable[..., Serving]) -> None:
    """Completions reach the loop that awaits them: a second asyncio.run on
    the same thread, and two loops on two threads at once."""
    serve(oc2mqtt.Consumer(broker.url, "lp-fw"), lambda c: None)

    async def main(name: str, n: int) -> list[bool]:
        p = await oc2mqtt.Producer.connect_async(broker.url, name)

        async def one() -> bool:
            ex = await p.send_async(DENY, to=["lp-fw"], timeout=10)
            return (await ex.collect_async()).complete

        done = await asyncio.gather(*(one() for _ in range(n)))
        p.close()
        return list(done)

    assert all(asyncio.run(main("lp-p1", 20)))
    assert all(asyncio.run(main("lp-p2", 20)))
    results: dict[str, list[bool]] = {}
    threads = [
        threading.Thread(target=lambda n=name: results.__setitem__(n, asyncio.run(main(n, 50))))
        for name in ("lp-t1", "lp-t2")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == ["lp-t1", "lp-t2"]
    assert all(all(v) and len(v) == 50 for v in results.values())


def test_a_finished_event_loop_is_not_kept_alive(broker: Any) -> None:
    seen: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def main() -> None:
        seen.append(weakref.ref(asyncio.get_running_loop()))
        p = await oc2mqtt.Producer.connect_async(broker.url, "gc-p")
        p.close()

    asyncio.run(main())
    gc.collect()
    assert seen[0]() is None, "the thread still holds the closed event loop"


def test_cancelling_an_await_drops_the_rust_side(broker: Any) -> None:
    async def main() -> None:
        p = await oc2mqtt.Producer.connect_async(broker.url, "cx-p")
        ex = await p.send_async(DENY, to=["cx-nobody"], timeout=30)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ex.__anext__(), 0.2)
        # The abandoned wait for the next response held the exchange; had it
        # kept running, cancel() would block until the 30 s timeout.
        await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, ex.cancel), 5)
        summary = await asyncio.wait_for(ex.collect_async(), 5)
        assert not summary.complete and summary.missing == ["cx-nobody"]
        # Errors come through as exceptions of the awaitable.
        with pytest.raises(oc2mqtt.ClosedError, match="already collected"):
            await ex.collect_async()
        p.close()

    asyncio.run(main())


def test_cancel_from_another_thread_ends_an_iteration_waiting_at_once(broker: Any) -> None:
    with oc2mqtt.Producer(broker.url, "ct-p") as p:
        ex = p.send(DENY, to=["ct-nobody"], timeout=30)
        done = threading.Event()
        got: list[Any] = []

        def iterate() -> None:
            got.append(next(ex, "ended"))
            done.set()

        reader = threading.Thread(target=iterate)
        reader.start()
        time.sleep(0.2)
        assert not done.is_set() and not ex.is_closed
        started = time.monotonic()
        ex.cancel()
        assert done.wait(2), "the waiting iteration did not end at the cancel"
        assert time.monotonic() - started < 1
        reader.join()
        assert got == ["ended"] and ex.is_closed and not ex.is_complete
        summary = ex.collect()
        assert not summary.complete and summary.missing == ["ct-nobody"]


def test_awaitables_need_a_running_event_loop(broker: Any) -> None:
    with oc2mqtt.Producer(broker.url, "nl-p") as p:
        ex = p.send(DENY, to=["nl-nobody"], timeout=0.1)
        with pytest.raises(RuntimeError, match="no running event loop"):
            ex.collect_async()


def test_exchange_collected_twice_is_a_clear_error(broker: Any) -> None:
    with oc2mqtt.Producer(broker.url, "ct-p") as p:
        ex = p.send(DENY, to=["ct-nobody"], timeout=0.1)
        ex.collect()
        with pytest.raises(oc2mqtt.ClosedError, match=f"exchange {ex.request_id}: already collected"):
            ex.collect()
        assert list(ex) == []


def test_monitor_sees_traffic_pairs_it_and_reports_unanswered(broker: Any, serve: Callable[..., Serving]) -> None:
    serve(oc2mqtt.Consumer(broker.url, "mo-fw"), lambda c: None)
    with oc2mqtt.Monitor(broker.url, window=0.5) as m, oc2mqtt.Producer(broker.url, "mo-p") as p:
        ex = p.send(DENY, to=["mo-fw"], timeout=5)
        ex.collect()
        p.send(DENY, to=["mo-ghost"], timeout=0.1).collect()
        seen: list[oc2mqtt.MonitorEvent] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(e.kind == "unanswered" for e in seen):
            e = m.next(timeout=1)
            if e is not None:
                seen.append(e)
        kinds = {(e.kind, e.request_id) for e in seen}
        assert ("request", ex.request_id) in kinds and ("response", ex.request_id) in kinds
        rsp = next(e for e in seen if e.kind == "response" and e.request_id == ex.request_id)
        assert rsp.sender == "mo-fw" and rsp.status == 200 and rsp.latency is not None and rsp.latency < 5
        assert rsp.message is not None and rsp.topic is not None and rsp.topic.startswith("oc2/rsp")
        unanswered = next(e for e in seen if e.kind == "unanswered")
        assert unanswered.missing == ["mo-ghost"] and unanswered.message is None


def test_monitor_delivers_a_burst_in_order_and_nothing_once_closed(broker: Any) -> None:
    def wait_received(m: oc2mqtt.Monitor, n: int) -> None:
        deadline = time.monotonic() + 5
        while m.stats["received"] < n and time.monotonic() < deadline:
            time.sleep(0.01)
        assert m.stats["received"] >= n

    with oc2mqtt.Producer(broker.url, "burst-p") as p:
        with oc2mqtt.Monitor(broker.url) as m:
            ids = [p.send(DENY, to=["burst-fw"], timeout=30).request_id for _ in range(100)]
            wait_received(m, 100)  # all waiting: the first next() takes the others along
            seen = [m.next(timeout=5) for _ in range(100)]
            assert [e.request_id if e is not None else None for e in seen] == ids
            assert all(e is not None and e.kind == "request" for e in seen)
            assert m.next(timeout=0.2) is None
        with oc2mqtt.Monitor(broker.url) as m:
            for _ in range(20):
                p.send(DENY, to=["burst-fw"], timeout=30)
            wait_received(m, 20)
            assert m.next(timeout=5) is not None
            m.close()  # with 19 events already taken from the core
            assert m.next(timeout=0.2) is None


def test_monitor_shows_undecodable_payloads(broker: Any) -> None:
    import paho.mqtt.client as paho

    with oc2mqtt.Monitor(broker.url) as m:
        raw = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
        raw.connect("127.0.0.1", broker.port)
        raw.loop_start()
        raw.publish("oc2/cmd/all", b"{not json", qos=1).wait_for_publish(5)
        raw.loop_stop()
        raw.disconnect()
        e = m.next(timeout=5)
        assert e is not None and e.kind == "undecodable" and e.payload == b"{not json"
        assert isinstance(e.error, oc2mqtt.MessageError) and e.error.kind == "syntax"
        assert m.stats["decode_errors"] == 1


def test_tls_with_a_ca_file(broker: Any, serve: Callable[..., Serving]) -> None:
    config = oc2mqtt.ClientConfig(broker.tls_url, ca_file=broker.ca)
    serve(oc2mqtt.Consumer(config, "tls-fw"), lambda c: None)
    with oc2mqtt.Producer(config, "tls-p") as p:
        (r,) = p.send(DENY, to=["tls-fw"], timeout=5)
        assert r.status == 200


def test_tls_with_the_wrong_ca_is_a_tls_error(broker: Any) -> None:
    config = oc2mqtt.ClientConfig(broker.tls_url, ca_file=broker.wrong_ca, connect_timeout_secs=3)
    with pytest.raises(oc2mqtt.TlsError) as info:
        oc2mqtt.Producer(config, "tls-bad")
    assert isinstance(info.value, ConnectionError) and str(info.value).startswith("TLS: ")


def test_unreachable_broker_is_a_connect_error() -> None:
    from broker import free_port

    config = oc2mqtt.ClientConfig(f"mqtt://127.0.0.1:{free_port()}", connect_timeout_secs=2)
    with pytest.raises(oc2mqtt.ConnectError) as info:
        oc2mqtt.Producer(config, "nobody")
    assert isinstance(info.value, ConnectionError) and "127.0.0.1" in str(info.value)


def test_username_and_password(tmp_path: Path) -> None:
    from broker import Broker

    with Broker(tmp_path, users=["alice:s3cret"]) as b:
        good = oc2mqtt.ClientConfig(b.url, username="alice", password="s3cret")
        assert good.has_password and "s3cret" not in repr(good)
        with oc2mqtt.Producer(good, "auth-p"):
            pass
        bad = oc2mqtt.ClientConfig(b.url, username="alice", password="wrong")
        with pytest.raises(oc2mqtt.AuthError) as info:
            oc2mqtt.Producer(bad, "auth-p2")
        assert isinstance(info.value, PermissionError) and "wrong" not in str(info.value)


def test_acl_refusals_are_errors_and_counted(tmp_path: Path, serve: Callable[..., Serving]) -> None:
    from broker import Broker

    acl = [
        "user p",
        "topic write oc2/cmd/device/allowed",
        "topic read oc2/rsp/#",
        "topic read oc2/rsp",
        # The consumer may answer on oc2/rsp, not on oc2/rsp/<producer>.
        "user d",
        "topic read oc2/cmd/#",
        "topic write oc2/rsp",
    ]
    with Broker(tmp_path, users=["p:pw", "d:pw"], acl=acl) as b:
        login = lambda user, **kw: oc2mqtt.ClientConfig(b.url, username=user, password="pw", **kw)  # noqa: E731
        # Responses on both topics: the one on oc2/rsp/<producer> is refused by the ACL.
        consumer = oc2mqtt.Consumer(login("d", response_topics="both"), "allowed")
        serve(consumer, lambda cmd: {"status": 200})
        with oc2mqtt.Producer(login("p"), "acl-p") as p:
            with pytest.raises(oc2mqtt.PublishError) as info:
                p.send(QUERY, to=["forbidden"], timeout=2)
            assert str(info.value) == "broker refused the publish to oc2/cmd/device/forbidden: not authorized"
            assert (p.stats["publish_errors"], p.stats["published"]) == (1, 0)
            for _ in range(3):
                assert p.send(DENY, to=["allowed"], timeout=5).collect().complete
            deadline = time.monotonic() + 5
            while consumer.stats["publish_errors"] < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert consumer.stats["publish_errors"] == 3, consumer.stats
            assert consumer.stats["published"] >= 3


@pytest.mark.parametrize(
    ("kwargs", "exc", "text"),
    [
        ({"broker": "http://x:1"}, oc2mqtt.ConfigError, "broker URL 'http://x:1': unsupported scheme 'http'"),
        ({"keep_alive_secs": 600}, oc2mqtt.ConfigError, "keep_alive_secs is 600, but MQTT-T allows at most 300"),
        ({"qos": 0}, oc2mqtt.ConfigError, "qos is 0, but OpenC2 over MQTT uses 1 or 2"),
        ({"password": "x"}, oc2mqtt.ConfigError, "a password was given without a username"),
        ({"ca_file": "/nonexistent/ca.pem"}, oc2mqtt.IoError, "cannot read CA file /nonexistent/ca.pem"),
        ({"mqtt_version": "6"}, oc2mqtt.ConfigError, "unknown MQTT version '6'; expected 5, 3.1.1 or auto"),
        ({"topic_prefix": "a/#"}, oc2mqtt.TopicError, "topic prefix 'a/#'"),
        ({"keep_alive_secs": "60"}, TypeError, "keep_alive_secs: expected int, found str"),
        ({"ca_file": 5}, TypeError, "ca_file: expected a path (str or os.PathLike), found int"),
        ({"broker": 5}, TypeError, "broker: expected a URL"),
        ({"insecure_skip_verify": "yes"}, TypeError, "insecure_skip_verify: expected bool, found str"),
    ],
)
def test_config_errors_name_the_setting(kwargs: dict[str, Any], exc: type[Exception], text: str) -> None:
    args = {"broker": "mqtt://127.0.0.1:1883", **kwargs}
    with pytest.raises(exc) as info:
        oc2mqtt.ClientConfig(args.pop("broker"), **args)
    assert text in str(info.value)


def test_config_keeps_its_settings() -> None:
    c = oc2mqtt.ClientConfig(
        ["mqtt://a:1", "mqtt://b:2"], client_id="cid", qos=2, mqtt_version=5, topic_prefix="site", max_payload=10
    )
    assert (c.brokers, c.client_id, c.qos, c.mqtt_version, c.topic_prefix, c.max_payload) == (
        ["mqtt://a:1", "mqtt://b:2"],
        "cid",
        2,
        "5",
        "site",
        10,
    )
    assert (c.keep_alive_secs, c.session_expiry_secs, c.connect_timeout_secs, c.otupy_compat) == (60, 3600, 10, False)


def test_client_bad_arguments_are_type_errors(broker: Any) -> None:
    with pytest.raises(TypeError, match="config: expected a ClientConfig or a broker URL"):
        oc2mqtt.Producer(1883, "p")  # type: ignore[arg-type]
    with pytest.raises(oc2mqtt.TopicError, match="producer id 'p#'"):
        oc2mqtt.Producer(broker.url, "p#")
    with pytest.raises(oc2mqtt.ConfigError, match="pair explode:x: unknown action 'explode'"):
        oc2mqtt.Consumer(broker.url, "c", pairs=[("explode", "x")])
    # The shapes pairs come in are core's (settings::Value::pairs_from_json).
    triple = r"pairs: \[0\]: expected an \[action, target\] pair of texts, found a list of 3 items"
    with pytest.raises(TypeError, match=triple):
        oc2mqtt.Consumer(broker.url, "c", pairs=[("deny", "ipv4_net", "x")])
    with oc2mqtt.Producer(broker.url, "ba-p") as p:
        with pytest.raises(TypeError, match="timeout: expected a number of seconds"):
            p.send(DENY, timeout="5")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="timeout: expected a finite, non-negative number of seconds"):
            p.send(DENY, timeout=-1)
        with pytest.raises(oc2mqtt.MessageError, match="unknown action 'explode'"):
            p.send({"action": "explode", "target": {"x": 1}})
        with pytest.raises(oc2mqtt.ConfigError, match="a producer sends requests"):
            p.send_message({"body": {"openc2": {"response": {"status": 200}}}})
    with oc2mqtt.Consumer(broker.url, "ba-c") as c:
        with pytest.raises(TypeError, match="handler: expected a callable"):
            c.serve(42)  # type: ignore[arg-type]


def test_core_log_events_reach_python_logging(broker: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="oc2mqtt"):
        with oc2mqtt.Producer(broker.url, "log-p"):
            pass
    connected = [r for r in caplog.records if r.name.startswith("oc2mqtt.client") and "connected" in r.getMessage()]
    assert connected, [r.getMessage() for r in caplog.records]
    assert connected[0].levelno == logging.INFO


SERVE_SCRIPT = """
import sys
sys.path.insert(0, {broker_dir!r})
import oc2mqtt
consumer = oc2mqtt.Consumer({url!r}, "sig-fw")
print("ready", flush=True)
try:
    consumer.serve(lambda c: None)
except KeyboardInterrupt:
    print("stopped", flush=True)
    consumer.close()
"""


def test_ctrl_c_stops_serve_cleanly(broker: Any) -> None:
    script = SERVE_SCRIPT.format(broker_dir=str(BROKER_DIR), url=broker.url)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)  # generous: builds may share the 2 cores
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out.strip() == "stopped"


def test_a_handler_can_send_commands_itself(broker: Any, serve: Callable[..., Serving]) -> None:
    # A gateway: its handler runs on a worker thread of the core's runtime and blocks on another exchange.
    serve(oc2mqtt.Consumer(broker.url, "gw-leaf"), lambda c: {"status": 200, "results": {"leaf": True}})
    with oc2mqtt.Producer(broker.url, "gw-fwd") as forward:

        def gateway(cmd: dict[str, Any]) -> dict[str, Any]:
            s = forward.send(cmd, to=["gw-leaf"], timeout=3).collect()
            return {"status": 200, "results": {"forwarded": [r.status for r in s.responses]}}

        serve(oc2mqtt.Consumer(broker.url, "gw"), gateway)
        with oc2mqtt.Producer(broker.url, "gw-top") as p:
            (r,) = p.send(DENY, to=["gw"], timeout=5)
            assert r.message["body"]["openc2"]["response"]["results"] == {"forwarded": [200]}
