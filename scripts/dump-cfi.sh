#!/usr/bin/env bash
# Decodes the DWARF CFI the code generator emits for a module, with readelf.
#   scripts/dump-cfi.sh fixtures/programs/factorial.wat
# The CFI lies after the code in the module's mapping; this cuts it out,
# wraps it in an ELF object as .eh_frame at its offset, and decodes it.
set -euo pipefail
module=${1:?usage: scripts/dump-cfi.sh FILE.wat}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bin=${WASM_UNWIND:-Tools/.build/debug/wasm-unwind}
layout=$("$bin" compile "$module" --code-out "$work/code.bin" | head -1)
range=$(echo "$layout" | sed -E 's/.*CFI at (0x[0-9a-f]+)\.\.<(0x[0-9a-f]+).*/\1 \2/')
read -r start end <<<"$range"
dd if="$work/code.bin" of="$work/eh.bin" bs=1 skip=$((start)) count=$((end - start)) 2>/dev/null
objcopy -I binary -O elf64-x86-64 -B i386:x86-64 \
  --rename-section .data=.eh_frame,alloc,load,readonly,data,contents "$work/eh.bin" "$work/eh0.o"
objcopy --change-section-address .eh_frame="$start" "$work/eh0.o" "$work/eh.o"
echo "$layout"
readelf --debug-dump=frames "$work/eh.o" | sed -n '/Contents of the .eh_frame section/,$p'
