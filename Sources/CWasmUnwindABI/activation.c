#include <stdatomic.h>

#include "wasm_unwind_abi.h"

// initial-exec: the address is a fixed offset from the thread pointer, so the
// signal handler can read it without `__tls_get_addr` (which may allocate the
// first time a thread touches a dynamically loaded module's TLS).
static _Thread_local wu_activation *current_activation
    __attribute__((tls_model("initial-exec"))) = NULL;

wu_activation *wu_current_activation(void) { return current_activation; }

// The hook tools install to learn of each thread that enters wasm (the
// post-mortem descriptor lists threads), and the hook each thread last
// called: a thread calls a hook once, on its first entry after the hook is
// installed.
static wu_thread_entry_hook _Atomic thread_entry_hook;
static _Thread_local wu_thread_entry_hook hook_called __attribute__((tls_model("initial-exec")));

void wu_set_thread_entry_hook(wu_thread_entry_hook hook) {
    atomic_store_explicit(&thread_entry_hook, hook, memory_order_release);
}

void wu_set_current_activation(wu_activation *activation) {
    wu_thread_entry_hook hook = atomic_load_explicit(&thread_entry_hook, memory_order_acquire);
    if (__builtin_expect(hook != hook_called, 0)) {
        hook_called = hook;
        if (hook) hook();
    }
    current_activation = activation;
}

wu_activation *const *wu_current_activation_address(void) { return &current_activation; }

static _Thread_local wu_activation *activation_in_transition
    __attribute__((tls_model("initial-exec"))) = NULL;

wu_activation *wu_activation_in_transition(void) { return activation_in_transition; }

void wu_set_activation_in_transition(wu_activation *activation) {
    activation_in_transition = activation;
}
