"""Type stubs of the native module ``oc2mqtt._native`` (checked by mypy.stubtest)."""

import os
import pathlib
from collections.abc import Awaitable, Callable, Coroutine, Generator, Mapping, Sequence
from typing import Any, Generic, Literal, TypedDict, TypeVar, Union, final

from typing_extensions import Self

__all__ = [
    "AuthError",
    "ClientConfig",
    "Closed",
    "ClosedError",
    "ConfigError",
    "ConnectError",
    "Connecting",
    "Consumer",
    "ConsumerRules",
    "Correlator",
    "Decision",
    "Decoded",
    "Deduplicator",
    "Error",
    "Exchange",
    "HandlerError",
    "Incoming",
    "IoError",
    "MessageError",
    "Monitor",
    "MonitorEvent",
    "Outcome",
    "Producer",
    "Publish",
    "PublishError",
    "Reply",
    "Request",
    "Summary",
    "TimeoutExpired",
    "TlsError",
    "TopicError",
    "Topics",
    "__version__",
    "_broker_url",
    "_cli",
    "_emit_log",
    "_otupy_client_id",
    "_otupy_wire",
    "command_topics",
    "decode",
    "encode",
    "refresh_logging",
    "request",
    "response_to",
    "response_topics",
    "subscriptions",
    "topic_matches",
    "validate_id",
]

__version__: str
_CONCURRENT_HANDLERS: int
_OTUPY_MESSAGE_EXPIRY_SECS: int
_CONTENT_TYPE: str

_JsonValue = Any
"""A JSON value as Python: dict, list, str, int, float, bool or None."""

_Message = dict[str, Any]
"""A message in the specification's shape: ``{"headers": {...}, "body": {"openc2": {...}}}``."""

_Payload = bytes | bytearray | str
# @generated choices (from core's settings tables: edit core/src/settings.rs, then `make generate`)
_MqttVersion = Literal["5", "3.1.1", "auto"]
_Peer = Literal["spec", "otupy", "yuuki", "oif"]
_ResponseTopics = Literal["shared", "producer", "both"]
_Encoding = Literal["json", "cbor"]
_Dialect = Literal["spec", "otupy", "bare"]
# @end generated
# @generated names (from core's name tables: edit core, then `make generate`)
_MsgType = Literal["request", "response", "notification"]
_ResponseRequested = Literal["none", "ack", "status", "complete"]
_CloseReason = Literal["complete", "deadline", "closed"]
_CorrelatorState = Literal["unsolicited", "open", "complete"]
_DecodeErrorKind = Literal["too_large", "syntax", "utf8", "content_type", "dialect", "type", "missing", "value"]
_Skip = Literal["duplicate", "not_addressed", "stale", "not_a_command", "answered", "undecodable"]
_MonitorEventKind = Literal["request", "response", "notification", "undecodable", "unanswered"]
_PairingState = Literal["open", "complete", "unanswered"]
_LogLevel = Literal["error", "warn", "info", "debug", "trace"]
_Role = Literal["producer", "consumer", "monitor"]
# @end generated

class _Properties(TypedDict, total=False):
    """MQTT v5 PUBLISH properties that matter to OpenC2."""

    payload_format_indicator: int | None
    content_type: str | None
    user_properties: list[tuple[str, str]]

# What could be read from a message that failed to decode.
_Salvage = TypedDict(
    "_Salvage",
    {
        "request_id": str | None,
        "from": str | None,
        "dialect": str | None,
        "encoding": str | None,
        "msg_type": str | None,
        "to": list[str] | None,
        "response_requested": str | None,
    },
)

# ---------------------------------------------------------------- errors

class Error(Exception):
    """Base class of every oc2mqtt error."""

class MessageError(Error, ValueError):
    """A message is malformed or invalid."""

    kind: _DecodeErrorKind
    """What was wrong (one of core's decode error kinds)."""
    path: str
    """Dotted path of the offending field (``body.openc2.request.target``); empty for the whole payload."""
    reason: str
    salvage: _Salvage

class TopicError(Error, ValueError):
    """An identifier or topic cannot be used as an MQTT topic (level)."""

class ConfigError(Error, ValueError):
    """The configuration is inconsistent or out of range."""

class ConnectError(Error, ConnectionError):
    """The broker could not be reached or the connection was lost."""

class AuthError(Error, PermissionError):
    """The broker refused the credentials or the authorisation."""

class TlsError(Error, ConnectionError):
    """The TLS handshake failed."""

class TimeoutExpired(Error, TimeoutError):
    """A wait ran out of time."""

class PublishError(Error):
    """The broker did not accept a publish or subscribe."""

class ClosedError(Error, ConnectionError):
    """The object was closed or its connection shut down."""

class HandlerError(Error):
    """A user-supplied handler failed."""

class IoError(Error, OSError):
    """A local I/O operation failed."""

# ---------------------------------------------------------------- codec

@final
class Decoded:
    """A message decoded from a payload, and how it arrived."""

    @property
    def message(self) -> _Message: ...
    @property
    def encoding(self) -> _Encoding: ...
    @property
    def dialect(self) -> _Dialect: ...
    @property
    def msg_type(self) -> _MsgType: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def sender(self) -> str | None:
        """The ``from`` header."""
    @property
    def status(self) -> int | None:
        """The status of a response, else None."""

def decode(
    payload: _Payload, properties: _Properties | Any | None = None, *, max_payload: int | None = None
) -> Decoded:
    """Decodes a payload (JSON or CBOR; spec, otupy or bare dialect).

    ``properties`` is a dict like the one :func:`encode` returns, a paho-mqtt
    ``_Properties``, or None (MQTT v3.1.1: encoding and dialect are sniffed).
    Raises :class:`MessageError`.
    """

def encode(
    message: _Message | Decoded, encoding: _Encoding | None = None, dialect: _Dialect | None = None
) -> tuple[bytes, _Properties]:
    """Validates and encodes a message; returns ``(payload, properties)``.

    Defaults: ``encoding="json"``, ``dialect="spec"``. Raises :class:`MessageError`.
    """

def request(command: dict[str, Any], *, sender: str | None = None, to: str | Sequence[str] | None = None) -> _Message:
    """A request message for ``command`` with a fresh ``request_id`` and ``created``.

    ``sender`` sets ``from``; ``to`` (one id or a list) sets ``to`` (default: neither).
    """

def response_to(
    command_message: _Message | Decoded,
    status: int,
    *,
    status_text: str | None = None,
    results: dict[str, Any] | None = None,
    sender: str | None = None,
) -> _Message:
    """A response to ``command_message``: same ``request_id``, addressed to its sender."""

# ---------------------------------------------------------------- topics

@final
class Topics:
    """The topic scheme: an optional site prefix, the peers to suit, and where responses go.

    - ``peer``: "spec", "otupy", "yuuki" or "oif", as in :class:`ClientConfig` (default 'spec')
    - ``response_topics``: "shared" (``oc2/rsp``), "producer" (``oc2/rsp/<producer>``)
      or "both" (default None: as the peer has it)
    - ``otupy_compat``: the same as ``peer="otupy"``, kept for existing callers
    """

    def __new__(
        cls,
        prefix: str | None = None,
        *,
        otupy_compat: bool | None = None,
        peer: _Peer | None = None,
        response_topics: _ResponseTopics | None = None,
    ) -> Topics: ...
    @property
    def prefix(self) -> str: ...
    @property
    def otupy_compat(self) -> bool: ...
    @property
    def peer(self) -> _Peer:
        """The peers suited."""
    @property
    def responses(self) -> _ResponseTopics:
        """Where responses go: ``response_topics``, else the peer's choice."""
    def subscriptions(
        self, role: _Role, device_id: str | None = None, profiles: Sequence[str] | None = None
    ) -> list[str]: ...
    def command_topics(self, message: _Message | Decoded) -> list[str]: ...
    def response_topics(self, message: _Message | Decoded) -> list[str]: ...
    def response_topics_to(self, producer_id: str | None = None) -> list[str]: ...

def subscriptions(role: _Role, device_id: str | None = None, profiles: Sequence[str] | None = None) -> list[str]:
    """The filters a client in ``role`` subscribes to (MQTT-T 2.2)."""

def command_topics(message: _Message | Decoded) -> list[str]:
    """The topics a command is published on: one per ``to``, else its actuator's profile, else ``oc2/cmd/all``."""

def response_topics(message: _Message | Decoded) -> list[str]:
    """The topics a response is published on: ``oc2/rsp`` (MQTT-T 3.2; see :class:`Topics` for the others)."""

def topic_matches(filter: str, topic: str) -> bool:
    """Whether an MQTT filter (``+``, ``#``, ``$share/<group>/``) matches a topic name."""

def validate_id(id: str, what: str | None = None) -> None:
    """Raises :class:`TopicError` unless ``id`` can stand as a topic level."""

def _otupy_client_id(role: _Role, device_id: str) -> str:
    """The MQTT client id of ``oc2mqtt.otupy``'s transfer given none: ``oc2mqtt-<role>-<device_id>``."""

def _otupy_wire(wire: str) -> Literal["otupy", "spec"]:
    """The dialect of ``oc2mqtt.otupy``'s ``wire`` keyword; ``ConfigError`` for another."""

# ---------------------------------------------------------------- correlation

@final
class Closed:
    """An exchange that is no longer open."""

    @property
    def request_id(self) -> str: ...
    @property
    def reason(self) -> _CloseReason: ...
    @property
    def missing(self) -> list[str]: ...
    @property
    def missing_count(self) -> int: ...
    @property
    def data(self) -> Any: ...

@final
class Outcome:
    """What a response meant for its exchange."""

    @property
    def kind(self) -> _CorrelatorState: ...
    @property
    def is_final(self) -> bool: ...
    @property
    def expected(self) -> bool: ...
    @property
    def data(self) -> Any: ...
    @property
    def closed(self) -> Closed | None: ...

@final
class Correlator:
    """Open exchanges keyed by ``request_id``; times in ms (default: ``time.monotonic_ns() // 1_000_000``)."""

    def __new__(cls) -> Correlator: ...
    def open(
        self,
        request_id: str,
        expect: Sequence[str] | int | None = None,
        *,
        timeout_ms: int | None = None,
        now_ms: int | None = None,
        data: Any = None,
    ) -> None: ...
    def open_command(
        self,
        command: _Message | Decoded,
        *,
        timeout_ms: int | None = None,
        now_ms: int | None = None,
        data: Any = None,
    ) -> bool: ...
    def on_response(self, message: _Message | Decoded) -> Outcome: ...
    def close(self, request_id: str) -> Closed | None: ...
    def expire(self, now_ms: int | None = None) -> list[Closed]: ...
    def next_deadline(self) -> int | None: ...
    def missing(self, request_id: str) -> list[str] | None: ...
    def data(self, request_id: str) -> Any: ...
    def is_open(self, request_id: str) -> bool: ...
    def __contains__(self, request_id: str, /) -> bool: ...
    def __len__(self) -> int: ...
    @property
    def unsolicited(self) -> int: ...

class _DedupStats(TypedDict):
    checked: int
    duplicates: int
    evicted: int
    expired: int

@final
class Deduplicator:
    """Remembers recently seen messages for ``window_ms`` (default 60 000), at most
    ``capacity`` of them (default 100 000; the oldest is forgotten first)."""

    def __new__(cls, window_ms: int | None = None, capacity: int | None = None) -> Deduplicator: ...
    def check(self, message: _Message | Decoded, payload: _Payload | None = None, *, now_ms: int | None = None) -> bool:
        """True the first time (process it), False for a duplicate (drop it)."""
    def __len__(self) -> int: ...
    @property
    def stats(self) -> _DedupStats: ...

# ---------------------------------------------------------------- logging

def refresh_logging() -> None:
    """Forgets cached logger levels so that changes made with :mod:`logging` take effect."""

def _emit_log(level: str, message: str) -> None: ...
def _broker_url(host: str, port: int, tls: bool = False) -> str:
    """The broker URL for ``host`` and ``port`` (``mqtts://`` with ``tls``), an IPv6 address bracketed."""

# ---------------------------------------------------------------- command line

def _cli(args: list[str]) -> int:
    """Runs the oc2mqtt command line (``args[0]`` is the program name); returns its exit status.

    For a process's entry point (``python -m oc2mqtt``): it sets up its own
    logging and SIGINT/SIGTERM handling.
    """

# ---------------------------------------------------------------- client

_Path = Union[str, "os.PathLike[str]"]

class _Stats(TypedDict):
    mqtt_version: Literal["5", "3.1.1"] | None
    """The MQTT version spoken with the broker; None before the first connection."""
    published: int
    received: int
    duplicates: int
    decode_errors: int
    unsolicited: int
    reconnects: int
    publish_errors: int
    """Publishes the broker refused."""
    discarded: int
    """Publishes the client dropped itself (closed before acknowledged, too many waiting)."""
    stale: int
    """Commands not executed: retained, or older than the consumer's ``freshness_secs``."""

# @generated class ClientConfig (from core's settings tables: edit core/src/settings.rs, then `make generate`)
@final
class ClientConfig:
    """How to reach and talk to the broker; checked when made (a ``ConfigError`` or
    ``IoError`` names the setting).

    ``broker`` is a URL (``mqtt://``, ``mqtts://``, ``ws://``, ``wss://``) or a list of
    them, tried in order (failover). The keyword arguments, with their defaults:

    - ``client_id`` (default None): the MQTT client id; when absent, one is generated
      (``oc2mqtt-<uuid>``) and the session ends with the connection: give one (or
      ``client_id_file``) to keep a session on the broker
    - ``client_id_file`` (default None): a file holding the client id: read if it
      exists, else written with the generated one, so the broker can resume the session
      after a restart
    - ``username`` (default None): user name for the broker
    - ``password`` (default None): password for the broker; never logged nor shown
    - ``ca_file`` (default None): CA certificates (PEM) the broker's certificate must
      chain to; when absent, the system's
    - ``cert_file`` (default None): client certificate (PEM) for mutual TLS, with
      ``key_file``
    - ``key_file`` (default None): client private key (PEM) for mutual TLS
    - ``insecure_skip_verify`` (default False): skip the check of the broker's
      certificate and host name; testing only: anyone can then impersonate the broker
    - ``keep_alive_secs`` (default 60): keep-alive interval in seconds, at most 300 as
      MQTT-T 3.4 requires
    - ``session_expiry_secs`` (default 3600): how long the broker keeps the session
      after a disconnect (MQTT v5 Session Expiry), for a given ``client_id`` or
      ``client_id_file``: a generated client id's session ends with the connection
    - ``qos`` (default 1): QoS for publishing: 1 or 2
    - ``mqtt_version`` (default 'auto'): the MQTT version: ``5``, ``3.1.1``, or
      ``auto``: 5, falling back to 3.1.1 when the broker refuses it
    - ``message_expiry_secs`` (default None): MQTT v5 Message Expiry Interval put on
      every publish, so that a broker drops messages nobody received in time; when
      absent, none
    - ``topic_prefix`` (default None): a prefix before ``oc2/`` in every topic (brokers
      shared between sites)
    - ``otupy_compat`` (default False): the same as peer ``otupy``, kept for existing
      callers
    - ``peer`` (default 'spec'): the peers to suit: their topics, dialect and
      ``msgType`` spelling; every peer's forms are decoded whatever this says. ``spec``:
      MQTT-T as written; ``otupy``: otupy 1.1, its flat dialect and
      ``oc2/rsp/device/<id>``; ``yuuki``: yuuki consumers, commands on ``oc2/cmd`` too;
      ``oif``: the OIF orchestrator, responses on ``oc2/rsp/<its id>`` too, ``msgType``
      spelled ``request``/``response``
    - ``response_topics`` (default None): where a consumer's responses go: ``shared``
      (``oc2/rsp``), ``producer`` (``oc2/rsp/<producer>``) or ``both``; when absent, as
      the peer has it (``oc2/rsp`` only for the specification's peers)
    - ``connect_timeout_secs`` (default 10): how long one connection attempt may take,
      in seconds: TCP, TLS and WebSocket together, then again for the CONNACK
    - ``max_payload`` (default 1048576): largest payload decoded, in bytes; larger ones
      are refused before parsing
    """

    def __new__(
        cls,
        broker: str | Sequence[str],
        *,
        client_id: str | None = None,
        client_id_file: _Path | None = None,
        username: str | None = None,
        password: str | None = None,
        ca_file: _Path | None = None,
        cert_file: _Path | None = None,
        key_file: _Path | None = None,
        insecure_skip_verify: bool | None = None,
        keep_alive_secs: int | None = None,
        session_expiry_secs: int | None = None,
        qos: int | None = None,
        mqtt_version: _MqttVersion | int | None = None,
        message_expiry_secs: int | None = None,
        topic_prefix: str | None = None,
        otupy_compat: bool | None = None,
        peer: _Peer | None = None,
        response_topics: _ResponseTopics | None = None,
        connect_timeout_secs: int | None = None,
        max_payload: int | None = None,
    ) -> ClientConfig: ...
    @property
    def brokers(self) -> list[str]: ...
    @property
    def client_id(self) -> str | None: ...
    @property
    def client_id_file(self) -> pathlib.Path | None: ...
    @property
    def username(self) -> str | None: ...
    @property
    def has_password(self) -> bool: ...
    @property
    def ca_file(self) -> pathlib.Path | None: ...
    @property
    def cert_file(self) -> pathlib.Path | None: ...
    @property
    def key_file(self) -> pathlib.Path | None: ...
    @property
    def insecure_skip_verify(self) -> bool: ...
    @property
    def keep_alive_secs(self) -> int: ...
    @property
    def session_expiry_secs(self) -> int: ...
    @property
    def qos(self) -> int: ...
    @property
    def mqtt_version(self) -> _MqttVersion: ...
    @property
    def message_expiry_secs(self) -> int | None: ...
    @property
    def topic_prefix(self) -> str | None: ...
    @property
    def otupy_compat(self) -> bool: ...
    @property
    def response_topics(self) -> _ResponseTopics | None: ...
    @property
    def connect_timeout_secs(self) -> int: ...
    @property
    def max_payload(self) -> int: ...
    # @end generated
    @property
    def peer(self) -> _Peer:
        """The peers suited: ``peer``, or "otupy" when ``otupy_compat``."""

_Config = ClientConfig | str
_T = TypeVar("_T")

@final
class Connecting(Generic[_T]):
    """A connection under way: ``await`` it for the connected object, or use it as
    ``async with Producer.connect_async(...) as producer:``, which also closes it
    at the end of the block. Neither blocks the event loop."""

    def __await__(self) -> Generator[Any, Any, _T]: ...
    def __aenter__(self) -> Awaitable[_T]: ...
    def __aexit__(self, *exc: object) -> Awaitable[None]: ...

@final
class Reply:
    """A response received in an exchange."""

    @property
    def message(self) -> _Message: ...
    @property
    def status(self) -> int | None: ...
    @property
    def status_text(self) -> str | None: ...
    @property
    def sender(self) -> str | None: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def topic(self) -> str: ...
    @property
    def encoding(self) -> _Encoding: ...
    @property
    def dialect(self) -> _Dialect: ...
    @property
    def latency(self) -> float:
        """Seconds from the send to its arrival."""

@final
class Summary:
    """The result of a whole exchange."""

    @property
    def request_id(self) -> str: ...
    @property
    def responses(self) -> list[Reply]: ...
    @property
    def complete(self) -> bool: ...
    @property
    def missing(self) -> list[str]: ...
    @property
    def missing_count(self) -> int: ...
    def __len__(self) -> int: ...

@final
class Exchange:
    """The responses to one command: iterate, ``async for``, or ``collect()``."""

    @property
    def request_id(self) -> str: ...
    def __iter__(self) -> Self: ...
    def __next__(self) -> Reply: ...
    def collect(self) -> Summary: ...
    def __aiter__(self) -> Self: ...
    def __anext__(self) -> Awaitable[Reply]: ...
    def collect_async(self) -> Awaitable[Summary]: ...
    def cancel(self) -> None: ...
    @property
    def is_closed(self) -> bool: ...
    @property
    def is_complete(self) -> bool: ...

@final
class Producer:
    """Sends commands and collects their responses; one MQTT connection.

    ``Producer(config, producer_id)`` connects before it returns (the GIL
    released meanwhile); ``config`` is a :class:`ClientConfig` or a broker URL.
    Use it as a context manager (``with``, or ``async with``) or call
    ``close()``. In asyncio code, ``await Producer.connect_async(config,
    producer_id)`` (or ``async with Producer.connect_async(...) as producer:``)
    connects without blocking the event loop.
    """

    def __new__(cls, config: _Config, producer_id: str) -> Producer: ...
    @classmethod
    def connect_async(cls, config: _Config, producer_id: str) -> Connecting[Producer]:
        """Connects without blocking the event loop; await it, or ``async with`` it."""
    @property
    def id(self) -> str: ...
    @property
    def broker(self) -> str:
        """The broker URL connected to (after a failover, the one in use)."""
    def send(
        self,
        command: dict[str, Any],
        *,
        # @generated keywords SendOptions (`make generate`)
        to: str | Sequence[str] | None = None,
        profile: str | None = None,
        timeout: float | None = None,
        expect: int | None = None,
        encoding: _Encoding | None = None,
        dialect: _Dialect | None = None,
        # @end generated
    ) -> Exchange:
        # @generated doc Producer.send (`make generate`)
        """Sends a command (``{"action": ..., "target": {...}}``) with a fresh
        request id and returns its ``Exchange``. Keyword arguments, with their
        defaults (a broker that does not acknowledge the command within
        ``timeout`` raises ``TimeoutExpired``):

        - ``to`` (default None): recipient ids: one publish each on ``oc2/cmd/device/<id>``; the
          exchange completes when each sent a final response
        - ``profile`` (default None): actuator profile: sets the command's actuator if it has
          none (topic ``oc2/cmd/ap/<profile>`` when there is no ``to``)
        - ``timeout`` (default 10): how long to wait for responses; it also bounds the wait for
          the broker's acknowledgement
        - ``expect`` (default None): complete after this many distinct responders sent a final
          response (broadcasts)
        - ``encoding`` (default 'json'): payload encoding
        - ``dialect`` (default None): wire dialect; when absent, as the peer has it (otupy's
          flat dialect for ``otupy``, the specification's for the others); ``bare`` carries no
          request id, so its responses cannot be correlated
        """
        # @end generated
    def send_message(
        self,
        message: _Message | Decoded,
        *,
        # @generated keywords SendOptions but to, profile (`make generate`)
        timeout: float | None = None,
        expect: int | None = None,
        encoding: _Encoding | None = None,
        dialect: _Dialect | None = None,
        # @end generated
    ) -> Exchange:
        """Sends a whole request message, filling in ``request_id``, ``created`` and
        ``from`` when absent; recipients come from its ``to`` header. Defaults as for
        :meth:`send` (``timeout`` 10 s)."""
    def send_async(
        self,
        command: dict[str, Any],
        *,
        # @generated keywords SendOptions (`make generate`)
        to: str | Sequence[str] | None = None,
        profile: str | None = None,
        timeout: float | None = None,
        expect: int | None = None,
        encoding: _Encoding | None = None,
        dialect: _Dialect | None = None,
        # @end generated
    ) -> Awaitable[Exchange]:
        """:meth:`send` as an awaitable (same arguments and defaults)."""
    def send_collect(
        self,
        command: dict[str, Any],
        *,
        # @generated keywords SendOptions (`make generate`)
        to: str | Sequence[str] | None = None,
        profile: str | None = None,
        timeout: float | None = None,
        expect: int | None = None,
        encoding: _Encoding | None = None,
        dialect: _Dialect | None = None,
        # @end generated
    ) -> Summary:
        """``send(command, ...).collect()`` in one call and one wait: the :class:`Summary`
        as soon as every addressed consumer sent a final response, else at the timeout.

        Same arguments, defaults and errors as :meth:`send`: a refused
        command raises :class:`PublishError`, a broker that does not acknowledge it
        within ``timeout`` :class:`TimeoutExpired`. Ctrl-C ends the wait and the exchange.
        To stream the responses as they arrive, iterate :meth:`send`'s :class:`Exchange`.
        """
    def send_message_collect(
        self,
        message: _Message | Decoded,
        *,
        # @generated keywords SendOptions but to, profile (`make generate`)
        timeout: float | None = None,
        expect: int | None = None,
        encoding: _Encoding | None = None,
        dialect: _Dialect | None = None,
        # @end generated
    ) -> Summary:
        """``send_message(message, ...).collect()`` in one call and one wait, as
        :meth:`send_collect` is for :meth:`send` (defaults as for :meth:`send_message`)."""
    def send_collect_async(
        self,
        command: dict[str, Any],
        *,
        # @generated keywords SendOptions (`make generate`)
        to: str | Sequence[str] | None = None,
        profile: str | None = None,
        timeout: float | None = None,
        expect: int | None = None,
        encoding: _Encoding | None = None,
        dialect: _Dialect | None = None,
        # @end generated
    ) -> Awaitable[Summary]:
        """:meth:`send_collect` as an awaitable (same arguments and defaults): one future
        where ``await (await send_async(...)).collect_async()`` takes two. Cancelling the
        await ends the exchange, as cancelling :meth:`Exchange.collect_async` does."""
    @property
    def stats(self) -> _Stats: ...
    @property
    def open_exchanges(self) -> int: ...
    def next_unsolicited(self, timeout: float | None = None) -> Reply | None:
        """The next response that matched no exchange (a peer's bare ``{"status": 200}``
        without request_id, an answer after its exchange ended), or None once closed
        or after ``timeout`` seconds (default None: no limit). Up to 1024 wait to be
        read; more are only counted in ``stats["unsolicited"]``."""
    def next_unsolicited_async(self, timeout: float | None = None) -> Awaitable[Reply | None]:
        """:meth:`next_unsolicited` as an awaitable."""
    def close(self) -> None: ...
    def close_async(self) -> Awaitable[None]: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *_exc: object) -> bool: ...
    def __aenter__(self) -> Awaitable[Self]: ...
    def __aexit__(self, *_exc: object) -> Awaitable[None]: ...

@final
class Incoming:
    """A command for the application, with the means to answer it."""

    @property
    def message(self) -> _Message: ...
    @property
    def command(self) -> dict[str, Any]: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def sender(self) -> str | None: ...
    @property
    def topic(self) -> str: ...
    @property
    def encoding(self) -> _Encoding: ...
    @property
    def dialect(self) -> _Dialect: ...
    @property
    def response_requested(self) -> _ResponseRequested: ...
    def reply(
        self, status: int | None = None, *, status_text: str | None = None, results: dict[str, Any] | None = None
    ) -> None: ...
    def reply_async(
        self, status: int | None = None, *, status_text: str | None = None, results: dict[str, Any] | None = None
    ) -> Awaitable[None]: ...
    @property
    def _handler_timeout(self) -> float | None: ...
    def _time_out(self) -> None: ...
    def _stop(self) -> None: ...
    def _answer(self, result: Any = None, *, error: BaseException | None = None) -> None: ...

_Response = dict[str, Any] | int | None
_Handler = Callable[[dict[str, Any]], _Response]
_AsyncHandler = Callable[[dict[str, Any]], Awaitable[_Response] | _Response]
_Pairs = Mapping[str, Sequence[str]] | Sequence[Sequence[str]]

@final
class Consumer:
    # @generated doc Consumer (`make generate`)
    """Receives commands and answers them; one MQTT connection.

    ``Consumer(config, device_id, ...)`` connects and subscribes before it
    returns (the GIL released meanwhile); ``config`` is a ``ClientConfig`` or a
    broker URL. In asyncio code, ``await Consumer.connect_async(...)`` (or
    ``async with Consumer.connect_async(...) as consumer:``) does not block the
    event loop. Keyword arguments, with their defaults:

    - ``profiles`` (default None): actuator profiles implemented (``slpf``, ...): one
      ``oc2/cmd/ap/<profile>`` subscription each
    - ``pairs`` (default None): action/target pairs implemented; when any are declared,
      other pairs are answered 501 (``query features`` is always implemented)
    - ``args`` (default None): command arguments implemented beyond the Language
      Specification's and the profiles' (``x-acme`` or ``x-acme.mode``); once pairs,
      profiles or args are declared, other arguments are answered 501
    - ``rate_limit`` (default None): commands per minute, reported by ``query features``
    - ``group`` (default None): consumer group: each command reaches one member
      (``$share/<group>/...``)
    - ``handle_features`` (default False): deliver ``query features`` to the application
      instead of answering it from this configuration
    - ``freshness_secs`` (default 900): commands whose ``created`` is older than this many
      seconds are not run nor answered, only counted in the ``stale`` statistic; 0 turns the
      check off
    - ``handler_timeout`` (default None): seconds a ``serve()`` handler may take; past it
      the command is answered 500 and the handler's late result is dropped; when absent or
      0, no limit
    - ``journal`` (default None): a file where each command is written before the handler
      sees it and marked finished once answered: started again with the same file (and a
      stable client id) after a kill, the consumer runs what it had taken and not finished,
      and nothing it had finished; not synced, so an operating system crash may lose the
      last lines; when absent, in memory only

    ``pairs`` is a dict, ``{"deny": ["ipv4_net"]}`` (as LS 4.1 lists them), or
    a list of ``(action, target)`` pairs. ``handler_timeout`` bounds
    ``serve_async()``'s handlers too: an async one past it is cancelled and
    its command answered 500 the same way.

    Before a command reaches Python the core has decoded it (answering 400
    to malformed ones), dropped duplicates, ignored commands addressed to
    other devices, skipped retained commands and those older than
    ``freshness_secs`` (counted in ``stats["stale"]``), sent the 102 of
    ``response_requested: ack``, answered ``query features`` and 501 to
    undeclared action/target pairs.
    """

    # @end generated
    def __new__(
        cls,
        config: _Config,
        device_id: str,
        *,
        # @generated keywords ConsumerOptions but device_id (`make generate`)
        profiles: Sequence[str] | None = None,
        pairs: _Pairs | None = None,
        args: Sequence[str] | None = None,
        rate_limit: float | None = None,
        group: str | None = None,
        handle_features: bool | None = None,
        freshness_secs: int | None = None,
        handler_timeout: float | None = None,
        journal: _Path | None = None,
        # @end generated
    ) -> Consumer: ...
    @classmethod
    def connect_async(
        cls,
        config: _Config,
        device_id: str,
        *,
        # @generated keywords ConsumerOptions but device_id (`make generate`)
        profiles: Sequence[str] | None = None,
        pairs: _Pairs | None = None,
        args: Sequence[str] | None = None,
        rate_limit: float | None = None,
        group: str | None = None,
        handle_features: bool | None = None,
        freshness_secs: int | None = None,
        handler_timeout: float | None = None,
        journal: _Path | None = None,
        # @end generated
    ) -> Connecting[Consumer]:
        """Connects without blocking the event loop (same arguments as the constructor)."""
    @property
    def device_id(self) -> str: ...
    @property
    def freshness_secs(self) -> int:
        """Commands whose ``created`` is older than this many seconds are not run (0: off)."""
    @property
    def broker(self) -> str:
        """The broker URL connected to (after a failover, the one in use)."""
    def serve(self, handler: _Handler) -> None:
        """Runs ``handler(command)`` for every command until ``close()`` or Ctrl-C.

        Return a response dict, a status code, or None for a plain 200; an
        exception becomes a 500 with its text. Handlers run on worker threads,
        up to 64 at once.
        """
    def serve_async(self, handler: _AsyncHandler) -> Coroutine[Any, Any, None]:
        """:meth:`serve` for asyncio, until ``close()``: ``handler`` may be an
        ``async def`` (up to 64 at once) or a plain function (called on the loop).

        Cancelling it stops taking commands and cancels the running handlers
        (their commands are answered 500); the consumer stays connected.
        """
    def next(self, timeout: float | None = None) -> Incoming | None:
        """The next command, or None once closed (or after ``timeout`` seconds; default None: no limit)."""
    def next_async(self, timeout: float | None = None) -> Awaitable[Incoming | None]: ...
    def __iter__(self) -> Self: ...
    def __next__(self) -> Incoming: ...
    def __aiter__(self) -> Self: ...
    def __anext__(self) -> Awaitable[Incoming]: ...
    @property
    def stats(self) -> _Stats: ...
    def close(self) -> None: ...
    def close_async(self) -> Awaitable[None]: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *_exc: object) -> bool: ...
    def __aenter__(self) -> Awaitable[Self]: ...
    def __aexit__(self, *_exc: object) -> Awaitable[None]: ...

@final
class Publish:
    """A response to publish: the same ``payload`` and ``properties`` on each of ``topics``."""

    @property
    def topics(self) -> list[str]: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def properties(self) -> _Properties:
        """The MQTT v5 properties, as :func:`encode` returns them (ignored over 3.1.1)."""
    @property
    def message(self) -> _Message:
        """The response message the payload encodes."""
    @property
    def status(self) -> int | None: ...

@final
class Request:
    """A command for the application to run; give it back to :meth:`ConsumerRules.answer`."""

    @property
    def message(self) -> _Message:
        """The whole request message (``command_id`` defaulted to ``request_id``)."""
    @property
    def command(self) -> dict[str, Any]: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def sender(self) -> str | None: ...
    @property
    def topic(self) -> str: ...
    @property
    def encoding(self) -> _Encoding: ...
    @property
    def dialect(self) -> _Dialect: ...
    @property
    def response_requested(self) -> _ResponseRequested: ...

@final
class Decision:
    """What to do with one received message: publish ``publish`` now, in order;
    run ``execute`` if it is not None; else ``skipped`` says why nothing runs."""

    @property
    def publish(self) -> list[Publish]: ...
    @property
    def execute(self) -> Request | None: ...
    @property
    def skipped(self) -> _Skip | None: ...
    @property
    def reason(self) -> str | None:
        """Why it is stale, why it does not decode, the status it was answered with; else None."""

@final
class ConsumerRules:
    # @generated doc ConsumerRules (`make generate`)
    """A consumer's OpenC2 rules without the network, for scripts that keep
    their own MQTT client: give it each message received on a command topic
    with the time, publish what it says, run what it hands over, and give
    the application's answer back to ``answer()``.

    It reads no clock: ``now_ms`` is the wall clock in milliseconds since the
    epoch (for ``created``), ``monotonic_ms`` any monotonic clock in milliseconds
    (for the duplicate windows). Keyword arguments (the ``Consumer``'s and the
    topic scheme's ``peer`` and ``response_topics``), with their defaults:

    - ``profiles`` (default None): actuator profiles implemented (``slpf``, ...): one
      ``oc2/cmd/ap/<profile>`` subscription each
    - ``pairs`` (default None): action/target pairs implemented; when any are declared,
      other pairs are answered 501 (``query features`` is always implemented)
    - ``args`` (default None): command arguments implemented beyond the Language
      Specification's and the profiles' (``x-acme`` or ``x-acme.mode``); once pairs,
      profiles or args are declared, other arguments are answered 501
    - ``rate_limit`` (default None): commands per minute, reported by ``query features``
    - ``group`` (default None): consumer group: each command reaches one member
      (``$share/<group>/...``)
    - ``handle_features`` (default False): deliver ``query features`` to the application
      instead of answering it from this configuration
    - ``freshness_secs`` (default 900): commands whose ``created`` is older than this many
      seconds are not run nor answered, only counted in the ``stale`` statistic; 0 turns the
      check off
    - ``peer`` (default 'spec'): the peers to suit: their topics, dialect and ``msgType``
      spelling; every peer's forms are decoded whatever this says. ``spec``: MQTT-T as
      written; ``otupy``: otupy 1.1, its flat dialect and ``oc2/rsp/device/<id>``;
      ``yuuki``: yuuki consumers, commands on ``oc2/cmd`` too; ``oif``: the OIF
      orchestrator, responses on ``oc2/rsp/<its id>`` too, ``msgType`` spelled
      ``request``/``response``
    - ``response_topics`` (default None): where a consumer's responses go: ``shared``
      (``oc2/rsp``), ``producer`` (``oc2/rsp/<producer>``) or ``both``; when absent, as the
      peer has it (``oc2/rsp`` only for the specification's peers)

    >>> import json, oc2mqtt
    >>> rules = oc2mqtt.ConsumerRules("fw-1")
    >>> cmd = {"headers": {"request_id": "r1", "from": "p1"},
    ...        "body": {"openc2": {"request": {"action": "deny", "target": {"ipv4_net": "10.0.0.0/8"}}}}}
    >>> d = rules.on_command("oc2/cmd/device/fw-1", json.dumps(cmd), now_ms=0, monotonic_ms=0)
    >>> d.execute.command["action"], d.skipped
    ('deny', None)
    >>> rules.answer(d.execute, {"status": 200}).topics
    ['oc2/rsp']
    """

    # @end generated
    def __new__(
        cls,
        device_id: str,
        *,
        # @generated keywords ConsumerRules but device_id; TopicScheme (`make generate`)
        profiles: Sequence[str] | None = None,
        pairs: _Pairs | None = None,
        args: Sequence[str] | None = None,
        rate_limit: float | None = None,
        group: str | None = None,
        handle_features: bool | None = None,
        freshness_secs: int | None = None,
        peer: _Peer | None = None,
        response_topics: _ResponseTopics | None = None,
        # @end generated
    ) -> ConsumerRules: ...
    @property
    def device_id(self) -> str: ...
    def on_command(
        self,
        topic: str,
        payload: _Payload,
        properties: _Properties | Any | None = None,
        retained: bool = False,
        *,
        now_ms: int,
        monotonic_ms: int,
    ) -> Decision:
        """Decides what to do with a message received on ``topic``."""
    def answer(self, request: Request, response: dict[str, Any]) -> Publish | None:
        """The application's answer to ``request``; None when ``response_requested`` says
        not to send it (``none``, or ``ack``, whose ``102`` was the answer)."""

@final
class MonitorEvent:
    """One thing the monitor saw."""

    @property
    def kind(self) -> _MonitorEventKind: ...
    @property
    def topic(self) -> str | None: ...
    @property
    def message(self) -> _Message | None: ...
    @property
    def encoding(self) -> _Encoding | None: ...
    @property
    def dialect(self) -> _Dialect | None: ...
    @property
    def received_ms(self) -> int | None: ...
    @property
    def latency(self) -> float | None: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def sender(self) -> str | None: ...
    @property
    def status(self) -> int | None: ...
    @property
    def missing(self) -> list[str]: ...
    @property
    def payload(self) -> bytes | None: ...
    @property
    def error(self) -> MessageError | None: ...

@final
class Monitor:
    """Watches OpenC2 traffic, pairs responses with their command.

    ``filter``: the topic filter (default None: ``oc2/#`` under the topic
    prefix); ``window``: seconds a command waits for its responses before it
    is reported ``unanswered`` (default 30). ``await Monitor.connect_async(...)``
    (or ``async with``) does not block the event loop.
    """

    def __new__(cls, config: _Config, filter: str | None = None, *, window: float | None = None) -> Monitor: ...
    @classmethod
    def connect_async(
        cls, config: _Config, filter: str | None = None, *, window: float | None = None
    ) -> Connecting[Monitor]:
        """Connects without blocking the event loop (same arguments as the constructor)."""
    def next(self, timeout: float | None = None) -> MonitorEvent | None:
        """The next event, or None once closed (or after ``timeout`` seconds; default None: no limit)."""
    def next_async(self, timeout: float | None = None) -> Awaitable[MonitorEvent | None]: ...
    def __iter__(self) -> Self: ...
    def __next__(self) -> MonitorEvent: ...
    def __aiter__(self) -> Self: ...
    def __anext__(self) -> Awaitable[MonitorEvent]: ...
    def pending(self) -> list[tuple[str, list[str]]]: ...
    @property
    def broker(self) -> str:
        """The broker URL connected to (after a failover, the one in use)."""
    @property
    def stats(self) -> _Stats: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *_exc: object) -> bool: ...
    def close_async(self) -> Awaitable[None]: ...
    def __aenter__(self) -> Awaitable[Self]: ...
    def __aexit__(self, *_exc: object) -> Awaitable[None]: ...
