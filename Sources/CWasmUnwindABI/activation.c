#include "wasm_unwind_abi.h"

// initial-exec: the address is a fixed offset from the thread pointer, so the
// signal handler can read it without `__tls_get_addr` (which may allocate the
// first time a thread touches a dynamically loaded module's TLS).
static _Thread_local wu_activation *current_activation
    __attribute__((tls_model("initial-exec"))) = NULL;

wu_activation *wu_current_activation(void) { return current_activation; }

void wu_set_current_activation(wu_activation *activation) {
    current_activation = activation;
}

static _Thread_local wu_activation *activation_in_transition
    __attribute__((tls_model("initial-exec"))) = NULL;

wu_activation *wu_activation_in_transition(void) { return activation_in_transition; }

void wu_set_activation_in_transition(wu_activation *activation) {
    activation_in_transition = activation;
}
