// The registers of a signal's interrupted context, per architecture: one
// file under arch/ each, picked here. Static inline, async-signal-safe.
#ifndef WASM_SIGNAL_CONTEXT_H
#define WASM_SIGNAL_CONTEXT_H

#include <signal.h>
#include <stdint.h>
#include <ucontext.h>

#include "wasm_unwind_arch.h"

#if defined(__x86_64__)
#include "arch/x86_64.h"
#else
#error "the trap handler and sampler have no signal-context accessors for this target: add arch/<arch>.h"
#endif

#endif
