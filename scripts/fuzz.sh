#!/usr/bin/env bash
# Builds the libFuzzer target for the capture reader and walker with
# `swiftc -sanitize=fuzzer,address` and runs it for SECONDS (default 600),
# starting from the committed capture fixtures. A crash is written to
# fuzz-artifacts/; turn it into a regression fixture under
# fixtures/fuzz-regressions/ (the tests read every file there).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
build=.build-fuzz
mkdir -p "$build/c" fuzz-artifacts "$build/corpus"
cp fixtures/captures/*.capture "$build/corpus/" 2>/dev/null || true
cp fixtures/fuzz-regressions/* "$build/corpus/" 2>/dev/null || true

flags=(-O -sanitize=fuzzer,address -parse-as-library -g
       -Xcc "-fmodule-map-file=Sources/CWasmUnwindABI/include/module.modulemap" -I Sources/CWasmUnwindABI/include
       -I "$build")
for source in Sources/CWasmUnwindABI/*.c; do
  clang -O1 -g -fsanitize=fuzzer-no-link,address -I Sources/CWasmUnwindABI/include -c "$source" \
    -o "$build/c/$(basename "$source" .c).o"
done
swiftc "${flags[@]}" -module-name WasmUnwind -emit-module -emit-module-path "$build/WasmUnwind.swiftmodule" \
  -c Sources/WasmUnwind/*.swift -wmo -o "$build/WasmUnwind.o"
swiftc "${flags[@]}" -module-name StackCapture -emit-module -emit-module-path "$build/StackCapture.swiftmodule" \
  -c Sources/StackCapture/*.swift -wmo -o "$build/StackCapture.o"
# (ld.gold warns about every ASan check symbol it cannot export; harmless.)
swiftc "${flags[@]}" -module-name CaptureFuzz Fuzz/CaptureFuzz.swift \
  "$build/WasmUnwind.o" "$build/StackCapture.o" "$build"/c/*.o -o "$build/capture-fuzz" 2>&1 \
  | grep -v "Cannot export local symbol" || true
test -x "$build/capture-fuzz"
echo "fuzzing the capture reader and walker for $seconds seconds"
"$build/capture-fuzz" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
  -artifact_prefix=fuzz-artifacts/ -print_final_stats=1 "$build/corpus" 2>&1 | tail -25
