// The oracle's view of libunwind: the calls that are macros in its headers
// (unw_getcontext, unw_init_local ...) wrapped in functions, and the few
// things Swift cannot spell (the dynamic-registration records).
#ifndef UNWIND_SHIM_H
#define UNWIND_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// One frame as libunwind's unw_step sees it.
typedef struct wu_oracle_frame {
    /// UNW_REG_IP: the pc of the newest frame (or the interrupted pc of a
    /// signal frame), the return address of every other.
    uint64_t ip;
    /// UNW_REG_SP.
    uint64_t sp;
    /// The start of the procedure whose unwind information libunwind used
    /// (`unw_get_proc_info`'s start_ip), or 0 when it had none (then it
    /// guessed the caller from the frame pointer).
    uint64_t procedure_start;
    /// unw_is_signal_frame.
    int32_t is_signal_frame;
    /// 0 when unw_get_proc_name found a name for the frame.
    int32_t name_status;
    uint64_t name_offset;
    char name[256];
} wu_oracle_frame;

/// Unwinds the calling thread with unw_getcontext/unw_init_local/unw_step,
/// starting at the caller of this function. Writes at most `capacity`
/// frames (names too when `with_names`), returns how many, or a negative
/// libunwind error code if initialisation failed.
int wu_oracle_unwind_here(wu_oracle_frame *frames, int capacity, int with_names);

/// Unwinds from a signal handler's context (`ucontext_t *`), the
/// interrupted frame first (unw_init_local2 with UNW_INIT_SIGNAL_FRAME).
int wu_oracle_unwind_signal_context(void *ucontext, wu_oracle_frame *frames, int capacity);

/// The instruction pointers libunwind finds from a signal context, the
/// interrupted pc first, for the sampling profiler's cross-check. Runs in
/// the SIGPROF handler: returns -1 without unwinding if the oracle's lock is
/// held (a registration was interrupted). Not async-signal-safe in general
/// (libunwind's caches); for tests and `make verify` only.
int wu_oracle_unwind_signal_context_ips(void *ucontext, uint64_t *ips, int capacity);

/// `unw_backtrace`: return addresses of the calling thread, the caller first.
int wu_oracle_backtrace(void **buffer, int size);

/// A JIT module's CFI, for dynamic registration: code [start, end), and a
/// search table of `table_entries` sorted int32 pairs (code start - segbase,
/// FDE address - segbase) at `table`.
typedef struct wu_oracle_unwind_table {
    uint64_t start;
    uint64_t end;
    uint64_t segbase;
    uint64_t table;
    uint64_t table_entries;
} wu_oracle_unwind_table;

/// Registers the CFI with `_U_dyn_register` (UNW_INFO_FORMAT_REMOTE_TABLE),
/// so libunwind's local unw_step reads it. Returns a handle for
/// `wu_oracle_unregister`, or NULL.
void *wu_oracle_register(const wu_oracle_unwind_table *table);
/// `_U_dyn_cancel` and free.
void wu_oracle_unregister(void *handle);

/// `swift_demangle` from the Swift runtime: the demangled name in a
/// malloc'ed string, or NULL if `name` is not a Swift symbol.
char *wu_oracle_swift_demangle(const char *name);

/// Installs a trap observer that unwinds each wasm trap with libunwind from
/// the signal context, inside the handler, into the calling thread's
/// buffer. For tests and `wasm-unwind verify` only: libunwind is not
/// async-signal-safe in general, and the observer takes the oracle's lock.
/// That is safe here because a wasm trap never interrupts libunwind, the
/// allocator or a holder of that lock on the same thread.
void wu_oracle_observe_traps(void);
/// The frames libunwind found at this thread's last observed trap.
int wu_oracle_last_trap_frames(const wu_oracle_frame **frames);

/// Bytes of another process's memory, at the address they had.
typedef struct wu_remote_segment {
    uint64_t base;
    uint64_t length;
    const uint8_t *bytes;
} wu_remote_segment;

/// A captured stack as libunwind's remote API sees it.
typedef struct wu_remote_image {
    /// Stack bytes, and the CFI and search tables at their addresses.
    const wu_remote_segment *segments;
    uint64_t segment_count;
    /// The code ranges with CFI, and their search tables.
    const wu_oracle_unwind_table *tables;
    uint64_t table_count;
    /// Registers by libunwind number (x86_64: DWARF numbering, 16 = rip),
    /// and which of them are known.
    uint64_t registers[17];
    uint32_t register_mask;
} wu_remote_image;

/// Unwinds a captured stack with unw_init_remote and unw_step through
/// custom accessors (memory from the segments, procedure info from the
/// tables via _Ux86_64_dwarf_search_unwind_table). Returns the number of
/// frames, or a negative libunwind error.
int wu_oracle_unwind_remote(const wu_remote_image *image, wu_oracle_frame *frames, int capacity);

/// Unwinds thread `tid` of another process, which the caller has stopped
/// with ptrace, with libunwind-ptrace: registers and memory through ptrace,
/// unwind information from the ELF files it maps, and for JIT code from
/// `tables` (search tables in that process's memory). Returns the number
/// of frames, or a negative libunwind error.
int wu_oracle_unwind_ptrace(int tid, const wu_oracle_unwind_table *tables, uint64_t table_count,
                            wu_oracle_frame *frames, int capacity);

#ifdef __cplusplus
}
#endif

#endif
