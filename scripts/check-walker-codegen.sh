#!/usr/bin/env bash
# Checks that the walker's live fast path compiles to a specialised loop: in
# a release build, `Backtrace.capture(limitsAddress:trap:into:walkLimits:)` may call only
# `wu_current_activation` (once, to find the newest activation) and the
# specialised `FramePointerWalker.next()` (once, to see whether a full buffer
# ended the walk). Any call to the allocator, the Swift runtime or a witness
# table, or an unspecialised walker, fails the check.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --target WasmUnwind >/dev/null || { swift build -c release --target WasmUnwind; exit 1; }
object=.build/release/WasmUnwind.build/Backtrace.swift.o
listing=$(objdump -dr --no-show-raw-insn -M intel "$object" \
  | awk '/^[0-9a-f]+ </ {p = ($0 ~ /7capture13limitsAddress4trap4into/)} p' \
  | swift demangle)
[ -n "$listing" ] || { echo "check-walker-codegen: capture(into:) not found in $object" >&2; exit 1; }
calls=$(echo "$listing" | grep -E 'R_X86_64_(PLT32|GOTPCREL|GOTPCRELX|REX_GOTPCRELX)' | sed -E 's/.*R_X86_64_[A-Z0-9_]+\s+//; s/-0x4$//' | sort -u)
# Allowed: the activation head, the specialised next(), and the compiler's
# own outlined copies of capture(limitsAddress:...) itself.
unexpected=$(echo "$calls" | grep -vE '^wu_current_activation$|^generic specialization <WasmUnwind.X86_64, WasmUnwind.UncheckedMemoryReader, WasmUnwind.LiveActivations> of WasmUnwind.FramePointerWalker.next\(\) -> WasmUnwind.Frame\?$|specialization <.*> of static WasmUnwind.Backtrace.capture\(limitsAddress: ' || true)
indirect=$(echo "$listing" | grep -E '\scall\s+(QWORD PTR|r[a-z0-9]+$)' || true)
if [ -n "$unexpected" ] || [ -n "$indirect" ]; then
  echo "check-walker-codegen: the live walk makes calls it must not:" >&2
  echo "$unexpected" "$indirect" >&2
  exit 1
fi
echo "check-walker-codegen: capture(into:) calls only:"
echo "$calls" | sed 's/^/  /'
