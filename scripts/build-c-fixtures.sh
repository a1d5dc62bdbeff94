#!/usr/bin/env bash
# Compiles the C and C++ fixtures (fixtures/c/*.c, *.cpp) to wasm with the
# Swift toolchain's own clang and wasm-ld: each program twice, for the MVP
# CPU and for clang's default wasm CPU (which adds bulk memory, saturating
# float-to-int, sign extension, multi-value and reference types). The
# linker keeps C++ names mangled in the name section (--no-demangle), as
# Rust and C++ toolchains commonly leave them: backtraces demangle them.
#
#   scripts/build-c-fixtures.sh [OUTPUT_DIRECTORY]   (default .build/c-fixtures)
#
# No libc: -nostdlib, fixtures/c/runtime.c is the runtime. The name section
# stays in (wasm-ld keeps function names unless told to strip them).
set -euo pipefail
cd "$(dirname "$0")/.."
output=${1:-.build/c-fixtures}
toolchain=$(dirname "$(command -v swift)")
clang=$toolchain/clang
linker=$toolchain/wasm-ld
for tool in "$clang" "$linker"; do
    [ -x "$tool" ] || { echo "build-c-fixtures: $tool not found (the Swift toolchain ships it)" >&2; exit 1; }
done
# build DIRECTORY SUFFIX CLANG-FLAGS...: every fixture compiled with the
# flags and linked with the runtime, as DIRECTORY/NAME-SUFFIX.wasm.
build() {
    local directory=$1 suffix=$2
    shift 2
    mkdir -p "$directory"
    for source in fixtures/c/*.c fixtures/c/*.cpp; do
        name=$(basename "${source%.*}")
        case "$source" in
        *.cpp) compiler=("$clang++" -fno-exceptions -fno-rtti) ;;
        *) compiler=("$clang") ;;
        esac
        "${compiler[@]}" --target=wasm32 "$@" -nostdlib -ffreestanding -fno-builtin \
            -Wall -Werror -c "$source" -o "$directory/$name-$suffix.o"
    done
    for source in fixtures/c/*.c fixtures/c/*.cpp; do
        name=$(basename "${source%.*}")
        [ "$name" = runtime ] && continue
        "$linker" --no-entry --no-demangle -z stack-size=65536 \
            "$directory/$name-$suffix.o" "$directory/runtime-$suffix.o" -o "$directory/$name-$suffix.wasm"
    done
}
build "$output" mvp -O2 -mcpu=mvp
build "$output" default -O2
# With DWARF (for source lines): clang's default CPU at -O0, -O1 and -O2
# (DWARF 4, clang's default for wasm), and -O1 with DWARF 5, in debug/.
build "$output/debug" O0 -O0 -g
build "$output/debug" O1 -O1 -g
build "$output/debug" O2 -O2 -g
build "$output/debug" O1-dwarf5 -O1 -gdwarf-5
ls "$output"/*.wasm "$output"/debug/*.wasm
