#include <setjmp.h>
#include <stddef.h>

#include "wasm_jit_abi.h"
#include "wasm_trap_handler.h"

int wu_invoke(wu_entry_trampoline_fn trampoline, wu_vmctx *vmctx, const void *callee, uint64_t *values) {
    wu_activation *activation = wu_current_activation();
    sigjmp_buf buffer;
    void *previous = activation->jump_buffer;
    activation->jump_buffer = &buffer;
    // savemask 0: no sigprocmask system call per entry. The trap handler is
    // installed with SA_NODEFER, so jumping out of it leaves nothing blocked.
    int reason = sigsetjmp(buffer, 0);
    if (reason == 0) {
        trampoline(vmctx, callee, values);
    }
    // `activation` and `previous` are not modified after sigsetjmp, so their
    // values are intact after a jump.
    activation->jump_buffer = previous;
    return reason;
}

void wu_jump_to_activation(int reason) {
    wu_activation *activation = wu_current_activation();
    siglongjmp(*(sigjmp_buf *)activation->jump_buffer, reason);
}

static wu_exception_unwinder_fn exception_unwinder;

void wu_set_exception_unwinder(wu_exception_unwinder_fn unwinder) {
    __atomic_store_n(&exception_unwinder, unwinder, __ATOMIC_RELEASE);
}

const wu_resume *wu_raise_host_failure(wu_vmctx *vmctx) {
    wu_exception_unwinder_fn unwinder = __atomic_load_n(&exception_unwinder, __ATOMIC_ACQUIRE);
    if (unwinder) {
        const wu_resume *resume = unwinder(vmctx);
        if (resume) return resume;
    }
    wu_jump_to_activation(WU_INVOKE_HOST_FAILED);
}

void wu_vmctx_set_entry_points(wu_vmctx *vmctx, wu_host_call_fn host_call) {
    vmctx->host_call = host_call;
    vmctx->raise = wu_raise_host_failure;
    vmctx->trap = wu_trap_raise;
}
