"""Runs a command with its stderr on a pseudo-terminal and its stdout on a pipe.

Prints one JSON line: {"code": exit status, "stdout": text, "stderr": text
as the terminal received it}. Used by cli/tests/usability.rs, which needs a
terminal on stderr only: what `send` shows there must never reach stdout.
"""

import json
import os
import pty
import subprocess
import sys
import threading


def main() -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        sys.argv[1:],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    out = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read()))
    reader.start()
    err = bytearray()
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: every writer closed the terminal
            break
        if not chunk:
            break
        err.extend(chunk)
    code = proc.wait()
    reader.join()
    os.close(master)
    print(
        json.dumps(
            {
                "code": code,
                "stdout": out[0].decode("utf-8", "replace"),
                "stderr": err.decode("utf-8", "replace"),
            }
        )
    )


if __name__ == "__main__":
    main()
