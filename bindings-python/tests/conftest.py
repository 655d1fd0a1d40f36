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


CODES = "expected one of 102, 200, 400, 401, 403, 404, 500, 501, 503"
NOT_A_RESPONSE = "; expected nothing, a status code or a response object"


def result_by_mode(cmd: dict[str, Any]) -> Any:
    """A handler that gives back whatever its command's ``args.mode`` names."""
    mode = cmd["args"]["mode"]
    if mode == "raise":
        raise OSError("disk on fire")
    if mode == "raise-empty":
        raise RuntimeError
    results: dict[str, Any] = {
        "nothing": None,
        "number": 404,
        "float": 404.0,
        "bad-number": 99,
        "big-number": 1000,
        "fraction": 200.5,
        "interim": 102,
        "bad-status": {"status": 999},
        "no-status": {"status_text": "done"},
        "unreadable": {"status": 200, "results": {"x": {1}}},
        "bool": True,
        "str": "x",
        "list": [200],
    }
    return results[mode]


# What a handler's result means and every text for one that is no response
# are the core's, the same in every language (HandlerResult in core/src/rules.rs).
HANDLER_RESULTS = [
    ("nothing", 200, None),
    ("number", 404, None),
    ("float", 404, None),
    ("raise", 500, "disk on fire"),
    ("raise-empty", 500, "the handler failed: RuntimeError"),
    ("bad-number", 500, f"the handler returned an invalid status: 99; {CODES}"),
    ("big-number", 500, f"the handler returned an invalid status: 1000; {CODES}"),
    ("fraction", 500, f"the handler returned an invalid status: 200.5; {CODES}"),
    ("interim", 500, "the handler returned the interim status 102 as its final answer"),
    ("bad-status", 500, f"the handler returned an invalid response: status: unknown status code 999; {CODES}"),
    ("no-status", 500, "the handler returned an invalid response: status: required field is absent"),
    ("bool", 500, f"the handler returned a value of type bool{NOT_A_RESPONSE}"),
    ("str", 500, f"the handler returned a value of type str{NOT_A_RESPONSE}"),
    ("list", 500, f"the handler returned a value of type list{NOT_A_RESPONSE}"),
]
