"""``python -m oc2mqtt`` (and the ``oc2mqtt`` console script): the oc2mqtt
command line, ``send``, ``serve`` and ``monitor``.

It is the Rust command line itself, linked into the extension module, not a
Python copy of it: the same flags, output and exit codes as the binary.
"""

from __future__ import annotations

import signal
import sys

from oc2mqtt._native import _cli


def main() -> int:
    """Runs the command line on ``sys.argv`` and returns its exit status."""
    # The command line handles SIGINT and SIGTERM itself (serve and monitor
    # stop and exit 0), as the binary does: Python's SIGINT handler would
    # turn Ctrl-C into a KeyboardInterrupt once it returned.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    return _cli(["oc2mqtt", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
