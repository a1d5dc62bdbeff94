// The runtime's thread-local state, for its own C files (not part of the
// Swift module): reached directly on the hot path of a call into wasm.
#ifndef WASM_RUNTIME_THREAD_H
#define WASM_RUNTIME_THREAD_H

#include "wasm_trap_handler.h"

/// The calling thread's trap state (NULL until the thread is prepared).
extern _Thread_local wu_thread_trap_state *wu_runtime_thread_state __attribute__((tls_model("initial-exec")));

#endif
