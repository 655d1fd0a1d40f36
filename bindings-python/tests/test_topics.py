"""Topic helpers: subscriptions, command/response topics, filter matching."""

from __future__ import annotations

import pytest

import oc2mqtt

QUERY = {"action": "query", "target": {"features": ["versions"]}}


def test_consumer_subscriptions() -> None:
    assert oc2mqtt.subscriptions("consumer", "fw-1", ["slpf"]) == [
        "oc2/cmd/all",
        "oc2/cmd",
        "oc2/cmd/ap/slpf",
        "oc2/cmd/device/fw-1",
    ]
    assert oc2mqtt.subscriptions("producer", "p1") == ["oc2/rsp", "oc2/rsp/p1"]
    assert oc2mqtt.subscriptions("monitor") == ["oc2/#"]


def test_command_topics_follow_the_polite_rule() -> None:
    assert oc2mqtt.command_topics(oc2mqtt.request(QUERY)) == ["oc2/cmd/all"]
    slpf = dict(QUERY, actuator={"slpf": {}})
    assert oc2mqtt.command_topics(oc2mqtt.request(slpf)) == ["oc2/cmd/ap/slpf"]
    assert oc2mqtt.command_topics(oc2mqtt.request(slpf, to=["d1", "d2"])) == [
        "oc2/cmd/device/d1",
        "oc2/cmd/device/d2",
    ]


def test_response_topics_go_to_the_producer() -> None:
    cmd = oc2mqtt.request(QUERY, sender="p1")
    rsp = oc2mqtt.response_to(cmd, 200, sender="fw-1")
    assert oc2mqtt.response_topics(rsp) == ["oc2/rsp", "oc2/rsp/p1"]
    t = oc2mqtt.Topics("site-a/", otupy_compat=True)
    assert t.prefix == "site-a/" and t.otupy_compat
    assert t.response_topics(rsp) == ["site-a/oc2/rsp", "site-a/oc2/rsp/p1", "site-a/oc2/rsp/device/p1"]
    assert t.response_topics_to(None) == ["site-a/oc2/rsp"]
    assert t.subscriptions("monitor") == ["site-a/oc2/#"]
    assert t.command_topics(cmd) == ["site-a/oc2/cmd/all"]
    assert repr(t) == 'Topics(prefix="site-a/", otupy_compat=True)'


def test_bad_ids_raise_topic_error_with_reason() -> None:
    with pytest.raises(oc2mqtt.TopicError) as info:
        oc2mqtt.subscriptions("consumer", "dev#1")
    assert str(info.value) == "invalid topic: device id 'dev#1' contains '#', which MQTT topic names forbid"
    assert isinstance(info.value, ValueError) and isinstance(info.value, oc2mqtt.Error)
    with pytest.raises(oc2mqtt.TopicError, match="topic prefix 'a/\\+'"):
        oc2mqtt.Topics("a/+")
    with pytest.raises(oc2mqtt.TopicError, match="device id must not be empty"):
        oc2mqtt.validate_id("", "device id")
    oc2mqtt.validate_id("site/a")


def test_consumer_needs_device_id_and_roles_are_checked() -> None:
    with pytest.raises(oc2mqtt.ConfigError, match="a consumer needs a device id"):
        oc2mqtt.subscriptions("consumer")
    with pytest.raises(oc2mqtt.ConfigError, match="unknown role 'boss'; expected producer, consumer or monitor"):
        oc2mqtt.subscriptions("boss")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("filt", "topic", "expected"),
    [
        ("oc2/#", "oc2", True),
        ("oc2/#", "oc2/cmd/all", True),
        ("oc2/cmd/+", "oc2/cmd/all", True),
        ("oc2/cmd/+", "oc2/cmd/ap/slpf", False),
        ("#", "$SYS/broker/uptime", False),
        ("$share/g1/oc2/cmd/all", "oc2/cmd/all", True),
        ("oc2/rsp", "oc2/rsp/p1", False),
    ],
)
def test_topic_matches(filt: str, topic: str, expected: bool) -> None:
    assert oc2mqtt.topic_matches(filt, topic) is expected
