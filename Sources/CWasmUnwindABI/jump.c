#include <setjmp.h>

#include "wasm_unwind_abi.h"

int wu_activation_call_with_jump_target(wu_activation *activation, void (*body)(void *), void *context) {
    sigjmp_buf target;
    void *previous = activation->jump_buffer;
    activation->jump_buffer = &target;
    // The signal mask is saved and restored by the jump: a handler that
    // jumps out leaves its signal unblocked again.
    int value = sigsetjmp(target, 1);
    if (value == 0) body(context);
    // `activation` and `previous` are not modified after sigsetjmp.
    activation->jump_buffer = previous;
    return value;
}

void wu_activation_jump(wu_activation *activation, int value) {
    siglongjmp(*(sigjmp_buf *)activation->jump_buffer, value ? value : 1);
}
