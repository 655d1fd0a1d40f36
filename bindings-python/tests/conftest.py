"""Shared fixtures: paths to the repository's shared test data and broker."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO / "tests" / "vectors"
BROKER_DIR = REPO / "tests" / "broker"

if str(BROKER_DIR) not in sys.path:
    sys.path.insert(0, str(BROKER_DIR))

import signal  # noqa: E402

# The tests that stop a child with SIGINT need it at its default in the
# child. A shell that starts a job in the background without job control
# (`make test &` in a script) starts it with SIGINT ignored, which every
# child inherits across exec, and then Python never raises KeyboardInterrupt.
# A handler of our own is reset to the default across exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


import threading  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from typing import Any, Callable  # noqa: E402

import pytest  # noqa: E402

import oc2mqtt  # noqa: E402

from broker import Broker  # noqa: E402


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A throwaway Mosquitto (plain TCP and TLS, anonymous) for one test module."""
    with Broker(tmp_path_factory.mktemp("broker"), tls=True) as b:
        yield b


class Serving:
    """A consumer serving `handler` on a background thread."""

    def __init__(self, consumer: oc2mqtt.Consumer, handler: Callable[[dict[str, Any]], Any]) -> None:
        self.consumer = consumer
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(handler,), daemon=True)
        self.thread.start()

    def _run(self, handler: Callable[[dict[str, Any]], Any]) -> None:
        try:
            self.consumer.serve(handler)
        except BaseException as e:  # reported by stop()
            self.error = e

    def stop(self) -> None:
        self.consumer.close()
        self.thread.join(10)
        assert not self.thread.is_alive(), "serve() did not return after close()"
        if self.error is not None:
            raise self.error


@pytest.fixture
def serve() -> Iterator[Callable[..., Serving]]:
    """serve(consumer, handler) runs it in a thread; stopped after the test."""
    running: list[Serving] = []

    def start(consumer: oc2mqtt.Consumer, handler: Callable[[dict[str, Any]], Any]) -> Serving:
        s = Serving(consumer, handler)
        running.append(s)
        return s

    yield start
    for s in running:
        s.stop()
