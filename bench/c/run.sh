#!/usr/bin/env bash
# C benchmark (issue 5): sequential round trips, C producer <-> C consumer
# through liboc2mqtt, against a hand-written libmosquitto ping-pong
# (bench/rust/c/pingpong.c) and the same ping-pong on raw Paho C MQTTAsync
# (bench/c/paho_pingpong.c, the transport oc2mqtt is built on), with the same
# payloads, on the same throwaway nodelay Mosquitto, in the same run,
# alternating, REPEAT times each; medians.
#
#   bench/c/run.sh                       # writes bench/c/RESULTS.md
#   REPEAT=1 SECONDS_PER_RUN=1 bench/c/run.sh   # a quick look
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
cc -std=c11 -O2 -Wall -Wextra -Werror -I"$root/bindings-c/include" "$here/oc2_pingpong.c" -o "$out/oc2_pingpong" \
  -L"$CARGO_TARGET_DIR/release" -loc2mqtt -lpthread -Wl,-rpath,"$CARGO_TARGET_DIR/c-tests"
cc -O2 -Wall -Wextra -o "$out/pingpong" "$root/bench/rust/c/pingpong.c" -lmosquitto -lpthread
# raw Paho C: the very static library oc2mqtt links
OC2_BENCH_TARGET_DIR="$CARGO_TARGET_DIR" OC2_BENCH_OUT="$out" "$here/build-paho-pingpong.sh" >/dev/null

cmd="$root/bench/payloads/deny_command.json"
rsp="$root/bench/payloads/ok_response.json"
# (not $here: with_broker.sh sets its own here, which the child would see)
results="$here/RESULTS.md"
export results out cmd rsp repeat seconds warmup root
"$root/bindings-c/tests/with_broker.sh" python3 - <<'PY'
import json, os, platform, statistics, subprocess, time
url = os.environ["OC2_TEST_BROKER"]
port = url.rsplit(":", 1)[1]
out, cmd, rsp = os.environ["out"], os.environ["cmd"], os.environ["rsp"]
seconds, warmup, repeat = os.environ["seconds"], os.environ["warmup"], int(os.environ["repeat"])
scenarios = {
    "c-plain": [f"{out}/pingpong", port, cmd, rsp, warmup, seconds],
    "c-dual": [f"{out}/pingpong", port, cmd, rsp, warmup, seconds, "dual"],
    "oc2-pull": [f"{out}/oc2_pingpong", url, cmd, rsp, warmup, seconds],
    "oc2-serve": [f"{out}/oc2_pingpong", url, cmd, rsp, warmup, seconds, "serve"],
    "paho-plain": [f"{out}/paho_pingpong", port, cmd, rsp, warmup, seconds],
    "paho-dual": [f"{out}/paho_pingpong", port, cmd, rsp, warmup, seconds, "dual"],
    "paho-handoff": [f"{out}/paho_pingpong", port, cmd, rsp, warmup, seconds, "dual", "handoff"],
    # 64 in flight, two response topics: a rate only, reported in the notes
    "paho-pipe": [f"{out}/paho_pingpong", port, cmd, rsp, warmup, seconds, "dual", "pipe"],
}
runs = {k: [] for k in scenarios}
for i in range(repeat):
    for name, argv in scenarios.items():
        line = subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        runs[name].append(json.loads(line))
        print(f"run {i + 1}/{repeat} {name:10s} {line}", flush=True)
pipe_runs = runs.pop("paho-pipe")
pipe = {"paho-pipe": statistics.median(r["exchanges_per_s"] for r in pipe_runs)}
med = {k: {m: statistics.median(r[m] for r in v) for m in ("rt_per_s", "p50_us", "p99_us")} for k, v in runs.items()}

def ratio(a, b):
    return med[a]["rt_per_s"] / med[b]["rt_per_s"]

rows = [
    ("libmosquitto ping-pong, one response topic (`plain`)", "c-plain", "1.00× (the floor)"),
    ("libmosquitto ping-pong, response on `oc2/rsp` and `oc2/rsp/<id>` like oc2mqtt (`dual`)", "c-dual", f"{ratio('c-dual', 'c-plain'):.2f}×"),
    ("liboc2mqtt, pull style (`oc2_consumer_next` + `oc2_consumer_reply`)", "oc2-pull",
     f"**{ratio('oc2-pull', 'c-plain'):.2f}×** plain, **{ratio('oc2-pull', 'c-dual'):.2f}×** dual"),
    ("liboc2mqtt, callback style (`oc2_consumer_serve`)", "oc2-serve",
     f"{ratio('oc2-serve', 'c-plain'):.2f}× plain, {ratio('oc2-serve', 'c-dual'):.2f}× dual"),
    ("raw Paho C (MQTTAsync) ping-pong, the transport oc2mqtt is built on, one response topic (`paho-plain`)",
     "paho-plain", f"{ratio('paho-plain', 'c-plain'):.2f}× plain"),
    ("raw Paho C (MQTTAsync) ping-pong, the transport oc2mqtt is built on, two response topics (`paho-dual`)",
     "paho-dual", f"{ratio('paho-dual', 'c-plain'):.2f}× plain, {ratio('paho-dual', 'c-dual'):.2f}× dual"),
    ("raw Paho C, two response topics, answered from a consumer thread as oc2mqtt's design requires (`paho-handoff`)",
     "paho-handoff", f"{ratio('paho-handoff', 'c-plain'):.2f}× plain, {ratio('paho-handoff', 'c-dual'):.2f}× dual"),
]
target_met = ratio("oc2-pull", "c-plain") >= 0.8
# The Rust client alone, for reference: is the gap in the C layer or in core?
rust = None
rust_bin = os.path.join(os.environ["CARGO_TARGET_DIR"], "release", "oc2mqtt-bench")
if os.path.exists(rust_bin):
    r = subprocess.run([rust_bin, "--repeat", "1", "--seconds", seconds, "seq"], capture_output=True, text=True,
                       cwd=os.environ["root"])
    if r.returncode == 0:
        rust = json.loads(r.stdout)["seq"]["median"]
load = open("/proc/loadavg").read().split()[:3]
lines = [
    "# C benchmark: sequential round trips (issue 5)",
    "",
    "Written by `bench/c/run.sh`; do not edit by hand. One command, one response,",
    "one in flight, through a throwaway Mosquitto (`set_tcp_nodelay true`) on",
    "127.0.0.1. Payloads: `bench/payloads/deny_command.json` and",
    "`ok_response.json` (the oc2mqtt runs send their command and response",
    "objects, with `response_requested: complete`). MQTT v5, QoS 1 everywhere.",
    f"Each scenario ran {repeat}× {seconds} s after {warmup} warm-up round trips,",
    "alternating, in the same run against the same broker; medians shown.",
    "",
    f"Machine: {os.cpu_count()} CPUs, load average {' '.join(load)} at the end (shared with other jobs),",
    f"{platform.system()} {platform.release()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
    "",
    "| scenario | round trips/s | p50 | p99 | vs libmosquitto |",
    "|---|---|---|---|---|",
]
for label, key, vs in rows:
    m = med[key]
    lines.append(f"| {label} | {m['rt_per_s']:.0f} | {m['p50_us'] / 1000:.3f} ms | {m['p99_us'] / 1000:.3f} ms | {vs} |")
lines += [
    "",
    f"Target (issue 5): liboc2mqtt ≥ 80 % of the libmosquitto ping-pong: **{'met' if target_met else 'not met'}** "
    f"({ratio('oc2-pull', 'c-plain') * 100:.0f} % of `plain`, {ratio('oc2-pull', 'c-dual') * 100:.0f} % of `dual`).",
    "",
    "The ceiling for any Paho-based library: the same ping-pong written by hand on raw Paho C",
    "(`bench/c/paho_pingpong.c`: MQTTAsync from the very `libpaho-mqtt3as.a` that oc2mqtt links, same payloads,",
    f"properties, QoS and No Local) runs at **{ratio('paho-plain', 'c-plain') * 100:.0f} %** of libmosquitto with one",
    f"response topic, and at {ratio('paho-dual', 'c-dual') * 100:.0f} % of `dual` with two "
    f"({ratio('paho-dual', 'c-plain') * 100:.0f} % of `plain`). Those two answer from Paho's network thread;",
    "DESIGN.md rules that out for oc2mqtt (\"the handler never runs on the network thread\"), so the",
    "like-for-like ceiling is `paho-handoff`: two response topics, and the network thread hands each command",
    f"to a consumer thread that answers. It reaches **{ratio('paho-handoff', 'c-plain') * 100:.0f} %** of `plain`. "
    + ("That is below the 80 % target: on this machine no implementation of oc2mqtt's design on Paho C "
       "can reach it, whatever its own cost."
       if ratio("paho-handoff", "c-plain") < 0.8 else
       "That clears the 80 % target, so the transport and the design do not rule it out; the rest of the gap "
       "is oc2mqtt's own."),
    f"liboc2mqtt pull style reaches **{ratio('oc2-pull', 'paho-handoff') * 100:.0f} %** of `paho-handoff` "
    f"(p50 {med['oc2-pull']['p50_us'] / 1000:.3f} ms against {med['paho-handoff']['p50_us'] / 1000:.3f} ms)"
    + (": within this machine's run-to-run noise of that ceiling, so oc2mqtt's own work per round trip (encode, "
       "decode and validate both ways, duplicate detection, correlation, the C layer) is not what separates it "
       "from the target; the hand-off is."
       if ratio("oc2-pull", "paho-handoff") >= 0.95 else
       ": the rest of the gap is oc2mqtt's own work per round trip (encode, decode and validate both ways, "
       "duplicate detection, correlation, the hand-off to the waiting producer thread, the C layer)."),
    f"Raw Paho C with 64 commands in flight and two response topics (`paho-pipe`): {pipe['paho-pipe']:.0f} exchanges/s.",
    "",
] + ([
    f"For reference, in this run: Rust `Producer` ↔ `Consumer` (`bench/rust` scenario `seq`, its own broker): "
    f"{rust['rt_per_s']:.0f} round trips/s, p50 {rust['p50_us'] / 1000:.3f} ms, so liboc2mqtt pull style runs at "
    f"{med['oc2-pull']['rt_per_s'] / rust['rt_per_s']:.2f}× the Rust client.",
    "",
] if rust else [
    "(`oc2mqtt-bench` was not built, so the Rust client was not measured beside it: "
    "`cargo build --release -p oc2mqtt-bench`.)",
    "",
]) + [
    "All runs:",
    "",
    "```",
]
for k, v in runs.items():
    lines.append(f"{k:10s} " + "  ".join(f"{r['rt_per_s']:.0f}/s p50 {r['p50_us']:.0f}us" for r in v))
lines.append("paho-pipe  " + "  ".join(f"{r['exchanges_per_s']:.0f}/s" for r in pipe_runs))
lines.append("```")
open(os.environ["results"], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
