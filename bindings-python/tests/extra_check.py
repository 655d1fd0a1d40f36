"""What ``pip install 'oc2mqtt[otupy]'`` gives a user, checked in a fresh venv.

Run by ``make -C bindings-python test-extra`` with the fresh venv's python,
outside the source tree, after ``pip install '<the wheel>[otupy]'`` on this
machine, which has no libvirt headers (otupy 1.1.43 and later fail to install
here). It imports otupy's SLPF profile the plain way (no stand-in packages,
unlike the interop tests), then has otupy's own Producer, on the drop-in
transfer, query the ``oc2mqtt serve`` console script of the same venv
through a throwaway Mosquitto. Exits non-zero, saying what failed.
Not collected by pytest (its name does not start with test_).
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import tempfile
from importlib.metadata import version
from pathlib import Path

BROKER_DIR = Path(__file__).resolve().parents[2] / "tests" / "broker"
sys.path.insert(0, str(BROKER_DIR))

import otupy as oc2  # noqa: E402
import otupy.profiles.slpf as slpf  # noqa: E402
from otupy.encoders.json import JSONEncoder  # noqa: E402

import oc2mqtt  # noqa: E402
from oc2mqtt.otupy import MQTTTransfer, OpenC2Role  # noqa: E402

from broker import Broker  # noqa: E402


def main() -> None:
    where = Path(oc2mqtt.__file__).resolve()
    if "site-packages" not in where.parts:
        sys.exit(f"extra check: oc2mqtt was imported from {where}, not from the venv's site-packages")
    script = Path(sysconfig.get_path("scripts")) / "oc2mqtt"
    with tempfile.TemporaryDirectory() as tmp, Broker(Path(tmp)) as b:
        serve = subprocess.Popen(
            [str(script), "serve", "--broker", b.url, "--device-id", "extra-fw", "--profile", "slpf"],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert serve.stderr is not None
            ready = serve.stderr.readline()
            if "ready on" not in ready:
                sys.exit(f"extra check: oc2mqtt serve did not start: {ready}")
            transfer = MQTTTransfer("127.0.0.1", b.port, OpenC2Role.Producer, device_id="extra-p")
            producer = oc2.Producer("extra-p", JSONEncoder(), transfer)
            cmd = oc2.Command(
                oc2.Actions.query,
                oc2.Features([oc2.Feature.versions, oc2.Feature.profiles]),
                actuator=slpf.Specifiers({"asset_id": "x"}),
            )
            responses = producer.sendcmd(cmd, consumers=["extra-fw"])
            transfer.close()
        finally:
            serve.terminate()
            serve.wait(10)
    if len(responses) != 1 or responses[0].content["status"].value != 200:
        sys.exit(f"extra check: unexpected responses {responses!r}")
    if serve.returncode != 0:
        sys.exit(f"extra check: oc2mqtt serve exited {serve.returncode} on SIGTERM")
    print(
        f"extra check: otupy {version('otupy')} with oc2mqtt "
        f"{oc2mqtt.__version__}: import otupy.profiles.slpf, otupy's Producer on the drop-in "
        "and the oc2mqtt console script OK"
    )


if __name__ == "__main__":
    main()
