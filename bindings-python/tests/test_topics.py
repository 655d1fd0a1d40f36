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


def test_responses_are_published_once_on_the_shared_topic() -> None:
    cmd = oc2mqtt.request(QUERY, sender="p1")
    rsp = oc2mqtt.response_to(cmd, 200, sender="fw-1")
    assert oc2mqtt.response_topics(rsp) == ["oc2/rsp"]
    # otupy_compat: producers also listen on otupy's oc2/rsp/device/<id>,
    # while responses still go once to oc2/rsp.
    t = oc2mqtt.Topics("site-a/", otupy_compat=True)
    assert t.prefix == "site-a/" and t.otupy_compat and t.peer == "otupy" and t.responses == "shared"
    assert t.response_topics(rsp) == ["site-a/oc2/rsp"]
    assert t.response_topics_to(None) == ["site-a/oc2/rsp"]
    assert t.subscriptions("producer", "p1") == ["site-a/oc2/rsp", "site-a/oc2/rsp/p1", "site-a/oc2/rsp/device/p1"]
    assert t.subscriptions("monitor") == ["site-a/oc2/#"]
    assert t.command_topics(cmd) == ["site-a/oc2/cmd/all"]
    assert repr(t) == "Topics(prefix='site-a/', peer='otupy', response_topics='shared')"


def test_response_topics_option_chooses_where_responses_go() -> None:
    cmd = oc2mqtt.request(QUERY, sender="p1")
    rsp = oc2mqtt.response_to(cmd, 200, sender="fw-1")
    both = oc2mqtt.Topics(response_topics="both")
    assert both.responses == "both" and both.peer == "spec"
    assert both.response_topics(rsp) == ["oc2/rsp", "oc2/rsp/p1"]
    assert repr(both) == "Topics(prefix='', peer='spec', response_topics='both')"
    producer = oc2mqtt.Topics(response_topics="producer")
    assert producer.response_topics(rsp) == ["oc2/rsp/p1"]
    # Without a producer to address, the answer still reaches oc2/rsp.
    assert producer.response_topics_to(None) == ["oc2/rsp"]
    assert oc2mqtt.Topics(response_topics="shared").response_topics(rsp) == ["oc2/rsp"]
    with pytest.raises(oc2mqtt.ConfigError, match="unknown response topics 'twice'"):
        oc2mqtt.Topics(response_topics="twice")  # type: ignore[arg-type]


def test_peer_sets_topics_and_its_response_topics() -> None:
    cmd = oc2mqtt.request(QUERY, sender="orch@10.0.0.1:1883")
    rsp = oc2mqtt.response_to(cmd, 200, sender="fw-1")
    # The OIF orchestrator listens on oc2/rsp/<its id>: its peer answers on both topics.
    oif = oc2mqtt.Topics(peer="oif")
    assert (oif.peer, oif.responses) == ("oif", "both")
    assert oif.response_topics(rsp) == ["oc2/rsp", "oc2/rsp/orch"]
    # response_topics overrides the peer's choice.
    assert oc2mqtt.Topics(peer="oif", response_topics="shared").response_topics(rsp) == ["oc2/rsp"]
    # yuuki consumers listen on oc2/cmd: commands go there too.
    assert oc2mqtt.Topics(peer="yuuki").command_topics(oc2mqtt.request(QUERY)) == ["oc2/cmd/all", "oc2/cmd"]
    assert oc2mqtt.Topics(peer="otupy").subscriptions("producer", "p1") == [
        "oc2/rsp",
        "oc2/rsp/p1",
        "oc2/rsp/device/p1",
    ]
    with pytest.raises(oc2mqtt.ConfigError, match="unknown peer 'mosquitto'"):
        oc2mqtt.Topics(peer="mosquitto")  # type: ignore[arg-type]


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
