#!/usr/bin/env bash
# The engine's ids are distinct types: a call with each id where it belongs compiles; the same
# call with two ids swapped, or with bare text, does not.
set -uo pipefail
root=$1
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
compile() {
  printf '#include "engine/ids.h"\nusing namespace flovyn::engine;\nvoid Complete(const TenantId&, const WorkerId&, const TaskId&);\nvoid Cancel(const TenantId&, const ExecutionId&);\n%s\n' "$1" >"$dir/t.cc"
  c++ -std=c++20 -I"$root/server/src" -Werror -fsyntax-only "$dir/t.cc" 2>&1
}
good='void H(TenantId t, WorkerId w, TaskId k, ExecutionId e) { Complete(t, w, k); Cancel(t, e); std::string s = e; (void)s; }'
out=$(compile "$good") || { echo "ids where they belong should compile: $out"; exit 1; }
for bad in 'void H(TenantId t, WorkerId w, TaskId k) { Complete(t, k, w); }' \
           'void H(TenantId t, TaskId k) { Cancel(t, k); }' \
           'void H(TenantId t, std::string e) { Cancel(t, e); }' \
           'void H(ExecutionId e) { Cancel(e, e); }'; do
  if out=$(compile "$bad"); then echo "a misplaced id compiled: $bad"; exit 1; fi
  grep -q "cannot convert\|no matching function\|could not convert\|invalid initialization of reference" <<<"$out" || { echo "refused for another reason: $out"; exit 1; }
done
echo "ids: swapped or bare ids do not compile"
