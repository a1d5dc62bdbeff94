// The registers of a signal's interrupted context, per architecture: one
// file under arch/ each (<arch>_context.h), picked here. Static inline and
// async-signal-safe. C only (it needs ucontext_t with _GNU_SOURCE): Swift
// reads a context through `wu_signal_context_frame` (`TrapRegisters(signalContext:)`).
#ifndef WASM_SIGNAL_CONTEXT_H
#define WASM_SIGNAL_CONTEXT_H

#include <signal.h>
#include <stdint.h>
#include <ucontext.h>

#include "wasm_unwind_arch.h"

#if defined(__x86_64__)
#include "arch/x86_64_context.h"
#else
#error "no signal-context accessors for this target: add include/arch/<arch>_context.h"
#endif

#endif
