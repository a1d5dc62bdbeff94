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
    // installed with SA_NODEFER, so jumping out of it leaves its own signal
    // unblocked; the SIGPROF it blocks is unblocked below.
    int reason = sigsetjmp(buffer, 0);
    if (reason == 0) {
        trampoline(vmctx, callee, values);
    }
    // `activation` and `previous` are not modified after sigsetjmp, so their
    // values are intact after a jump.
    if (reason != 0) {
        // A jump out of wasm (a trap, a failed host call): the wasm frames
        // are gone, but the exit record of the last host or runtime call
        // they made is still in the limits record (the entry trampoline
        // clears it only on a return). Clear it before anything here calls
        // deeper: until then this frame's sp lies above every dead frame,
        // so a sampler's check (exit fp >= sp) already rejects the record.
        activation->limits->last_wasm_exit_pc = 0;
        activation->limits->last_wasm_exit_fp = 0;
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
    }
    activation->jump_buffer = previous;
    if (reason == WU_INVOKE_TRAPPED) wu_trap_unblock_sampling_after_jump();
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
