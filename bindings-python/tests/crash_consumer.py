"""The consumer of test_crash.py: ``python crash_consumer.py URL DIR [--no-journal]``.

Serves device ``fw-1`` with the client id kept in DIR/client-id and the
journal in DIR/journal; each handler sleeps 0.5 s, prints the command's
target on stdout (one line, flushed) and answers 200. Says ``ready`` on
stderr once connected.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

import oc2mqtt


def main() -> None:
    url, directory = sys.argv[1], Path(sys.argv[2])
    journal = None if "--no-journal" in sys.argv else directory / "journal"
    config = oc2mqtt.ClientConfig(url, client_id_file=directory / "client-id")
    consumer = oc2mqtt.Consumer(config, "fw-1", journal=journal, handler_timeout=30.0)
    out = threading.Lock()

    def handler(command: dict[str, Any]) -> int:
        time.sleep(0.5)
        with out:  # one whole line per command, whatever the threads do
            sys.stdout.write(command["target"]["ipv4_net"] + "\n")
            sys.stdout.flush()
        return 200

    print("ready", file=sys.stderr, flush=True)
    consumer.serve(handler)


if __name__ == "__main__":
    main()
