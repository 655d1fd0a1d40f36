"""Imports the parts of real otupy 1.1.46 that the interop tests use: its
core, JSON encoder, MQTT transfer and SLPF profile and mockup actuator.

``otupy.profiles`` and ``otupy.actuators`` import every bundled profile and
actuator in their ``__init__`` (Kubernetes, OpenStack, Azure, ...); the
tests stand in empty package shells for those two so that only the SLPF
modules load, and none of the cloud dependencies are needed.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path


def load() -> None:
    spec = importlib.util.find_spec("otupy")
    assert spec is not None and spec.origin is not None, "otupy is not installed (make -C bindings-python setup)"
    root = Path(spec.origin).parent
    import otupy

    for name in ("profiles", "actuators"):
        full = f"otupy.{name}"
        if full not in sys.modules:
            shell = types.ModuleType(full)
            shell.__path__ = [str(root / name)]
            sys.modules[full] = shell
            setattr(otupy, name, shell)


load()

import otupy as oc2  # noqa: E402
import otupy.profiles.slpf as slpf  # noqa: E402
from otupy.actuators.slpf.mockup_slpf_actuator import MockupSlpfActuator  # noqa: E402
from otupy.encoders.json import JSONEncoder  # noqa: E402
from otupy.transfers.mqtt import MQTTTransfer as OtupyMQTTTransfer  # noqa: E402
from otupy.transfers.mqtt import OpenC2Role as OtupyRole  # noqa: E402

__all__ = ["JSONEncoder", "MockupSlpfActuator", "OtupyMQTTTransfer", "OtupyRole", "oc2", "slpf"]
