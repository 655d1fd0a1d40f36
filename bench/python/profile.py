#!/usr/bin/env python3
"""Where the Python binding's time goes, per exchange: one run of run.py's
sequential or pipelined scenario under `perf record`, broken down by process,
thread and function group, with context switches, system calls and futex calls
counted per exchange (perf's tracepoints, every thread of every process).

    flock /tmp/oc2mqtt-bench.lock bindings-python/.venv/bin/python bench/python/profile.py \\
        [--site DIR | --core oc2mqtt-bench] [--scenario seq|pipe] [--n N] [--freq HZ]

`--site DIR`: a directory holding an installed oc2mqtt to profile (first on
PYTHONPATH); the wheel's `_native` is stripped, so for function names put the
unstripped library of the same build there (maturin leaves it in the target
dir as `release/lib_native.so`; copy it over `oc2mqtt/_native.abi3.so`).

Threads are told apart by name and by what they run: the Python main thread
(`python`), the core's runtime threads (`oc2mqtt`: a thread with samples in
the Python interpreter is counted as a handler thread, the others as runtime
workers) and the broker (`mosquitto`). Two runs: the CPU figures come from
one that records perf's cpu-clock samples only, at `--freq` (each sample
stands for 1/freq s of CPU: a group's µs per exchange is its samples / freq /
exchanges); the counts from a second one that records every context switch
and system call, which costs CPU of its own.

`--core BINARY` (oc2mqtt-bench) profiles the Rust core in the same topology
instead (`seq`, `pipe-split`), for the difference.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

# Function groups, matched in order on "dso symbol" of a sample's leaf frame.
GROUPS = [
    (
        "GIL take/release",
        (
            r"take_gil|drop_gil|PyEval_RestoreThread|PyEval_SaveThread|PyEval_AcquireThread"
            r"|PyGILState_|_PyThreadState_Swap|PyCOND_|PyMUTEX_|pyo3::gil|pyo3::.*attach|pyo3::.*detach"
        ),
    ),
    (
        "asyncio (C module)",
        r"^\S*_asyncio\.",
    ),
    (
        "Python interpreter",
        r"^\S*(libpython\S*|/python3?[.0-9]*) ",
    ),
    (
        "malloc/free",
        r"malloc|free|_int_|realloc|calloc|tcache|consolidate|sbrk|mmap|munmap|mremap|madvise",
    ),
    (
        "conversion dict<->core",
        (
            r"pyser|convert::|serde|codec::|str_to_py|to_value|ToPy|from_json|command_from|"
            r"response_from|_from_map|decode_value|encode"
        ),
    ),
    ("asyncio bridge (aio.rs)", r"aio::|Drain|LoopWaker|CancelOnDone"),
    ("pyo3 glue", r"pyo3::"),
    (
        "tokio/mio (runtime)",
        r"tokio::|mio::|parking_lot|std::sync|std::thread|crossbeam",
    ),
    ("oc2mqtt core", r"oc2mqtt::|mqtt_protocol_core|uuid|xxh|_native|oc2mqtt-bench"),
    (
        "kernel: switch/scheduler",
        (
            r"kallsyms.*(schedule|switch_to|finish_task_switch|pick_next|enqueue|dequeue|"
            r"try_to_wake_up|ttwu|update_curr|update_load|select_task|set_next|put_prev|psi_|cpuacct|wake_up|"
            r"native_sched_clock|raw_spin_unlock_irq|_raw_spin)"
        ),
    ),
    ("kernel: futex", r"kallsyms.*futex"),
    (
        "kernel: network (TCP/unix)",
        (
            r"kallsyms.*(tcp|ip_|sock|skb|unix_|net_|dev_|__sys_send|__sys_recv|inet|"
            r"release_sock|lock_sock|nf_|loopback|__netif|napi|__kfree_skb|csum|copy_user|_copy_)"
        ),
    ),
    ("kernel: epoll/eventfd", r"kallsyms.*(epoll|ep_|eventfd|poll)"),
    (
        "kernel: syscall entry/exit",
        (
            r"kallsyms.*(syscall|entry_|exit_to_user|do_syscall|__x64_sys|"
            r"restore_regs|irqentry)"
        ),
    ),
    ("kernel: other", r"kallsyms"),
    ("libc: locks/futex/other", r"libc"),
]
GROUP_RE = [(name, re.compile(rx)) for name, rx in GROUPS]


def group(dso: str, sym: str) -> str:
    key = f"{dso} {sym}"
    for name, rx in GROUP_RE:
        if rx.search(key):
            return name
    return "other"


def parse(script: str, freq: int, n: int) -> dict:
    """perf script lines: comm pid/tid event: [ip sym (dso)]."""
    line_re = re.compile(r"^\s*(\S.*?)\s+(\d+)/(\d+)\s+(\S+?):\s+(.*)$")
    # Per (pid, tid): comm, samples by group, samples by symbol, events.
    threads: dict[tuple[int, int], dict] = {}
    for line in script.splitlines():
        m = line_re.match(line)
        if not m:
            continue
        comm, pid, tid, event, rest = (
            m.group(1),
            int(m.group(2)),
            int(m.group(3)),
            m.group(4),
            m.group(5),
        )
        t = threads.setdefault(
            (pid, tid),
            {
                "comm": comm,
                "samples": collections.Counter(),
                "syms": collections.Counter(),
                "events": collections.Counter(),
                "python": 0,
            },
        )
        t["comm"] = comm
        if event.startswith("cpu-clock"):
            fm = re.match(r"\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$", rest)
            sym, dso = (fm.group(1), fm.group(2)) if fm else ("?", "?")
            sym = re.sub(r"\+0x[0-9a-f]+$", "", sym)
            t["samples"][group(dso, sym)] += 1
            t["syms"][f"{sym} [{Path(dso).name}]"] += 1
            t["python"] += "libpython" in dso or "_asyncio" in dso
        else:
            name = event.split(":")[-1]
            if name == "sys_enter" and "NR 202 " in rest + " ":
                t["events"]["futex"] += 1
            t["events"][name] += 1
    return {"threads": threads, "freq": freq, "n": n}


def role(comm: str, t: dict) -> str:
    if comm.startswith("mosquitto"):
        return "broker"
    # A core thread that ran Python code (a handler) at least now and then.
    py = t["python"] > 0.05 * max(1, sum(t["samples"].values()))
    if comm.startswith("oc2mqtt-bench"):
        return "main thread (block_on)"
    if comm.startswith("oc2mqtt"):
        return "handler threads" if py else "runtime workers"
    if comm.startswith("python"):
        return "Python main thread"
    return comm


def rows(data: dict, processes: dict[int, str]) -> dict[tuple[str, str], dict]:
    """Threads summed by process and role, per exchange."""
    out: dict[tuple[str, str], dict] = {}
    for (pid, _tid), t in data["threads"].items():
        proc = processes.get(pid)
        if proc is None:
            continue
        r = out.setdefault(
            (proc, role(t["comm"], t)),
            {
                "threads": 0,
                "samples": collections.Counter(),
                "syms": collections.Counter(),
                "events": collections.Counter(),
                "n": data["n"],
                "freq": data["freq"],
            },
        )
        r["threads"] += 1
        r["samples"].update(t["samples"])
        r["syms"].update(t["syms"])
        r["events"].update(t["events"])
    return out


def report(cpu: dict[tuple[str, str], dict], counts: dict[tuple[str, str], dict]) -> str:
    """The CPU pass's samples beside the counting pass's switches and calls."""
    out = [
        "CPU from a pass that records cpu-clock samples only; switches, system calls and futex calls",
        "from a second pass that records every one (and costs CPU of its own).",
        "",
        "| process | thread | threads | CPU µs/exchange | switches | syscalls | futex |",
        "|---|---|---|---|---|---|---|",
    ]
    for key in sorted(set(cpu) | set(counts)):
        r, c = cpu.get(key), counts.get(key)
        us = sum(r["samples"].values()) * 1e6 / r["freq"] / r["n"] if r else 0.0
        ev, n = (c["events"], c["n"]) if c else (collections.Counter(), 1)
        threads = max(r["threads"] if r else 0, c["threads"] if c else 0)
        out.append(
            f"| {key[0]} | {key[1]} | {threads} | {us:.1f} | {ev['sched_switch'] / n:.2f} |"
            f" {ev['sys_enter'] / n:.2f} | {ev['futex'] / n:.2f} |"
        )
    out.append("")
    for (proc, th), r in sorted(cpu.items()):
        total = sum(r["samples"].values())
        if not total:
            continue
        us = 1e6 / r["freq"] / r["n"]
        out.append(f"### {proc}, {th}: {total * us:.1f} µs per exchange")
        out.append("| group | µs/exchange | share |")
        out.append("|---|---|---|")
        for g, c in r["samples"].most_common():
            out.append(f"| {g} | {c * us:.1f} | {100 * c / total:.1f} % |")
        out.append("")
        out.append("top symbols: " + "; ".join(f"{s} {100 * c / total:.1f} %" for s, c in r["syms"].most_common(16)))
        out.append("")
    return "\n".join(out)


PERF_FIELDS = "comm,pid,tid,event,ip,sym,dso,trace"


def events(freq: int, counting: bool) -> list[str]:
    """The CPU pass: cpu-clock samples at `freq`. The counting pass: every
    switch and system call (-c 1), and CPU samples at a tenth of `freq` only
    to tell handler threads from runtime workers."""
    if not counting:
        return ["-e", f"cpu-clock/period={10**9 // freq}/"]
    return [
        "-c",
        "1",
        "-e",
        f"cpu-clock/period={10 * 10**9 // freq}/",
        "-e",
        "sched:sched_switch",
        "-e",
        "raw_syscalls:sys_enter",
    ]


def perf_script(data: Path) -> str:
    return subprocess.run(
        ["perf", "script", "-i", str(data), "-F", PERF_FIELDS], capture_output=True, text=True, check=True
    ).stdout


def python_pass(args: argparse.Namespace, n: int, counting: bool) -> tuple[dict, dict] | None:
    """One recorded run of the Python scenario on a fresh broker: its result and rows."""
    sys.path.insert(0, str(REPO / "tests" / "broker"))
    from broker import Broker

    env = dict(os.environ)
    if args.site:
        env["PYTHONPATH"] = str(args.site.resolve())
    ev = events(args.freq, counting)
    with tempfile.TemporaryDirectory() as d, Broker(Path(d)) as b:
        data = Path(d) / "perf.data"
        # perf cannot take both --pid and a command: the broker has a perf of
        # its own. Both start disabled; run.py's perf_window enables them
        # around the measured exchanges (through their control fifos).
        bdata = Path(d) / "broker.data"
        ctl, bctl = Path(d) / "ctl", Path(d) / "bctl"
        os.mkfifo(ctl)
        os.mkfifo(bctl)
        perf = ["perf", "record", "-q", "-D", "-1"]
        bperf = subprocess.Popen([*perf, f"--control=fifo:{bctl}", "-o", str(bdata), *ev, "--pid", str(b.pid)])
        child = [sys.executable, str(HERE / "ab.py"), "--child", args.scenario, b.url, str(b.pid), str(n)]
        env["OC2_PERF_CTL"] = f"{ctl}{os.pathsep}{bctl}"
        out = subprocess.run(
            [*perf, f"--control=fifo:{ctl}", "-o", str(data), *ev, "--", *child],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        bperf.send_signal(2)
        bperf.wait()
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
            return None
        result = json.loads(out.stdout.strip().splitlines()[-1])
        parsed = parse(perf_script(data) + "\n" + perf_script(bdata), args.freq // (10 if counting else 1), n)
        return result, rows(parsed, processes(parsed, args.scenario, {b.pid: "broker"}))


def core_pass(args: argparse.Namespace, counting: bool) -> tuple[dict, dict] | None:
    """The Rust core in the same topology (`oc2mqtt-bench seq` / `pipe-split`,
    its own broker), the whole run recorded: its warm-up (a third of
    `seconds`, at least 0.5 s) is counted as exchanges at the measured rate."""
    name = args.core_scenario or ("seq" if args.scenario == "seq" else "pipe-split")
    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "perf.data"
        argv = [str(args.core), "--repeat", "1", "--seconds", str(args.seconds), name]
        out = subprocess.run(
            ["perf", "record", "-q", "-o", str(data), *events(args.freq, counting), "--", *argv],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
            return None
        m = json.loads(out.stdout)[name]["median"]
        n = int(m["n"] * (args.seconds + max(args.seconds / 3, 0.5)) / args.seconds)
        parsed = parse(perf_script(data), args.freq // (10 if counting else 1), n)
        brokers = {pid: "broker" for (pid, _), t in parsed["threads"].items() if t["comm"].startswith("mosquitto")}
        return m, rows(parsed, processes(parsed, args.scenario, brokers))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--site",
        type=Path,
        help="directory with the oc2mqtt to profile (default: the venv's)",
    )
    ap.add_argument("--scenario", choices=["seq", "pipe"], default="pipe")
    ap.add_argument("--n", type=int, default=0, help="exchanges (default 3000 seq, 16384 pipe)")
    ap.add_argument("--freq", type=int, default=4999, help="CPU samples per second (default 4999)")
    ap.add_argument(
        "--core",
        type=Path,
        help="profile the Rust core (oc2mqtt-bench) in the same topology instead",
    )
    ap.add_argument(
        "--core-scenario",
        help="oc2mqtt-bench's scenario (default seq or pipe-split; `serve`: the core's serve() as the handler side)",
    )
    ap.add_argument("--seconds", type=float, default=3.0, help="the core's run (with --core)")
    args = ap.parse_args()
    n = args.n or (3000 if args.scenario == "seq" else 16384)
    passes = []
    for counting in (False, True):
        got = core_pass(args, counting) if args.core else python_pass(args, n, counting)
        if got is None:
            return 1
        print(("counting pass: " if counting else "CPU pass: ") + json.dumps(got[0]), flush=True)
        passes.append(got[1])
    print(report(passes[0], passes[1]))
    return 0


def processes(parsed: dict, scenario: str, known: dict[int, str]) -> dict[int, str]:
    """Names the processes that ran the core's threads: the benchmark (first),
    then the pipelined consumer (its child)."""
    pids = sorted({pid for (pid, _), t in parsed["threads"].items() if t["comm"].startswith("oc2mqtt")} - set(known))
    names = (
        ["producer (benchmark process)", "consumer (child process)"]
        if scenario == "pipe"
        else ["both ends (one process)"]
    )
    return {**known, **dict(zip(pids, names))}


if __name__ == "__main__":
    sys.exit(main())
