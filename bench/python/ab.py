#!/usr/bin/env python3
"""A/B comparison of two builds of the Python binding on run.py's sequential
and pipelined scenarios, run alternately (A, B, B, A, A, B, ...) on one
throwaway broker, so that the machine's drift hits both sides alike. Prints
every run and the median of each side.

    pip install --no-deps --target /tmp/py-a <wheel before the change>
    pip install --no-deps --target /tmp/py-b <wheel after it>
    flock /tmp/oc2mqtt-bench.lock bindings-python/.venv/bin/python bench/python/ab.py /tmp/py-a /tmp/py-b

Each side runs in a child process with its directory first on PYTHONPATH
(the pipelined consumer, another process, inherits it). `--scenario` picks
`seq`, `pipe` or both (default); `--rounds` runs per side (default 5).
`--a-env KEY=VALUE` / `--b-env KEY=VALUE` (repeatable) set environment
variables for one side only: with the same wheel on both sides,
`--a-env OC2_BENCH_SEND=separate` compares `send(...).collect()` (and
`send_async` + `collect_async`) with `send_collect` (`send_collect_async`).
Each run prints how its side sent (`collect` or `separate`: a wheel without
`send_collect` sends in two calls).
`--core BINARY` (oc2mqtt-bench) also runs the Rust core in the same topology
(`seq`; `pipe-split`: 64 in flight, consumer in a child process) after each
round's Python runs, on its own broker, and prints each side's ratio to it.
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

# What each scenario reports, and which way is better.
METRICS = {
    "seq": [
        ("rate", "/s", True),
        ("p50_ms", " ms", False),
        ("cpu_us", " µs CPU", False),
        ("switches", " switches", False),
    ],
    "pipe": [
        ("rate", "/s", True),
        ("producer_us", " µs producer", False),
        ("consumer_us", " µs consumer", False),
        ("broker_us", " µs broker", False),
        ("producer_switches", " producer switches", False),
    ],
}


def child(scenario: str, url: str, broker_pid: int, n: int) -> None:
    sys.path.insert(0, str(HERE))
    import run

    import oc2mqtt

    if scenario == "seq":
        cpu: list[float] = []
        out = run.summary(run.seq_oc2mqtt(url, n, cpu))
        out["cpu_us"], out["switches"] = cpu[0], cpu[1]
    else:
        out = run.pipelined(url, broker_pid, n)
    out["module"] = oc2mqtt.__file__
    out["send"] = run.send_mode()
    print(json.dumps(out))


def same_native(a: Path, b: Path) -> bool:
    """Whether two installed oc2mqtt packages hold byte-identical native modules."""
    found = [sorted((d / "oc2mqtt").glob("_native*.so")) for d in (a, b)]
    return all(found) and found[0][0].read_bytes() == found[1][0].read_bytes()


def core(binary: Path, scenario: str) -> dict[str, float]:
    """One run of the Rust core (oc2mqtt-bench, its own broker) in the scenario's topology."""
    name = "seq" if scenario == "seq" else "pipe-split"
    out = subprocess.run(
        [str(binary), "--repeat", "1", "--seconds", "3", name], cwd=REPO, capture_output=True, text=True, check=True
    )
    m = json.loads(out.stdout)[name]["median"]
    return {"rate": m.get("rt_per_s", m.get("exchanges_per_s")), "cpu_us": m["cpu_us_per_rt_client"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", nargs="?")
    ap.add_argument("b", nargs="?")
    ap.add_argument("--scenario", choices=["seq", "pipe", "both"], default="both")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n-seq", type=int, default=1000)
    ap.add_argument("--n-pipe", type=int, default=16384)
    ap.add_argument("--a-env", action="append", default=[], metavar="KEY=VALUE", help="for side A only")
    ap.add_argument("--b-env", action="append", default=[], metavar="KEY=VALUE", help="for side B only")
    ap.add_argument("--core", type=Path, help="oc2mqtt-bench, to run the Rust core beside each round")
    ap.add_argument("--child", nargs=4, metavar=("SCENARIO", "URL", "BROKER_PID", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        scenario, url, pid, n = args.child
        child(scenario, url, int(pid), int(n))
        return 0
    if not (args.a and args.b):
        ap.error("A and B (directories holding an installed oc2mqtt) are required")
    sides = {"A": str(Path(args.a).resolve()), "B": str(Path(args.b).resolve())}
    side_env = {side: dict(kv.split("=", 1) for kv in pairs) for side, pairs in (("A", args.a_env), ("B", args.b_env))}
    if sides["A"] != sides["B"] and same_native(Path(sides["A"]), Path(sides["B"])):
        # What happened once: a maturin build of another checkout into the same
        # target dir packed the cdylib of the previous build (the Makefile's
        # `build` removes lib_native.so first for this reason).
        print("warning: A and B hold the same _native library: this compares a build with itself", flush=True)
    scenarios = ["seq", "pipe"] if args.scenario == "both" else [args.scenario]
    sys.path.insert(0, str(REPO / "tests" / "broker"))
    from broker import Broker

    results: dict[str, dict[str, list[dict[str, float]]]] = {s: {"A": [], "B": [], "core": []} for s in scenarios}
    print(f"load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    with tempfile.TemporaryDirectory() as d, Broker(Path(d)) as b:
        for i in range(args.rounds):
            order = ["A", "B"] if i % 2 == 0 else ["B", "A"]
            for scenario in scenarios:
                n = args.n_seq if scenario == "seq" else args.n_pipe
                for side in order:
                    env = dict(os.environ, PYTHONPATH=sides[side], **side_env[side])
                    out = subprocess.run(
                        [sys.executable, __file__, "--child", scenario, b.url, str(b.pid), str(n)],
                        env=env,
                        capture_output=True,
                        text=True,
                    )
                    if out.returncode != 0:
                        print(out.stderr[-2000:], file=sys.stderr)
                        return 1
                    r = json.loads(out.stdout.strip().splitlines()[-1])
                    if not r.pop("module").startswith(sides[side]):
                        print(f"side {side} did not import its own oc2mqtt", file=sys.stderr)
                        return 1
                    sent = r.pop("send")
                    results[scenario][side].append(r)
                    shown = ", ".join(f"{r[k]:,.1f}{unit}" for k, unit, _ in METRICS[scenario])
                    print(
                        f"{scenario} {side} ({sent}) run {i + 1}: {shown} (load {os.getloadavg()[0]:.1f})", flush=True
                    )
                if args.core:
                    r = core(args.core, scenario)
                    results[scenario]["core"].append(r)
                    print(f"{scenario} core run {i + 1}: {r['rate']:,.1f}/s, {r['cpu_us']:.1f} µs CPU", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    for scenario in scenarios:
        for key, unit, higher in METRICS[scenario]:
            med = {s: statistics.median(r[key] for r in results[scenario][s]) for s in "AB"}
            # Round by round (A and B of a round ran back to back): in how many B was better.
            pairs = list(zip(results[scenario]["A"], results[scenario]["B"]))
            better = sum((b[key] > a[key]) == higher and b[key] != a[key] for a, b in pairs)
            print(
                f"{scenario} {key}: A {med['A']:,.1f}{unit}, B {med['B']:,.1f}{unit}, B/A {med['B'] / med['A']:.3f}"
                f" (B better in {better} of {len(pairs)} rounds)"
            )
        if args.core:
            rows = results[scenario]
            core_rate = statistics.median(r["rate"] for r in rows["core"])
            core_cpu = statistics.median(r["cpu_us"] for r in rows["core"])
            print(f"{scenario} core: {core_rate:,.1f}/s, {core_cpu:.1f} µs CPU per exchange (medians)")
            for side in "AB":
                ratios = [r["rate"] / c["rate"] for r, c in zip(rows[side], rows["core"])]
                print(
                    f"{scenario} {side}/core, round by round: "
                    + ", ".join(f"{x:.2f}" for x in ratios)
                    + f"; median {statistics.median(ratios):.2f}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
