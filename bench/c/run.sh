#!/usr/bin/env bash
# C benchmark (issues 5 and 21): C producer <-> C consumer through
# liboc2mqtt (its transport: core/src/client/, mqtt-protocol-core on tokio),
# against a hand-written libmosquitto ping-pong (bench/rust/c/pingpong.c)
# with the same payloads and topics, on the same throwaway nodelay Mosquitto,
# in the same run, alternating, REPEAT times each; medians. Sequential (one
# in flight) and pipelined (64 in flight), with the consumer in each of the
# four styles: pull (`oc2_consumer_next`), callback (`oc2_consumer_serve`),
# handler (`oc2_consumer_serve_handler`), inline (`oc2_consumer_serve_inline`).
# The Rust core (`oc2mqtt-bench` `seq`, `pipe`, `seq-inline` and
# `pipe-inline`, both ends in one process as here) runs in each round
# beside them, on a broker of its own with the same configuration.
#
#   bench/c/run.sh                       # writes bench/c/RESULTS.md
#   REPEAT=1 SECONDS_PER_RUN=1 bench/c/run.sh   # a quick look
# Run it under the benchmark lock: flock /tmp/oc2mqtt-bench.lock bench/c/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/oc2mqtt-target}"
repeat="${REPEAT:-3}"
seconds="${SECONDS_PER_RUN:-3}"
warmup="${WARMUP:-200}"
out="$CARGO_TARGET_DIR/c-bench"
mkdir -p "$out"

make -s -C "$root/bindings-c" build
cargo build -q --release -p oc2mqtt-bench --manifest-path "$root/Cargo.toml"
cc -std=c11 -O2 -Wall -Wextra -Werror -I"$root/bindings-c/include" "$here/oc2_pingpong.c" -o "$out/oc2_pingpong" \
  -L"$CARGO_TARGET_DIR/release" -loc2mqtt -lpthread -Wl,-rpath,"$CARGO_TARGET_DIR/c-tests"
cc -O2 -Wall -Wextra -o "$out/pingpong" "$root/bench/rust/c/pingpong.c" -lmosquitto -lpthread

cmd="$root/bench/payloads/deny_command.json"
rsp="$root/bench/payloads/ok_response.json"
# (not $here: with_broker.sh sets its own here, which the child would see)
results="$here/RESULTS.md"
export results out cmd rsp repeat seconds warmup root
"$root/bindings-c/tests/with_broker.sh" python3 - <<'PY'
import json, os, platform, resource, statistics, subprocess, time
url = os.environ["OC2_TEST_BROKER"]
port = url.rsplit(":", 1)[1]
out, cmd, rsp = os.environ["out"], os.environ["cmd"], os.environ["rsp"]
seconds, warmup, repeat = os.environ["seconds"], os.environ["warmup"], int(os.environ["repeat"])
root = os.environ["root"]
rust_bin = os.path.join(os.environ["CARGO_TARGET_DIR"], "release", "oc2mqtt-bench")
SEQ = ["c-plain", "c-dual", "oc2-pull", "oc2-wait", "oc2-serve", "oc2-handler", "oc2-inline", "oc2-inline-wait"]
PIPE = ["c-pipe", "oc2-pipe", "oc2-pipe-handler", "oc2-pipe-inline"]
# with the producer's oc2_producer_send_wait (OC2_SEND_WAIT=1)
SEND_WAIT = {"oc2-wait", "oc2-inline-wait"}
scenarios = {
    "c-plain": [f"{out}/pingpong", port, cmd, rsp, warmup, seconds],
    "c-dual": [f"{out}/pingpong", port, cmd, rsp, warmup, seconds, "dual"],
    "oc2-pull": [f"{out}/oc2_pingpong", url, cmd, rsp, warmup, seconds],
    # the same, the producer sending with oc2_producer_send_wait (OC2_SEND_WAIT below)
    "oc2-wait": [f"{out}/oc2_pingpong", url, cmd, rsp, warmup, seconds],
    "oc2-serve": [f"{out}/oc2_pingpong", url, cmd, rsp, warmup, seconds, "serve"],
    "oc2-handler": [f"{out}/oc2_pingpong", url, cmd, rsp, warmup, seconds, "handler"],
    # the handler on the consumer's network thread (oc2_consumer_serve_inline)
    "oc2-inline": [f"{out}/oc2_pingpong", url, cmd, rsp, warmup, seconds, "inline"],
    # the same with oc2_producer_send_wait: the best sequential pair
    "oc2-inline-wait": [f"{out}/oc2_pingpong", url, cmd, rsp, warmup, seconds, "inline"],
    # 64 in flight, responses on two topics
    "c-pipe": [f"{out}/pingpong", port, cmd, rsp, warmup, seconds, "dual", "pipe"],
    "oc2-pipe": [f"{out}/oc2_pingpong", url, cmd, rsp, warmup, seconds, "pipe"],
    "oc2-pipe-handler": [f"{out}/oc2_pingpong", url, cmd, rsp, warmup, seconds, "pipe-handler"],
    "oc2-pipe-inline": [f"{out}/oc2_pingpong", url, cmd, rsp, warmup, seconds, "pipe-inline"],
}


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


RUST = {"seq": "rust-seq", "pipe": "rust-pipe", "seq-inline": "rust-seq-inline", "pipe-inline": "rust-pipe-inline"}
runs = {k: [] for k in [*scenarios, *RUST.values()]}
for i in range(repeat):
    for name, argv in scenarios.items():
        cpu0 = child_cpu()
        env = dict(os.environ, OC2_SEND_WAIT="1" if name in SEND_WAIT else "0")
        line = subprocess.run(argv, check=True, capture_output=True, text=True,
                              env=env).stdout.strip().splitlines()[-1]
        cpu = child_cpu() - cpu0
        r = json.loads(line)
        # CPU of the whole process (connect and warm-up included) over every exchange it made
        # (pipelined: the rate over the half second of settling too): an upper bound per exchange.
        made = int(warmup) + (r["n"] if "rt_per_s" in r else r["exchanges_per_s"] * (float(seconds) + 0.5))
        r["rate"] = r.get("rt_per_s", r.get("exchanges_per_s"))
        r["cpu_us"] = cpu / made * 1e6
        runs[name].append(r)
        print(f"run {i + 1}/{repeat} {name:16s} {line} cpu {r['cpu_us']:.0f} us/exchange", flush=True)
    if os.path.exists(rust_bin):
        p = subprocess.run([rust_bin, "--repeat", "1", "--seconds", seconds, *RUST], capture_output=True,
                           text=True, cwd=root)
        if p.returncode == 0:
            rep = json.loads(p.stdout)
            for key, name in RUST.items():
                m = rep[key]["median"]
                runs[name].append({"rate": m.get("rt_per_s", m.get("exchanges_per_s")), "p50_us": m["p50_us"],
                                   "p99_us": m["p99_us"], "cpu_us": m["cpu_us_per_rt_client"]})
            print(f"run {i + 1}/{repeat} rust " + " ".join(f"{k} {runs[n][-1]['rate']:.0f}/s" for k, n in RUST.items()),
                  flush=True)
rust = bool(runs["rust-seq"])
if not rust:
    for name in RUST.values():
        runs.pop(name)
med = {k: {m: statistics.median(r[m] for r in v if m in r) for m in ("rate", "p50_us", "p99_us", "cpu_us")
           if any(m in r for r in v)} for k, v in runs.items()}


def ratio(a: str, b: str) -> float:
    return med[a]["rate"] / med[b]["rate"]


def vs_rust(k: str, rk: str) -> str:
    if not rust:
        return "—"
    return (f"{ratio(k, rk):.2f}× rate, CPU {med[k]['cpu_us']:.0f} µs vs {med[rk]['cpu_us']:.0f} µs "
            f"(+{med[k]['cpu_us'] - med[rk]['cpu_us']:.0f} µs)")


rows_seq = [
    ("libmosquitto ping-pong, one response topic (`plain`)", "c-plain", "1.00×"),
    ("libmosquitto ping-pong, responses on `oc2/rsp` and `oc2/rsp/<id>` like oc2mqtt (`dual`)", "c-dual",
     f"{ratio('c-dual', 'c-plain'):.2f}×"),
    ("liboc2mqtt, pull style (`oc2_consumer_next` + `oc2_consumer_reply`)", "oc2-pull",
     f"**{ratio('oc2-pull', 'c-plain'):.2f}×** plain, **{ratio('oc2-pull', 'c-dual'):.2f}×** dual"),
    ("liboc2mqtt, pull style, producer `oc2_producer_send_wait` (one wake-up per exchange)", "oc2-wait",
     f"**{ratio('oc2-wait', 'c-plain'):.2f}×** plain, **{ratio('oc2-wait', 'c-dual'):.2f}×** dual"),
    ("liboc2mqtt, callback style (`oc2_consumer_serve`)", "oc2-serve",
     f"{ratio('oc2-serve', 'c-plain'):.2f}× plain, {ratio('oc2-serve', 'c-dual'):.2f}× dual"),
    ("liboc2mqtt, handler style (`oc2_consumer_serve_handler`)", "oc2-handler",
     f"{ratio('oc2-handler', 'c-plain'):.2f}× plain, {ratio('oc2-handler', 'c-dual'):.2f}× dual"),
    ("liboc2mqtt, inline style (`oc2_consumer_serve_inline`: the handler on the network thread)", "oc2-inline",
     f"{ratio('oc2-inline', 'c-plain'):.2f}× plain, {ratio('oc2-inline', 'c-dual'):.2f}× dual"),
    ("liboc2mqtt, inline style, producer `oc2_producer_send_wait`", "oc2-inline-wait",
     f"**{ratio('oc2-inline-wait', 'c-plain'):.2f}×** plain, **{ratio('oc2-inline-wait', 'c-dual'):.2f}×** dual"),
] + ([("Rust core, `Producer` ↔ `Consumer` (`oc2mqtt-bench seq`)", "rust-seq",
       f"{ratio('rust-seq', 'c-plain'):.2f}× plain, {ratio('rust-seq', 'c-dual'):.2f}× dual"),
       ("Rust core, consumer `serve_inline` (`oc2mqtt-bench seq-inline`)", "rust-seq-inline",
       f"{ratio('rust-seq-inline', 'c-plain'):.2f}× plain, {ratio('rust-seq-inline', 'c-dual'):.2f}× dual")]
      if rust else [])
rows_pipe = [
    ("libmosquitto ping-pong, 64 in flight, two response topics (`dual pipe`)", "c-pipe", "1.00×"),
    ("liboc2mqtt, 64 in flight, pull style consumer", "oc2-pipe", f"**{ratio('oc2-pipe', 'c-pipe'):.2f}×**"),
    ("liboc2mqtt, 64 in flight, handler style consumer", "oc2-pipe-handler",
     f"**{ratio('oc2-pipe-handler', 'c-pipe'):.2f}×**"),
    ("liboc2mqtt, 64 in flight, inline style consumer", "oc2-pipe-inline",
     f"**{ratio('oc2-pipe-inline', 'c-pipe'):.2f}×**"),
] + ([("Rust core, 64 in flight (`oc2mqtt-bench pipe`)", "rust-pipe", f"{ratio('rust-pipe', 'c-pipe'):.2f}×"),
      ("Rust core, 64 in flight, consumer `serve_inline` (`oc2mqtt-bench pipe-inline`)", "rust-pipe-inline",
       f"{ratio('rust-pipe-inline', 'c-pipe'):.2f}×")] if rust else [])
rust_of = {"oc2-pull": "rust-seq", "oc2-wait": "rust-seq", "oc2-serve": "rust-seq", "oc2-handler": "rust-seq",
           "oc2-inline": "rust-seq-inline", "oc2-inline-wait": "rust-seq-inline", "oc2-pipe": "rust-pipe",
           "oc2-pipe-handler": "rust-pipe", "oc2-pipe-inline": "rust-pipe-inline"}
load = open("/proc/loadavg").read().split()[:3]
best_seq = max(("oc2-pull", "oc2-wait", "oc2-serve", "oc2-handler", "oc2-inline", "oc2-inline-wait"),
               key=lambda k: med[k]["rate"])
best_pipe = max(("oc2-pipe", "oc2-pipe-handler", "oc2-pipe-inline"), key=lambda k: med[k]["rate"])
lines = [
    "# C benchmark: liboc2mqtt against libmosquitto (issues 5 and 21)",
    "",
    "Written by `bench/c/run.sh`; do not edit by hand. One command, one response,",
    "through a throwaway Mosquitto (`set_tcp_nodelay true`) on 127.0.0.1.",
    "liboc2mqtt runs on oc2mqtt's own transport (core/src/client/: mqtt-protocol-core on tokio).",
    "Payloads: `bench/payloads/deny_command.json` and `ok_response.json` (the oc2mqtt runs",
    "send their command and response objects, with `response_requested: complete`).",
    "MQTT v5, QoS 1 everywhere, the same topics (`oc2/cmd/device/c-consumer`, responses on",
    "`oc2/rsp` and `oc2/rsp/c-producer`). One process per scenario, both ends in it.",
    f"Each scenario ran {repeat}× {seconds} s after {warmup} warm-up round trips,",
    "alternating, in the same run against the same broker; medians shown. The Rust core ran",
    "in each round too (`oc2mqtt-bench seq pipe`, on its own broker with the same configuration;",
    "its producer uses `send_collect`, as `oc2_producer_send_wait` does).",
    "CPU per exchange: the whole process's user+system CPU (connect and warm-up included) over",
    "every exchange it made, so an upper bound; the Rust figure is measured over the run only.",
    "",
    f"Machine: {os.cpu_count()} CPUs, load average {' '.join(load)} at the end (shared with other jobs),",
    f"{platform.system()} {platform.release()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
    "",
    "Sequential (one in flight):",
    "",
    "| scenario | round trips/s | p50 | p99 | CPU/exchange | vs libmosquitto | vs the Rust core |",
    "|---|---|---|---|---|---|---|",
]
for label, key, vs in rows_seq:
    m = med[key]
    lines.append(f"| {label} | {m['rate']:.0f} | {m['p50_us'] / 1000:.3f} ms | {m['p99_us'] / 1000:.3f} ms "
                 f"| {m['cpu_us']:.0f} µs | {vs} | {vs_rust(key, rust_of[key]) if key in rust_of else ''} |")
lines += [
    "",
    "Pipelined (64 in flight; liboc2mqtt: 16 producer threads each keep a ring of 4 exchanges, wait for the",
    "oldest and send the next (`oc2_producer_send` returns once the broker acknowledged the command, so one",
    "thread alone would wait for each acknowledgement in turn: 1 thread ran at about 0.7× libmosquitto, 4 at",
    "1.1×, 16 at 1.1-1.6×, 64 at 0.7×, in alternating runs on this machine); libmosquitto: each response",
    "sends the next command from its network thread):",
    "",
    "| scenario | exchanges/s | CPU/exchange | vs libmosquitto | vs the Rust core |",
    "|---|---|---|---|---|",
]
for label, key, vs in rows_pipe:
    m = med[key]
    lines.append(f"| {label} | {m['rate']:.0f} | {m['cpu_us']:.0f} µs | {vs} "
                 f"| {vs_rust(key, rust_of[key]) if key in rust_of else ''} |")
seq_ok = ratio(best_seq, "c-plain") >= 1.0
pipe_ok = ratio(best_pipe, "c-pipe") >= 1.0
lines += [
    "",
    f"Targets (issue 21): sequential ≥ 1.0× libmosquitto: **{'met' if seq_ok else 'not met'}** "
    f"(best style `{best_seq}`: {ratio(best_seq, 'c-plain'):.2f}× `plain`, {ratio(best_seq, 'c-dual'):.2f}× `dual`); "
    f"pipelined ≥ 1.0× libmosquitto: **{'met' if pipe_ok else 'not met'}** "
    f"(best `{best_pipe}`: {ratio(best_pipe, 'c-pipe'):.2f}×).",
    "",
]
if rust:
    lines += [
        f"The Rust core itself, same topology, same rounds: {ratio('rust-seq', 'c-plain'):.2f}× libmosquitto "
        f"sequentially and {ratio('rust-pipe', 'c-pipe'):.2f}× pipelined; the C layer runs at "
        f"{ratio('oc2-pull', 'rust-seq'):.2f}× (pull, sequential; {ratio('oc2-wait', 'rust-seq'):.2f}× with "
        f"`oc2_producer_send_wait`) and {ratio(best_pipe, 'rust-pipe'):.2f}× "
        "(pipelined) of it. With an inline consumer on both sides: the core "
        f"{ratio('rust-seq-inline', 'c-plain'):.2f}× plain and {ratio('rust-seq-inline', 'c-dual'):.2f}× dual "
        f"sequentially, {ratio('rust-pipe-inline', 'c-pipe'):.2f}× pipelined; C inline + `oc2_producer_send_wait` "
        f"{ratio('oc2-inline-wait', 'rust-seq-inline'):.2f}× the inline core.",
        "",
    ]
else:
    lines += ["(`oc2mqtt-bench` was not built, so the Rust core was not measured beside it.)", ""]
lines += ["All runs (rate, p50):", "", "```"]
for k, v in runs.items():
    lines.append(f"{k:16s} " + "  ".join(
        f"{r['rate']:.0f}/s" + (f" p50 {r['p50_us']:.0f}us" if "p50_us" in r else "") + f" cpu {r['cpu_us']:.0f}us"
        for r in v))
lines.append("```")
# What follows the marker in the existing file is written by hand (A/B runs,
# profiles, what was tried): kept when the report above it is written again.
MARKER = "<!-- written by hand below this line: bench/c/run.sh keeps it -->"
try:
    kept = open(os.environ["results"]).read().split(MARKER, 1)
except FileNotFoundError:
    kept = []
lines += ["", MARKER]
text = "\n".join(lines) + "\n"
if len(kept) == 2 and kept[1].strip():
    text += "\n" + kept[1].lstrip("\n")
open(os.environ["results"], "w").write(text)
print("\n".join(lines))
PY
