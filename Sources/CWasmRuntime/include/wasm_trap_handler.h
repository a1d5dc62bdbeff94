// The trap handler: the signal handler that turns a fault in wasm code into
// a jump back to the activation that entered wasm, with the wasm backtrace
// captured on the way, and leaves every other fault to whoever handled it
// before us (the Swift runtime's crash reporter, or the default action).
#ifndef WASM_TRAP_HANDLER_H
#define WASM_TRAP_HANDLER_H

#include <stddef.h>
#include <stdint.h>

#include "wasm_activation_chain.h"
#include "wasm_unwind_arch.h"
#include "wasm_unwind_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Why wasm code trapped. The values are stable: trap-site tables and
/// captured stacks store them. `TrapCode` in Swift names each one.
typedef enum wu_trap_code {
    WU_TRAP_UNREACHABLE = 1,
    WU_TRAP_INTEGER_DIVISION_BY_ZERO = 2,
    WU_TRAP_INTEGER_OVERFLOW = 3,
    WU_TRAP_OUT_OF_BOUNDS_MEMORY_ACCESS = 4,
    WU_TRAP_STACK_OVERFLOW = 5,
    WU_TRAP_BAD_CONVERSION_TO_INTEGER = 6,
    WU_TRAP_TABLE_OUT_OF_BOUNDS = 7,
    WU_TRAP_INDIRECT_CALL_TO_NULL = 8,
    WU_TRAP_BAD_SIGNATURE = 9,
    WU_TRAP_NULL_REFERENCE = 10,
    /// Stopped from outside: SIGINT, SIGTERM or a timeout
    /// (`wu_interrupt_install`), at any instruction; or by a compiled
    /// epoch check (a trap site's code) when the engine's epoch reached the
    /// store's deadline.
    WU_TRAP_INTERRUPT = 11,
    /// A compiled fuel check found the store's fuel spent.
    WU_TRAP_OUT_OF_FUEL = 12,
} wu_trap_code;

/// Set in a trap site's code byte (`wu_code_region.trap_codes`) when the
/// stub leaves the wasm address an out-of-bounds access went to in rax.
#define WU_TRAP_SITE_HAS_ADDRESS 0x80
/// Set in a trap site's code byte when the site is a load or store of
/// linear memory that faults past the memory's end (guard pages): the wasm
/// address is the fault address minus the memory base of the context in
/// r15.
#define WU_TRAP_SITE_MEMORY_ACCESS 0x40
#define WU_TRAP_SITE_FLAGS (WU_TRAP_SITE_HAS_ADDRESS | WU_TRAP_SITE_MEMORY_ACCESS)

/// One module's code, as the handler sees it.
typedef struct wu_code_region {
    uint64_t start;
    uint64_t end;
    /// Code offsets (from `start`) of the trapping instructions, sorted.
    const uint32_t *trap_offsets;
    /// The trap code of each, same order.
    const uint8_t *trap_codes;
    uint64_t trap_count;
    /// Where each routine's frame changes, for unwinding at any pc (the
    /// sampling profiler): code offsets (from `start`), sorted, and the
    /// `wu_frame_state` from each offset on.
    const uint32_t *frame_offsets;
    const uint8_t *frame_states;
    uint64_t frame_count;
} wu_code_region;

/// What an interrupted pc's frame looks like: where its return address is.
typedef enum wu_frame_state {
    /// rbp is this frame's: the return address is at rbp + 8.
    WU_FRAME_ESTABLISHED = 0,
    /// At a routine's first instruction: the return address is at rsp, rbp
    /// is the caller's.
    WU_FRAME_AT_ENTRY = 1,
    /// After `push rbp`, before `mov rbp, rsp`: the return address is at
    /// rsp + 8, rbp is the caller's.
    WU_FRAME_PUSHED = 2,
    /// After `pop rbp`, at `ret`: the return address is at rsp, rbp is the
    /// caller's.
    WU_FRAME_AT_RETURN = 3,
    /// Not code (padding between routines).
    WU_FRAME_NONE = 4,
} wu_frame_state;
/// Or'ed into a state of an entry trampoline's code: its activation has no
/// wasm frame while the pc is there.
#define WU_FRAME_IN_ENTRY_TRAMPOLINE 0x10

/// What the handler needs of a store: the activation's `embedder_context`
/// points at one of these. Plain memory, so reading it in a signal handler
/// touches no allocator, lock or reference count.
typedef struct wu_store_trap_info {
    wu_runtime_limits *limits;
    /// Sorted by `start`, not overlapping.
    const wu_code_region *regions;
    uint64_t region_count;
    /// The bases of the linear memories of the store's instances, sorted;
    /// each reserves `WU_MEMORY_RESERVATION` bytes. A memory access traps
    /// only by faulting inside one of them.
    const uint64_t *memory_bases;
    uint64_t memory_count;
} wu_store_trap_info;

/// One activation in a snapshot, newest first: where its wasm frames start
/// (the trap's pc, fp and sp for the first; the saved exit pc and fp, sp
/// unknown (0), for the others) and its entry trampoline's frame pointer.
typedef struct wu_snapshot_activation {
    uint64_t pc;
    uint64_t fp;
    uint64_t sp;
    uint64_t entry_fp;
} wu_snapshot_activation;

/// A copy of the trapped stack taken inside the handler, for captures: the
/// stack is dead memory once the handler jumps back. The buffers are
/// allocated when snapshots are enabled; the handler only copies.
typedef struct wu_trap_snapshot {
    /// Registers from the signal context, by DWARF number: rax, rdx, rcx,
    /// rbx, rsi, rdi, rbp, rsp, r8-r15, then rip (16).
    uint64_t registers[WU_ARCH_DWARF_REGISTER_COUNT];
    wu_snapshot_activation *activations;
    uint64_t activation_capacity;
    uint64_t activation_count;
    /// The bytes from the trap's sp up to 16 bytes above the outermost
    /// activation's entry fp (at most `stack_capacity`).
    uint8_t *stack;
    uint64_t stack_capacity;
    uint64_t stack_base;
    uint64_t stack_length;
    /// The range did not fit: only its lowest `stack_capacity` bytes were kept.
    int32_t stack_truncated;
    /// The activation chain broke one of its rules (a cycle, a record out
    /// of stack order, too many records): `activations` holds those found
    /// before it.
    int32_t activations_incomplete;
    int32_t valid;
} wu_trap_snapshot;

/// The calling thread's trap record and preallocated frame buffer.
typedef struct wu_thread_trap_state {
    /// Frames written by the walk callback (the embedder's layout).
    void *frames;
    uint64_t frame_capacity;
    uint64_t frame_count;
    /// The walk callback's summary (the embedder's layout).
    void *walk_result;
    uint64_t pc;
    uint64_t fp;
    uint64_t sp;
    /// `si_addr` of the signal: the faulting address of a memory fault.
    uint64_t fault_address;
    /// Registers from the signal context, by DWARF number (see
    /// `wu_trap_snapshot.registers`): out-of-line trap stubs leave what the
    /// runtime needs to describe the trap in them (the address of an
    /// out-of-bounds access in rax; the instance context in r15).
    uint64_t registers[WU_ARCH_DWARF_REGISTER_COUNT];
    int32_t signal;
    wu_trap_code trap_code;
    /// Non-zero when `wasm_address` holds the wasm address of an
    /// out-of-bounds access.
    int32_t trap_has_address;
    /// The wasm address an out-of-bounds access touched first outside the
    /// memory (from the fault address, or from the stub's rax).
    uint64_t wasm_address;
    /// Non-zero while the handler runs on this thread: a fault inside the
    /// handler itself is never taken for a wasm trap (and tests check that
    /// the handler does not allocate).
    int32_t in_handler;
    /// How many traps the handler has taken on this thread.
    uint64_t trap_count;
    /// When set, the handler fills it at every trap (captures).
    wu_trap_snapshot *snapshot;
    /// Set by the signal handler before it jumps: SIGPROF, blocked while it
    /// ran, was unblocked where the trap interrupted the thread.
    int32_t unblock_sampling;
    /// Non-zero when an interrupt stopped the thread at an instruction that
    /// is no trap site (a signal's stop): the walk starts as a sampling
    /// profiler's does. Zero for a compiled check's interrupt.
    int32_t stopped_anywhere;
} wu_thread_trap_state;

/// Walks the wasm frames from a trap into `state->frames`. Called inside the
/// signal handler; must be async-signal-safe.
typedef void (*wu_trap_walk_fn)(wu_thread_trap_state *state, wu_runtime_limits *limits,
                                uint64_t pc, uint64_t fp, uint64_t sp);

/// Installs the handler for SIGILL, SIGSEGV, SIGBUS and SIGFPE (what wasm
/// can trap with) and SIGABRT and SIGQUIT (never traps), once per process;
/// later calls do nothing. The previous handlers are kept and every signal
/// that is not a wasm trap goes to them — a trap is a fault the kernel
/// raised (si_code > 0) at a trap site of running wasm (a memory access
/// faulting inside its memory's reservation). A crash capture, if armed,
/// is written first. A signal another process sent whose previous handler
/// is the Swift runtime's crash reporter (which returns for those) then
/// gets its default action: the process ends with it, and a core.
void wu_trap_handler_install(wu_trap_walk_fn walk);

/// Called by the handler for a signal that is not a wasm trap, before it is
/// passed on (a fault in host code, SIGABRT): tools write a capture of the
/// thread's wasm here (`wu_crash_capture_write`). Must be
/// async-signal-safe. NULL (the default) for none.
typedef void (*wu_crash_hook)(int signal, uint64_t sp);
void wu_trap_handler_set_crash_hook(wu_crash_hook hook);

/// Called by the handler for every wasm trap, after the walk and before the
/// jump back, with the signal context (`ucontext_t *`). For oracles that
/// unwind the same interrupted stack another way; NULL (the default) for
/// none. Must be async-signal-safe in the situations it is used.
typedef void (*wu_trap_observer_fn)(int signal, void *info, void *ucontext, wu_thread_trap_state *state);
void wu_trap_handler_set_observer(wu_trap_observer_fn observer);

/// Stopping the wasm the calling thread runs, from outside: after this,
/// SIGINT and SIGTERM sent to the process (and `wu_interrupt_request`) stop
/// it as a trap with code `WU_TRAP_INTERRUPT`.
///
/// With `epoch` NULL, at the instruction it is at — walked as the trap
/// handler walks a fault, so the backtrace is where the wasm was. The
/// thread is stopped only in wasm code whose frame is set up (not in a
/// prologue, at a `ret`, in an entry trampoline or in host code): elsewhere
/// the handler asks again 1 ms later (a timer signalling this thread with
/// SIGURG) until it is.
///
/// With `epoch` (the engine's, its code compiled with epoch checks), a stop
/// adds 1 to it and nothing more: the wasm traps at its next check
/// (function entry or loop header), with no signal to it at all.
///
/// Either way a second SIGINT or SIGTERM while the first waits ends the
/// process as it would without us. Returns 0, or -1 with errno (the timer
/// could not be made).
int wu_interrupt_install(uint64_t *epoch);
/// Undoes `wu_interrupt_install`: the default actions again, no timer.
void wu_interrupt_uninstall(void);
/// Asks for the stop without a signal from outside (a timeout): `reason`
/// is what `wu_interrupt_pending` and the trap's signal say (0 for none).
/// Async-signal-safe; from any thread.
void wu_interrupt_request(int reason);
/// The signal (or request reason) that asked for a stop not yet made, or
/// 0; and the one that made the last stop (`wu_interrupt_last`).
int wu_interrupt_pending(void);
int wu_interrupt_last(void);

/// The trap entry of compiled code: an out-of-line trap stub calls it
/// (through the context's `trap` field) instead of executing `ud2`, so a
/// trap other than a memory fault costs no signal. It records the trap as
/// the signal handler does — `pc` is a byte of the stub's call
/// instruction, so the trap frame names the trapping wasm instruction; fp
/// is the trapping frame's — walks, snapshots, calls the observer (with
/// signal 0 and no context) and jumps to the newest activation. `address`
/// is the wasm address of an out-of-bounds access when `code` carries
/// `WU_TRAP_SITE_HAS_ADDRESS`. Never returns.
__attribute__((noreturn)) void wu_trap_raise(void *vmctx, uint64_t code, uint64_t address);

/// After the signal handler jumped back to `wu_enter`: unblocks SIGPROF if
/// the trapped code had it unblocked (the handler blocks it while it runs,
/// and the jump keeps the handler's mask).
void wu_trap_unblock_sampling_after_jump(void);

/// The calling thread's trap state, or NULL before `wu_thread_trap_state_prepare`.
wu_thread_trap_state *wu_thread_trap_state_current(void);

/// Makes the calling thread ready to take traps: an alternate signal stack
/// (unless the thread has one of at least `WU_ALTERNATE_STACK_SIZE` bytes,
/// which is kept) and a trap state whose frame buffer is `frames`
/// (capacity `frame_capacity`) and summary is `walk_result`. The buffers are
/// the caller's; they are released with `release` when the thread exits or
/// calls `wu_thread_trap_state_release`. Returns the state, or NULL if
/// memory ran out.
wu_thread_trap_state *wu_thread_trap_state_prepare(void *frames, uint64_t frame_capacity, void *walk_result,
                                                   void (*release)(void *frames, void *walk_result));

/// Makes every trap on the calling thread fill a snapshot of up to
/// `stack_capacity` bytes of stack and `activation_capacity` activations.
/// The buffers are allocated here and freed with the thread's other trap
/// resources. Returns 0, or -1 if the thread is not prepared or memory ran
/// out.
int wu_thread_trap_state_enable_snapshots(uint64_t stack_capacity, uint64_t activation_capacity);

/// Frees the calling thread's trap resources now rather than at thread exit,
/// and gives the thread back the alternate signal stack it had before
/// `wu_thread_trap_state_prepare` (the Swift runtime installs a small one on
/// the main thread). The thread must not be running wasm.
void wu_thread_trap_state_release(void);

/// The handler's own signal stack size.
#define WU_ALTERNATE_STACK_SIZE (64 * 1024)

/// Peer snapshots: at a trap whose store takes a coredump, the other
/// threads running wasm copy their own stacks (docs/post-mortem.md).
/// What a peer snapshot found of a thread (`wu_peer.where`).
enum {
    WU_PEER_NOT_IN_WASM = 1,
    /// Stopped in wasm code at an established frame: its registers start
    /// the walk; it waits, stopped, until `wu_peers_release`.
    WU_PEER_IN_WASM = 2,
    /// In a host call: its exit record starts the walk; left running.
    WU_PEER_IN_HOST_CALL = 3,
    /// It did not answer in time (signals blocked, or stuck).
    WU_PEER_TIMED_OUT = 4,
    /// (Internal: asked again shortly.)
    WU_PEER_RETRY = 5,
    /// The thread blocks the signal (it unblocks it when it first enters
    /// wasm; it blocked it again since).
    WU_PEER_SIGNAL_BLOCKED = 6,
};

/// A request for one thread's snapshot: `tid` and the snapshot's buffers
/// (`stack`, `stack_capacity`, `activations`, `activation_capacity`) are
/// the caller's; the handler fills the rest.
typedef struct wu_peer {
    int64_t tid;
    int32_t where;
    /// The newest activation's embedder context (its store's trap info).
    const void *store;
    wu_trap_snapshot snapshot;
} wu_peer;

/// The ids of the other prepared threads (at most `capacity` written);
/// returns how many there are.
int wu_peer_threads(int64_t *tids, int capacity);

/// Signals `peer->tid` and waits (up to `timeout_ns`, asking again while
/// the thread is at a place no snapshot can start: a prologue, a
/// trampoline) until its handler has filled `peer`. Not in a signal
/// handler; one requester at a time (others wait).
void wu_peer_snapshot(wu_peer *peer, uint64_t timeout_ns);

/// Starts a coredump's peer snapshots: one requester at a time (the next
/// waits here until `wu_peers_release`).
void wu_peers_begin(void);

/// Lets every thread stopped by the peer snapshots go on; ends the request.
void wu_peers_release(void);

/// Whether the calling thread is in the peer handler (tests prove it
/// allocates nothing), and how many requests the handler has answered.
int wu_peer_in_handler(void);
uint64_t wu_peer_answer_count(void);

/// The signal peer snapshots use (SIGRTMIN + 4): its handler is installed,
/// and the signal unblocked, on each thread's first entry into wasm.
int wu_peer_signal(void);

#ifdef __cplusplus
}
#endif

#endif
