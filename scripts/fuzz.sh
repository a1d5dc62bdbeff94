#!/usr/bin/env bash
# Builds the libFuzzer target over every reader of a capture (the parser,
# the walker, roots, hybrid frames, libunwind's offline verification, text
# and JSON) with `swiftc -sanitize=fuzzer,address`, and runs it for SECONDS
# (default 600), starting from the committed capture fixtures. A crash is
# written to fuzz-artifacts/; turn it into a regression fixture under
# fixtures/fuzz-regressions/ (the tests read every file there).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
build=.build-fuzz
mkdir -p "$build/c" fuzz-artifacts "$build/corpus"
cp fixtures/captures/*.capture "$build/corpus/" 2>/dev/null || true
cp fixtures/fuzz-regressions/*.capture "$build/corpus/" 2>/dev/null || true

# Module maps for the two C targets, as SwiftPM would generate them.
cat > "$build/module.modulemap" <<MAP
module CUnwindShim { header "$PWD/Sources/CUnwindShim/include/unwind_shim.h" export * }
MAP
flags=(-O -sanitize=fuzzer,address -parse-as-library -g
       -Xcc "-fmodule-map-file=Sources/CWasmUnwindABI/include/module.modulemap" -I Sources/CWasmUnwindABI/include
       -Xcc "-fmodule-map-file=$build/module.modulemap" -I Sources/CUnwindShim/include
       -I "$build")
for source in Sources/CWasmUnwindABI/*.c; do
  clang -O1 -g -fsanitize=fuzzer-no-link,address -I Sources/CWasmUnwindABI/include -c "$source" \
    -o "$build/c/$(basename "$source" .c).o"
done
for source in Sources/CUnwindShim/*.c; do
  clang -O1 -g -fsanitize=fuzzer-no-link,address -I Sources/CUnwindShim/include -I Sources/CWasmUnwindABI/include \
    $(pkg-config --cflags libunwind-generic) -c "$source" -o "$build/c/shim-$(basename "$source" .c).o"
done
module() {  # name, sources...
  local name=$1; shift
  swiftc "${flags[@]}" -module-name "$name" -emit-module -emit-module-path "$build/$name.swiftmodule" \
    -c "$@" -wmo -o "$build/$name.o"
}
module WasmUnwind Sources/WasmUnwind/*.swift
module StackCapture Sources/StackCapture/*.swift
module UnwindOracle Sources/UnwindOracle/*.swift
# (ld.gold warns about every ASan check symbol it cannot export; harmless.)
swiftc "${flags[@]}" -module-name CaptureFuzz Fuzz/CaptureFuzz.swift \
  "$build/WasmUnwind.o" "$build/StackCapture.o" "$build/UnwindOracle.o" "$build"/c/*.o \
  $(pkg-config --libs libunwind-generic) -o "$build/capture-fuzz" 2>&1 \
  | grep -v "Cannot export local symbol" || true
test -x "$build/capture-fuzz"
echo "fuzzing every capture reader for $seconds seconds"
"$build/capture-fuzz" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
  -artifact_prefix=fuzz-artifacts/ -print_final_stats=1 "$build/corpus" 2>&1 | tail -25
