#!/usr/bin/env bash
# Hand-written binding lines (issue 18's measure): Rust sources, Python, JS,
# the d.ts header and the .pyi of the three bindings, at a git revision
# (default HEAD); tests, examples, build files and generated files
# (index.d.ts, native.js, the C header, src/generated/, and the regions
# between `@generated` and `@end generated` lines that `make generate` writes
# from core's settings tables) left out. Prints one line per binding and the total.
#
#   scripts/binding-lines.sh            # HEAD
#   scripts/binding-lines.sh 72a37f4    # an earlier revision
set -euo pipefail
rev="${1:-HEAD}"
cd "$(dirname "$0")/.."
total=0
for b in python node c; do
  n=0
  while read -r f; do
    n=$((n + $(git show "$rev:$f" | awk '/@end generated/ { skip = 0 } !skip { n++ } /@generated / { skip = 1 } END { print n + 0 }')))
  done < <(git ls-tree -r --name-only "$rev" "bindings-$b" |
    grep -E '(^bindings-[a-z]+/src/.*\.rs|\.py|\.pyi|index\.js|dts-header\.d\.ts)$' |
    grep -vE '/(tests|examples|bench|generated)/|/build\.rs$')
  printf '%-7s %6d\n' "$b" "$n"
  total=$((total + n))
done
printf '%-7s %6d\n' total "$total"
