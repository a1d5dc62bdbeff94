// AArch64 (AAPCS64): DWARF register numbers and the capture code. The
// walker and the capture format describe AArch64 frames; the reference JIT
// and its signal handlers are x86_64 only (CWasmRuntime/arch/ has no
// AArch64 signal-context file yet).
#ifndef WASM_UNWIND_ARCH_AARCH64_H
#define WASM_UNWIND_ARCH_AARCH64_H

/// DWARF numbers: the pc (32), x29 (the frame pointer), sp (31).
#define WU_ARCH_DWARF_PC 32
#define WU_ARCH_DWARF_FP 29
#define WU_ARCH_DWARF_SP 31
/// x0 ... x30, sp, pc.
#define WU_ARCH_DWARF_REGISTER_COUNT 33
/// The capture format's ARCH code (wasm_capture_format.h).
#define WU_ARCH_CAPTURE_CODE 2

#endif
