#!/usr/bin/env bash
# Instruction counts per capture under callgrind: repeatable on a noisy
# machine, unlike timings. Runs each method N times (default 20) at the
# innermost host call of a 1,000-frame stack and prints the inclusive
# instructions per call of each probe function. Instructions only: the
# system calls libunwind's unw_step makes to validate addresses are not
# counted, so the wall-clock table of `make bench` is the one to quote for it.
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=${1:-20}
swift build -c release --product wasm-unwind-bench >/dev/null
out=$(mktemp)
binary=$(mktemp)
trap 'rm -f "$out" "$binary"' EXIT
# valgrind 3.19 cannot read the DWARF 5 the Swift toolchain emits: give it a
# copy without debug info (the symbol table stays).
objcopy --strip-debug .build/release/wasm-unwind-bench "$binary"
chmod +x "$binary"
valgrind --tool=callgrind --callgrind-out-file="$out" "$binary" --callgrind "$iterations" >/dev/null 2>&1
describe() {
    case "$1" in
        probeOursWalk) echo "ours: live walk (unchecked reader)" ;;
        probeFloor) echo "C floor: frame-pointer loop" ;;
        probeUnwBacktrace) echo "libunwind unw_backtrace" ;;
        probeUnwStep) echo "libunwind unw_step loop" ;;
        probeSymbolicate) echo "ours: walk + symbolicate" ;;
        probeRoots) echo "ours: GC roots (1 per frame)" ;;
        probeCaptureWrite) echo "capture write (serialise)" ;;
        probeDump) echo "dump: parse + walk" ;;
        probeHostCallsTrampoline) echo "host call, exit trampoline" ;;
        probeHostCallsInline) echo "host call, inline exit recording" ;;
    esac
}
echo "instructions under callgrind, $iterations probes each; an item is a frame of a 1,000-frame stack (1 activation) or one of 1,000 host calls:"
printf "  %-36s %12s %10s\n" method "per probe" "per item"
callgrind_annotate --inclusive=yes --threshold=100 "$out" 2>/dev/null \
  | grep -oE '^ *[0-9,]+ .*\$s17wasm_unwind_bench[0-9]+probe[A-Za-z]+' \
  | sed -E 's/^ *([0-9,]+) .*\$s17wasm_unwind_bench([0-9]+)(probe[A-Za-z]+)$/\1 \2 \3/' \
  | while read -r count length mangled; do
    name=${mangled:0:length}   # a Swift mangled identifier is its length, then its characters
    total=${count//,/}
    printf '  %-36s %12d %10d\n' "$(describe "$name")" $((total / iterations)) $((total / iterations / 1000))
  done
