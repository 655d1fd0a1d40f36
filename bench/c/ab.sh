#!/usr/bin/env bash
# A/B comparison of two builds of liboc2mqtt on one scenario of
# bench/c/oc2_pingpong.c, run alternately (A, B, A, B, ...) against one
# throwaway Mosquitto, so that the machine's drift between runs hits both
# sides alike. Prints every run (rate, CPU and context switches of the whole
# process per exchange, connect and warm-up included) and each side's medians.
#
#   cp -a $CARGO_TARGET_DIR/release/liboc2mqtt.so /tmp/lib-a/    # before a change
#   make -C bindings-c build                                     # after it
#   bench/c/ab.sh /tmp/lib-a $CARGO_TARGET_DIR/release pipe 6
#
# MODE is oc2_pingpong's (pull serve handler inline pipe pipe-handler pipe-inline); ROUNDS
# (default 5) runs of SECONDS_PER_RUN (default 3) seconds per side. Each
# LIBDIR holds a liboc2mqtt.so; the header is this tree's. SRC_A / SRC_B: the
# oc2_pingpong.c of each side (default: this tree's), for a library without
# a function the current one calls. Other variables (OC2_SEND_WAIT,
# OC2_PIPE_SENDERS) reach both sides; ENV_A="VAR=value ..." only side A, ENV_B side B.
# MODE_A / MODE_B: a mode of each side's own (two styles on one library:
#   MODE_A=pull MODE_B=inline bench/c/ab.sh LIB LIB - 6).
set -euo pipefail
if [ $# -lt 3 ]; then
  sed -n '2,20p' "$0" >&2
  exit 2
fi
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
a="$(cd "$1" && pwd)" b="$(cd "$2" && pwd)" mode="$3" rounds="${4:-5}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for side in A B; do
  lib="$a"; [ "$side" = B ] && lib="$b"
  [ -f "$lib/liboc2mqtt.so" ] || { echo "ab.sh: no liboc2mqtt.so in $lib" >&2; exit 2; }
  # A copy per side, named as the binary's soname asks, found through the rpath.
  mkdir -p "$out/lib$side"
  cp "$lib/liboc2mqtt.so" "$out/lib$side/"
  soname=$(objdump -p "$lib/liboc2mqtt.so" | awk '/SONAME/ {print $2}')
  [ -n "$soname" ] && ln -sf liboc2mqtt.so "$out/lib$side/$soname"
  src="${SRC_A:-$here/oc2_pingpong.c}"; [ "$side" = B ] && src="${SRC_B:-$here/oc2_pingpong.c}"
  cc -std=c11 -O2 -Wall -Wextra -Werror -I"$root/bindings-c/include" "$src" \
    -o "$out/pingpong$side" -L"$out/lib$side" -loc2mqtt -lpthread -Wl,-rpath,"$out/lib$side"
done
export out mode rounds
export cmd="$root/bench/payloads/deny_command.json" rsp="$root/bench/payloads/ok_response.json"
"$root/bindings-c/tests/with_broker.sh" python3 - <<'PY'
import json, os, resource, statistics, subprocess
out, mode, rounds = os.environ["out"], os.environ["mode"], int(os.environ["rounds"])
seconds, warmup = os.environ.get("SECONDS_PER_RUN", "3"), "200"
url = os.environ["OC2_TEST_BROKER"]
rows = {"A": [], "B": []}


def usage():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime, r.ru_nvcsw + r.ru_nivcsw


for i in range(1, rounds + 1):
    for side in "AB":
        side_mode = os.environ.get(f"MODE_{side}") or mode
        argv = [f"{out}/pingpong{side}", url, os.environ["cmd"], os.environ["rsp"], warmup, seconds, side_mode]
        cpu0, sw0 = usage()
        env = dict(os.environ)
        env.update(kv.split("=", 1) for kv in os.environ.get(f"ENV_{side}", "").split())
        line = subprocess.run(argv, check=True, capture_output=True, text=True,
                              env=env).stdout.strip().splitlines()[-1]
        cpu1, sw1 = usage()
        r = json.loads(line)
        rate = r.get("rt_per_s", r.get("exchanges_per_s"))
        made = int(warmup) + (r["n"] if "rt_per_s" in r else rate * (float(seconds) + 0.5))
        row = (rate, (cpu1 - cpu0) / made * 1e6, (sw1 - sw0) / made)
        rows[side].append(row)
        print(f"{side} run {i}: {row[0]:.0f}/s, CPU {row[1]:.0f} us, {row[2]:.1f} switches per exchange", flush=True)
med = {s: tuple(statistics.median(r[k] for r in v) for k in range(3)) for s, v in rows.items()}
for s in "AB":
    print(f"{s}: median {med[s][0]:.0f}/s, CPU {med[s][1]:.0f} us, {med[s][2]:.1f} switches per exchange")
print(f"B/A: rate {med['B'][0] / med['A'][0]:.3f}, CPU {med['B'][1] / med['A'][1]:.3f}, "
      f"switches {med['B'][2] / med['A'][2]:.3f}")
PY
