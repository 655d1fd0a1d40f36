"""Type stubs of the native module ``oc2mqtt._native`` (checked by mypy.stubtest)."""

import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, TypedDict, Union, final

from typing_extensions import Self

__all__ = [
    "AuthError",
    "ClientConfig",
    "Closed",
    "ClosedError",
    "ConfigError",
    "ConnectError",
    "Consumer",
    "Correlator",
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
    "PublishError",
    "Reply",
    "Summary",
    "TimeoutExpired",
    "TlsError",
    "TopicError",
    "Topics",
    "__version__",
    "_emit_log",
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

_JsonValue = Any
"""A JSON value as Python: dict, list, str, int, float, bool or None."""

_Message = dict[str, Any]
"""A message in the specification's shape: ``{"headers": {...}, "body": {"openc2": {...}}}``."""

_Payload = bytes | bytearray | str
_Encoding = Literal["json", "cbor"]
_Dialect = Literal["spec", "otupy", "bare"]
_MsgType = Literal["request", "response", "notification"]

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
    },
)

# ---------------------------------------------------------------- errors

class Error(Exception):
    """Base class of every oc2mqtt error."""

class MessageError(Error, ValueError):
    """A message is malformed or invalid."""

    kind: str
    """too_large, syntax, utf8, content_type, dialect, type, missing or value."""
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

def request(command: dict[str, Any], *, sender: str | None = None, to: Sequence[str] | None = None) -> _Message:
    """A request message for ``command`` with a fresh ``request_id`` and ``created``."""

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

_Role = Literal["producer", "consumer", "monitor"]

@final
class Topics:
    """The topic scheme: an optional site prefix, and otupy's response topics when ``otupy_compat``."""

    def __new__(cls, prefix: str | None = None, *, otupy_compat: bool | None = None) -> Topics: ...
    @property
    def prefix(self) -> str: ...
    @property
    def otupy_compat(self) -> bool: ...
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
    """The topics a response is published on: ``oc2/rsp`` and ``oc2/rsp/<to>``."""

def topic_matches(filter: str, topic: str) -> bool:
    """Whether an MQTT filter (``+``, ``#``, ``$share/<group>/``) matches a topic name."""

def validate_id(id: str, what: str | None = None) -> None:
    """Raises :class:`TopicError` unless ``id`` can stand as a topic level."""

# ---------------------------------------------------------------- correlation

@final
class Closed:
    """An exchange that is no longer open."""

    @property
    def request_id(self) -> str: ...
    @property
    def reason(self) -> Literal["complete", "deadline", "closed"]: ...
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
    def kind(self) -> Literal["unsolicited", "open", "complete"]: ...
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
    """Remembers recently seen messages for ``window_ms`` (default 60 000), at most ``capacity`` (100 000)."""

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
    stale: int
    """Commands not executed: retained, or older than the consumer's ``freshness_secs``."""

@final
class ClientConfig:
    """How to reach and talk to the broker; checked when made (ConfigError / IoError name the setting)."""

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
        mqtt_version: str | int | float | None = None,
        message_expiry_secs: int | None = None,
        topic_prefix: str | None = None,
        otupy_compat: bool | None = None,
        connect_timeout_secs: int | None = None,
        max_payload: int | None = None,
    ) -> ClientConfig: ...
    @property
    def brokers(self) -> list[str]: ...
    @property
    def client_id(self) -> str | None: ...
    @property
    def username(self) -> str | None: ...
    @property
    def has_password(self) -> bool: ...
    @property
    def ca_file(self) -> str | None: ...
    @property
    def cert_file(self) -> str | None: ...
    @property
    def key_file(self) -> str | None: ...
    @property
    def insecure_skip_verify(self) -> bool: ...
    @property
    def keep_alive_secs(self) -> int: ...
    @property
    def session_expiry_secs(self) -> int: ...
    @property
    def qos(self) -> int: ...
    @property
    def mqtt_version(self) -> str: ...
    @property
    def message_expiry_secs(self) -> int | None: ...
    @property
    def topic_prefix(self) -> str | None: ...
    @property
    def otupy_compat(self) -> bool: ...
    @property
    def connect_timeout_secs(self) -> int: ...
    @property
    def max_payload(self) -> int: ...

_Config = ClientConfig | str

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
    """Sends commands and collects their responses; one MQTT connection."""

    def __new__(cls, config: _Config, producer_id: str) -> Producer: ...
    @classmethod
    def connect_async(cls, config: _Config, producer_id: str) -> Awaitable[Producer]: ...
    @property
    def id(self) -> str: ...
    @property
    def broker(self) -> str:
        """The broker URL connected to (after a failover, the one in use)."""
    def send(
        self,
        command: dict[str, Any],
        *,
        to: Sequence[str] | None = None,
        profile: str | None = None,
        timeout: float | None = None,
        expect: int | None = None,
        encoding: _Encoding | None = None,
        dialect: _Dialect | None = None,
    ) -> Exchange: ...
    def send_message(
        self,
        message: _Message | Decoded,
        *,
        timeout: float | None = None,
        expect: int | None = None,
        encoding: _Encoding | None = None,
        dialect: _Dialect | None = None,
    ) -> Exchange: ...
    def send_async(
        self,
        command: dict[str, Any],
        *,
        to: Sequence[str] | None = None,
        profile: str | None = None,
        timeout: float | None = None,
        expect: int | None = None,
        encoding: _Encoding | None = None,
        dialect: _Dialect | None = None,
    ) -> Awaitable[Exchange]: ...
    @property
    def stats(self) -> _Stats: ...
    @property
    def open_exchanges(self) -> int: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *_exc: object) -> bool: ...

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
    def response_requested(self) -> Literal["none", "ack", "status", "complete"]: ...
    def reply(
        self, status: int | None = None, *, status_text: str | None = None, results: dict[str, Any] | None = None
    ) -> None: ...
    def reply_async(
        self, status: int | None = None, *, status_text: str | None = None, results: dict[str, Any] | None = None
    ) -> Awaitable[None]: ...

_Handler = Callable[[dict[str, Any]], dict[str, Any] | int | None]

@final
class Consumer:
    """Receives commands and answers them; one MQTT connection."""

    def __new__(
        cls,
        config: _Config,
        device_id: str,
        *,
        profiles: Sequence[str] | None = None,
        pairs: Sequence[Sequence[str]] | None = None,
        rate_limit: float | None = None,
        group: str | None = None,
        handle_features: bool | None = None,
        freshness_secs: int | None = None,
    ) -> Consumer: ...
    @property
    def device_id(self) -> str: ...
    @property
    def freshness_secs(self) -> int:
        """Commands whose ``created`` is older than this many seconds are not run (0: off)."""
    @property
    def broker(self) -> str:
        """The broker URL connected to (after a failover, the one in use)."""
    def serve(self, handler: _Handler) -> None: ...
    def next(self, timeout: float | None = None) -> Incoming | None: ...
    def next_async(self, timeout: float | None = None) -> Awaitable[Incoming | None]: ...
    def __iter__(self) -> Self: ...
    def __next__(self) -> Incoming: ...
    @property
    def stats(self) -> _Stats: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *_exc: object) -> bool: ...

@final
class MonitorEvent:
    """One thing the monitor saw."""

    @property
    def kind(self) -> Literal["request", "response", "notification", "undecodable", "unanswered", "other"]: ...
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
    """Watches OpenC2 traffic, pairs responses with their command."""

    def __new__(cls, config: _Config, filter: str | None = None, *, window: float | None = None) -> Monitor: ...
    def next(self, timeout: float | None = None) -> MonitorEvent | None: ...
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
