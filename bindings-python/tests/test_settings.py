"""Keyword arguments go through the core's settings table (issue 18 item 1):
each is converted by its kind with Python's error texts, checked by the core
with its texts, and read back (getters, reprs) through the same table."""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any, Callable

import pytest

import oc2mqtt

URL = "mqtt://127.0.0.1:1"
DENY = {"action": "deny", "target": {"ipv4_net": "10.0.0.0/8"}}


class Wrong:
    """A value no setting takes."""


def keywords(f: Callable[..., Any]) -> list[str]:
    return [p.name for p in inspect.signature(f).parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]


MAKERS: dict[str, Callable[..., Any]] = {
    "ClientConfig": lambda **kw: oc2mqtt.ClientConfig(URL, **kw),
    "Consumer": lambda **kw: oc2mqtt.Consumer(URL, "fw-1", **kw),
    "Consumer.connect_async": lambda **kw: oc2mqtt.Consumer.connect_async(URL, "fw-1", **kw),
    "ConsumerRules": lambda **kw: oc2mqtt.ConsumerRules("fw-1", **kw),
}
SIGNATURES: dict[str, Callable[..., Any]] = {
    "ClientConfig": oc2mqtt.ClientConfig,
    "Consumer": oc2mqtt.Consumer,
    "Consumer.connect_async": oc2mqtt.Consumer.connect_async,
    "ConsumerRules": oc2mqtt.ConsumerRules,
}


@pytest.mark.parametrize(
    ("maker", "name"), [(m, k) for m in MAKERS for k in keywords(SIGNATURES[m])], ids=lambda x: str(x)
)
def test_every_keyword_argument_of_a_wrong_type_is_a_type_error_naming_it(maker: str, name: str) -> None:
    with pytest.raises(TypeError) as info:
        MAKERS[maker](**{name: Wrong()})
    text = str(info.value)
    assert text.startswith(f"{name}: expected ") and text.endswith("found Wrong"), text


def test_send_keyword_arguments_of_a_wrong_type_are_type_errors_naming_them(broker: Any) -> None:
    with oc2mqtt.Producer(broker.url, "st-p") as p:
        for send in (p.send, p.send_async):
            names = keywords(send)
            assert names == ["to", "profile", "timeout", "expect", "encoding", "dialect"]
            for name in names:
                with pytest.raises(TypeError, match=f"^{name}: expected .*found Wrong$"):
                    send(DENY, **{name: Wrong()})
            # A count of 0 responders is refused by core's table, as in every language.
            with pytest.raises(ValueError, match=r"expect: must be at least 1$"):
                send(DENY, expect=0)
        for name in keywords(p.send_message):
            with pytest.raises(TypeError, match=f"^{name}: expected .*found Wrong$"):
                p.send_message({"body": {"openc2": {"request": DENY}}}, **{name: Wrong()})
        assert set(p.stats) == {
            "mqtt_version",
            "published",
            "received",
            "duplicates",
            "decode_errors",
            "unsolicited",
            "reconnects",
            "publish_errors",
            "discarded",
            "stale",
        }
        assert p.stats["mqtt_version"] in ("5", "3.1.1")


@pytest.mark.parametrize(
    ("make", "text"),
    [
        (lambda: oc2mqtt.ClientConfig(URL, qos=256), "configuration: qos: 256 is too large (at most 255)"),
        (
            lambda: oc2mqtt.ClientConfig(URL, keep_alive_secs=2**32),
            "configuration: keep_alive_secs: 4294967296 is too large (at most 4294967295)",
        ),
        (
            lambda: oc2mqtt.ConsumerRules("fw-1", rate_limit=math.nan),
            "configuration: rate_limit: expected a finite number greater than 0, found NaN",
        ),
        (
            lambda: oc2mqtt.ConsumerRules("fw-1", pairs=[("deny", "")]),
            "configuration: pairs: pair 'deny:': expected ACTION:TARGET",
        ),
        (
            # Python's name, not the core's handler_timeout_secs.
            lambda: oc2mqtt.Consumer(URL, "fw-1", handler_timeout=-1),
            "configuration: handler_timeout: expected a finite, non-negative number of seconds, found -1",
        ),
    ],
)
def test_values_out_of_range_are_config_errors_naming_the_argument(make: Callable[[], Any], text: str) -> None:
    with pytest.raises(oc2mqtt.ConfigError) as info:
        make()
    assert str(info.value).startswith(text), str(info.value)


def test_a_choice_of_the_wrong_type_lists_what_it_takes() -> None:
    with pytest.raises(TypeError, match=r'^mqtt_version: expected "5", "3\.1\.1" or "auto", found list$'):
        oc2mqtt.ClientConfig(URL, mqtt_version=[5])  # type: ignore[arg-type]
    assert oc2mqtt.ClientConfig(URL, mqtt_version=5).mqtt_version == "5"
    assert oc2mqtt.ClientConfig(URL, mqtt_version="3.1.1").mqtt_version == "3.1.1"


def test_repr_shows_what_differs_from_the_defaults_in_the_tables_order(tmp_path: Path) -> None:
    keep = tmp_path / "client-id"
    c = oc2mqtt.ClientConfig(
        URL,
        max_payload=10,
        response_topics="both",
        mqtt_version=5,
        keep_alive_secs=30,
        client_id_file=keep,
        insecure_skip_verify=False,
        qos=1,
    )
    assert repr(c) == (
        f"ClientConfig({URL!r}, client_id_file={keep!r}, keep_alive_secs=30,"
        " mqtt_version='5', response_topics='both', max_payload=10)"
    )
    assert repr(oc2mqtt.ClientConfig(URL, qos=1, keep_alive_secs=60)) == f"ClientConfig({URL!r})"


def test_getters_read_the_settings_back_as_python_values(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    c = oc2mqtt.ClientConfig([URL], ca_file=ca, message_expiry_secs=5, insecure_skip_verify=True)
    assert c.brokers == [URL]
    assert c.ca_file == ca and isinstance(c.ca_file, Path) and c.cert_file is None
    assert (c.message_expiry_secs, c.insecure_skip_verify, c.otupy_compat) == (5, True, False)
    assert (type(c.message_expiry_secs), type(c.keep_alive_secs), type(c.max_payload)) == (int, int, int)
    assert (c.mqtt_version, c.response_topics, c.username, c.has_password) == ("auto", None, None, False)
