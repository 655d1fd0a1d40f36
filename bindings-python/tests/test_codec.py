"""decode / encode / request / response_to: behaviour, properties, error text."""

from __future__ import annotations

import pytest

import oc2mqtt

DENY = {
    "action": "deny",
    "target": {"ipv4_connection": {"protocol": "tcp", "src_addr": "10.0.0.1", "dst_port": 443}},
    "args": {"duration": 60000, "response_requested": "complete"},
    "actuator": {"slpf": {}},
}


def test_bare_command_is_sniffed_without_properties() -> None:
    d = oc2mqtt.decode(b'  {"action": "query", "target": {"features": ["versions"]}}')
    assert (d.msg_type, d.dialect, d.encoding) == ("request", "bare", "json")
    # No header was sent, so the canonical form has no headers (LS 3.2: a headers map has an entry).
    assert d.message == {
        "body": {"openc2": {"request": {"action": "query", "target": {"features": ["versions"]}}}},
    }
    assert d.request_id is None and d.sender is None and d.status is None


def test_request_and_response_builders_correlate() -> None:
    cmd = oc2mqtt.request(DENY, sender="p1", to=["fw-1"])
    headers = cmd["headers"]
    assert len(headers["request_id"]) == 36 and headers["from"] == "p1" and headers["to"] == ["fw-1"]
    assert isinstance(headers["created"], int)
    rsp = oc2mqtt.response_to(cmd, 200, status_text="ok", results={"rule_number": 7}, sender="fw-1")
    assert rsp["headers"]["request_id"] == headers["request_id"]
    assert rsp["headers"]["to"] == ["p1"] and rsp["headers"]["from"] == "fw-1"
    assert rsp["body"]["openc2"]["response"] == {"status": 200, "status_text": "ok", "results": {"rule_number": 7}}


@pytest.mark.parametrize("encoding", ["json", "cbor"])
@pytest.mark.parametrize("dialect", ["spec", "otupy"])
def test_encode_then_decode_round_trips(encoding: str, dialect: str) -> None:
    cmd = oc2mqtt.request(DENY, sender="p1", to=["fw-1"])
    payload, props = oc2mqtt.encode(cmd, encoding, dialect)  # type: ignore[arg-type]
    assert isinstance(payload, bytes)
    assert props["user_properties"] == [("msgType", "req"), ("encoding", encoding)]
    assert props["content_type"] == "application/openc2"
    assert props["payload_format_indicator"] == (1 if encoding == "json" else 0)
    d = oc2mqtt.decode(payload, props)
    assert d.message == cmd and (d.encoding, d.dialect) == (encoding, dialect)
    assert d.request_id == cmd["headers"]["request_id"] and d.sender == "p1"
    # A Decoded is accepted wherever a message is, and re-encodes identically.
    assert oc2mqtt.encode(d, encoding, dialect) == (payload, props)  # type: ignore[arg-type]


def test_encode_is_compact_spec_json_by_default() -> None:
    payload, _ = oc2mqtt.encode({"body": {"openc2": {"response": {"status": 200}}}})
    # No header to send: `headers` is left out, never emitted empty.
    assert payload == b'{"body":{"openc2":{"response":{"status":200}}}}'


def test_payload_may_be_bytearray_or_str() -> None:
    text = '{"status": 200}'
    assert oc2mqtt.decode(text).status == 200
    assert oc2mqtt.decode(bytearray(text.encode())).status == 200


def test_invalid_message_names_field_and_reason_and_salvages() -> None:
    bad = (
        b'{"headers":{"request_id":"abc","from":"p9"},'
        b'"body":{"openc2":{"request":{"action":"deny","target":{"a":1,"b":2}}}}}'
    )
    with pytest.raises(oc2mqtt.MessageError) as info:
        oc2mqtt.decode(bad)
    e = info.value
    assert str(e) == "body.openc2.request.target: expected exactly one key, found 2"
    assert (e.kind, e.path, e.reason) == ("value", "body.openc2.request.target", "expected exactly one key, found 2")
    assert e.salvage == {
        "request_id": "abc",
        "from": "p9",
        "dialect": "spec",
        "encoding": "json",
        "msg_type": "request",
        "to": None,
        "response_requested": None,
    }


def test_salvage_holds_every_field_the_core_reads() -> None:
    bad = (
        b'{"headers":{"request_id":"r2","from":"p9","to":["fw-1","fw-2"]},"body":{"openc2":{"request":'
        b'{"action":"deny","target":{"a":1,"b":2},"args":{"response_requested":"none"}}}}}'
    )
    with pytest.raises(oc2mqtt.MessageError) as info:
        oc2mqtt.decode(bad)
    assert info.value.salvage["to"] == ["fw-1", "fw-2"]
    assert info.value.salvage["response_requested"] == "none"


def test_size_limit_is_checked_before_parsing() -> None:
    with pytest.raises(oc2mqtt.MessageError, match="payload is 20 bytes, larger than the limit of 10 bytes") as info:
        oc2mqtt.decode(b"x" * 20, max_payload=10)
    assert info.value.kind == "too_large"


def test_encode_validates_before_encoding() -> None:
    with pytest.raises(oc2mqtt.MessageError, match="unknown action") as info:
        oc2mqtt.encode({"body": {"openc2": {"request": {"action": "dance", "target": {"x": {}}}}}})
    assert info.value.path.endswith("action")
    with pytest.raises(oc2mqtt.MessageError, match="status") as info:
        oc2mqtt.encode(oc2mqtt.response_to(oc2mqtt.request(DENY), 999))


def test_unknown_encoding_and_dialect_are_value_errors() -> None:
    msg = oc2mqtt.request(DENY)
    with pytest.raises(ValueError, match="unsupported encoding 'xml'; expected json or cbor"):
        oc2mqtt.encode(msg, "xml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown dialect 'flat'; expected spec, otupy or bare"):
        oc2mqtt.encode(msg, "json", "flat")  # type: ignore[arg-type]


def test_properties_announce_what_the_payload_is() -> None:
    with pytest.raises(oc2mqtt.MessageError, match="unsupported content type 'text/plain'"):
        oc2mqtt.decode(b'{"status":200}', {"content_type": "text/plain"})
    with pytest.raises(oc2mqtt.MessageError, match="msgType property says 'req' but the message is a response"):
        oc2mqtt.decode(b'{"status":200}', {"user_properties": [("msgType", "req")]})


def test_paho_properties_object_is_accepted() -> None:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    _, props = oc2mqtt.encode(oc2mqtt.request(DENY), "cbor")
    p = Properties(PacketTypes.PUBLISH)
    p.PayloadFormatIndicator = props["payload_format_indicator"]
    p.ContentType = props["content_type"]
    p.UserProperty = props["user_properties"]
    payload, _ = oc2mqtt.encode(oc2mqtt.request(DENY), "cbor")
    assert oc2mqtt.decode(payload, p).encoding == "cbor"
    # An empty paho Properties (no properties on the wire) means: sniff.
    assert oc2mqtt.decode(payload, Properties(PacketTypes.PUBLISH)).encoding == "cbor"
    wrong = Properties(PacketTypes.PUBLISH)
    wrong.UserProperty = [("msgType", "rsp")]
    with pytest.raises(oc2mqtt.MessageError, match="msgType property says 'rsp'"):
        oc2mqtt.decode(payload, wrong)


def test_unknown_header_keys_and_extension_values_are_kept() -> None:
    msg = {
        "headers": {"request_id": "r1", "x-site": {"zone": 3}},
        "body": {"openc2": {"request": {"action": "query", "target": {"x-acme:widget": {"id": 1.5}}}}},
    }
    payload, props = oc2mqtt.encode(msg)
    assert oc2mqtt.decode(payload, props).message == msg


def test_decoded_repr_and_immutability() -> None:
    d = oc2mqtt.decode(b'{"status": 102}')
    assert repr(d) == "Decoded(msg_type='response', encoding='json', dialect='bare', request_id=None, sender=None)"
    with pytest.raises(AttributeError):
        d.encoding = "cbor"  # type: ignore[misc]


def test_big_integers_and_floats_survive() -> None:
    msg = {"body": {"openc2": {"response": {"status": 200, "results": {"big": 2**64 - 1, "f": 0.25, "neg": -(2**63)}}}}}
    payload, props = oc2mqtt.encode(msg)
    assert oc2mqtt.decode(payload, props).message["body"] == msg["body"]
