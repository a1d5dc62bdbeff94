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
mkdir -p "$output"
for cpu in mvp default; do
    cpu_flag=()
    [ "$cpu" = mvp ] && cpu_flag=(-mcpu=mvp)
    for source in fixtures/c/*.c fixtures/c/*.cpp; do
        name=$(basename "${source%.*}")
        object="$output/$name-$cpu.o"
        case "$source" in
        *.cpp) compiler=("$clang++" -fno-exceptions -fno-rtti) ;;
        *) compiler=("$clang") ;;
        esac
        "${compiler[@]}" --target=wasm32 -O2 -nostdlib -ffreestanding -fno-builtin "${cpu_flag[@]}" \
            -Wall -Werror -c "$source" -o "$object"
    done
    for source in fixtures/c/*.c fixtures/c/*.cpp; do
        name=$(basename "${source%.*}")
        [ "$name" = runtime ] && continue
        "$linker" --no-entry --no-demangle -z stack-size=65536 \
            "$output/$name-$cpu.o" "$output/runtime-$cpu.o" -o "$output/$name-$cpu.wasm"
    done
done
# With DWARF (for source lines): clang's default CPU at -O0, -O1 and -O2
# (DWARF 4, clang's default for wasm), and -O1 with DWARF 5, in debug/.
mkdir -p "$output/debug"
for variant in O0 O1 O2 O1-dwarf5; do
    optimization=-${variant%%-*}
    dwarf=-g
    [ "$variant" = O1-dwarf5 ] && dwarf=-gdwarf-5
    for source in fixtures/c/*.c fixtures/c/*.cpp; do
        name=$(basename "${source%.*}")
        case "$source" in
        *.cpp) compiler=("$clang++" -fno-exceptions -fno-rtti) ;;
        *) compiler=("$clang") ;;
        esac
        "${compiler[@]}" --target=wasm32 "$optimization" "$dwarf" -nostdlib -ffreestanding -fno-builtin \
            -Wall -Werror -c "$source" -o "$output/debug/$name-$variant.o"
    done
    for source in fixtures/c/*.c fixtures/c/*.cpp; do
        name=$(basename "${source%.*}")
        [ "$name" = runtime ] && continue
        "$linker" --no-entry --no-demangle -z stack-size=65536 \
            "$output/debug/$name-$variant.o" "$output/debug/runtime-$variant.o" -o "$output/debug/$name-$variant.wasm"
    done
done
ls "$output"/*.wasm "$output"/debug/*.wasm
