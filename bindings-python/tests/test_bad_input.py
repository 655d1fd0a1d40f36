"""Wrong types and values to every public function: a TypeError or ValueError
whose text names the argument, never a crash."""

from __future__ import annotations

from typing import Any, Callable

import pytest

import oc2mqtt

CMD = oc2mqtt.request({"action": "query", "target": {"features": []}}, sender="p")
corr = oc2mqtt.Correlator
dedup = oc2mqtt.Deduplicator

CASES: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    (
        "decode payload int",
        lambda: oc2mqtt.decode(5),
        TypeError,
        "payload: expected bytes, bytearray or str, found int",
    ),
    ("decode payload None", lambda: oc2mqtt.decode(None), TypeError, "payload: expected bytes"),
    ("decode properties list", lambda: oc2mqtt.decode(b"{}", []), TypeError, "properties: expected a dict"),
    ("decode properties key", lambda: oc2mqtt.decode(b"{}", {"qos": 1}), ValueError, "properties: unknown key 'qos'"),
    (
        "decode pfi str",
        lambda: oc2mqtt.decode(b"{}", {"payload_format_indicator": "1"}),
        TypeError,
        "properties.payload_format_indicator: expected int, found str",
    ),
    (
        "decode pfi 2",
        lambda: oc2mqtt.decode(b"{}", {"payload_format_indicator": 2}),
        ValueError,
        "properties.payload_format_indicator: expected 0 or 1, found 2",
    ),
    (
        "decode content_type int",
        lambda: oc2mqtt.decode(b"{}", {"content_type": 1}),
        TypeError,
        "properties.content_type: expected str, found int",
    ),
    (
        "decode user props str",
        lambda: oc2mqtt.decode(b"{}", {"user_properties": "msgType"}),
        TypeError,
        "properties.user_properties: expected a list of (name, value) pairs, found str",
    ),
    (
        "decode user prop triple",
        lambda: oc2mqtt.decode(b"{}", {"user_properties": [("a", "b", "c")]}),
        ValueError,
        "properties.user_properties[0]: expected a (name, value) pair, found 3 items",
    ),
    (
        "decode user prop value int",
        lambda: oc2mqtt.decode(b"{}", {"user_properties": [("a", 1)]}),
        TypeError,
        "properties.user_properties[0][1]: expected str, found int",
    ),
    (
        "decode max_payload negative",
        lambda: oc2mqtt.decode(b"{}", max_payload=-1),
        ValueError,
        "max_payload: expected a non-negative integer, found -1",
    ),
    (
        "decode max_payload float",
        lambda: oc2mqtt.decode(b"{}", max_payload=1.5),
        TypeError,
        "max_payload: expected int, found float",
    ),
    ("encode message list", lambda: oc2mqtt.encode([]), TypeError, "message: expected a dict"),
    (
        "encode message set value",
        lambda: oc2mqtt.encode({"headers": {"to": {"a"}}}),
        TypeError,
        "message.headers.to: expected a JSON value (dict, list, tuple, str, int, float, bool or None), found set",
    ),
    (
        "encode int key",
        lambda: oc2mqtt.encode({"body": {1: 2}}),
        TypeError,
        "message.body: keys must be str, found int key 1",
    ),
    (
        "encode nan",
        lambda: oc2mqtt.encode({"body": {"x": [float("nan")]}}),
        ValueError,
        "message.body.x[0]: NaN is not a valid JSON number",
    ),
    (
        "encode huge int",
        lambda: oc2mqtt.encode({"body": {"x": 2**70}}),
        ValueError,
        "message.body.x: integer 1180591620717411303424 does not fit in 64 bits",
    ),
    ("encode encoding int", lambda: oc2mqtt.encode(CMD, 1), TypeError, "encoding: expected str, found int"),
    (
        "encode dialect bytes",
        lambda: oc2mqtt.encode(CMD, "json", b"spec"),
        TypeError,
        "dialect: expected str, found bytes",
    ),
    (
        "encode invalid shape",
        lambda: oc2mqtt.encode({"body": {}}),
        oc2mqtt.MessageError,
        "body.openc2: required field is absent",
    ),
    ("request command str", lambda: oc2mqtt.request("query"), TypeError, "command: expected a dict"),
    (
        "request to int",
        lambda: oc2mqtt.request({"action": "query", "target": {"features": []}}, to=5),
        TypeError,
        "to: expected a str or a list of str, found int",
    ),
    (
        "request to item",
        lambda: oc2mqtt.request({"action": "query", "target": {"features": []}}, to=["d1", 2]),
        TypeError,
        "to[1]: expected str, found int",
    ),
    (
        "request sender int",
        lambda: oc2mqtt.request({"action": "query", "target": {"features": []}}, sender=1),
        TypeError,
        "sender: expected str, found int",
    ),
    (
        "request bad command",
        lambda: oc2mqtt.request({"action": "query"}),
        oc2mqtt.MessageError,
        "target: required field is absent",
    ),
    ("response_to status str", lambda: oc2mqtt.response_to(CMD, "200"), TypeError, "status: expected int, found str"),
    (
        "response_to status huge",
        lambda: oc2mqtt.response_to(CMD, 70000),
        ValueError,
        "status: 70000 is not a status code",
    ),
    ("response_to status bool", lambda: oc2mqtt.response_to(CMD, True), TypeError, "status: expected int, found bool"),
    (
        "response_to results list",
        lambda: oc2mqtt.response_to(CMD, 200, results=[1]),
        TypeError,
        "results: expected a dict, found list",
    ),
    (
        "response_to results value",
        lambda: oc2mqtt.response_to(CMD, 200, results={"a": object()}),
        TypeError,
        "results.a: expected a JSON value",
    ),
    (
        "response_to text int",
        lambda: oc2mqtt.response_to(CMD, 200, status_text=3),
        TypeError,
        "status_text: expected str, found int",
    ),
    ("subscriptions role int", lambda: oc2mqtt.subscriptions(1), TypeError, "role: expected str, found int"),
    (
        "subscriptions profiles str",
        lambda: oc2mqtt.subscriptions("consumer", "d", "slpf"),
        TypeError,
        "profiles: expected a list of str, found a single str",
    ),
    (
        "subscriptions device int",
        lambda: oc2mqtt.subscriptions("consumer", 7),
        TypeError,
        "device_id: expected str, found int",
    ),
    ("command_topics None", lambda: oc2mqtt.command_topics(None), TypeError, "message: expected a dict"),
    ("response_topics bytes", lambda: oc2mqtt.response_topics(b"{}"), TypeError, "message: expected a dict"),
    ("topic_matches int", lambda: oc2mqtt.topic_matches("oc2/#", 3), TypeError, "topic: expected str, found int"),
    ("validate_id None", lambda: oc2mqtt.validate_id(None), TypeError, "id: expected str, found NoneType"),
    ("Topics prefix int", lambda: oc2mqtt.Topics(5), TypeError, "prefix: expected str, found int"),
    (
        "Topics otupy_compat str",
        lambda: oc2mqtt.Topics(otupy_compat="yes"),
        TypeError,
        "otupy_compat: expected bool, found str",
    ),
    ("Correlator.open id int", lambda: corr().open(1), TypeError, "request_id: expected str, found int"),
    (
        "Correlator.open expect dict",
        lambda: corr().open("r", {"a": 1}),
        TypeError,
        "expect: expected a list of str, found dict",
    ),
    (
        "Correlator.open expect negative",
        lambda: corr().open("r", -1),
        ValueError,
        "expect: expected a non-negative integer, found -1",
    ),
    (
        "Correlator.open timeout float",
        lambda: corr().open("r", timeout_ms=1.5),
        TypeError,
        "timeout_ms: expected int, found float",
    ),
    (
        "Correlator.open now negative",
        lambda: corr().open("r", now_ms=-5),
        ValueError,
        "now_ms: expected a non-negative integer, found -5",
    ),
    ("Correlator.on_response str", lambda: corr().on_response("{}"), TypeError, "message: expected a dict"),
    (
        "Correlator.on_response invalid",
        lambda: corr().on_response({"body": {"openc2": {}}}),
        oc2mqtt.MessageError,
        "body.openc2: expected exactly one of request, response or notification, found 0 keys",
    ),
    ("Correlator.expire str", lambda: corr().expire("now"), TypeError, "now_ms: expected int, found str"),
    ("Correlator.close int", lambda: corr().close(1), TypeError, "request_id: expected str, found int"),
    ("Correlator in int", lambda: 1 in corr(), TypeError, "request_id: expected str, found int"),
    ("Deduplicator window str", lambda: dedup("60"), TypeError, "window_ms: expected int, found str"),
    (
        "Deduplicator capacity negative",
        lambda: dedup(capacity=-1),
        ValueError,
        "capacity: expected a non-negative integer, found -1",
    ),
    (
        "Deduplicator.check payload int",
        lambda: dedup().check(CMD, 5),
        TypeError,
        "payload: expected bytes, bytearray or str, found int",
    ),
    ("Deduplicator.check message int", lambda: dedup().check(5), TypeError, "message: expected a dict"),
]


@pytest.mark.parametrize(("call", "exc", "text"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_a_clear_error(call: Callable[[], Any], exc: type[Exception], text: str) -> None:
    with pytest.raises(exc) as info:
        call()
    assert text in str(info.value)
    assert isinstance(info.value, (TypeError, ValueError))


def test_self_containing_list_is_refused_not_a_crash() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match=r"message\.body\.x(\[0\])+: nested more than 128 levels deep"):
        oc2mqtt.encode({"body": {"x": loop}})


def test_missing_and_extra_arguments_are_type_errors() -> None:
    with pytest.raises(TypeError, match="missing"):
        oc2mqtt.decode()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'qos'"):
        oc2mqtt.encode(CMD, qos=1)  # type: ignore[call-arg]
