// What differs per instruction set in the records' consumers that are
// written in C: the DWARF numbers of the registers a capture starts from,
// and the capture format's architecture code. One file per architecture
// under arch/; this one picks the host's. (Swift's per-architecture
// constants are `FrameArchitecture` conformances, one file each.)
#ifndef WASM_UNWIND_ARCH_H
#define WASM_UNWIND_ARCH_H

#if defined(__x86_64__)
#include "arch/x86_64.h"
#elif defined(__aarch64__)
#include "arch/aarch64.h"
#else
#error "WasmUnwind has no architecture description for this target: add include/arch/<arch>.h"
#endif

#endif
