#!/usr/bin/env bash
# The README's link step, run as written (the `sh` block after the
# "<!-- link step -->" marker, with $HOME/.local replaced by PREFIX) on the
# README's first program, against an installed liboc2mqtt; and the failure
# the README explains (no rpath, no LD_LIBRARY_PATH) is what happens.
#
# Usage: tests/readme_link.sh README.md PREFIX
set -euo pipefail
readme=$(readlink -f "$1")
prefix=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/oc2-readme-link.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
awk '/^```c$/{on=1;next} /^```$/{if(on)exit} on' "$readme" > "$tmp/app.c"
awk '/<!-- link step -->/{m=1;next} m&&/^```sh$/{on=1;next} on&&/^```$/{exit} on' "$readme" |
  sed "s|\$HOME/.local|$prefix|g" > "$tmp/link.sh"
[ -s "$tmp/app.c" ] && [ -s "$tmp/link.sh" ] || { echo "README: no first program or link step found"; exit 1; }
cd "$tmp"
# Run in a clean environment: nothing else tells the loader where to look.
if ! env -u LD_LIBRARY_PATH HOME="$HOME" PATH="$PATH" bash -euo pipefail link.sh > out.txt 2>&1; then
  echo "README's link step failed:"; cat link.sh; echo "---"; cat out.txt; exit 1
fi
runs=$(grep -c '^action: query$' out.txt || true)
[ "$runs" -ge 3 ] || { echo "README's link step: expected 3 runs printing 'action: query', got $runs"; cat out.txt; exit 1; }
# Without rpath or LD_LIBRARY_PATH the loader cannot find the library, as the README says.
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
cc app.c -o bare $(pkg-config --cflags --libs oc2mqtt)
if env -u LD_LIBRARY_PATH ./bare > bare.txt 2>&1; then
  echo "expected ./bare to fail without rpath or LD_LIBRARY_PATH"; exit 1
fi
grep -q 'liboc2mqtt.so.0: cannot open shared object file' bare.txt || { cat bare.txt; exit 1; }
echo "README link step: ok (rpath, LD_LIBRARY_PATH and static runs; the plain link fails at run time as explained)"
