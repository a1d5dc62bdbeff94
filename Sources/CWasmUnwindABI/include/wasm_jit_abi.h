// The reference runtime's own records: the per-instance context that
// generated code reaches through r15, and the C entry points it calls.
#ifndef WASM_JIT_ABI_H
#define WASM_JIT_ABI_H

#include <stddef.h>
#include <stdint.h>

#include "wasm_unwind_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wu_vmctx wu_vmctx;

/// The one C signature every host function is reached through. `values`
/// holds the arguments on entry and the results on return. Returns 0 on
/// success; non-zero means the host failed and has recorded why.
typedef int32_t (*wu_host_call_fn)(wu_vmctx *vmctx, uint64_t import_index, uint64_t *values);

/// An entry trampoline: calls `callee` with the arguments in `values` and
/// stores the result in `values[0]`.
typedef void (*wu_entry_trampoline_fn)(wu_vmctx *vmctx, const void *callee, uint64_t *values);

/// What a call to an imported function jumps to, and with which context.
/// A host import is this module's exit trampoline with its own context; a
/// wasm import is the other instance's function with the other context.
/// `is_host` tells call sites compiled with inline exit recording to call the
/// host directly instead.
typedef struct wu_import {
    const void *code;
    wu_vmctx *vmctx;
    uint64_t is_host;
} wu_import;

/// The instance context. Generated code keeps its address in r15.
struct wu_vmctx {
    wu_runtime_limits *limits;
    uint8_t *memory_base;
    uint64_t memory_size;
    uint64_t *globals;
    wu_host_call_fn host_call;
    /// Leaves wasm after a failed host call: jumps to the newest activation's
    /// entry point. Never returns.
    void (*raise)(wu_vmctx *vmctx);
    wu_import *imports;
    /// The embedder's instance object (opaque to generated code).
    void *instance;
};

#define WU_VMCTX_LIMITS 0
#define WU_VMCTX_MEMORY_BASE 8
#define WU_VMCTX_MEMORY_SIZE 16
#define WU_VMCTX_GLOBALS 24
#define WU_VMCTX_HOST_CALL 32
#define WU_VMCTX_RAISE 40
#define WU_VMCTX_IMPORTS 48
#define WU_VMCTX_INSTANCE 56
#define WU_IMPORT_SIZE 24
#define WU_IMPORT_IS_HOST 16

_Static_assert(offsetof(wu_vmctx, limits) == WU_VMCTX_LIMITS, "abi");
_Static_assert(offsetof(wu_vmctx, memory_base) == WU_VMCTX_MEMORY_BASE, "abi");
_Static_assert(offsetof(wu_vmctx, memory_size) == WU_VMCTX_MEMORY_SIZE, "abi");
_Static_assert(offsetof(wu_vmctx, globals) == WU_VMCTX_GLOBALS, "abi");
_Static_assert(offsetof(wu_vmctx, host_call) == WU_VMCTX_HOST_CALL, "abi");
_Static_assert(offsetof(wu_vmctx, raise) == WU_VMCTX_RAISE, "abi");
_Static_assert(offsetof(wu_vmctx, imports) == WU_VMCTX_IMPORTS, "abi");
_Static_assert(offsetof(wu_vmctx, instance) == WU_VMCTX_INSTANCE, "abi");
_Static_assert(sizeof(wu_import) == WU_IMPORT_SIZE, "abi");
_Static_assert(offsetof(wu_import, is_host) == WU_IMPORT_IS_HOST, "abi");

/// How `wu_invoke` came back.
enum {
    WU_INVOKE_RETURNED = 0,
    /// A trap's signal handler jumped out.
    WU_INVOKE_TRAPPED = 1,
    /// A host function failed and the exit path jumped out.
    WU_INVOKE_HOST_FAILED = 2,
};

/// Calls `trampoline(vmctx, callee, values)` inside the calling thread's
/// newest activation (which the caller has entered), first making this frame
/// the place a trap or a failed host call jumps back to (`sigsetjmp`). Only
/// the trampoline and wasm frames lie between here and any jump, so no Swift
/// frame is ever jumped over.
int wu_invoke(wu_entry_trampoline_fn trampoline, wu_vmctx *vmctx, const void *callee, uint64_t *values);

/// Jumps to the newest activation's `wu_invoke` with `reason` (non-zero).
/// Async-signal-safe (`siglongjmp`).
__attribute__((noreturn)) void wu_jump_to_activation(int reason);

/// Fills in the context's C entry points: `host_call` and `raise`.
void wu_vmctx_set_entry_points(wu_vmctx *vmctx, wu_host_call_fn host_call);

/// The `raise` entry of every context: `wu_jump_to_activation(WU_INVOKE_HOST_FAILED)`.
__attribute__((noreturn)) void wu_raise_host_failure(wu_vmctx *vmctx);

#ifdef __cplusplus
}
#endif

#endif
