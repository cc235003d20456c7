#!/usr/bin/env bash
# A Status or StatusOr that is dropped does not compile: the same snippet compiles when it uses
# the value and fails, naming nodiscard, when it drops it.
set -uo pipefail
root=$1
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
compile() {
  printf '#include "flovyn/core/status.h"\nflovyn::Status F();\nflovyn::StatusOr<int> G();\n%s\n' "$1" >"$dir/t.cc"
  c++ -std=c++20 -I"$root/lib" -Werror -fsyntax-only "$dir/t.cc" 2>&1
}
out=$(compile 'bool H() { return F().ok() && G().ok(); }') || { echo "using the values should compile: $out"; exit 1; }
for dropped in 'void H() { F(); }' 'void H() { G(); }'; do
  if out=$(compile "$dropped"); then echo "dropping a status compiled: $dropped"; exit 1; fi
  grep -q nodiscard <<<"$out" || { echo "refused for another reason: $out"; exit 1; }
done
echo "nodiscard: a dropped Status or StatusOr does not compile"
