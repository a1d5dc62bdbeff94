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

/// Bytes a linear memory reserves from its base: every `index + offset +
/// access size` a 32-bit memory can form lies inside, so an out-of-bounds
/// access faults in the reservation (8 GiB + 64 KiB). A fault at a memory
/// access outside it is not an out-of-bounds access of that memory.
#define WU_MEMORY_RESERVATION 8590000128ull // 8 GiB + 64 KiB

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
/// host directly instead: `WU_IMPORT_HOST` through `host_call`,
/// `WU_IMPORT_NATIVE` by calling `native` with C arguments.
typedef struct wu_import {
    const void *code;
    wu_vmctx *vmctx;
    uint64_t is_host;
    /// A native host function: a C function taking the context, then the
    /// parameters as C values (integers in order in the integer registers,
    /// floats in the SSE registers), returning the result.
    const void *native;
} wu_import;

#define WU_IMPORT_WASM 0
#define WU_IMPORT_HOST 1
#define WU_IMPORT_NATIVE 2

/// A function reference (`funcref`): what `call_indirect` and `ref.func`
/// work with. Each instance has one per function of its index space; a
/// table element or a funcref value is a pointer to one, or 0 for null.
typedef struct wu_func_ref {
    /// The code to call: a wasm function, or an exit trampoline.
    const void *code;
    /// The context to call it with (r15).
    wu_vmctx *vmctx;
    /// The engine-wide id of the function's signature: `call_indirect`
    /// compares it with the id of the type it expects.
    uint64_t type;
    /// 1 when `code` is an exit trampoline to a host function (a tail call
    /// to it becomes an ordinary call).
    uint64_t is_host;
} wu_func_ref;

#define WU_FUNC_REF_CODE 0
#define WU_FUNC_REF_VMCTX 8
#define WU_FUNC_REF_TYPE 16
#define WU_FUNC_REF_IS_HOST 24
#define WU_FUNC_REF_SIZE 32

_Static_assert(offsetof(wu_func_ref, code) == WU_FUNC_REF_CODE, "abi");
_Static_assert(offsetof(wu_func_ref, vmctx) == WU_FUNC_REF_VMCTX, "abi");
_Static_assert(offsetof(wu_func_ref, type) == WU_FUNC_REF_TYPE, "abi");
_Static_assert(offsetof(wu_func_ref, is_host) == WU_FUNC_REF_IS_HOST, "abi");
_Static_assert(sizeof(wu_func_ref) == WU_FUNC_REF_SIZE, "abi");

/// A table: its elements (a funcref table holds `wu_func_ref` pointers, an
/// externref table host-object handles; 0 is null) and its size. The record
/// stays put when the table grows; `elements` may move.
typedef struct wu_table {
    uint64_t *elements;
    uint64_t size;
} wu_table;

#define WU_TABLE_ELEMENTS 0
#define WU_TABLE_SIZE 8

_Static_assert(offsetof(wu_table, elements) == WU_TABLE_ELEMENTS, "abi");
_Static_assert(offsetof(wu_table, size) == WU_TABLE_SIZE, "abi");

/// The runtime functions generated code calls for instructions too large
/// to inline (`memory.grow`, bulk memory, table operations). Each gets the
/// calling instance's context first. The call site records the exit (fp and
/// precise return address) first, as a host call does, so the wasm frames
/// below stay visible while they run. Those that can trap return 0, or
/// non-zero after which the call site branches to its trap stub.
typedef struct wu_libcalls {
    /// The old size in pages, or -1 if the memory cannot grow that much.
    int64_t (*memory_grow)(wu_vmctx *vmctx, uint64_t delta);
    int32_t (*memory_fill)(wu_vmctx *vmctx, uint64_t destination, uint64_t value, uint64_t count);
    int32_t (*memory_copy)(wu_vmctx *vmctx, uint64_t destination, uint64_t source, uint64_t count);
    int32_t (*memory_init)(wu_vmctx *vmctx, uint64_t segment, uint64_t destination, uint64_t source, uint64_t count);
    int32_t (*data_drop)(wu_vmctx *vmctx, uint64_t segment);
    /// The old size, or -1 if the table cannot grow that much.
    int64_t (*table_grow)(wu_vmctx *vmctx, uint64_t table, uint64_t value, uint64_t delta);
    int32_t (*table_fill)(wu_vmctx *vmctx, uint64_t table, uint64_t destination, uint64_t value, uint64_t count);
    int32_t (*table_copy)(wu_vmctx *vmctx, uint64_t destination_table, uint64_t source_table, uint64_t destination,
                          uint64_t source, uint64_t count);
    int32_t (*table_init)(wu_vmctx *vmctx, uint64_t table, uint64_t segment, uint64_t destination, uint64_t source,
                          uint64_t count);
    int32_t (*elem_drop)(wu_vmctx *vmctx, uint64_t segment);
    /// Called before compiled code stores a function reference of another
    /// instance into a table or global of this one (`table.set`,
    /// `global.set`): this instance keeps that one alive from then on.
    int32_t (*hold_reference)(wu_vmctx *vmctx, uint64_t reference);
} wu_libcalls;

/// Where a thrown exception resumes: the handler frame's frame and stack
/// pointers and its landing pad. Generated code resumes with
/// `mov rbp, [rax]; mov rsp, [rax + 8]; jmp [rax + 16]`.
typedef struct wu_resume {
    uint64_t fp;
    uint64_t sp;
    uint64_t pc;
} wu_resume;

#define WU_RESUME_FP 0
#define WU_RESUME_SP 8
#define WU_RESUME_PC 16

/// What compiled interruption checks read and write, one per store
/// (`Engine.Configuration.interruptionChecks`; docs/wasi.md). Wasmtime's
/// `VMStoreContext` fuel and epoch fields, with the same meaning.
typedef struct wu_store_context {
    /// Fuel consumed minus fuel given: negative while fuel is left. Code
    /// adds each straight-line run's cost at its end; a check (function
    /// entry, loop header) that finds it 0 or more traps with
    /// `WU_TRAP_OUT_OF_FUEL`.
    int64_t fuel_consumed;
    /// A check that finds the engine's epoch at or past this traps with
    /// `WU_TRAP_INTERRUPT` (checks read the copy in each instance's
    /// context).
    uint64_t epoch_deadline;
} wu_store_context;

#define WU_STORE_CONTEXT_FUEL_CONSUMED 0
#define WU_STORE_CONTEXT_EPOCH_DEADLINE 8

_Static_assert(offsetof(wu_store_context, fuel_consumed) == WU_STORE_CONTEXT_FUEL_CONSUMED, "abi");
_Static_assert(offsetof(wu_store_context, epoch_deadline) == WU_STORE_CONTEXT_EPOCH_DEADLINE, "abi");

/// An engine's epoch: advanced by one, atomically (any thread, a signal
/// handler); read as compiled checks read it.
static inline void wu_epoch_increment(uint64_t *epoch) { __atomic_fetch_add(epoch, 1, __ATOMIC_SEQ_CST); }
static inline uint64_t wu_epoch_load(const uint64_t *epoch) { return __atomic_load_n(epoch, __ATOMIC_SEQ_CST); }

/// The instance context. Generated code keeps its address in r15.
struct wu_vmctx {
    wu_runtime_limits *limits;
    /// Linear memory: its base never moves; its size in bytes changes with
    /// `memory.grow` (in every context that shares the memory).
    uint8_t *memory_base;
    uint64_t memory_size;
    /// Each global's 64-bit cell, by global index (imports first): an
    /// imported global's cell is the exporter's.
    uint64_t **globals;
    wu_host_call_fn host_call;
    /// After a failed host call, and after a throw no frame caught: if the
    /// failure is a wasm exception that a frame of this activation catches,
    /// returns where it resumes (the payload already in the handler's
    /// slots); otherwise jumps to the newest activation's entry point.
    const wu_resume *(*raise)(wu_vmctx *vmctx);
    wu_import *imports;
    /// The embedder's instance object (opaque to generated code).
    void *instance;
    /// Each table, by table index (imports first).
    wu_table **tables;
    /// This instance's function reference of each function, by function
    /// index (imports first): what `ref.func` pushes.
    wu_func_ref **functions;
    const wu_libcalls *libcalls;
    /// Where a trap stub goes (`wu_trap_raise`): records the trap, walks,
    /// and jumps to the newest activation. Never returns.
    void (*trap)(void *vmctx, uint64_t code, uint64_t address);
    /// `throw tag`: the payload's values are at `payload`, `payload - 8`,
    /// ... (operand-stack slots). Returns where the exception resumes, or
    /// NULL when no frame of the activation catches it (then `raise`).
    const wu_resume *(*throw_exception)(wu_vmctx *vmctx, uint64_t tag, const uint64_t *payload);
    /// `throw_ref`: as `throw_exception` for the exception behind an
    /// `exnref` handle (0 traps: null reference).
    const wu_resume *(*throw_ref)(wu_vmctx *vmctx, uint64_t exnref);
    /// Each tag's identity, by tag index (imports first): an imported tag's
    /// is the exporter's, so comparing these compares tags.
    const void **tags;
    /// The store's fuel and epoch deadline.
    wu_store_context *store_context;
    /// The engine's epoch (`Engine.incrementEpoch`).
    const uint64_t *epoch;
    /// The store's epoch deadline, copied into each of its instances'
    /// contexts (`Store.setEpochDeadline`) so a check reads it in one load.
    uint64_t epoch_deadline;
};

#define WU_VMCTX_LIMITS 0
#define WU_VMCTX_MEMORY_BASE 8
#define WU_VMCTX_MEMORY_SIZE 16
#define WU_VMCTX_GLOBALS 24
#define WU_VMCTX_HOST_CALL 32
#define WU_VMCTX_RAISE 40
#define WU_VMCTX_IMPORTS 48
#define WU_VMCTX_INSTANCE 56
#define WU_VMCTX_TABLES 64
#define WU_VMCTX_FUNCTIONS 72
#define WU_VMCTX_LIBCALLS 80
#define WU_VMCTX_TRAP 88
#define WU_VMCTX_THROW 96
#define WU_VMCTX_THROW_REF 104
#define WU_VMCTX_TAGS 112
#define WU_VMCTX_STORE_CONTEXT 120
#define WU_VMCTX_EPOCH 128
#define WU_VMCTX_EPOCH_DEADLINE 136
#define WU_IMPORT_SIZE 32
#define WU_IMPORT_IS_HOST 16
#define WU_IMPORT_NATIVE_FUNCTION 24

_Static_assert(offsetof(wu_vmctx, limits) == WU_VMCTX_LIMITS, "abi");
_Static_assert(offsetof(wu_vmctx, memory_base) == WU_VMCTX_MEMORY_BASE, "abi");
_Static_assert(offsetof(wu_vmctx, memory_size) == WU_VMCTX_MEMORY_SIZE, "abi");
_Static_assert(offsetof(wu_vmctx, globals) == WU_VMCTX_GLOBALS, "abi");
_Static_assert(offsetof(wu_vmctx, host_call) == WU_VMCTX_HOST_CALL, "abi");
_Static_assert(offsetof(wu_vmctx, raise) == WU_VMCTX_RAISE, "abi");
_Static_assert(offsetof(wu_vmctx, imports) == WU_VMCTX_IMPORTS, "abi");
_Static_assert(offsetof(wu_vmctx, instance) == WU_VMCTX_INSTANCE, "abi");
_Static_assert(offsetof(wu_vmctx, tables) == WU_VMCTX_TABLES, "abi");
_Static_assert(offsetof(wu_vmctx, functions) == WU_VMCTX_FUNCTIONS, "abi");
_Static_assert(offsetof(wu_vmctx, libcalls) == WU_VMCTX_LIBCALLS, "abi");
_Static_assert(offsetof(wu_vmctx, trap) == WU_VMCTX_TRAP, "abi");
_Static_assert(offsetof(wu_vmctx, throw_exception) == WU_VMCTX_THROW, "abi");
_Static_assert(offsetof(wu_vmctx, throw_ref) == WU_VMCTX_THROW_REF, "abi");
_Static_assert(offsetof(wu_vmctx, tags) == WU_VMCTX_TAGS, "abi");
_Static_assert(offsetof(wu_vmctx, store_context) == WU_VMCTX_STORE_CONTEXT, "abi");
_Static_assert(offsetof(wu_vmctx, epoch) == WU_VMCTX_EPOCH, "abi");
_Static_assert(offsetof(wu_vmctx, epoch_deadline) == WU_VMCTX_EPOCH_DEADLINE, "abi");
_Static_assert(offsetof(wu_resume, sp) == WU_RESUME_SP && offsetof(wu_resume, pc) == WU_RESUME_PC, "abi");
_Static_assert(sizeof(wu_import) == WU_IMPORT_SIZE, "abi");
_Static_assert(offsetof(wu_import, is_host) == WU_IMPORT_IS_HOST, "abi");
_Static_assert(offsetof(wu_import, native) == WU_IMPORT_NATIVE_FUNCTION, "abi");

#define WU_LIBCALL_MEMORY_GROW 0
#define WU_LIBCALL_MEMORY_FILL 8
#define WU_LIBCALL_MEMORY_COPY 16
#define WU_LIBCALL_MEMORY_INIT 24
#define WU_LIBCALL_DATA_DROP 32
#define WU_LIBCALL_TABLE_GROW 40
#define WU_LIBCALL_TABLE_FILL 48
#define WU_LIBCALL_TABLE_COPY 56
#define WU_LIBCALL_TABLE_INIT 64
#define WU_LIBCALL_ELEM_DROP 72
#define WU_LIBCALL_HOLD_REFERENCE 80

_Static_assert(offsetof(wu_libcalls, memory_grow) == WU_LIBCALL_MEMORY_GROW, "abi");
_Static_assert(offsetof(wu_libcalls, elem_drop) == WU_LIBCALL_ELEM_DROP, "abi");
_Static_assert(offsetof(wu_libcalls, hold_reference) == WU_LIBCALL_HOLD_REFERENCE, "abi");

/// How `wu_enter` came back.
enum {
    WU_INVOKE_RETURNED = 0,
    /// A trap's signal handler jumped out.
    WU_INVOKE_TRAPPED = 1,
    /// A host function failed and the exit path jumped out.
    WU_INVOKE_HOST_FAILED = 2,
    /// `wu_enter` only: the thread cannot take traps yet; prepare it
    /// (`wu_thread_trap_state_prepare`) and call again. Nothing ran.
    WU_INVOKE_THREAD_UNPREPARED = 3,
};

/// Everything a host -> wasm call of one compiled function needs, made once
/// (a `TypedFunc` keeps one) so that a call is one C call.
typedef struct wu_entry {
    /// The store's limits record, and what its activations carry for the
    /// trap handler (`wu_store_trap_info *`).
    wu_runtime_limits *limits;
    void *embedder_context;
    /// The entry trampoline of the function's signature, its context and
    /// its code.
    wu_entry_trampoline_fn trampoline;
    wu_vmctx *vmctx;
    const void *callee;
    /// The outermost activation of the store on a thread runs with a stack
    /// limit this far below the entry's sp (0: no limit), and never closer
    /// than `host_stack_reserve` to the thread stack's lowest byte.
    uint64_t maximum_wasm_stack;
    uint64_t host_stack_reserve;
} wu_entry;

/// Calls `entry`'s function on `values` (arguments in, results out) in a
/// new activation of its store: enters it (with a stack limit if it is the
/// store's outermost on this thread), calls the trampoline from
/// a jump target for traps and failed host calls, leaves it. Returns a
/// `WU_INVOKE_*` reason.
int wu_enter(const wu_entry *entry, uint64_t *values);

/// Jumps to the `wu_enter` of the newest activation with `reason`
/// (non-zero): only wasm frames and trampolines lie between, so no Swift
/// frame is ever jumped over. Async-signal-safe (`__builtin_longjmp`).
__attribute__((noreturn)) void wu_jump_to_activation(int reason);
/// The same for `activation` (the trap handler's, found before it ran).
__attribute__((noreturn)) void wu_jump_to_activation_record(wu_activation *activation, int reason);

/// Fills in the context's C entry points: `host_call` and `raise`.
void wu_vmctx_set_entry_points(wu_vmctx *vmctx, wu_host_call_fn host_call);

/// The `raise` entry of every context: asks the exception unwinder (if one
/// is set) where a pending wasm exception resumes; without one,
/// `wu_jump_to_activation(WU_INVOKE_HOST_FAILED)`.
const wu_resume *wu_raise_host_failure(wu_vmctx *vmctx);

/// The runtime's handler search for a pending exception: where it resumes,
/// or NULL to leave the activation. Set once; it runs on the throwing
/// thread, never in a signal handler.
typedef const wu_resume *(*wu_exception_unwinder_fn)(wu_vmctx *vmctx);
void wu_set_exception_unwinder(wu_exception_unwinder_fn unwinder);

#ifdef __cplusplus
}
#endif

#endif
