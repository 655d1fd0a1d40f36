"""The shared rule vectors of tests/rules/ through ConsumerRules, with the same
checks as the Rust runner (core/tests/rules.rs); and the options that came
with them (peer, response_topics, args, unsolicited responses) on a broker."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

import oc2mqtt

from conftest import REPO, Serving

RULES = REPO / "tests" / "rules"
CASES = sorted(RULES.glob("*.json"))


def payload_of(step: dict[str, Any]) -> bytes:
    if "payload_json" in step:
        return json.dumps(step["payload_json"], separators=(",", ":"), ensure_ascii=False).encode()
    if "payload_text" in step:
        return str(step["payload_text"]).encode()
    return bytes.fromhex(step["payload_hex"])


def properties_of(step: dict[str, Any]) -> dict[str, Any] | None:
    p = step.get("properties")
    if p is None:
        return None
    p = dict(p)
    if "user_properties" in p:
        p["user_properties"] = [tuple(kv) for kv in p["user_properties"]]
    return p


def rules_of(case: dict[str, Any]) -> oc2mqtt.ConsumerRules:
    c = case["consumer"]
    t = case.get("topics") or {}
    return oc2mqtt.ConsumerRules(
        c["device_id"],
        profiles=c.get("profiles"),
        pairs=c.get("pairs"),
        args=c.get("args"),
        freshness_secs=c.get("freshness_secs"),
        handle_features=c.get("handle_features"),
        rate_limit=c.get("rate_limit"),
        peer=t.get("peer"),
        response_topics=t.get("response_topics"),
    )


def check_publish(got: list[oc2mqtt.Publish], want: list[dict[str, Any]] | None, at: str, problems: list[str]) -> None:
    want = want or []
    if len(got) != len(want):
        problems.append(f"{at}: {len(got)} responses published, expected {len(want)}: {[p.message for p in got]}")
        return
    for i, (p, w) in enumerate(zip(got, want)):
        where = f"{at} publish[{i}]"
        if p.topics != w.get("topics", []):
            problems.append(f"{where}: topics {p.topics}, expected {w.get('topics')}")
        try:
            d = oc2mqtt.decode(p.payload, p.properties)
        except oc2mqtt.MessageError as e:
            problems.append(f"{where}: our own payload does not decode: {e}")
            continue
        if "dialect" in w and d.dialect != w["dialect"]:
            problems.append(f"{where}: dialect {d.dialect}, expected {w['dialect']}")
        if "msg_type_property" in w:
            got_type = dict(p.properties["user_properties"]).get("msgType")
            if got_type != w["msg_type_property"]:
                problems.append(f"{where}: msgType {got_type!r}, expected {w['msg_type_property']}")
        headers = d.message["headers"]
        for key in ("request_id", "from", "to"):
            expected = w.get("headers", {}).get(key)
            if headers.get(key) != expected:
                problems.append(f"{where}: headers.{key} {headers.get(key)!r}, expected {expected!r}")
        if d.msg_type != "response":
            problems.append(f"{where}: not a response")
            continue
        rsp = d.message["body"]["openc2"]["response"]
        if rsp["status"] != w.get("status") or p.status != rsp["status"]:
            problems.append(f"{where}: status {rsp['status']}, expected {w.get('status')} ({rsp.get('status_text')!r})")
        if "status_text_contains" in w and w["status_text_contains"] not in (rsp.get("status_text") or ""):
            problems.append(
                f"{where}: status_text {rsp.get('status_text')!r} does not contain {w['status_text_contains']!r}"
            )
        if "results" in w and rsp.get("results") != w["results"]:
            problems.append(f"{where}: results {rsp.get('results')}, expected {w['results']}")


def run_case(case: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    rules = rules_of(case)
    for i, step in enumerate(case["steps"]):
        at = f"step {i}"
        d = rules.on_command(
            step["topic"],
            payload_of(step),
            properties_of(step),
            step.get("retained") is True,
            now_ms=step["now_ms"],
            monotonic_ms=step["at_ms"],
        )
        expect = step["expect"]
        if d.skipped != expect.get("skipped"):
            problems.append(f"{at}: skipped {d.skipped!r}, expected {expect.get('skipped')!r} ({d.reason!r})")
        check_publish(d.publish, expect.get("publish"), at, problems)
        want = expect.get("execute")
        if d.execute is None:
            if want is not None:
                problems.append(f"{at}: not executed, expected it")
            continue
        if want is None:
            problems.append(f"{at}: executed, expected not")
            continue
        if "command_id" in want and d.execute.command.get("command_id") != want["command_id"]:
            problems.append(
                f"{at}: command_id {d.execute.command.get('command_id')!r}, expected {want['command_id']!r}"
            )
        if "answer" in expect:
            answer = expect["answer"]
            out = rules.answer(d.execute, answer["response"])
            check_publish([] if out is None else [out], answer.get("publish"), f"{at} answer", problems)
    return problems


def test_there_are_enough_rule_vectors() -> None:
    assert len(CASES) >= 27, f"only {len(CASES)} rule vectors in {RULES}"


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_rule_vector(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    problems = run_case(case)
    assert not problems, f"{path.name}:\n  - " + "\n  - ".join(problems)


# ---------------------------------------------------------------- the sans-IO API itself

DENY = {"action": "deny", "target": {"ipv4_net": "10.0.0.0/8"}}


def command(request_id: str, command: dict[str, Any] = DENY, **headers: Any) -> bytes:
    msg = {"headers": {"request_id": request_id, "from": "p1", **headers}, "body": {"openc2": {"request": command}}}
    return json.dumps(msg).encode()


def test_a_decision_hands_over_the_request_and_the_answer_goes_back() -> None:
    rules = oc2mqtt.ConsumerRules("fw-1", pairs={"deny": ["ipv4_net"]})
    assert rules.device_id == "fw-1" and "fw-1" in repr(rules)
    d = rules.on_command("oc2/cmd/device/fw-1", command("r1"), now_ms=0, monotonic_ms=0)
    assert (d.publish, d.skipped, d.reason) == ([], None, None)
    req = d.execute
    assert req is not None
    assert (req.request_id, req.sender, req.topic) == ("r1", "p1", "oc2/cmd/device/fw-1")
    assert (req.encoding, req.dialect, req.response_requested) == ("json", "spec", "complete")
    assert req.command["action"] == "deny" and req.message["headers"]["request_id"] == "r1"
    out = rules.answer(req, {"status": 200, "results": {"slpf": {"rule_number": 1}}})
    assert out is not None
    assert out.topics == ["oc2/rsp"] and out.status == 200 and isinstance(out.payload, bytes)
    assert out.properties["content_type"] == "application/openc2"
    assert out.message["headers"]["to"] == ["p1"] and out.message["headers"]["from"] == "fw-1"
    assert "Publish(topics=['oc2/rsp'], status=200)" == repr(out)
    # The same command again is a duplicate; a stale one says why.
    again = rules.on_command("oc2/cmd/all", command("r1"), now_ms=0, monotonic_ms=5)
    assert (again.skipped, again.execute, again.reason) == ("duplicate", None, None)
    old = rules.on_command("oc2/cmd/all", command("r2", created=1_000), now_ms=10_000_000, monotonic_ms=5)
    assert old.skipped == "stale" and old.reason is not None and "freshness window" in old.reason
    undeclared = rules.on_command(
        "oc2/cmd/all", command("r3", {"action": "allow", "target": {"ipv4_net": "1.2.3.4"}}), now_ms=0, monotonic_ms=6
    )
    assert (undeclared.skipped, undeclared.reason) == ("answered", "501")
    assert [p.status for p in undeclared.publish] == [501]
    bad = rules.on_command("oc2/cmd/all", b"{not json", now_ms=0, monotonic_ms=7)
    assert bad.skipped == "undecodable" and bad.reason is not None and "JSON" in bad.reason


def test_properties_and_retained_are_passed_on() -> None:
    rules = oc2mqtt.ConsumerRules("fw-1")
    data, props = oc2mqtt.encode(json.loads(command("r1")), "cbor", "spec")
    d = rules.on_command("oc2/cmd/all", data, props, now_ms=0, monotonic_ms=0)
    assert d.execute is not None and d.execute.encoding == "cbor"
    out = rules.answer(d.execute, {"status": 200})
    assert out is not None and oc2mqtt.decode(out.payload, out.properties).encoding == "cbor"
    kept = rules.on_command("oc2/cmd/all", command("r2"), None, True, now_ms=0, monotonic_ms=0)
    assert (kept.skipped, kept.reason) == ("stale", "delivered as a retained message")


def test_peer_and_response_topics_choose_the_topics() -> None:
    both = oc2mqtt.ConsumerRules("fw-1", response_topics="both")
    d = both.on_command("oc2/cmd/all", command("r1"), now_ms=0, monotonic_ms=0)
    assert d.execute is not None
    out = both.answer(d.execute, {"status": 200})
    assert out is not None and out.topics == ["oc2/rsp", "oc2/rsp/p1"]
    oif = oc2mqtt.ConsumerRules("fw-1", peer="oif")
    d = oif.on_command("oc2/cmd/all", command("r1"), now_ms=0, monotonic_ms=0)
    assert d.execute is not None
    out = oif.answer(d.execute, {"status": 200})
    assert out is not None and len(out.topics) == 2 and ("msgType", "response") in out.properties["user_properties"]


def test_answers_not_to_send_are_none() -> None:
    rules = oc2mqtt.ConsumerRules("fw-1")
    none = {**DENY, "args": {"response_requested": "none"}}
    d = rules.on_command("oc2/cmd/all", command("r1", none), now_ms=0, monotonic_ms=0)
    assert d.execute is not None and d.publish == []
    assert rules.answer(d.execute, {"status": 200}) is None


def test_bad_arguments_are_errors_naming_them() -> None:
    with pytest.raises(oc2mqtt.ConfigError, match="unknown peer 'plugfest'"):
        oc2mqtt.ConsumerRules("fw-1", peer="plugfest")  # type: ignore[arg-type]
    with pytest.raises(oc2mqtt.ConfigError, match="unknown response topics"):
        oc2mqtt.ConsumerRules("fw-1", response_topics="all")  # type: ignore[arg-type]
    with pytest.raises(oc2mqtt.ConfigError, match=r"argument 'a\.\.b'"):
        oc2mqtt.ConsumerRules("fw-1", args=["a..b"])
    with pytest.raises(TypeError, match="args: expected a list of str"):
        oc2mqtt.ConsumerRules("fw-1", args="x-acme")  # type: ignore[arg-type]
    with pytest.raises(oc2mqtt.TopicError):
        oc2mqtt.ConsumerRules("fw#1")
    rules = oc2mqtt.ConsumerRules("fw-1")
    with pytest.raises(TypeError, match="payload: expected bytes"):
        rules.on_command("oc2/cmd/all", 12, now_ms=0, monotonic_ms=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        rules.on_command("oc2/cmd/all", b"{}")  # type: ignore[call-arg]
    d = rules.on_command("oc2/cmd/all", command("r1"), now_ms=0, monotonic_ms=0)
    assert d.execute is not None
    with pytest.raises(oc2mqtt.MessageError):
        rules.answer(d.execute, {"status": 1234})
    with pytest.raises(TypeError, match="response: expected a dict"):
        rules.answer(d.execute, 200)  # type: ignore[arg-type]


# ---------------------------------------------------------------- options on a broker


def test_client_config_peer_and_response_topics() -> None:
    c = oc2mqtt.ClientConfig("mqtt://127.0.0.1:1883")
    assert (c.peer, c.response_topics, c.otupy_compat) == ("spec", None, False)
    c = oc2mqtt.ClientConfig("mqtt://127.0.0.1:1883", peer="oif", response_topics="producer")
    assert (c.peer, c.response_topics) == ("oif", "producer")
    assert "peer='oif'" in repr(c) and "response_topics='producer'" in repr(c)
    legacy = oc2mqtt.ClientConfig("mqtt://127.0.0.1:1883", otupy_compat=True)
    assert (legacy.peer, legacy.otupy_compat) == ("otupy", True)
    with pytest.raises(oc2mqtt.ConfigError, match="unknown peer"):
        oc2mqtt.ClientConfig("mqtt://127.0.0.1:1883", peer="nobody")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="response_topics: expected str"):
        oc2mqtt.ClientConfig("mqtt://127.0.0.1:1883", response_topics=2)  # type: ignore[arg-type]


class Raw:
    """A paho-mqtt v3.1.1 client: publishes, and records what arrives on its subscriptions."""

    def __init__(self, port: int, *subscriptions: str) -> None:
        import paho.mqtt.client as paho

        self.got: list[tuple[str, bytes]] = []
        self.ready = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
        self.client.on_message = lambda _c, _u, m: self.got.append((m.topic, m.payload))
        self.client.on_subscribe = lambda *_a: self.ready.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if subscriptions:
            self.client.subscribe([(s, 1) for s in subscriptions])
            assert self.ready.wait(5)

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_response_topics_both_answers_on_both_topics(broker: Any, serve: Callable[..., Serving]) -> None:
    config = oc2mqtt.ClientConfig(broker.url, response_topics="both")
    serve(oc2mqtt.Consumer(config, "rtb-fw"), lambda c: None)
    raw = Raw(broker.port, "oc2/rsp", "oc2/rsp/+")
    try:
        with oc2mqtt.Producer(broker.url, "rtb-p") as p:
            replies = p.send(DENY, to=["rtb-fw"], timeout=5).collect()
            assert replies.complete
        end = time.monotonic() + 5
        while len(raw.got) < 2 and time.monotonic() < end:
            time.sleep(0.02)
        assert sorted(t for t, _ in raw.got) == ["oc2/rsp", "oc2/rsp/rtb-p"]
    finally:
        raw.close()


def test_consumer_args_are_taken_and_others_refused(broker: Any, serve: Callable[..., Serving]) -> None:
    seen: list[dict[str, Any]] = []
    consumer = oc2mqtt.Consumer(broker.url, "args-fw", pairs=[("deny", "ipv4_net")], args=["x-acme"])
    serve(consumer, lambda c: seen.append(c))
    with oc2mqtt.Producer(broker.url, "args-p") as p:
        (ok,) = p.send({**DENY, "args": {"x-acme": {"mode": 1}}}, to=["args-fw"], timeout=5)
        assert ok.status == 200
        (refused,) = p.send({**DENY, "args": {"x-other": 1}}, to=["args-fw"], timeout=5)
        assert refused.status == 501 and "x-other" in (refused.status_text or "")
    assert [c["args"] for c in seen] == [{"x-acme": {"mode": 1}}]


def test_unsolicited_responses_are_handed_over(broker: Any) -> None:
    with oc2mqtt.Producer(broker.url, "un-p") as p:
        assert p.next_unsolicited(timeout=0.05) is None
        raw = Raw(broker.port)
        try:
            raw.publish("oc2/rsp", b'{"status":200}')
            r = p.next_unsolicited(timeout=5)
            assert r is not None and r.status == 200 and r.topic == "oc2/rsp" and r.dialect == "bare"
            assert p.stats["unsolicited"] >= 1

            async def main() -> tuple[oc2mqtt.Reply | None, oc2mqtt.Reply | None]:
                raw.publish("oc2/rsp", b'{"status":404}')
                got = await p.next_unsolicited_async(timeout=5)
                return got, await p.next_unsolicited_async(timeout=0.05)

            r, nothing = asyncio.run(main())
            assert r is not None and r.status == 404 and nothing is None
        finally:
            raw.close()
    # Closed: None at once, whatever the timeout.
    assert p.next_unsolicited() is None
