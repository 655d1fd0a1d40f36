#!/usr/bin/env bash
# The footprint of an installed liboc2mqtt (make test-install): the shared
# and static libraries carry no debug information, stay within their size
# bounds, and still export the whole API. Prints the sizes, installed and
# as built, for the record.
#
# Usage: tests/installed_sizes.sh PREFIX BUILT_LIBDIR
set -euo pipefail
prefix=$1
built=$2
so=$(readlink -f "$prefix/lib/liboc2mqtt.so")
a=$prefix/lib/liboc2mqtt.a
# Bounds with room to grow; as built (debug info, release profile) they are
# several times larger.
max_so=$((6 * 1024 * 1024))
max_a=$((40 * 1024 * 1024))
fail=0
size() { stat -c %s "$1"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

printf 'installed: %-28s %10s (built: %s)\n' "$(basename "$so")" "$(mib "$(size "$so")")" "$(mib "$(size "$built/liboc2mqtt.so")")"
printf 'installed: %-28s %10s (built: %s)\n' "liboc2mqtt.a" "$(mib "$(size "$a")")" "$(mib "$(size "$built/liboc2mqtt.a")")"
if [ -e "$prefix/lib/.debug/$(basename "$so").debug" ]; then
  printf 'installed: %-28s %10s (separate debug info, SPLIT_DEBUG=1)\n' ".debug/$(basename "$so").debug" "$(mib "$(size "$prefix/lib/.debug/$(basename "$so").debug")")"
fi

if [ "$(size "$so")" -gt "$max_so" ]; then echo "FAIL: $so is larger than $(mib $max_so)"; fail=1; fi
if [ "$(size "$a")" -gt "$max_a" ]; then echo "FAIL: $a is larger than $(mib $max_a)"; fail=1; fi
if readelf -S --wide "$so" | grep -qE '\.debug_|\.symtab'; then
  echo "FAIL: $so is not stripped"; fail=1
fi
if readelf -S --wide "$a" 2>/dev/null | grep -q '\.debug_'; then
  echo "FAIL: $a still has debug sections"; fail=1
fi
# Stripping keeps what programs link against: every function of the header.
header_fns=$(grep -E '^[a-z_][a-z_0-9 *]*\boc2_[a-z0-9_]+\(' "$prefix/include/oc2mqtt.h" | grep -oE 'oc2_[a-z0-9_]+\(' | tr -d '(' | sort -u)
exported=$(nm -D --defined-only "$so" | awk '{ print $3 }' | sort -u)
missing=$(comm -23 <(echo "$header_fns") <(echo "$exported"))
if [ -n "$missing" ]; then echo "FAIL: not exported by the stripped library: $missing"; fail=1; fi
in_archive=$(nm --defined-only "$a" 2>/dev/null | awk '$2 == "T" { print $3 }' | sort -u)
missing=$(comm -23 <(echo "$header_fns") <(echo "$in_archive"))
if [ -n "$missing" ]; then echo "FAIL: not in the stripped archive: $missing"; fail=1; fi
[ "$fail" = 0 ] && echo "installed sizes: ok ($(echo "$header_fns" | wc -l) functions exported)"
exit "$fail"
