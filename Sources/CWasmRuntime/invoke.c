#include <stddef.h>

#include "runtime_thread.h"
#include "wasm_activation_chain.h"
#include "wasm_activation_inline.h"
#include "wasm_jit_abi.h"
#include "wasm_trap_handler.h"
#include "wasm_unwind_system.h"

/// The activation's jump target, made by `wu_enter`'s `__builtin_setjmp`:
/// the registers it saves and the reason the jump gives.
typedef struct wu_jump_target {
    void *registers[5];
    volatile int reason;
} wu_jump_target;

/// After a jump out of wasm (a trap, a failed host call): the wasm frames
/// are gone, but the exit record of the last host or runtime call they made
/// is still in the limits record (the entry trampoline clears it only on a
/// return). Cleared before anything here calls deeper: until then the
/// entering frame's sp lies above every dead frame, so a sampler's check
/// (exit fp >= sp) already rejects the record.
static inline void forget_dead_exit(wu_runtime_limits *limits) {
    limits->last_wasm_exit_pc = 0;
    limits->last_wasm_exit_fp = 0;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

/// Whether the calling thread has no activation of the store whose limits
/// record is `limits` (a corrupt chain counts as none: the walk reports it).
static inline int is_outermost(const wu_runtime_limits *limits) {
    wu_activation_chain chain = wu_activation_chain_start(wu_thread_current_activation, WU_MAXIMUM_ACTIVATION_RECORDS);
    for (;;) {
        wu_chain_record step = wu_activation_chain_next_record(chain);
        chain = step.chain;
        if (!step.record) return 1;
        if (step.record->limits == limits) return 0;
    }
}

/// The stack limit of the store's outermost activation on this thread: the
/// maximum wasm stack below `sp`, never closer than the reserve to the
/// thread stack's lowest byte (0: no limit).
static _Thread_local uint64_t stack_low __attribute__((tls_model("initial-exec")));

static inline uint64_t outermost_stack_limit(const wu_entry *entry, uint64_t sp) {
    if (!entry->maximum_wasm_stack) return 0;
    uint64_t low = stack_low;
    if (__builtin_expect(!low, 0)) {
        uint64_t high = 0;
        wu_thread_stack_bounds(&low, &high);
        stack_low = low;
    }
    uint64_t wanted = sp > entry->maximum_wasm_stack ? sp - entry->maximum_wasm_stack : 0;
    return wanted > low + entry->host_stack_reserve ? wanted : low + entry->host_stack_reserve;
}

int wu_enter(const wu_entry *entry, uint64_t *values) {
    if (__builtin_expect(!wu_runtime_thread_state, 0)) return WU_INVOKE_THREAD_UNPREPARED;
    int outermost = is_outermost(entry->limits);
    uint64_t stack_limit = outermost ? outermost_stack_limit(entry, (uint64_t)(uintptr_t)__builtin_frame_address(0)) : 0;
    wu_activation record;
    wu_activation_enter_inline(&record, entry->limits, stack_limit, outermost);
    record.embedder_context = entry->embedder_context;
    // The jump target of traps and failed host calls. __builtin_setjmp
    // saves only the frame and stack pointers and the resume address (the
    // compiler keeps every other register of this function in its frame);
    // no signal mask is saved: the trap handler is installed with
    // SA_NODEFER, so jumping out of it leaves its own signal unblocked, and
    // the SIGPROF it blocks is unblocked below. Only the trampoline and
    // wasm frames lie between here and any jump.
    wu_jump_target target;
    target.reason = WU_INVOKE_RETURNED;
    record.jump_buffer = &target;
    if (__builtin_setjmp(target.registers) == 0) {
        entry->trampoline(entry->vmctx, entry->callee, values);
    } else {
        forget_dead_exit(entry->limits);
    }
    int reason = target.reason;
    wu_activation_leave_inline(&record);
    if (reason == WU_INVOKE_TRAPPED) wu_trap_unblock_sampling_after_jump();
    return reason;
}

void wu_jump_to_activation_record(wu_activation *activation, int reason) {
    wu_jump_target *target = activation->jump_buffer;
    target->reason = reason;
    __builtin_longjmp(target->registers, 1);
}

void wu_jump_to_activation(int reason) { wu_jump_to_activation_record(wu_current_activation(), reason); }

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
