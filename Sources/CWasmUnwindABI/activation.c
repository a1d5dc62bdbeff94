#include <stdatomic.h>

#include "wasm_activation_inline.h"
#include "wasm_unwind_abi.h"

// initial-exec: the address is a fixed offset from the thread pointer, so the
// signal handler can read it without `__tls_get_addr` (which may allocate the
// first time a thread touches a dynamically loaded module's TLS).
_Thread_local wu_activation *wu_thread_current_activation __attribute__((tls_model("initial-exec"))) = NULL;
_Thread_local wu_activation *wu_thread_activation_in_transition __attribute__((tls_model("initial-exec"))) = NULL;

// The hook tools install to learn of each thread that enters wasm (the
// post-mortem descriptor lists threads), and the hook each thread last
// called: a thread calls a hook once, on its first entry after the hook is
// installed.
wu_thread_entry_hook _Atomic wu_thread_entry_hook_installed;
_Thread_local wu_thread_entry_hook wu_thread_entry_hook_called __attribute__((tls_model("initial-exec")));

wu_activation *wu_current_activation(void) { return wu_thread_current_activation; }

void wu_set_thread_entry_hook(wu_thread_entry_hook hook) {
    atomic_store_explicit(&wu_thread_entry_hook_installed, hook, memory_order_release);
}

void wu_call_thread_entry_hook(wu_thread_entry_hook hook) {
    wu_thread_entry_hook_called = hook;
    if (hook) hook();
}

void wu_set_current_activation(wu_activation *activation) {
    wu_thread_entry_hook hook = atomic_load_explicit(&wu_thread_entry_hook_installed, memory_order_acquire);
    if (__builtin_expect(hook != wu_thread_entry_hook_called, 0)) wu_call_thread_entry_hook(hook);
    wu_thread_current_activation = activation;
}

wu_activation *const *wu_current_activation_address(void) { return &wu_thread_current_activation; }

void wu_activation_enter(wu_activation *record, wu_runtime_limits *limits, uint64_t stack_limit,
                         int sets_stack_limit) {
    wu_activation_enter_inline(record, limits, stack_limit, sets_stack_limit);
}

void wu_activation_leave(wu_activation *record) { wu_activation_leave_inline(record); }

wu_activation *wu_activation_in_transition(void) { return wu_thread_activation_in_transition; }

void wu_set_activation_in_transition(wu_activation *activation) { wu_thread_activation_in_transition = activation; }
