"""Argument shapes the other languages accept, Pythonic reprs, and defaults
in the docstrings (issue 19 item 5)."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any, Callable

import pytest

import oc2mqtt

from conftest import Serving

DENY = {"action": "deny", "target": {"ipv4_net": "10.0.0.0/8"}}
QUERY_PAIRS = {"action": "query", "target": {"features": ["pairs"]}}
STUB = Path(oc2mqtt.__file__).parent / "_native.pyi"
RUST_DEBUG = re.compile(r'Some\(|None\)|"[^"]*"|\{ \w+: ')


def pairs_of(producer: oc2mqtt.Producer, to: str) -> Any:
    (r,) = producer.send(QUERY_PAIRS, to=to, timeout=5).collect().responses
    return r.message["body"]["openc2"]["response"]["results"]["pairs"]


def test_pairs_in_the_shape_of_ls_4_1(broker: Any, serve: Callable[..., Serving]) -> None:
    pairs = {"deny": ["ipv4_net", "ipv4_connection"], "allow": ("ipv4_net",)}
    serve(oc2mqtt.Consumer(broker.url, "pd-fw", pairs=pairs), lambda c: None)
    serve(oc2mqtt.Consumer(broker.url, "pl-fw", pairs=[("deny", "ipv4_net")]), lambda c: None)
    with oc2mqtt.Producer(broker.url, "pd-p") as p:
        assert pairs_of(p, "pd-fw") == {
            "query": ["features"],
            "deny": ["ipv4_net", "ipv4_connection"],
            "allow": ["ipv4_net"],
        }
        # What query features answers can be given straight back as pairs.
        assert pairs_of(p, "pl-fw") == {"query": ["features"], "deny": ["ipv4_net"]}
        (r,) = p.send({"action": "contain", "target": {"ipv4_net": "10.0.0.0/8"}}, to="pd-fw", timeout=5)
        assert r.status == 501


@pytest.mark.parametrize(
    ("pairs", "exc", "text"),
    [
        ({"deny": "ipv4_net"}, TypeError, "pairs: deny: expected a list of targets, found a text"),
        ({"deny": [1]}, TypeError, "pairs: deny[0]: expected a target's name, found a number"),
        ({1: ["ipv4_net"]}, TypeError, "pairs: keys must be str, found int key 1"),
        ({"explode": ["x"]}, oc2mqtt.ConfigError, "pair explode:x: unknown action 'explode'"),
        (
            "deny:ipv4_net",
            TypeError,
            "pairs: expected {action: [targets]} or a list of [action, target] pairs, found a text",
        ),
    ],
)
def test_bad_pairs_name_the_entry(broker: Any, pairs: Any, exc: type[Exception], text: str) -> None:
    with pytest.raises(exc) as info:
        oc2mqtt.Consumer(broker.url, "pb-fw", pairs=pairs)
    assert text in str(info.value)


def test_to_may_be_one_id(broker: Any, serve: Callable[..., Serving]) -> None:
    serve(oc2mqtt.Consumer(broker.url, "to-fw"), lambda c: None)
    with oc2mqtt.Producer(broker.url, "to-p") as p:
        s = p.send(DENY, to="to-fw", timeout=5).collect()
        assert s.complete and [r.sender for r in s.responses] == ["to-fw"]
        assert p.send(DENY, to=("to-fw",), timeout=5).collect().complete
        with pytest.raises(TypeError, match="to: expected a str or a list of str, found int"):
            p.send(DENY, to=5)  # type: ignore[arg-type]
    assert oc2mqtt.request(DENY, to="fw-1")["headers"]["to"] == ["fw-1"]


def test_config_repr_is_pythonic_and_never_shows_the_password() -> None:
    c = oc2mqtt.ClientConfig("mqtt://h:1883", username="ops", password="s3cret-Pa55", qos=2, topic_prefix="site")
    text = repr(c)
    assert text == "ClientConfig('mqtt://h:1883', username='ops', password=<hidden>, qos=2, topic_prefix='site')"
    assert "s3cret" not in text and "s3cret" not in str(c)
    assert repr(oc2mqtt.ClientConfig(["mqtt://a:1", "mqtt://b:2"])) == "ClientConfig(['mqtt://a:1', 'mqtt://b:2'])"


def test_reprs_are_pythonic(broker: Any, serve: Callable[..., Serving]) -> None:
    decoded = oc2mqtt.decode(b'{"action": "query", "target": {"features": []}}')
    assert repr(decoded) == "Decoded(msg_type='request', encoding='json', dialect='bare', request_id=None, sender=None)"
    assert repr(oc2mqtt.Topics("site/")) == "Topics(prefix='site/', peer='spec', response_topics='shared')"
    assert repr(oc2mqtt.Deduplicator()) == "Deduplicator(window_ms=60000, capacity=100000, remembered=0)"
    corr = oc2mqtt.Correlator()
    corr.open("r1", ["fw-1"], now_ms=0)
    rsp = oc2mqtt.response_to(oc2mqtt.request(DENY, sender="p"), 200, sender="fw-1")
    rsp["headers"]["request_id"] = "r1"
    outcome = corr.on_response(rsp)
    assert repr(corr) == "Correlator(open=0, unsolicited=0)"
    assert repr(outcome).startswith("Outcome(kind='complete', is_final=True, expected=True")
    assert repr(outcome.closed) == "Closed(request_id='r1', reason='complete', missing=[], missing_count=0)"

    seen: list[str] = []
    serve(oc2mqtt.Consumer(broker.url, "rp-fw"), lambda c: 200)
    monitor = oc2mqtt.Monitor(broker.url)
    with oc2mqtt.Producer(broker.url, "rp-p") as p, oc2mqtt.Consumer(broker.url, "rp-pull") as pull:
        ex = p.send(DENY, to="rp-fw", timeout=5)
        seen.append(repr(ex))
        summary = ex.collect()
        seen += [repr(summary), repr(summary.responses[0]), repr(p), repr(pull), repr(monitor)]
        p.send(DENY, to="rp-pull", timeout=0.1)
        incoming = pull.next(timeout=5)
        seen.append(repr(incoming))
        events = [monitor.next(timeout=5) for _ in range(3)]
        seen += [repr(e) for e in events]
    monitor.close()
    rid = summary.request_id
    assert seen[0] == f"Exchange(request_id={rid!r}, closed=False)"
    assert seen[1] == f"Summary(request_id={rid!r}, statuses=[200], complete=True, missing=[])"
    assert re.fullmatch(r"Reply\(sender='rp-fw', status=200, topic='oc2/rsp(/rp-p)?', latency=[0-9.e-]+\)", seen[2]), (
        seen[2]
    )
    assert seen[3] == f"Producer(id='rp-p', broker={broker.url!r})"
    assert seen[4] == f"Consumer(device_id='rp-pull', broker={broker.url!r})"
    assert seen[5] == f"Monitor(broker={broker.url!r})"
    assert incoming is not None and seen[6] == (
        f"Incoming(action='deny', target='ipv4_net', request_id={incoming.request_id!r}, sender='rp-p')"
    )
    assert seen[7] == f"MonitorEvent(kind='request', topic='oc2/cmd/device/rp-fw', request_id={rid!r}, sender='rp-p')"
    assert re.fullmatch(
        rf"MonitorEvent\(kind='response', topic='oc2/rsp(/rp-p)?', request_id='{rid}', sender='rp-fw', status=200, "
        r"latency=[0-9.e-]+\)",
        seen[8],
    ), seen[8]
    for text in seen:
        assert not RUST_DEBUG.search(text), text


def test_defaults_are_in_the_docstrings() -> None:
    """Each ``(default X)`` of ClientConfig's docstring is the value a fresh
    config has, and the stub says the same as the binary."""
    doc = oc2mqtt.ClientConfig.__doc__ or ""
    documented = dict(re.findall(r"`(\w+)`[^`\n]*?\(default ([^):]+)", doc))
    c = oc2mqtt.ClientConfig("mqtt://h:1883")
    checked = {k: v for k, v in documented.items() if hasattr(c, k)}
    assert {
        "keep_alive_secs",
        "session_expiry_secs",
        "qos",
        "mqtt_version",
        "connect_timeout_secs",
        "max_payload",
    } <= set(checked), documented
    for name, text in checked.items():
        assert getattr(c, name) == ast.literal_eval(text), (name, text)
    stub = ast.parse(STUB.read_text())
    stub_doc = {node.name: ast.get_docstring(node) or "" for node in stub.body if isinstance(node, ast.ClassDef)}
    assert dict(re.findall(r"``(\w+)``[^`\n]*?\(default ([^):]+)", stub_doc["ClientConfig"])) == documented
    for where in (oc2mqtt.Producer.send.__doc__, oc2mqtt.Producer.send_async.__doc__):
        assert "(default 10)" in (where or "") or "same arguments and defaults" in (where or "")
    assert "(default 10)" in (oc2mqtt.Producer.send.__doc__ or "")
    assert "(default 30)" in (oc2mqtt.Monitor.__doc__ or "")
    assert "(default 900)" in (oc2mqtt.Consumer.__doc__ or "")
    assert "(default 60 000)" in (oc2mqtt.Deduplicator.__doc__ or "")
