"""OpenC2 command and control over MQTT.

One Rust implementation (the ``oc2mqtt`` crate) behind a Python API:

- sans-IO helpers for any MQTT client: :func:`decode`, :func:`encode`,
  :func:`request`, :func:`response_to`, the topic helpers, :class:`Correlator`,
  :class:`Deduplicator` and a consumer's rules, :class:`ConsumerRules`;
- :class:`Producer`, :class:`Consumer` and :class:`Monitor`, blocking (the
  GIL released) or with asyncio (``async with``, ``async for``,
  :meth:`Consumer.serve_async`);
- one exception base, :class:`Error`, with a subclass per kind;
- core log events on the ``oc2mqtt`` logger of :mod:`logging`.

>>> import oc2mqtt
>>> d = oc2mqtt.decode(b'{"action": "query", "target": {"features": ["versions"]}}')
>>> (d.msg_type, d.dialect, d.encoding)
('request', 'bare', 'json')
>>> d.message["body"]["openc2"]["request"]["target"]
{'features': ['versions']}
>>> oc2mqtt.command_topics({"headers": {"to": ["fw-1"]}, "body": d.message["body"]})
['oc2/cmd/device/fw-1']
"""

from __future__ import annotations

from oc2mqtt import _native
from oc2mqtt._native import *  # noqa: F403  (the names are _native's, listed in its __all__)

# The public names are the native module's (its stub, _native.pyi, lists them
# for type checkers); the ones starting with "_" are the package's own plumbing.
__all__ = [name for name in _native.__all__ if not name.startswith("_") or name == "__version__"]
