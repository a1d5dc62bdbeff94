#!/usr/bin/env bash
# Builds the libFuzzer targets with `swiftc -sanitize=fuzzer,address` and
# runs each for a fifth of SECONDS (default 600):
#
#   capture-fuzz  every reader of a capture (the parser, the walker, roots,
#                 hybrid frames, libunwind's offline verification, text and
#                 JSON), from the committed capture fixtures;
#   core-fuzz     every reader of a crashed process: ELF core files, the
#                 executable's headers and symbol tables, and recordings of
#                 the memory the post-mortem reader read (descriptor, lists,
#                 activation records, images, stack), from a real core of
#                 fixtures/crash/nested-crash.wat made here;
#   dwarf-fuzz    the DWARF reader (source lines): wasm modules with debug
#                 sections, from the C fixtures built with -g (DWARF 4, 5);
#   coredump-fuzz the wasm coredump reader and the module names read beside
#                 it, and their text and JSON, from coredumps written here;
#   service-fuzz  what the backtrace service reads of an upload (a capture,
#                 a coredump or the JSON of a trap report) and groups, from
#                 all of those.
#
# A crash is written to fuzz-artifacts/; turn it into a regression fixture
# under fixtures/fuzz-regressions/ (the tests read every file there).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
build=.build-fuzz
rm -rf "$build/c"  # objects of C files that no longer exist must not be linked
mkdir -p "$build/c" fuzz-artifacts "$build/corpus" "$build/core-corpus" "$build/dwarf-corpus" "$build/coredump-corpus" "$build/service-corpus"
cp fixtures/captures/*.capture "$build/corpus/" 2>/dev/null || true
cp fixtures/fuzz-regressions/*.capture "$build/corpus/" 2>/dev/null || true

# Module maps for the two C targets, as SwiftPM would generate them.
cat > "$build/module.modulemap" <<MAP
module CUnwindShim { header "$PWD/Sources/CUnwindShim/include/unwind_shim.h" export * }
MAP
cat > "$build/runtime.modulemap" <<MAP
module CWasmRuntime { header "$PWD/Sources/CWasmRuntime/include/wasm_trap_handler.h" header "$PWD/Sources/CWasmRuntime/include/wasm_jit_abi.h" export * }
MAP
flags=(-O -sanitize=fuzzer,address -parse-as-library -g
       -Xcc "-fmodule-map-file=Sources/CWasmUnwindABI/include/module.modulemap" -I Sources/CWasmUnwindABI/include
       -Xcc "-fmodule-map-file=$build/module.modulemap" -I Sources/CUnwindShim/include
       -Xcc "-fmodule-map-file=$build/runtime.modulemap" -I Sources/CWasmRuntime/include
       -Xcc "-fmodule-map-file=Sources/CWasmTools/include/module.modulemap" -I Sources/CWasmTools/include
       -I "$build")
for source in Sources/CWasmUnwindABI/*.c; do
  clang -O1 -g -fsanitize=fuzzer-no-link,address -I Sources/CWasmUnwindABI/include -c "$source" \
    -o "$build/c/$(basename "$source" .c).o"
done
for source in Sources/CWasmRuntime/*.c; do
  clang -O1 -g -fsanitize=fuzzer-no-link,address -I Sources/CWasmRuntime/include -I Sources/CWasmUnwindABI/include -c "$source" \
    -o "$build/c/runtime-$(basename "$source" .c).o"
done
for source in Sources/CWasmTools/*.c; do
  clang -O1 -g -fsanitize=fuzzer-no-link,address -I Sources/CWasmTools/include -I Sources/CWasmUnwindABI/include -c "$source" \
    -o "$build/c/tools-$(basename "$source" .c).o"
done
for source in Sources/CUnwindShim/*.c; do
  clang -O1 -g -fsanitize=fuzzer-no-link,address -I Sources/CUnwindShim/include -I Sources/CWasmUnwindABI/include \
    -I Sources/CWasmRuntime/include \
    $(pkg-config --cflags libunwind-generic) -c "$source" -o "$build/c/shim-$(basename "$source" .c).o"
done
module() {  # name, sources...
  local name=$1; shift
  swiftc "${flags[@]}" -module-name "$name" -emit-module -emit-module-path "$build/$name.swiftmodule" \
    -c "$@" -wmo -o "$build/$name.o"
}
module WasmUnwind $(find Sources/WasmUnwind -name '*.swift' | sort)
module WasmDWARF $(find Sources/WasmDWARF -name '*.swift' | sort)
module WasmCoredumpFormat $(find Sources/WasmCoredumpFormat -name '*.swift' | sort)
module UnwindReports $(find Sources/UnwindReports -name '*.swift' | sort)
module StackCapture $(find Sources/StackCapture -name '*.swift' | sort)
module UnwindOracle $(find Sources/UnwindOracle -name '*.swift' | sort)
# (ld.gold warns about every ASan check symbol it cannot export; harmless.)
link() {  # target name, source
  rm -f "$build/$3"  # a failed build must not leave an old fuzzer to run
  swiftc "${flags[@]}" -module-name "$1" "$2" \
    "$build/WasmUnwind.o" "$build/WasmDWARF.o" "$build/WasmCoredumpFormat.o" "$build/UnwindReports.o" "$build/StackCapture.o" "$build/UnwindOracle.o" "$build"/c/*.o \
    $(pkg-config --libs libunwind-generic) -lunwind-ptrace -llzma -o "$build/$3" 2>&1 | grep -v "Cannot export local symbol" || true
  test -x "$build/$3"
}
link CaptureFuzz Fuzz/CaptureFuzz.swift capture-fuzz
link CoreFuzz Fuzz/CoreFuzz.swift core-fuzz
link CoredumpFuzz Fuzz/CoredumpFuzz.swift coredump-fuzz
rm -f "$build/service-fuzz"
swiftc "${flags[@]}" -module-name ServiceFuzz Fuzz/ServiceFuzz.swift Sources/BacktraceService/CrashEvent.swift \
  Sources/BacktraceService/Grouping.swift \
  "$build/WasmUnwind.o" "$build/WasmDWARF.o" "$build/WasmCoredumpFormat.o" "$build/UnwindReports.o" "$build/StackCapture.o" "$build/UnwindOracle.o" "$build"/c/*.o \
  $(pkg-config --libs libunwind-generic) -lunwind-ptrace -llzma -o "$build/service-fuzz" 2>&1 | grep -v "Cannot export local symbol" || true
test -x "$build/service-fuzz"
rm -f "$build/dwarf-fuzz"
swiftc "${flags[@]}" -module-name DWARFFuzz Fuzz/DWARFFuzz.swift "$build/WasmDWARF.o" -o "$build/dwarf-fuzz" 2>&1 \
  | grep -v "Cannot export local symbol" || true
test -x "$build/dwarf-fuzz"
scripts/build-c-fixtures.sh "$build/c-fixtures" >/dev/null
cp "$build"/c-fixtures/debug/*.wasm "$build/dwarf-corpus/"
cp fixtures/fuzz-regressions/*.wasm "$build/dwarf-corpus/" 2>/dev/null || true

# Seeds for core-fuzz, each prefixed with its mode byte: a real core of a
# crash under two activations (its headers and notes, which is where the
# ELF reader works), a small executable, and the recording of what the
# post-mortem reader read of that core.
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
swift build --package-path Tools --product wasm-unwind >/dev/null
cli=$(swift build --package-path Tools --show-bin-path)/wasm-unwind
(cd "$seeds" && ulimit -c unlimited && "$cli" run "$OLDPWD/fixtures/crash/nested-crash.wat" --invoke main >/dev/null 2>&1) 2>/dev/null || true
if [ -f "$seeds/core" ]; then
  "$cli" dump "$seeds/core" --exe "$cli" --record-reads "$seeds/nested.recording" >/dev/null
  { printf '\x02'; cat "$seeds/nested.recording"; } > "$build/core-corpus/nested.recording"
  notes_end=$(python3 -c "
import struct, sys
data = open('$seeds/core', 'rb').read()
phoff, = struct.unpack_from('<Q', data, 32); phnum, = struct.unpack_from('<H', data, 56)
end = phoff + 56 * phnum
for i in range(phnum):
    kind, _, offset, _, _, size = struct.unpack_from('<IIQQQQ', data, phoff + 56 * i)
    if kind == 4: end = max(end, offset + size)
print(end)")
  { printf '\x00'; head -c "$notes_end" "$seeds/core"; } > "$build/core-corpus/core-headers"
else
  echo "fuzz: no core file here (core_pattern: $(cat /proc/sys/kernel/core_pattern)); core-fuzz starts without a core"
fi
printf 'unsigned long wasm_unwind_debug_descriptor[7];\nint main(void) { return 0; }\n' > "$seeds/program.c"
cc -Wl,--build-id -Os -s -o "$seeds/program" "$seeds/program.c" || cc -o "$seeds/program" "$seeds/program.c"
cc -Wl,--build-id -Os -o "$seeds/program-symbols" "$seeds/program.c"
for program in program program-symbols; do { printf '\x01'; cat "$seeds/$program"; } > "$build/core-corpus/$program"; done
for regression in fixtures/fuzz-regressions/*.recording; do
  [ -f "$regression" ] && { printf '\x02'; cat "$regression"; } > "$build/core-corpus/$(basename "$regression")"
done

# Seeds for coredump-fuzz: coredumps of traps at several depths, with
# locals of every kind, and the modules they name; and for capture-fuzz a
# capture with a FRAME_LAYOUT section (the committed ones predate it).
"$cli" run fixtures/programs/average.wat --invoke report 7 --coredump-on-trap "$build/coredump-corpus/average.core" \
  --capture "$build/corpus/average-frame-layout.capture" >/dev/null 2>&1 || true
"$cli" run fixtures/programs/factorial.wat --invoke fac --fuel 60 10 --coredump-on-trap "$build/coredump-corpus/factorial.core" >/dev/null 2>&1 || true
python3 - "$build/coredump-corpus" <<'PY'
import subprocess, sys
# The modules, as binaries: ModuleSymbols reads them.
for name in ["average", "factorial"]:
    out = subprocess.run([".venv/bin/wasm-tools", "parse", f"fixtures/programs/{name}.wat", "-o", f"{sys.argv[1]}/{name}.wasm"])
PY
cp fixtures/fuzz-regressions/*.core "$build/coredump-corpus/" 2>/dev/null || true

# Seeds for service-fuzz: every kind of upload, and trap reports as JSON
# (one with source symbols).
cp "$build"/corpus/*.capture "$build"/coredump-corpus/*.core "$build/service-corpus/" 2>/dev/null || true
"$cli" run fixtures/traps/traps.wat --invoke outer --format json > "$build/service-corpus/traps.json" 2>/dev/null || true
"$cli" run "$build/c-fixtures/debug/$(ls "$build/c-fixtures/debug" | grep '\.wasm$' | head -1)" --backtrace-details --format json \
  > "$build/service-corpus/c.json" 2>/dev/null || true

third=$(( seconds / 5 ))
echo "fuzzing every capture reader for $third seconds"
"$build/capture-fuzz" -max_total_time="$third" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
  -artifact_prefix=fuzz-artifacts/capture- -print_final_stats=1 "$build/corpus" 2>&1 | tail -12
echo "fuzzing every reader of a crashed process for $third seconds"
"$build/core-fuzz" -max_total_time="$third" -max_len=262144 -rss_limit_mb=2048 -timeout=10 \
  -artifact_prefix=fuzz-artifacts/core- -print_final_stats=1 "$build/core-corpus" 2>&1 | tail -12
echo "fuzzing the DWARF reader for $third seconds"
"$build/dwarf-fuzz" -max_total_time="$third" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
  -artifact_prefix=fuzz-artifacts/dwarf- -print_final_stats=1 "$build/dwarf-corpus" 2>&1 | tail -12
echo "fuzzing the wasm coredump reader for $third seconds"
"$build/coredump-fuzz" -max_total_time="$third" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
  -artifact_prefix=fuzz-artifacts/coredump- -print_final_stats=1 "$build/coredump-corpus" 2>&1 | tail -12
echo "fuzzing the service's upload reader for $(( seconds - 4 * third )) seconds"
"$build/service-fuzz" -max_total_time="$(( seconds - 4 * third ))" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
  -artifact_prefix=fuzz-artifacts/service- -print_final_stats=1 "$build/service-corpus" 2>&1 | tail -12
