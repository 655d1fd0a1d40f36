"""Smoke test on RabbitMQ 3.10 and ActiveMQ 5.17 (MQTT 3.1.1 only), with the
client's default settings but for the broker URL and the credentials: the
default ``auto`` version falls back to 3.1.1 and everything works.

Both brokers are started once for the module, side by side, and stopped by
PID however the tests end."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import pytest

import oc2mqtt

from broker import Broker
from conftest import Serving

KINDS = ("rabbitmq", "activemq")
USER, PASSWORD = "oc2", "s3cret-pw"
DENY = {"action": "deny", "target": {"ipv4_net": "10.0.0.0/8"}}


@pytest.fixture(scope="module")
def brokers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Broker]]:
    """RabbitMQ and ActiveMQ with one user each (plain TCP and TLS), started in parallel."""
    started = {
        kind: Broker(tmp_path_factory.mktemp(kind), kind=kind, users=[f"{USER}:{PASSWORD}"], tls=True) for kind in KINDS
    }
    try:
        with ThreadPoolExecutor(len(started)) as pool:
            for f in [pool.submit(b.__enter__) for b in started.values()]:
                f.result()
        yield started
    finally:
        for b in started.values():
            b.stop()  # by PID; a no-op for one that never started


def login(url: str, password: str = PASSWORD, **tls: Any) -> oc2mqtt.ClientConfig:
    """Default settings except the broker URL and the credentials (and the CA for TLS)."""
    return oc2mqtt.ClientConfig(url, username=USER, password=password, **tls)


def answer(cmd: dict[str, Any]) -> dict[str, Any]:
    return {"status": 200, "results": {"x-smoke": {"action": cmd["action"]}}}


@pytest.mark.parametrize("kind", KINDS)
def test_exchange_monitor_and_version(brokers: dict[str, Broker], serve: Callable[..., Serving], kind: str) -> None:
    b = brokers[kind]
    config = login(b.url)
    with oc2mqtt.Monitor(config) as m:
        consumer = oc2mqtt.Consumer(config, "fw-1")
        serve(consumer, answer)
        with oc2mqtt.Producer(config, "ctl-1") as p:
            t0 = time.monotonic()
            ex = p.send(DENY, to=["fw-1"], timeout=5)
            s = ex.collect()
            took = time.monotonic() - t0
            assert s.complete and s.missing == [], f"{kind}: {s!r}"
            assert took < 4, f"{kind}: the exchange took {took:.2f} s"
            (reply,) = s.responses
            assert (reply.status, reply.sender, reply.request_id) == (200, "fw-1", ex.request_id)
            assert reply.message["body"]["openc2"]["response"]["results"] == {"x-smoke": {"action": "deny"}}
            # No MQTT v5 on these brokers: the default `auto` fell back to 3.1.1.
            for role in (p, consumer, m):
                assert role.stats["mqtt_version"] == "3.1.1", (kind, role, role.stats)
            assert p.broker == b.url

        # The monitor saw the command and its response, paired.
        kinds: set[str] = set()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not {"request", "response"} <= kinds:
            e = m.next(timeout=0.5)
            if e is None or e.request_id != ex.request_id:
                continue
            kinds.add(e.kind)
            if e.kind == "response":
                assert (e.sender, e.status) == ("fw-1", 200), (kind, e)
                assert e.latency is not None and 0 < e.latency < 5, (kind, e.latency)
        assert {"request", "response"} <= kinds, f"{kind}: the monitor saw {kinds}"


@pytest.mark.parametrize("kind", KINDS)
def test_exchange_over_tls(brokers: dict[str, Broker], serve: Callable[..., Serving], kind: str) -> None:
    b = brokers[kind]
    config = login(b.tls_url, ca_file=b.ca)
    serve(oc2mqtt.Consumer(config, "fw-1"), answer)
    with oc2mqtt.Producer(config, "ctl-tls") as p:
        s = p.send({"action": "query", "target": {"features": ["versions"]}}, to=["fw-1"], timeout=5).collect()
        assert s.complete and [r.status for r in s.responses] == [200], f"{kind}: {s!r}"
        assert s.responses[0].message["body"]["openc2"]["response"]["results"] == {"versions": ["1.0"]}
        assert p.stats["mqtt_version"] == "3.1.1" and p.broker == b.tls_url


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_password_is_refused(brokers: dict[str, Broker], kind: str) -> None:
    t0 = time.monotonic()
    with pytest.raises(oc2mqtt.AuthError) as info:
        oc2mqtt.Producer(login(brokers[kind].url, password="wrong"), "ctl-bad")
    assert str(info.value) == "broker refused the connection: bad user name or password", kind
    assert isinstance(info.value, PermissionError)
    assert time.monotonic() - t0 < 5, f"{kind}: refused after {time.monotonic() - t0:.2f} s"


def test_a_consumer_group_is_refused_without_shared_subscriptions(brokers: dict[str, Broker]) -> None:
    """RabbitMQ 3.10 takes ``$share/<group>/...`` for an ordinary topic: a group
    member would receive nothing, so the consumer refuses to start, saying why."""
    b = brokers["rabbitmq"]
    with pytest.raises(oc2mqtt.ConfigError) as info:
        oc2mqtt.Consumer(login(b.url), "fw-1", group="pool")
    text = str(info.value)
    assert text.startswith(
        "configuration: consumer groups need shared subscriptions ($share/<group>/...), "
        f"and the check of the broker at {b.url} failed: "
    ), text
    assert "RabbitMQ 3.10 and ActiveMQ 5.17 do not" in text and "without a group" in text, text
