#!/usr/bin/env bash
# Checks that the walker's live fast path compiles to a specialised loop: in
# a release build, `Backtrace.walk(limitsAddress:trap:into:walkLimits:)` may
# call only `wu_current_activation` (once, to find the newest activation) and
# the specialised `FramePointerWalker.next()` (to cross activation boundaries
# and to see whether a full buffer ended the walk). Any call to the
# allocator, the Swift runtime or a witness table, or an unspecialised
# walker, fails the check.
#
# The compiler may emit the specialised next() as a local function without a
# symbol; a call to it then shows as `.text+OFFSET`. Such a callee is checked
# the same way: its own code may call nothing but itself.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --target WasmUnwind >/dev/null || { swift build -c release --target WasmUnwind; exit 1; }
object=.build/release/WasmUnwind.build/Backtrace.swift.o
disassemble() { objdump -dr --no-show-raw-insn -M intel "$@" "$object"; }
listing=$(disassemble | awk '/^[0-9a-f]+ </ {p = ($0 ~ /4walk13limitsAddress4trap4into/)} p' | swift demangle)
[ -n "$listing" ] || { echo "check-walker-codegen: walk(into:) not found in $object" >&2; exit 1; }

relocated_calls() {  # the call targets named by relocations in a listing
  grep -E 'R_X86_64_(PLT32|GOTPCREL|GOTPCRELX|REX_GOTPCRELX)' | sed -E 's/.*R_X86_64_[A-Z0-9_]+\s+//; s/-0x4$//' | sort -u
}
indirect_calls() { grep -E '\scall\s+(QWORD PTR|r[a-z0-9]+$)' || true; }

calls=$(echo "$listing" | relocated_calls)
allowed='^wu_current_activation$|^generic specialization <WasmUnwind.X86_64, WasmUnwind.UncheckedMemoryReader, WasmUnwind.LiveActivations> of WasmUnwind.FramePointerWalker.next\(\) -> WasmUnwind.Frame\?$|specialization <.*> of static WasmUnwind.Backtrace.walk\(limitsAddress: '
unexpected=""
for call in $calls; do
  if [[ "$call" =~ ^\.text\+0x([0-9a-f]+)$ ]]; then
    # A local function: the relocation's addend is the target minus 4.
    start=$(printf '0x%x' $(( 0x${BASH_REMATCH[1]} + 4 )))
    callee=$(disassemble -j .text --start-address="$start" | awk 'NR > 7 && /^[0-9a-f]+ </ {n++} NR > 7 && n < 1')
    # Its own code must end in a ret and call nothing outside itself.
    inner=$(echo "$callee" | relocated_calls | grep -vE "^\.text\+" || true)
    if [ -n "$inner" ] || [ -n "$(echo "$callee" | indirect_calls)" ] || ! echo "$callee" | grep -qE '\sret\s*$'; then
      unexpected+="local function at $start calls: $inner"$'\n'
    fi
    continue
  fi
  echo "$call" | grep -qE "$allowed" || unexpected+="$call"$'\n'
done
indirect=$(echo "$listing" | indirect_calls)
if [ -n "$unexpected" ] || [ -n "$indirect" ]; then
  echo "check-walker-codegen: the live walk makes calls it must not:" >&2
  echo "$unexpected" "$indirect" >&2
  exit 1
fi
echo "check-walker-codegen: walk(into:) calls only:"
echo "$calls" | sed 's/^/  /'
