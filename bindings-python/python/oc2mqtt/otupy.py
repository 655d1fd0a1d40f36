"""A drop-in for otupy's MQTT transfer, on the oc2mqtt core.

Change one import and keep the rest of an otupy script::

    # from otupy.transfers.mqtt import MQTTTransfer, OpenC2Role
    from oc2mqtt.otupy import MQTTTransfer, OpenC2Role

:class:`MQTTTransfer` has otupy 1.1.46's constructor and its
``send(msg, encoder)`` / ``receive(callback, encoder)`` contract, so otupy's
own ``Producer`` and ``Consumer`` use it unchanged. By default it speaks
otupy's flat wire dialect (``wire="spec"`` for the specification's), so the
swap changes nothing on the wire except otupy's defects, which it fixes:

- responses are matched to their command by ``request_id`` and state is
  reset between sends (otupy returns earlier responses again);
- an interim ``102`` does not end the wait for the final response;
- ``send`` returns as soon as every addressed consumer answered;
- duplicates are dropped with a bounded table;
- it reconnects and subscribes again after a connection loss;
- the MQTT client id is stable (``oc2mqtt-<role>-<device_id>``), so sessions resume;
- payloads that arrive without MQTT properties (v3.1.1 peers) are decoded,
  and undecodable ones are answered ``400`` instead of crashing the loop;
- TLS works: :class:`MQTTSTransfer`, which otupy documents but does not ship.

Requires otupy (``pip install 'oc2mqtt[otupy]'``).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from typing import Any, Callable, Literal, cast

import oc2mqtt
from oc2mqtt import _native

try:
    import otupy as _oc2
    from otupy.core.version import _OPENC2_VERSION
    from otupy.encoders.json import JSONEncoder as _JSON
    from otupy.transfers.mqtt.message import Message as _WireMessage
except ImportError as _e:  # pragma: no cover - exercised only without otupy
    raise ImportError("oc2mqtt.otupy needs otupy: pip install 'oc2mqtt[otupy]'") from _e

__all__ = ["MQTTSTransfer", "MQTTTransfer", "OpenC2Role"]

logger = logging.getLogger("oc2mqtt.otupy")


class OpenC2Role(enum.Enum):
    """The part a transfer plays (the same names and values as otupy's)."""

    Consumer = 1
    Producer = 2


def _role(role: Any) -> OpenC2Role:
    if isinstance(role, OpenC2Role):
        return role
    # otupy's own OpenC2Role is a plain class of ints: Consumer = 1, Producer = 2.
    if type(role) is int and role in (1, 2):
        return OpenC2Role(role)
    raise TypeError(f"role: expected OpenC2Role.Consumer or OpenC2Role.Producer, found {role!r}")


def _encoding_of(encoder: Any) -> Literal["json", "cbor"] | None:
    # The name as otupy's encoder gives it; the send refuses one MQTT does not
    # carry with core's text. No encoder: core's default.
    return cast(Literal["json", "cbor"], encoder.getName()) if encoder is not None else None


def _to_dict(msg: Any) -> dict[str, Any]:
    """An otupy Message as oc2mqtt's canonical dict (through otupy's own JSON form)."""
    wire = _WireMessage()
    wire.set(msg)
    return oc2mqtt.decode(_JSON.encode(wire)).message


def _from_dict(message: dict[str, Any], encoding: str) -> Any:
    """oc2mqtt's canonical dict as an otupy Message, as otupy's transfer builds it."""
    payload, _ = oc2mqtt.encode(message, "json", "otupy")
    msg = _JSON.decode(payload.decode(), _WireMessage).get()
    msg.content_type = _native._CONTENT_TYPE
    msg.version = _OPENC2_VERSION
    try:
        msg.encoding = _oc2.Encoders[encoding].value
    except KeyError:  # otupy's CBOR encoder is registered only once imported
        msg.encoding = _JSON
    return msg


class MQTTTransfer(_oc2.Transfer):  # type: ignore[misc]
    """otupy's ``MQTTTransfer`` on oc2mqtt. See the module documentation.

    The positional parameters are otupy 1.1.46's. The keyword-only ones are
    extras: ``wire`` (``"otupy"`` or ``"spec"``), TLS files, and
    ``client_id_file`` (keeps a generated client id across restarts).
    """

    def __init__(
        self,
        broker: str,
        port: int = 1883,
        role: Any = OpenC2Role.Consumer,
        profiles: Sequence[str] | None = None,
        device_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        response_timeout: float = 10,
        usessl: bool = False,
        *,
        wire: str = "otupy",
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        insecure_skip_verify: bool = False,
        client_id_file: str | None = None,
    ) -> None:
        if device_id is None:
            raise ValueError("device_id: required (it is the 'from' of every message and names the device topic)")
        wire = _native._otupy_wire(wire)
        self.broker = broker
        self.port = port
        self.role = _role(role)
        self.profiles = list(profiles or [])
        self.device_id = device_id
        self.username = username
        self.password = password
        self.response_timeout = response_timeout
        self.wire = wire
        if client_id is None and client_id_file is None:
            # Stable, so that a restarted transfer resumes its session (core's scheme).
            client_id = _native._otupy_client_id(
                cast(Literal["producer", "consumer"], self.role.name.lower()), device_id
            )
        self.client_id = client_id
        self.config = oc2mqtt.ClientConfig(
            _native._broker_url(broker, port, usessl),
            client_id=client_id,
            client_id_file=client_id_file,
            username=username,
            password=password,
            ca_file=ca_file,
            cert_file=cert_file,
            key_file=key_file,
            insecure_skip_verify=insecure_skip_verify,
            # What otupy puts on every publish, so that the wire is unchanged.
            message_expiry_secs=_native._OTUPY_MESSAGE_EXPIRY_SECS,
            otupy_compat=True,
        )
        self._producer: oc2mqtt.Producer | None = None
        self._consumer: oc2mqtt.Consumer | None = None
        if self.role is OpenC2Role.Producer:
            self._producer = oc2mqtt.Producer(self.config, device_id)
        else:
            # otupy's Consumer answers query features itself, through its actuators.
            self._consumer = oc2mqtt.Consumer(self.config, device_id, profiles=self.profiles, handle_features=True)

    def send(self, msg: Any, encoder: Any) -> list[Any]:
        """Publishes ``msg`` (an otupy ``Message``) and returns the otupy
        ``Message`` of every response to it, as soon as each addressed
        consumer sent a final response, else after ``response_timeout``."""
        if self._producer is None:
            raise oc2mqtt.ConfigError("send() is for producers: this transfer was made with role=Consumer")
        encoding = _encoding_of(encoder)
        if msg.from_ is None:
            msg.from_ = self.device_id
        # One wait for the acknowledgement and the responses (send_message
        # then collect() would wake this thread at the broker's PUBACK too).
        summary = self._producer.send_message_collect(
            _to_dict(msg),
            timeout=self.response_timeout,
            encoding=encoding,
            dialect=self.wire,
        )
        if not summary.complete and summary.missing:
            logger.warning("missing responses from %s", ", ".join(summary.missing))
        return [_from_dict(r.message, r.encoding) for r in summary.responses]

    def receive(self, callback: Callable[[Any], Any], encoder: Any) -> None:
        """Passes every command (an otupy ``Message``) to ``callback`` (otupy's
        ``Consumer.dispatch``) and publishes the ``Message`` it returns, until
        Ctrl-C or :meth:`close`."""
        if self._consumer is None:
            raise oc2mqtt.ConfigError("receive() is for consumers: this transfer was made with role=Producer")
        self.message_processing_callback = callback
        try:
            for incoming in self._consumer:
                self._answer(incoming, callback)
        except KeyboardInterrupt:
            logger.info("stopped receiving OpenC2 messages")

    def _answer(self, incoming: oc2mqtt.Incoming, callback: Callable[[Any], Any]) -> None:
        # What an outcome means (a response, an exception for a 500 with its
        # text) is the core's rule, as in Consumer.serve; otupy's callback
        # returning None means "send nothing".
        try:
            try:
                response = callback(_from_dict(incoming.message, incoming.encoding))
            except Exception as e:  # a broken actuator must not stop the consumer
                logger.exception("the otupy callback failed")
                incoming._answer(error=e)
                return
            if response is not None:
                incoming._answer(_to_dict(response)["body"]["openc2"]["response"])
        except oc2mqtt.Error as e:  # the broker went away, or close() was called: keep going or end
            logger.warning("cannot answer %s: %s", incoming.request_id, e)

    def close(self) -> None:
        """Disconnects (and ends a running :meth:`receive`)."""
        for client in (self._producer, self._consumer):
            if client is not None:
                client.close()

    def __enter__(self) -> MQTTTransfer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class MQTTSTransfer(MQTTTransfer):
    """:class:`MQTTTransfer` over TLS (port 8883 by default), with a CA
    file and, for mutual TLS, a client certificate and key."""

    def __init__(
        self,
        broker: str,
        port: int = 8883,
        role: Any = OpenC2Role.Consumer,
        profiles: Sequence[str] | None = None,
        device_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        response_timeout: float = 10,
        *,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        insecure_skip_verify: bool = False,
        wire: str = "otupy",
        client_id_file: str | None = None,
    ) -> None:
        super().__init__(
            broker,
            port,
            role,
            profiles,
            device_id,
            username,
            password,
            client_id,
            response_timeout,
            usessl=True,
            wire=wire,
            ca_file=ca_file,
            cert_file=cert_file,
            key_file=key_file,
            insecure_skip_verify=insecure_skip_verify,
            client_id_file=client_id_file,
        )


# Selectable by name in otupy's registry of transfers, next to its own "mqtt".
for _name, _cls in (("oc2mqtt", MQTTTransfer), ("oc2mqtts", MQTTSTransfer)):
    if _name not in _oc2.Transfers:
        _oc2.Transfers.add(_name, _cls)
