#!/usr/bin/env bash
# Regenerates the committed capture fixtures and their golden dumps from the
# committed WAT sources. Captures hold this machine's addresses, so they are
# made once and committed; the tests dump them and compare with the goldens,
# and re-capture from the WAT to check names and offsets stay the same.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=Tools/.build/debug/wasm-unwind
out=fixtures/captures
swift build --package-path Tools --product wasm-unwind >/dev/null
rm -f $out/*.capture $out/*.txt $out/*.json $out/*.capture.*

capture() {  # name, then the run arguments
  local name=$1; shift
  $bin run "$@" --capture "$out/$name.capture" >/dev/null 2>&1 || true
  rm -f "$out/$name.capture".[0-9]*
}
capture single     fixtures/programs/factorial.wat --invoke fac 3 --capture-backtraces
capture nested     fixtures/demo/nested.wat --invoke main 7 --capture-backtraces
capture trap       fixtures/traps/traps.wat --invoke outer
capture overflow   fixtures/traps/traps.wat --invoke recurse 0 --max-wasm-stack 8192
capture refs       fixtures/captures/refs.wat --invoke outer 1 --capture-backtraces
capture hybrid     fixtures/programs/hybrid.wat --invoke outer --capture-backtraces
capture throw      fixtures/programs/exceptions.wat --invoke run 5 --capture-throws
# Source lines: a C program built with -g (paths relative to the checkout),
# captured with backtrace details on, so the capture carries its DWARF.
lines_wasm=$(mktemp -d)/crash.wasm
"$(dirname "$(command -v swift)")/clang" --target=wasm32 -g -O1 -nostdlib -Wl,--no-entry -Wl,--build-id \
  -fdebug-prefix-map="$PWD"=. -o "$lines_wasm" fixtures/c-lines/crash.c
capture lines      "$lines_wasm" --invoke run 9 --backtrace-details

for file in $out/*.capture; do
  name=${file%.capture}
  $bin dump "$file" --roots > "$name.txt"
  $bin dump "$file" --roots --format json > "$name.json"
done
$bin dump $out/hybrid.capture --hybrid > $out/hybrid.hybrid.txt
ls -l $out

# Wasm coredumps (tool-conventions Coredump.md) written at a trap, and their
# golden dumps: one named by the name section with every kind of value, one
# from C with DWARF (source lines; locals and operands named by variables).
cores=fixtures/coredumps
rm -f $cores/*.core $cores/*.txt $cores/*.json
"$(dirname "$(command -v swift)")/clang" --target=wasm32 -g -O1 -nostdlib -Wl,--no-entry -Wl,--build-id \
  -fdebug-prefix-map="$PWD"=. -o $cores/divide.wasm fixtures/c-lines/divide.c
$bin run $cores/values.wat --invoke run 5 --coredump-on-trap $cores/values.core >/dev/null 2>&1 || true
$bin run $cores/divide.wasm --invoke run 4 --coredump-on-trap $cores/divide.core >/dev/null 2>&1 || true
for file in $cores/*.core; do
  $bin dump "$file" > "${file%.core}.txt"
  $bin dump "$file" --format json > "${file%.core}.json"
done
ls -l $cores
