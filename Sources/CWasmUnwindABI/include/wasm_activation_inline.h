// Entering and leaving activations, inline, for C code on the hot path of a
// host -> wasm call (the reference runtime's `wu_enter`). The thread-local
// records are reached directly (initial-exec: a fixed offset from the
// thread pointer), so an entry makes no call. C only: this header is not
// part of the Swift module (Swift calls `wu_activation_enter`/`_leave`,
// which are these functions).
#ifndef WASM_ACTIVATION_INLINE_H
#define WASM_ACTIVATION_INLINE_H

#include <stdatomic.h>

#include "wasm_unwind_abi.h"

/// The calling thread's newest activation, and the one in transition.
extern _Thread_local wu_activation *wu_thread_current_activation __attribute__((tls_model("initial-exec")));
extern _Thread_local wu_activation *wu_thread_activation_in_transition __attribute__((tls_model("initial-exec")));
/// The tools' thread-entry hook, and the hook this thread last called.
extern wu_thread_entry_hook _Atomic wu_thread_entry_hook_installed;
extern _Thread_local wu_thread_entry_hook wu_thread_entry_hook_called __attribute__((tls_model("initial-exec")));

/// Calls the thread-entry hook if this thread has not called it yet.
void wu_call_thread_entry_hook(wu_thread_entry_hook hook);

static inline void wu_activation_enter_inline(wu_activation *record, wu_runtime_limits *limits, uint64_t stack_limit,
                                              int sets_stack_limit) {
    record->older = wu_thread_current_activation;
    record->limits = limits;
    record->saved_stack_limit = limits->stack_limit;
    record->saved_exit_fp = limits->last_wasm_exit_fp;
    record->saved_exit_pc = limits->last_wasm_exit_pc;
    record->saved_entry_fp = limits->last_wasm_entry_fp;
    record->embedder_context = 0;
    record->jump_buffer = 0;
    // Signal fences: a handler on this thread sees the stores in this order;
    // while the fields change, a sampler reads their old values from the
    // record in transition.
    wu_thread_activation_in_transition = record;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (sets_stack_limit) limits->stack_limit = stack_limit;
    limits->last_wasm_exit_fp = 0;
    limits->last_wasm_exit_pc = 0;
    limits->last_wasm_entry_fp = 0;
    wu_thread_entry_hook hook = atomic_load_explicit(&wu_thread_entry_hook_installed, memory_order_acquire);
    if (__builtin_expect(hook != wu_thread_entry_hook_called, 0)) wu_call_thread_entry_hook(hook);
    wu_thread_current_activation = record;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    wu_thread_activation_in_transition = 0;
}

static inline void wu_activation_leave_inline(wu_activation *record) {
    wu_runtime_limits *limits = record->limits;
    wu_thread_activation_in_transition = record;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    limits->stack_limit = record->saved_stack_limit;
    limits->last_wasm_exit_fp = record->saved_exit_fp;
    limits->last_wasm_exit_pc = record->saved_exit_pc;
    limits->last_wasm_entry_fp = record->saved_entry_fp;
    wu_thread_current_activation = record->older;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    wu_thread_activation_in_transition = 0;
}

#endif
