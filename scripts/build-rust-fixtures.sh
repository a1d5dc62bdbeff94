#!/usr/bin/env bash
# Compiles the Rust fixtures (fixtures/rust/*.rs) to wasm with Debian's
# rustc (1.63, `libstd-rust-dev-wasm32`; `make toolchains` installs it) for
# wasm32-unknown-unknown, with std and -g, at opt-levels 0, 1 and 2:
# OUTPUT/NAME-O0.wasm ... A panic aborts through std's panic machinery into
# `unreachable`; the modules import nothing.
#
#   scripts/build-rust-fixtures.sh [OUTPUT_DIRECTORY]   (default .build/rust-fixtures)
#
# Debian's rustc is /usr/bin/rustc: another rustc on PATH may have no wasm
# target.
set -euo pipefail
cd "$(dirname "$0")/.."
output=${1:-.build/rust-fixtures}
rustc=${RUSTC:-/usr/bin/rustc}
[ -x "$rustc" ] || { echo "build-rust-fixtures: $rustc not found (make toolchains installs Debian's rustc)" >&2; exit 1; }
[ -d "$("$rustc" --print sysroot)/lib/rustlib/wasm32-unknown-unknown" ] || {
    echo "build-rust-fixtures: $rustc has no wasm32-unknown-unknown std (libstd-rust-dev-wasm32)" >&2; exit 1; }
mkdir -p "$output"
for source in fixtures/rust/*.rs; do
    name=$(basename "${source%.rs}")
    for level in 0 1 2; do
        "$rustc" --target wasm32-unknown-unknown --crate-type cdylib --edition 2021 -g -C opt-level=$level \
            -o "$output/$name-O$level.wasm" "$source"
    done
done
ls "$output"/*.wasm
