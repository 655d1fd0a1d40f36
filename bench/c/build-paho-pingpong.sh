#!/usr/bin/env bash
# Builds bench/c/paho_pingpong.c against the very Paho C static library that
# the benchmark crate bench/rust links (built by paho-mqtt-sys; oc2mqtt itself
# no longer uses Paho), into $OC2_BENCH_OUT (default
# $HOME/.cache/oc2mqtt-target/c-bench), and prints the binary's path.
# The Python and Node benchmarks use it for their raw Paho C reference rows.
#
#   bench/c/build-paho-pingpong.sh            # builds oc2mqtt-bench (release) first if needed
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${OC2_BENCH_TARGET_DIR:-$HOME/.cache/oc2mqtt-target}"
out="${OC2_BENCH_OUT:-$target/c-bench}"
mkdir -p "$out"
# `|| true`: no match yet is an empty answer, not a failure (pipefail would end the script
# here, before the build below makes the library).
find_lib() { { ls -t "$target"/release/build/paho-mqtt-sys-*/out/lib/libpaho-mqtt3as.a 2>/dev/null || true; } | head -n 1; }
paho_lib=$(find_lib)
if [ -z "$paho_lib" ]; then
  CARGO_TARGET_DIR="$target" cargo build -q --release -p oc2mqtt-bench --manifest-path "$root/Cargo.toml" >&2
  paho_lib=$(find_lib)
fi
if [ -z "$paho_lib" ]; then
  echo "no libpaho-mqtt3as.a under $target/release/build/paho-mqtt-sys-*/out/lib" >&2
  exit 1
fi
paho_out="${paho_lib%/lib/libpaho-mqtt3as.a}"
bin="$out/paho_pingpong"
if [ ! -x "$bin" ] || [ "$here/paho_pingpong.c" -nt "$bin" ] || [ "$paho_lib" -nt "$bin" ]; then
  cc -std=c11 -O2 -Wall -Wextra -Werror -I"$paho_out/include" "$here/paho_pingpong.c" -o "$bin" \
    "$paho_lib" -lssl -lcrypto -lpthread
fi
echo "$bin"
