// The records that generated code and the embedder share, in C layout.
//
// Generated code stores into these records at fixed offsets, so every offset
// is a named constant here and is checked against `offsetof` at compile time.
// Swift reads the same constants (see `RuntimeLimits.Offsets`).
#ifndef WASM_UNWIND_ABI_H
#define WASM_UNWIND_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: - Runtime limits

/// One per store. The entry trampoline writes `last_wasm_entry_fp`; the exit
/// trampoline (or an inline exit sequence) writes `last_wasm_exit_fp` and
/// `last_wasm_exit_pc`; every function prologue compares its stack pointer
/// against `stack_limit`.
typedef struct wu_runtime_limits {
    /// Lowest address wasm code may move the stack pointer to.
    uint64_t stack_limit;
    /// Frame pointer of the youngest wasm frame when wasm last called the host.
    uint64_t last_wasm_exit_fp;
    /// Return address into that frame (the precise pc after its `call`).
    uint64_t last_wasm_exit_pc;
    /// Frame pointer of the entry trampoline of the newest activation; the
    /// outermost wasm frame's saved frame pointer equals it.
    uint64_t last_wasm_entry_fp;
} wu_runtime_limits;

#define WU_RUNTIME_LIMITS_STACK_LIMIT 0
#define WU_RUNTIME_LIMITS_LAST_WASM_EXIT_FP 8
#define WU_RUNTIME_LIMITS_LAST_WASM_EXIT_PC 16
#define WU_RUNTIME_LIMITS_LAST_WASM_ENTRY_FP 24
#define WU_RUNTIME_LIMITS_SIZE 32

_Static_assert(offsetof(wu_runtime_limits, stack_limit) == WU_RUNTIME_LIMITS_STACK_LIMIT, "abi");
_Static_assert(offsetof(wu_runtime_limits, last_wasm_exit_fp) == WU_RUNTIME_LIMITS_LAST_WASM_EXIT_FP, "abi");
_Static_assert(offsetof(wu_runtime_limits, last_wasm_exit_pc) == WU_RUNTIME_LIMITS_LAST_WASM_EXIT_PC, "abi");
_Static_assert(offsetof(wu_runtime_limits, last_wasm_entry_fp) == WU_RUNTIME_LIMITS_LAST_WASM_ENTRY_FP, "abi");
_Static_assert(sizeof(wu_runtime_limits) == WU_RUNTIME_LIMITS_SIZE, "abi");

// MARK: - Activations

/// One per host -> wasm entry, living in the entering host frame. It holds the
/// unwinding fields the limits record had before the entry (the state of the
/// next older activation), so nested entries form a chain, newest first.
typedef struct wu_activation {
    /// The next older activation on this thread (any store), or NULL.
    struct wu_activation *older;
    /// The limits record this activation saved and will restore.
    wu_runtime_limits *limits;
    uint64_t saved_stack_limit;
    uint64_t saved_exit_fp;
    uint64_t saved_exit_pc;
    uint64_t saved_entry_fp;
    /// Embedder data: the store that entered, and where a trap jumps to.
    void *embedder_context;
    void *jump_buffer;
} wu_activation;

/// The newest activation of the calling thread, or NULL.
wu_activation *wu_current_activation(void);
/// Makes `activation` the newest activation of the calling thread.
void wu_set_current_activation(wu_activation *activation);

/// Called on each thread's first `wu_set_current_activation` after it is
/// installed (tools that list the threads running wasm install one; NULL
/// removes it). It runs on that thread, outside any signal handler.
typedef void (*wu_thread_entry_hook)(void);
void wu_set_thread_entry_hook(wu_thread_entry_hook hook);

/// Enters a new activation of `limits` on the calling thread: saves the
/// limits record's fields into `record` (the state of the next older
/// activation), clears them, sets the stack limit when `sets_stack_limit`,
/// and makes `record` the thread's newest activation. While the fields
/// change, `record` is the activation in transition (a sampler interrupting
/// the thread reads their old values from it). `record` must live in the
/// caller's frame until `wu_activation_leave`.
void wu_activation_enter(wu_activation *record, wu_runtime_limits *limits, uint64_t stack_limit,
                         int sets_stack_limit);
/// Leaves `record` (the newest activation): restores the limits record's
/// fields from it and makes the next older activation the newest.
void wu_activation_leave(wu_activation *record);

/// Calls `body(context)` with `activation`'s jump target set to this frame
/// (a `sigjmp_buf` that saves the signal mask): returns 0 when `body`
/// returns, or the value `wu_activation_jump` gave. Swift cannot call
/// `sigsetjmp` itself; an embedder whose signal handler resumes after a
/// trap enters wasm through this.
int wu_activation_call_with_jump_target(wu_activation *activation, void (*body)(void *), void *context);
/// Jumps to `activation`'s jump target with `value` (0 becomes 1): only
/// frames of code that keeps no state the jump skips (wasm and its
/// trampolines) may lie between. Async-signal-safe (`siglongjmp`).
__attribute__((noreturn)) void wu_activation_jump(wu_activation *activation, int value);

/// Where the calling thread keeps its newest activation (for readers in
/// another process or a core file: read it, then follow `older`).
wu_activation *const *wu_current_activation_address(void);

/// The activation being entered or left on the calling thread while the
/// limits record's fields are being saved, reset or restored, or NULL. A
/// reader interrupting the thread (a sampling profiler's signal handler)
/// then takes the fields' value from this record's saved copy, and the
/// older activations from its `older` link: that is the state before the
/// entry and after the exit alike.
wu_activation *wu_activation_in_transition(void);
void wu_set_activation_in_transition(wu_activation *activation);

#ifdef __cplusplus
}
#endif

#endif
