// x86_64 (System V): DWARF register numbers and the capture code.
#ifndef WASM_UNWIND_ARCH_X86_64_H
#define WASM_UNWIND_ARCH_X86_64_H

/// DWARF numbers: rip (the return-address column), rbp, rsp.
#define WU_ARCH_DWARF_PC 16
#define WU_ARCH_DWARF_FP 6
#define WU_ARCH_DWARF_SP 7
/// General registers a signal context gives, in DWARF order (rax ... r15, rip).
#define WU_ARCH_DWARF_REGISTER_COUNT 17
/// The capture format's ARCH code (wasm_capture_format.h).
#define WU_ARCH_CAPTURE_CODE 1

#endif
