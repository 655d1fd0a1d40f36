"""What `pip install ./bindings-python` gives a user, checked in a fresh venv.

Run by `make -C bindings-python test-install` with the fresh venv's python,
outside the source tree, so `import oc2mqtt` can only find the installed
package. It decodes a message, runs one real exchange through a
throwaway Mosquitto and asks the `oc2mqtt` console script for its version;
it exits non-zero, saying what failed, otherwise.
Not collected by pytest (its name does not start with test_).
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import tempfile
import threading
from pathlib import Path

BROKER_DIR = Path(__file__).resolve().parents[2] / "tests" / "broker"
sys.path.insert(0, str(BROKER_DIR))

import oc2mqtt  # noqa: E402

from broker import Broker  # noqa: E402


def main() -> None:
    where = Path(oc2mqtt.__file__).resolve()
    if "site-packages" not in where.parts:
        sys.exit(f"install check: oc2mqtt was imported from {where}, not from the venv's site-packages")
    decoded = oc2mqtt.decode(b'{"action": "query", "target": {"features": ["versions"]}}')
    if decoded.dialect != "bare" or decoded.message["body"]["openc2"]["request"]["action"] != "query":
        sys.exit(f"install check: unexpected decode: {decoded!r}")
    with tempfile.TemporaryDirectory() as tmp, Broker(Path(tmp)) as b:
        config = oc2mqtt.ClientConfig(b.url)
        consumer = oc2mqtt.Consumer(config, "install-fw", profiles=["slpf"])
        server = threading.Thread(target=consumer.serve, args=(lambda cmd: {"status": 200},), daemon=True)
        server.start()
        try:
            with oc2mqtt.Producer(config, "install-p") as producer:
                summary = producer.send(
                    {"action": "deny", "target": {"ipv4_connection": {"protocol": "tcp"}}},
                    to=["install-fw"],
                    timeout=10,
                ).collect()
        finally:
            consumer.close()
            server.join(10)
    statuses = [r.status for r in summary.responses]
    if not summary.complete or statuses != [200]:
        sys.exit(f"install check: exchange incomplete or wrong: {summary!r}, statuses {statuses}")
    script = Path(sysconfig.get_path("scripts")) / "oc2mqtt"
    cli = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=30, check=False)
    if cli.returncode != 0 or cli.stdout != f"oc2mqtt {oc2mqtt.__version__}\n":
        sys.exit(f"install check: {script} --version: exit {cli.returncode}, {cli.stdout!r} {cli.stderr!r}")
    print(
        f"install check: oc2mqtt {oc2mqtt.__version__} from {where.parent}: decode, a round trip "
        "and the oc2mqtt command OK"
    )


if __name__ == "__main__":
    main()
