#!/usr/bin/env bash
# Compiles the WASI fixtures: fixtures/wasi/c/*.c with the Swift
# toolchain's clang against Debian's wasi-libc (sysroot /usr, clang's
# wasm32 builtins from libclang-rt-14-dev-wasm32), and fixtures/wasi/rust/*.rs
# with Debian's rustc for wasm32-wasi — both with -g at -O1, as
# OUTPUT/NAME.wasm. `make toolchains` installs the packages.
#
#   scripts/build-wasi-fixtures.sh [OUTPUT_DIRECTORY]   (default .build/wasi-fixtures)
set -euo pipefail
cd "$(dirname "$0")/.."
output=${1:-.build/wasi-fixtures}
clang=$(dirname "$(command -v swift)")/clang
builtins=/usr/lib/llvm-14/lib/clang/14.0.6/lib/wasi/libclang_rt.builtins-wasm32.a
rustc=${RUSTC:-/usr/bin/rustc}
for need in "$clang" "$builtins" /usr/include/wasm32-wasi "$rustc"; do
    [ -e "$need" ] || { echo "build-wasi-fixtures: $need not found (make toolchains installs wasi-libc, libclang-rt-14-dev-wasm32 and rustc)" >&2; exit 1; }
done
mkdir -p "$output"
for source in fixtures/wasi/c/*.c; do
    "$clang" --target=wasm32-wasi --sysroot=/usr -g -O1 -Wall -Werror -nodefaultlibs \
        -o "$output/$(basename "${source%.c}").wasm" "$source" -lc "$builtins"
done
for source in fixtures/wasi/rust/*.rs; do
    "$rustc" --target wasm32-wasi --edition 2021 -g -C opt-level=1 -o "$output/$(basename "${source%.rs}").wasm" "$source"
done
ls "$output"/*.wasm
