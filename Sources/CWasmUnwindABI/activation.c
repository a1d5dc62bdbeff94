#include "wasm_unwind_abi.h"
#include "wasm_debug_descriptor.h"

// initial-exec: the address is a fixed offset from the thread pointer, so the
// signal handler can read it without `__tls_get_addr` (which may allocate the
// first time a thread touches a dynamically loaded module's TLS).
static _Thread_local wu_activation *current_activation
    __attribute__((tls_model("initial-exec"))) = NULL;

wu_activation *wu_current_activation(void) { return current_activation; }

static _Thread_local int listed_for_post_mortem __attribute__((tls_model("initial-exec")));

void wu_set_current_activation(wu_activation *activation) {
    // A thread's first entry lists it in the post-mortem descriptor.
    if (__builtin_expect(!listed_for_post_mortem, 0)) {
        listed_for_post_mortem = 1;
        wu_debug_register_current_thread();
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
