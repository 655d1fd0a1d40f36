"""Every shared vector in tests/vectors/ decodes from Python exactly as in Rust."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import oc2mqtt

from conftest import VECTORS

CASES = sorted(VECTORS.glob("*/*.json"))
PAYLOAD_KEYS = {"payload_json", "payload_text", "payload_hex", "payload_repeat"}
ALLOWED_KEYS = PAYLOAD_KEYS | {"description", "properties", "expect"}
BARE_HEADERS = {"request_id", "created", "from", "to"}


def load(path: Path) -> tuple[bytes, Any, dict[str, Any]]:
    case = json.loads(path.read_text(encoding="utf-8"))
    unknown = set(case) - ALLOWED_KEYS
    assert not unknown, f"{path.name}: unknown keys {unknown}"
    assert case.get("description"), f"{path.name}: no description"
    given = PAYLOAD_KEYS & set(case)
    assert len(given) == 1, f"{path.name}: expected exactly one payload key, found {given}"
    (key,) = given
    if key == "payload_json":
        payload = json.dumps(case[key], separators=(",", ":"), ensure_ascii=False).encode()
    elif key == "payload_text":
        payload = case[key].encode()
    elif key == "payload_hex":
        payload = bytes.fromhex(case[key])
    else:
        r = case[key]
        payload = (r["prefix"] + r["fill"] * r["count"] + r["suffix"]).encode()
    props = case.get("properties")
    if props is not None:
        props = dict(props)
        if "user_properties" in props:
            props["user_properties"] = [tuple(p) for p in props["user_properties"]]
    return payload, props, case["expect"]


def test_there_are_enough_vectors() -> None:
    assert len(CASES) >= 60
    assert len([c for c in CASES if c.parent.name == "invalid"]) >= 25


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_vector(path: Path) -> None:
    payload, props, expect = load(path)
    if "error" in expect:
        assert path.parent.name == "invalid", "error cases belong in invalid/"
        with pytest.raises(oc2mqtt.MessageError) as info:
            oc2mqtt.decode(payload, props)
        err = info.value
        assert isinstance(err, ValueError)
        assert err.kind == expect["error"], str(err)
        if "path" in expect:
            assert err.path == expect["path"], str(err)
        if "reason_contains" in expect:
            assert expect["reason_contains"] in err.reason
        assert str(err) == (f"{err.path}: {err.reason}" if err.path else err.reason)
        for k, v in expect.get("salvage", {}).items():
            assert err.salvage[k] == v, f"salvage[{k!r}]: {err.salvage}"
        return
    assert path.parent.name != "invalid", "success cases do not belong in invalid/"
    d = oc2mqtt.decode(payload, props)
    assert (d.encoding, d.dialect, d.msg_type) == (expect["encoding"], expect["dialect"], expect["msg_type"])
    assert d.message == expect["message"]
    # The canonical dict is itself a valid input, and every encoding round-trips.
    message = expect["message"]
    headers = message.get("headers", {})
    top_level = {k: v for k, v in message.items() if k not in ("headers", "body")}
    dialects = ["spec", "otupy"]
    # The bare dialect carries the four defined headers beside the body, and nothing else.
    if set(headers) <= BARE_HEADERS and not top_level and d.msg_type != "notification":
        dialects.append("bare")
    for encoding in ("json", "cbor"):
        for dialect in dialects:
            data, out_props = oc2mqtt.encode(message, encoding, dialect)
            expected = message
            if dialect == "otupy" and top_level:
                # otupy's top level holds the headers: the message's own
                # top-level keys (`signature`) come back as headers.
                expected = {"headers": {**headers, **top_level}, "body": message["body"]}
            for given in (out_props, None):
                back = oc2mqtt.decode(data, given)
                assert back.message == expected, (encoding, dialect, given)
                assert (back.encoding, back.dialect) == (encoding, dialect)
