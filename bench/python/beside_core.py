#!/usr/bin/env python3
"""The Python binding beside the Rust core's scenarios, round by round on one
broker: each round runs one Python run (ab.py's child: run.py's sequential or
pipelined scenario) and then each named `oc2mqtt-bench` scenario for
`--seconds`, and prints every run and the medians (rate, client CPU µs and
context switches per exchange).

    flock /tmp/oc2mqtt-bench.lock bindings-python/.venv/bin/python bench/python/beside_core.py \\
        SITE BINARY [--scenario seq|pipe] [--rounds N] [--core-scenarios seq,serve]

SITE: a directory holding an installed oc2mqtt; BINARY: oc2mqtt-bench. Default
core scenarios: `seq,serve` sequentially (the pull loop and the core's own
`serve()` with a Rust handler), `pipe-split,pipe-serve,pipe` pipelined.
The core's figures are its client processes' CPU (both ends); the Python
pipelined figure is the producer's plus the consumer's, its switches the
producer's only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("site", type=Path)
    ap.add_argument("binary", type=Path)
    ap.add_argument("--scenario", choices=["seq", "pipe"], default="seq")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--core-scenarios", help="comma-separated oc2mqtt-bench scenarios")
    args = ap.parse_args()
    seq = args.scenario == "seq"
    names = (args.core_scenarios or ("seq,serve" if seq else "pipe-split,pipe-serve,pipe")).split(",")
    sys.path.insert(0, str(REPO / "tests" / "broker"))
    from broker import Broker

    runs: dict[str, list[tuple[float, float, float]]] = {}
    print(f"load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    with tempfile.TemporaryDirectory() as d, Broker(Path(d)) as b:
        for i in range(args.rounds):
            n = "2000" if seq else "16384"
            out = subprocess.run(
                [sys.executable, str(HERE / "ab.py"), "--child", args.scenario, b.url, str(b.pid), n],
                env=dict(os.environ, PYTHONPATH=str(args.site.resolve())),
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            if seq:
                runs.setdefault("python", []).append((r["rate"], r["cpu_us"], r["switches"]))
            else:
                cpu = r["producer_us"] + r["consumer_us"]
                runs.setdefault("python", []).append((r["rate"], cpu, r["producer_switches"]))
            for name in names:
                o = subprocess.run(
                    [str(args.binary), "--repeat", "1", "--seconds", str(args.seconds), name],
                    cwd=REPO,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                m = json.loads(o.stdout)[name]["median"]
                rate = m.get("rt_per_s", m.get("exchanges_per_s"))
                runs.setdefault(name, []).append((rate, m["cpu_us_per_rt_client"], m["switches_per_rt_client"]))
            shown = "; ".join(f"{k} {v[-1][0]:,.0f}/s {v[-1][1]:.0f} µs {v[-1][2]:.1f} sw" for k, v in runs.items())
            print(f"round {i + 1}: {shown} (load {os.getloadavg()[0]:.1f})", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    for k, v in runs.items():
        rate, cpu, sw = (statistics.median(x[j] for x in v) for j in range(3))
        print(f"{k}: median {rate:,.0f}/s, {cpu:.1f} µs CPU, {sw:.2f} switches per exchange")
    return 0


if __name__ == "__main__":
    sys.exit(main())
