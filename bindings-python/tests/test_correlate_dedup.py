"""Correlator and Deduplicator, with explicit and default clocks."""

from __future__ import annotations

import json
import time

import pytest

import oc2mqtt

QUERY = {"action": "query", "target": {"features": []}}


def rsp(request_id: str, sender: str, status: int) -> dict:
    return {
        "headers": {"request_id": request_id, "from": sender},
        "body": {"openc2": {"response": {"status": status}}},
    }


def test_exchange_completes_when_every_responder_is_final() -> None:
    c = oc2mqtt.Correlator()
    c.open("r", ["b", "a", "a"], timeout_ms=100, now_ms=0, data=["mine"])
    assert "r" in c and len(c) == 1 and c.missing("r") == ["a", "b"]
    interim = c.on_response(rsp("r", "a", 102))
    assert (interim.kind, interim.is_final, interim.expected, interim.data) == ("open", False, True, ["mine"])
    assert c.on_response(rsp("r", "x", 200)).expected is False
    assert c.on_response(rsp("r", "a", 200)).is_final
    done = c.on_response(rsp("r", "b", 200))
    assert done.kind == "complete" and done.closed is not None
    assert (done.closed.request_id, done.closed.reason, done.closed.missing) == ("r", "complete", [])
    assert done.closed.data == ["mine"] and len(c) == 0


def command(request_id: str | None, to: list[str], response_requested: str) -> dict:
    headers = {"to": to} | ({"request_id": request_id} if request_id else {})
    args = {"response_requested": response_requested}
    return {"headers": headers, "body": {"openc2": {"request": {**QUERY, "args": args}}}}


def test_open_command_awaits_what_response_requested_asks_for() -> None:
    c = oc2mqtt.Correlator()
    assert c.open_command(command("n", ["a"], "none"), now_ms=0) is False
    assert len(c) == 0
    assert c.open_command(command("k", ["a", "b"], "ack"), now_ms=0, data=1) is True
    assert c.missing("k") == ["a", "b"]
    assert c.on_response(rsp("k", "a", 102)).kind == "open"
    assert c.on_response(rsp("k", "b", 102)).kind == "complete"
    query = json.dumps({"headers": {"request_id": "c", "to": ["a"]}, "body": {"openc2": {"request": QUERY}}}).encode()
    assert c.open_command(oc2mqtt.decode(query), now_ms=0)
    assert c.on_response(rsp("c", "a", 102)).kind == "open"
    assert c.on_response(rsp("c", "a", 200)).kind == "complete"
    with pytest.raises(oc2mqtt.MessageError, match=r"^headers\.request_id: a command without request_id cannot be"):
        c.open_command(command(None, ["a"], "complete"))


def test_unsolicited_responses_are_counted_not_mixed_in() -> None:
    c = oc2mqtt.Correlator()
    c.open("mine", 1, now_ms=0)
    out = c.on_response(oc2mqtt.decode(b'{"request_id":"theirs","content":{"response":{"status":200}}}'))
    assert out.kind == "unsolicited" and out.data is None and out.closed is None
    assert c.unsolicited == 1 and c.is_open("mine")


def test_deadlines_expire_in_order_and_report_missing() -> None:
    c = oc2mqtt.Correlator()
    c.open("late", ["d"], timeout_ms=200, now_ms=0)
    c.open("early", None, timeout_ms=100, now_ms=0)
    assert c.next_deadline() == 100
    assert c.expire(99) == []
    (first,) = c.expire(150)
    assert first.request_id == "early" and first.reason == "deadline"
    (second,) = c.expire(1000)
    assert second.missing == ["d"] and second.missing_count == 1
    assert c.next_deadline() is None
    assert "Closed(request_id=" in repr(second)


def test_open_twice_is_a_config_error_and_close_frees_the_id() -> None:
    c = oc2mqtt.Correlator()
    c.open("r", now_ms=0)
    with pytest.raises(oc2mqtt.ConfigError, match="an exchange with request_id 'r' is already open"):
        c.open("r", now_ms=0)
    closed = c.close("r")
    assert closed is not None and closed.reason == "closed"
    assert c.close("r") is None
    c.open("r", now_ms=0)


def test_default_clock_is_monotonic_milliseconds() -> None:
    c = oc2mqtt.Correlator()
    before = time.monotonic_ns() // 1_000_000
    c.open("r", timeout_ms=50, data=1)
    deadline = c.next_deadline()
    assert deadline is not None and before + 50 <= deadline <= time.monotonic_ns() // 1_000_000 + 50
    assert c.data("r") == 1 and c.data("other") is None
    assert c.expire() == []


def test_deduplicator_drops_redeliveries_within_the_window() -> None:
    d = oc2mqtt.Deduplicator(window_ms=1000, capacity=10)
    cmd = oc2mqtt.request(QUERY, sender="p1")
    payload, props = oc2mqtt.encode(cmd)
    assert d.check(cmd, payload, now_ms=0)
    # The same command on another topic, or redelivered: a duplicate, decoded or not.
    assert not d.check(oc2mqtt.decode(payload, props), now_ms=10)
    assert not d.check(cmd, now_ms=999)
    assert d.check(cmd, now_ms=1000)
    assert d.stats == {"checked": 4, "duplicates": 2, "evicted": 0, "expired": 1}
    assert len(d) == 1


def test_deduplicator_capacity_evicts_oldest() -> None:
    d = oc2mqtt.Deduplicator(window_ms=10**9, capacity=2)
    msgs = [oc2mqtt.request(QUERY, sender="p") for _ in range(3)]
    assert all(d.check(m) for m in msgs)
    assert d.stats["evicted"] == 1 and len(d) == 2
    assert d.check(msgs[0]) and not d.check(msgs[2])


def test_responses_with_different_payloads_are_distinct() -> None:
    d = oc2mqtt.Deduplicator()
    a = oc2mqtt.decode(b'{"request_id":"r","from":"c","content":{"response":{"status":200}}}')
    b = oc2mqtt.decode(b'{"request_id":"r","from":"c","content":{"response":{"status":200,"status_text":"x"}}}')
    assert d.check(a) and d.check(b) and not d.check(a)
    with pytest.raises(ValueError, match="capacity: must be at least 1"):
        oc2mqtt.Deduplicator(capacity=0)
