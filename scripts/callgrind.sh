#!/usr/bin/env bash
# Instruction counts under callgrind: repeatable on a noisy machine, unlike
# timings. Runs each method N times (default 20) at the innermost host call
# of a 10-frame and of a 1,000-frame stack (one activation), and prints the
# inclusive instructions per call of each probe function, split into a fixed
# cost per capture and a cost per frame. The host-call probes make 1,000
# calls each. Instructions only: the system calls libunwind's unw_step makes
# to validate addresses are not counted, so for it the wall-clock table of
# `make bench` is the one to quote.
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=${1:-20}
swift build --package-path Tools -c release --product wasm-unwind-bench >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# valgrind 3.19 cannot read the DWARF 5 the Swift toolchain emits: give it a
# copy without debug info (the symbol table stays).
objcopy --strip-debug Tools/.build/release/wasm-unwind-bench "$work/bench"
chmod +x "$work/bench"

# Prints "probeName instructions-per-call" for each probe of one run.
counts() {
    valgrind --tool=callgrind --callgrind-out-file="$work/out.$1" "$work/bench" --callgrind "$iterations" --frames "$1" \
        >/dev/null 2>&1
    callgrind_annotate --inclusive=yes --threshold=100 "$work/out.$1" 2>/dev/null \
      | grep -oE '^ *[0-9,]+ .*\$s17wasm_unwind_bench[0-9]+probe[A-Za-z]+' \
      | sed -E 's/^ *([0-9,]+) .*\$s17wasm_unwind_bench([0-9]+)(probe[A-Za-z]+)$/\1 \2 \3/' \
      | while read -r count length mangled; do
        # A Swift mangled identifier is its length, then its characters.
        total=${count//,/}
        echo "${mangled:0:length} $((total / iterations))"
      done | sort
}
counts 10 > "$work/10"
counts 1000 > "$work/1000"

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
        probeTrap) echo "ours: trap + frames symbolicated" ;;
        probeTrapRead) echo "ours: trap + every frame read" ;;
        probeTrapMessage) echo "ours: trap + printed message" ;;
        probeTypedCalls) echo "typed call (TypedFunc), per call" ;;
        probeUntypedCall) echo "untyped call (Func.call([Value]))" ;;
    esac
}
echo "instructions per capture under callgrind ($iterations runs each; one activation):"
printf '  %-36s %12s %12s %10s %10s\n' method "10 frames" "1000 frames" "per frame" fixed
join "$work/10" "$work/1000" | while read -r name small large; do
    case "$name" in probeHostCalls*|probeTypedCalls|probeUntypedCall) continue ;; esac
    per_frame=$(( (large - small) / 990 ))
    printf '  %-36s %12d %12d %10d %10d\n' "$(describe "$name")" "$small" "$large" "$per_frame" $((small - 10 * per_frame))
done
echo "instructions per host call (wasm -> no-op host function on slots -> wasm):"
grep '^probeHostCalls' "$work/1000" | while read -r name count; do
    printf '  %-36s %12d\n' "$(describe "$name")" $((count / 1000))
done
echo "instructions per call from the host into wasm ((i32) -> i32):"
grep -E '^probe(TypedCalls|UntypedCall) ' "$work/1000" | while read -r name count; do
    [ "$name" = probeTypedCalls ] && count=$((count / 1000))
    printf '  %-36s %12d\n' "$(describe "$name")" "$count"
done
