"""The exception hierarchy, the logging bridge, and the package surface."""

from __future__ import annotations

import doctest
import logging
import subprocess
import sys
from pathlib import Path

import pytest

import oc2mqtt

NATURAL = {
    "MessageError": ValueError,
    "TopicError": ValueError,
    "ConfigError": ValueError,
    "ConnectError": ConnectionError,
    "AuthError": PermissionError,
    "TlsError": ConnectionError,
    "TimeoutExpired": TimeoutError,
    "ClosedError": ConnectionError,
    "IoError": OSError,
    "PublishError": oc2mqtt.Error,
    "HandlerError": oc2mqtt.Error,
}


@pytest.mark.parametrize(("name", "builtin"), sorted(NATURAL.items()))
def test_every_error_is_an_oc2mqtt_error_and_its_natural_builtin(name: str, builtin: type) -> None:
    cls = getattr(oc2mqtt, name)
    assert issubclass(cls, oc2mqtt.Error) and issubclass(cls, builtin)
    assert cls.__module__ == "oc2mqtt" and cls.__doc__
    with pytest.raises(builtin):
        raise cls("x")


def test_error_base_is_an_exception() -> None:
    assert issubclass(oc2mqtt.Error, Exception)
    assert not issubclass(oc2mqtt.Error, ValueError)


def test_log_events_reach_the_oc2mqtt_logger(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="oc2mqtt"):
        oc2mqtt.refresh_logging()
        oc2mqtt._native._emit_log("info", "hello from rust")
        oc2mqtt._native._emit_log("debug", "details")
    records = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert ("oc2mqtt.python", logging.INFO, "hello from rust") in records
    assert ("oc2mqtt.python", logging.DEBUG, "details") in records


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_level_changes_take_effect_after_refresh_logging() -> None:
    logger = logging.getLogger("oc2mqtt")
    handler = ListHandler()
    logger.addHandler(handler)
    old = logger.level
    try:
        logger.setLevel(logging.WARNING)
        oc2mqtt.refresh_logging()
        oc2mqtt._native._emit_log("info", "quiet")
        oc2mqtt._native._emit_log("warning", "loud")
        logger.setLevel(logging.INFO)
        oc2mqtt._native._emit_log("info", "cached level still says no")
        oc2mqtt.refresh_logging()
        oc2mqtt._native._emit_log("info", "now heard")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
        oc2mqtt.refresh_logging()
    assert handler.messages == ["loud", "now heard"]


def test_unknown_log_level_is_refused() -> None:
    with pytest.raises(ValueError, match="level: unknown 'loud'"):
        oc2mqtt._native._emit_log("loud", "x")


def test_all_is_complete_and_typed() -> None:
    import types

    public = {
        n for n in dir(oc2mqtt) if not n.startswith("_") and not isinstance(getattr(oc2mqtt, n), types.ModuleType)
    }
    public -= {"annotations"}
    assert set(oc2mqtt.__all__) - {"__version__"} == public
    package = Path(oc2mqtt.__file__).parent
    assert (package / "py.typed").exists() and (package / "_native.pyi").exists()
    assert oc2mqtt.__version__ == "0.1.0"


def test_docstring_examples_run() -> None:
    failures, tried = doctest.testmod(oc2mqtt, verbose=False)
    assert tried > 0 and failures == 0


def test_native_stub_matches_the_binary() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "oc2mqtt._native"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
