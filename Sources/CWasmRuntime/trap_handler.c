#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <dlfcn.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>
#include <time.h>

#include "wasm_jit_abi.h"
#include "wasm_trap_handler.h"
#include "runtime_thread.h"
#include "wasm_signal_context.h"

// MARK: - Per-thread state

_Thread_local wu_thread_trap_state *wu_runtime_thread_state __attribute__((tls_model("initial-exec"))) = NULL;

typedef struct thread_resources {
    wu_thread_trap_state state;
    void (*release)(void *frames, void *walk_result);
    /// Our alternate signal stack (a mapping with a guard page), if the
    /// thread's own was missing or too small; NULL when the thread's is used.
    void *alternate_stack;
    size_t alternate_stack_size;
    /// The thread's alternate stack before ours, given back on release.
    stack_t previous_alternate_stack;
    wu_trap_snapshot snapshot;
    /// For peer snapshots (below): the thread's id, the request a peer
    /// handler takes (NULL when none), its answer, and the list of every
    /// prepared thread.
    int64_t tid;
    /// The thread's newest activation (its thread-local variable): NULL
    /// while it runs no wasm.
    wu_activation *const *activation_head;
    wu_peer *_Atomic peer_request;
    _Atomic int32_t peer_answer;
    struct thread_resources *next_thread;
    struct thread_resources *previous_thread;
} thread_resources;

/// Every prepared thread, for peer snapshots; changed and walked under the
/// mutex (never in a signal handler).
static pthread_mutex_t threads_mutex = PTHREAD_MUTEX_INITIALIZER;
static thread_resources *threads_list = NULL;

static pthread_key_t resources_key;
static pthread_once_t resources_key_once = PTHREAD_ONCE_INIT;

static void free_snapshot_buffers(wu_trap_snapshot *snapshot) {
    free(snapshot->activations);
    free(snapshot->stack);
    memset(snapshot, 0, sizeof *snapshot);
}

/// Frees a thread's trap resources. Runs at thread exit (the key's
/// destructor) or from `wu_thread_trap_state_release`, on that thread.
static void release_thread_resources(void *pointer) {
    thread_resources *resources = pointer;
    // Unlisted first: a peer snapshot in progress holds the mutex, and this
    // thread's handler still answers it meanwhile (the state is still set).
    pthread_mutex_lock(&threads_mutex);
    if (resources->previous_thread) resources->previous_thread->next_thread = resources->next_thread;
    else threads_list = resources->next_thread;
    if (resources->next_thread) resources->next_thread->previous_thread = resources->previous_thread;
    pthread_mutex_unlock(&threads_mutex);
    wu_runtime_thread_state = NULL;
    if (resources->alternate_stack) {
        // Give the thread its previous alternate stack back (or none).
        stack_t previous = resources->previous_alternate_stack;
        if (previous.ss_flags & SS_DISABLE) {
            previous = (stack_t){.ss_flags = SS_DISABLE};
        } else {
            previous.ss_flags = 0;
        }
        sigaltstack(&previous, NULL);
        munmap(resources->alternate_stack, resources->alternate_stack_size);
    }
    free_snapshot_buffers(&resources->snapshot);
    if (resources->release) resources->release(resources->state.frames, resources->state.walk_result);
    free(resources);
}

static void make_resources_key(void) { pthread_key_create(&resources_key, release_thread_resources); }

static void install_peer_handler_once(void);
int wu_peer_signal(void);

wu_thread_trap_state *wu_thread_trap_state_current(void) { return wu_runtime_thread_state; }

wu_thread_trap_state *wu_thread_trap_state_prepare(void *frames, uint64_t frame_capacity, void *walk_result,
                                                   void (*release)(void *, void *)) {
    if (wu_runtime_thread_state) return wu_runtime_thread_state;
    pthread_once(&resources_key_once, make_resources_key);
    thread_resources *resources = calloc(1, sizeof *resources);
    if (!resources) return NULL;
    resources->state.frames = frames;
    resources->state.frame_capacity = frame_capacity;
    resources->state.walk_result = walk_result;
    resources->release = release;

    // The handler must run even when the thread's stack is exhausted, so it
    // needs a stack of its own. Keep the one the thread already has if it
    // is big enough; otherwise install ours and remember the thread's (the
    // Swift runtime gives the main thread a smaller one) to give it back.
    stack_t current;
    if (sigaltstack(NULL, &current) == 0 &&
        ((current.ss_flags & SS_DISABLE) || current.ss_size < WU_ALTERNATE_STACK_SIZE)) {
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        size_t size = WU_ALTERNATE_STACK_SIZE + page;
        void *mapping = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mapping != MAP_FAILED) {
            mprotect(mapping, page, PROT_NONE);  // guard page below the stack
            stack_t stack = {.ss_sp = (char *)mapping + page, .ss_size = WU_ALTERNATE_STACK_SIZE, .ss_flags = 0};
            if (sigaltstack(&stack, NULL) == 0) {
                resources->alternate_stack = mapping;
                resources->alternate_stack_size = size;
                resources->previous_alternate_stack = current;
            } else {
                munmap(mapping, size);
            }
        }
    }
    pthread_setspecific(resources_key, resources);
    wu_runtime_thread_state = &resources->state;
    resources->tid = (int64_t)syscall(SYS_gettid);
    resources->activation_head = wu_current_activation_address();
    // Peer snapshots reach this thread by a signal: handled, and not
    // blocked here (a thread made by a dispatch worker inherits a mask
    // that blocks the real-time signals).
    install_peer_handler_once();
    sigset_t peer;
    sigemptyset(&peer);
    sigaddset(&peer, wu_peer_signal());
    pthread_sigmask(SIG_UNBLOCK, &peer, NULL);
    pthread_mutex_lock(&threads_mutex);
    resources->next_thread = threads_list;
    if (threads_list) threads_list->previous_thread = resources;
    threads_list = resources;
    pthread_mutex_unlock(&threads_mutex);
    return wu_runtime_thread_state;
}

int wu_thread_trap_state_enable_snapshots(uint64_t stack_capacity, uint64_t activation_capacity) {
    if (!wu_runtime_thread_state) return -1;
    thread_resources *resources = (thread_resources *)wu_runtime_thread_state;  // `state` is the first member
    if (wu_runtime_thread_state->snapshot) return 0;
    wu_trap_snapshot *snapshot = &resources->snapshot;
    snapshot->activations = calloc(activation_capacity ? activation_capacity : 1, sizeof *snapshot->activations);
    snapshot->stack = malloc(stack_capacity ? stack_capacity : 1);
    if (!snapshot->activations || !snapshot->stack) {
        free_snapshot_buffers(snapshot);
        return -1;
    }
    snapshot->activation_capacity = activation_capacity;
    snapshot->stack_capacity = stack_capacity;
    wu_runtime_thread_state->snapshot = snapshot;
    return 0;
}

void wu_thread_trap_state_release(void) {
    if (!wu_runtime_thread_state) return;
    thread_resources *resources = (thread_resources *)wu_runtime_thread_state;
    pthread_setspecific(resources_key, NULL);
    release_thread_resources(resources);
}

// MARK: - The handler

// The signals a wasm instruction can raise, then those that only ever end
// the process (a crash capture is written first, if one is armed).
static const int handled_signals[] = {SIGILL, SIGSEGV, SIGBUS, SIGFPE, SIGABRT, SIGQUIT};
#define SIGNAL_COUNT (sizeof handled_signals / sizeof handled_signals[0])
static struct sigaction previous_actions[SIGNAL_COUNT];
/// Whether each previous handler is the Swift runtime's crash reporter,
/// which prints its report and returns: for a signal a process sent
/// (`kill -ABRT`), the process then went on running.
static int previous_is_swift_reporter[SIGNAL_COUNT];
static wu_trap_walk_fn walk_callback;
static wu_trap_observer_fn _Atomic observer_callback;
static wu_crash_hook _Atomic crash_hook;

void wu_trap_handler_set_crash_hook(wu_crash_hook hook) { atomic_store(&crash_hook, hook); }

void wu_trap_handler_set_observer(wu_trap_observer_fn observer) { observer_callback = observer; }
static pthread_once_t install_once = PTHREAD_ONCE_INIT;

static const wu_code_region *find_region(const wu_store_trap_info *info, uint64_t pc) {
    uint64_t low = 0, high = info->region_count;
    while (low < high) {
        uint64_t mid = low + (high - low) / 2;
        if (info->regions[mid].end <= pc) low = mid + 1;
        else high = mid;
    }
    if (low < info->region_count && info->regions[low].start <= pc && pc < info->regions[low].end)
        return &info->regions[low];
    return NULL;
}

/// The base of the store's memory whose reservation holds `address`, or 0.
static uint64_t memory_containing(const wu_store_trap_info *info, uint64_t address) {
    uint64_t low = 0, high = info->memory_count;
    while (low < high) {
        uint64_t mid = low + (high - low) / 2;
        if (info->memory_bases[mid] <= address) low = mid + 1;
        else high = mid;
    }
    if (low == 0) return 0;
    uint64_t base = info->memory_bases[low - 1];
    return address - base < WU_MEMORY_RESERVATION ? base : 0;
}

/// The trap code of the instruction at `pc`, or -1 if it is no trap site.
static int trap_code_at(const wu_code_region *region, uint64_t pc) {
    uint64_t offset = pc - region->start;
    uint64_t low = 0, high = region->trap_count;
    while (low < high) {
        uint64_t mid = low + (high - low) / 2;
        if (region->trap_offsets[mid] < offset) low = mid + 1;
        else high = mid;
    }
    if (low < region->trap_count && region->trap_offsets[low] == offset) return region->trap_codes[low];
    return -1;
}

/// Gives `signal` its default action from the moment the handler returns.
/// A fault then happens again at the faulting instruction. A signal that
/// was sent is sent again to this thread (with the sender's siginfo),
/// blocked until the handler
/// returns: it is delivered in the context it interrupted, so the process
/// dies there and its core shows that thread where it was (in wasm, say),
/// not in this handler.
static void die_on_return(int signal, int sent, siginfo_t *info) {
    struct sigaction fallback;
    memset(&fallback, 0, sizeof fallback);
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    sigaction(signal, &fallback, NULL);
    if (!sent) return;
    sigset_t blocked;
    sigemptyset(&blocked);
    sigaddset(&blocked, signal);
    pthread_sigmask(SIG_BLOCK, &blocked, NULL);
    // With the sender's siginfo (who sent it), which the core keeps.
    siginfo_t again = *info;
    if (syscall(SYS_rt_tgsigqueueinfo, getpid(), syscall(SYS_gettid), signal, &again) != 0)
        syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), signal);
}

/// Hands a fault that is not a wasm trap to whatever handled the signal
/// before us, exactly as if we were not installed:
///
/// * a function (with or without SA_SIGINFO): called, on our alternate
///   stack, with the same arguments;
/// * SIG_DFL: the action is reset to the default and the handler returns,
///   so the faulting instruction runs again and the process dies of the
///   signal (a signal sent with kill/raise is raised again instead);
/// * SIG_IGN: a sent signal is ignored; a fault cannot be ignored (the
///   kernel would kill the process), so it gets the default action.
///
/// `sa_handler` and `sa_sigaction` share storage, and SIG_DFL/SIG_IGN are
/// stored there whatever the flags say: compare the value before calling it.
static void chain(int signal, siginfo_t *info, void *context) {
    for (size_t i = 0; i < SIGNAL_COUNT; i++) {
        if (handled_signals[i] != signal) continue;
        struct sigaction *previous = &previous_actions[i];
        void (*handler)(int) = previous->sa_handler;
        int sent = info->si_code <= 0;
        if (handler == SIG_IGN && sent) return;
        if (handler == SIG_DFL || handler == SIG_IGN) {
            die_on_return(signal, sent, info);
            return;
        }
        if (previous->sa_flags & SA_SIGINFO) {
            previous->sa_sigaction(signal, info, context);
        } else {
            handler(signal);
        }
        // Swift's crash reporter returns after its report; a fatal signal
        // another process sent must still end this one, with its default
        // action (a core).
        if (sent && previous_is_swift_reporter[i]) die_on_return(signal, sent, info);
        return;
    }
}

/// Copies registers, activations and the stack of a trap into the thread's
/// snapshot: plain loads and stores, nothing else. The activation records
/// are followed as every reader follows them (`wasm_activation_chain.h`):
/// a corrupt or cyclic chain ends, and the snapshot says it is incomplete.
static void take_snapshot(wu_trap_snapshot *snapshot, const uint64_t *registers, wu_activation *activation,
                          const wu_store_trap_info *store, uint64_t pc, uint64_t fp, uint64_t sp, uint64_t copy_from) {
    for (int i = 0; i < WU_ARCH_DWARF_REGISTER_COUNT; i++) snapshot->registers[i] = registers[i];
    uint64_t count = 0;
    uint64_t outermost_entry = store->limits->last_wasm_entry_fp;
    if (count < snapshot->activation_capacity) {
        snapshot->activations[count] = (wu_snapshot_activation){pc, fp, sp, store->limits->last_wasm_entry_fp};
        count++;
    }
    wu_activation_chain chain = wu_activation_chain_start(activation, WU_MAXIMUM_ACTIVATION_RECORDS);
    while (count < snapshot->activation_capacity) {
        wu_chain_exit step = wu_activation_chain_next_exit(chain, store->limits, WU_CHAIN_STOP_AT_NO_WASM);
        chain = step.chain;
        wu_saved_exit saved = step.exit;
        if (saved.exit_pc == 0) break;
        snapshot->activations[count] = (wu_snapshot_activation){saved.exit_pc, saved.exit_fp, 0, saved.entry_fp};
        outermost_entry = saved.entry_fp;
        count++;
    }
    snapshot->activations_incomplete = chain.failure != WU_CHAIN_COMPLETE;
    snapshot->activation_count = count;
    uint64_t end = outermost_entry + 16;
    uint64_t length = end > copy_from ? end - copy_from : 0;
    snapshot->stack_truncated = length > snapshot->stack_capacity;
    if (length > snapshot->stack_capacity) length = snapshot->stack_capacity;
    const uint8_t *source = (const uint8_t *)(uintptr_t)copy_from;
    for (uint64_t i = 0; i < length; i++) snapshot->stack[i] = source[i];
    snapshot->stack_base = copy_from;
    snapshot->stack_length = length;
    snapshot->valid = 1;
}

/// A signal stops wasm at the interrupted instruction (a trap, or an
/// interrupt): the registers of the signal context, recorded first (the
/// caller then records why).
static void begin_stop(wu_thread_trap_state *state, ucontext_t *uc) {
    state->in_handler = 1;
    wu_context_dwarf_registers(uc, state->registers);
    state->pc = wu_context_pc(uc);
    state->fp = wu_context_fp(uc);
    state->sp = wu_context_sp(uc);
}

/// The rest of a stop: the walk, the snapshot, the observer, and the jump
/// back to the activation's `wu_enter`.
__attribute__((noreturn)) static void finish_stop(wu_thread_trap_state *state, wu_activation *activation,
                                                  const wu_store_trap_info *store, int signal, siginfo_t *info,
                                                  ucontext_t *uc, int saved_errno) {
    uint64_t pc = state->pc, fp = state->fp, sp = state->sp;
    state->trap_count += 1;
    walk_callback(state, store->limits, pc, fp, sp);
    if (state->snapshot) take_snapshot(state->snapshot, state->registers, activation, store, pc, fp, sp, sp);
    state->in_handler = 0;
    wu_trap_observer_fn observer = observer_callback;
    if (observer) observer(signal, info, uc, state);
    errno = saved_errno;
    // SIGPROF is blocked while this handler runs (its sa_mask): a sample
    // here, on the alternate stack, would find the exit record of the last
    // host or runtime call wasm made, not the trapping frame. The jump
    // keeps the mask (no sigprocmask per entry), so wu_enter unblocks it
    // after the jump if the interrupted code had it unblocked.
    state->unblock_sampling = !sigismember(&uc->uc_sigmask, SIGPROF);
    // Only wasm frames and trampolines lie between here and the frame of
    // wu_enter that set this jump target.
    wu_jump_to_activation_record(activation, WU_INVOKE_TRAPPED);
}

static void note_compiled_interrupt(void);

static void trap_handler(int signal, siginfo_t *info, void *context) {
    int saved_errno = errno;
    wu_activation *activation = wu_current_activation();
    wu_thread_trap_state *state = wu_runtime_thread_state;
    ucontext_t *uc = context;
    uint64_t pc = wu_context_pc(uc);
    uint64_t sp = wu_context_sp(uc);

    // Ours only if the kernel raised it for a fault (si_code > 0: a signal
    // another process or thread sent is never a trap, whatever it
    // interrupted), this thread can take traps and is not already inside
    // this handler, is running wasm (it has an activation that set a jump
    // buffer: after the outermost call returns there is none), the pc lies
    // in the code of the store that entered it, and the instruction is one
    // that traps. Anything else is a fault of the host (or of this handler)
    // and must crash as it would without us.
    int trap_signal = signal == SIGILL || signal == SIGSEGV || signal == SIGBUS || signal == SIGFPE;
    const wu_store_trap_info *store =
        trap_signal && info->si_code > 0 && activation && activation->jump_buffer ? activation->embedder_context : NULL;
    const wu_code_region *region = store && state && !state->in_handler ? find_region(store, pc) : NULL;
    if (!region) {
        // A fault of the host: with a crash capture asked for, the wasm
        // frames below are written to it first.
        wu_crash_hook hook = atomic_load(&crash_hook);
        if (hook && (!state || !state->in_handler)) hook(signal, sp);
        errno = saved_errno;
        chain(signal, info, context);
        return;
    }
    int code = trap_code_at(region, pc);
    if (code < 0 && (signal == SIGSEGV || signal == SIGBUS)) {
        // No trap site, but a fault on the stack below the stack pointer
        // (a guard page): the wasm stack ran out past the limit check.
        uint64_t address = (uint64_t)info->si_addr;
        if (address < sp + 4096 && address + 1024 * 1024 > sp) code = WU_TRAP_STACK_OVERFLOW;
    }
    uint64_t memory_base = 0;
    if (code >= 0 && (code & WU_TRAP_SITE_MEMORY_ACCESS)) {
        // A load or store of linear memory traps only by faulting inside
        // the reservation of one of the store's memories. A SIGFPE or
        // SIGILL there, or a fault anywhere else (host memory), is a bug in
        // the runtime: not a wasm trap.
        memory_base = memory_containing(store, (uint64_t)(uintptr_t)info->si_addr);
        if ((signal != SIGSEGV && signal != SIGBUS) || !memory_base) code = -1;
    }
    if (code < 0) {
        // A fault in generated code that no wasm instruction explains is a
        // bug in the runtime, not a wasm trap: crash as any bug would.
        errno = saved_errno;
        chain(signal, info, context);
        return;
    }

    begin_stop(state, uc);
    state->fault_address = (uint64_t)info->si_addr;
    state->signal = signal;
    state->trap_code = (wu_trap_code)(code & ~WU_TRAP_SITE_FLAGS);
    state->stopped_anywhere = 0;
    if (state->trap_code == WU_TRAP_INTERRUPT) note_compiled_interrupt();
    state->trap_has_address = (code & WU_TRAP_SITE_FLAGS) != 0;
    if (code & WU_TRAP_SITE_MEMORY_ACCESS) {
        // The first byte the access touched outside the memory, in wasm
        // terms: the fault address minus the base of the memory it faulted in.
        state->wasm_address = state->fault_address - memory_base;
    } else {
        state->wasm_address = state->registers[0];
    }
    finish_stop(state, activation, store, signal, info, uc, saved_errno);
}

// MARK: - Interrupts

/// The frame state at `pc` in `region` (`wu_frame_state`), or -1.
static int frame_state_at(const wu_code_region *region, uint64_t pc) {
    if (!region->frame_offsets || !region->frame_states) return -1;
    uint64_t offset = pc - region->start;
    uint64_t low = 0, high = region->frame_count;
    while (low < high) {
        uint64_t mid = low + (high - low) / 2;
        if (region->frame_offsets[mid] <= offset) low = mid + 1;
        else high = mid;
    }
    return low == 0 ? -1 : region->frame_states[low - 1];
}

static _Atomic int interrupt_pending = 0;
static _Atomic int interrupt_last = 0;
static _Atomic int interrupt_installed = 0;
static _Atomic pid_t interrupt_thread = 0;
/// The engine's epoch when its code has compiled checks, or NULL.
static _Atomic(uint64_t *) interrupt_epoch = NULL;
static timer_t interrupt_timer;
static struct sigaction interrupt_previous[3];
static const int interrupt_signals[3] = {SIGINT, SIGTERM, SIGURG};

/// Asks again in 1 ms (the timer signals the wasm thread with SIGURG).
static void interrupt_retry(void) {
    struct itimerspec again;
    memset(&again, 0, sizeof again);
    again.it_value.tv_nsec = 1000000;
    timer_settime(interrupt_timer, 0, &again, NULL);
}

static void interrupt_handler(int signal, siginfo_t *info, void *context) {
    (void)info;
    int saved_errno = errno;
    if (signal != SIGURG) {
        int expected = 0;
        if (!atomic_compare_exchange_strong(&interrupt_pending, &expected, signal) && expected == signal) {
            // Asked twice: the process ends of it, as without us.
            struct sigaction fallback;
            memset(&fallback, 0, sizeof fallback);
            fallback.sa_handler = SIG_DFL;
            sigaction(signal, &fallback, NULL);
            raise(signal);
            errno = saved_errno;
            return;
        }
    }
    int asked = atomic_load(&interrupt_pending);
    if (!asked) {
        errno = saved_errno;
        return;
    }
    uint64_t *epoch = atomic_load(&interrupt_epoch);
    if (epoch) {
        // Compiled checks stop the wasm at the next function entry or loop
        // header; nothing to do in this context.
        __atomic_fetch_add(epoch, 1, __ATOMIC_SEQ_CST);
        errno = saved_errno;
        return;
    }
    if ((pid_t)syscall(SYS_gettid) != atomic_load(&interrupt_thread)) {
        // Delivered to another thread: the timer asks the wasm thread.
        interrupt_retry();
        errno = saved_errno;
        return;
    }
    wu_activation *activation = wu_current_activation();
    wu_thread_trap_state *state = wu_runtime_thread_state;
    ucontext_t *uc = context;
    uint64_t pc = wu_context_pc(uc);
    const wu_store_trap_info *store = activation && activation->jump_buffer ? activation->embedder_context : NULL;
    const wu_code_region *region = store && state && !state->in_handler ? find_region(store, pc) : NULL;
    int frame = region ? frame_state_at(region, pc) : -1;
    if (frame != WU_FRAME_ESTABLISHED) {
        // Host code, a prologue, a `ret`, an entry trampoline: not a place
        // to stop at. Again shortly.
        interrupt_retry();
        errno = saved_errno;
        return;
    }
    atomic_store(&interrupt_pending, 0);
    atomic_store(&interrupt_last, asked);
    begin_stop(state, uc);
    state->fault_address = 0;
    state->signal = asked > 0 ? asked : 0;
    state->stopped_anywhere = 1;
    state->trap_code = WU_TRAP_INTERRUPT;
    state->trap_has_address = 0;
    state->wasm_address = 0;
    finish_stop(state, activation, store, signal, info, uc, saved_errno);
}

int wu_interrupt_install(uint64_t *epoch) {
    if (atomic_load(&interrupt_installed)) return 0;
    atomic_store(&interrupt_epoch, epoch);
    struct sigevent event;
    memset(&event, 0, sizeof event);
    event.sigev_notify = SIGEV_THREAD_ID;
    event.sigev_signo = SIGURG;
    event._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    if (timer_create(CLOCK_MONOTONIC, &event, &interrupt_timer) != 0) return -1;
    atomic_store(&interrupt_thread, (pid_t)syscall(SYS_gettid));
    atomic_store(&interrupt_pending, 0);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = interrupt_handler;
    // SA_NODEFER: the handler may leave by a long jump (as the trap
    // handler); no sample while it runs.
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    sigaddset(&action.sa_mask, SIGPROF);
    for (int i = 0; i < 3; i++) sigaction(interrupt_signals[i], &action, &interrupt_previous[i]);
    // The thread may have inherited a mask that blocks them (thread pools
    // do): the timer's SIGURG must reach it.
    sigset_t ours;
    sigemptyset(&ours);
    for (int i = 0; i < 3; i++) sigaddset(&ours, interrupt_signals[i]);
    pthread_sigmask(SIG_UNBLOCK, &ours, NULL);
    atomic_store(&interrupt_installed, 1);
    return 0;
}

void wu_interrupt_uninstall(void) {
    if (!atomic_exchange(&interrupt_installed, 0)) return;
    for (int i = 0; i < 3; i++) sigaction(interrupt_signals[i], &interrupt_previous[i], NULL);
    timer_delete(interrupt_timer);
    atomic_store(&interrupt_pending, 0);
    atomic_store(&interrupt_epoch, NULL);
}

void wu_interrupt_request(int reason) {
    int expected = 0;
    atomic_compare_exchange_strong(&interrupt_pending, &expected, reason == 0 ? -1 : reason);
    if (!atomic_load(&interrupt_installed)) return;
    uint64_t *epoch = atomic_load(&interrupt_epoch);
    if (epoch) __atomic_fetch_add(epoch, 1, __ATOMIC_SEQ_CST);
    else interrupt_retry();
}

/// A compiled epoch check trapped: the stop asked for (if any) is made.
static void note_compiled_interrupt(void) {
    int asked = atomic_exchange(&interrupt_pending, 0);
    atomic_store(&interrupt_last, asked ? asked : -1);
}

int wu_interrupt_pending(void) { return atomic_load(&interrupt_pending); }
int wu_interrupt_last(void) { return atomic_load(&interrupt_last); }

__attribute__((noreturn, noinline)) void wu_trap_raise(void *vmctx, uint64_t code, uint64_t address) {
    int saved_errno = errno;
    wu_activation *activation = wu_current_activation();
    wu_thread_trap_state *state = wu_runtime_thread_state;
    const wu_store_trap_info *store = activation ? activation->embedder_context : NULL;
    // The stub called us: our caller's frame is the trapping wasm frame
    // (the stub belongs to it and pushed nothing), the return address is
    // right after the stub's call.
    uint64_t *frame = __builtin_frame_address(0);
    uint64_t fp = frame[0];
    uint64_t return_address = (uint64_t)__builtin_return_address(0);
    uint64_t pc = return_address - 1;
    uint64_t sp = (uint64_t)(uintptr_t)frame + 16;
    if (!state || !store || !activation->jump_buffer || state->in_handler) {
        // Compiled code only runs inside an activation of a prepared
        // thread: anything else is a bug in the runtime.
        abort();
    }
    state->in_handler = 1;
    for (int i = 0; i < 17; i++) state->registers[i] = 0;
    state->registers[0] = address;
    state->registers[6] = fp;
    state->registers[7] = sp;
    state->registers[15] = (uint64_t)(uintptr_t)vmctx;
    state->registers[16] = pc;
    state->pc = pc;
    state->fp = fp;
    state->sp = sp;
    state->fault_address = 0;
    state->signal = 0;
    state->trap_code = (wu_trap_code)(code & ~WU_TRAP_SITE_FLAGS);
    state->trap_has_address = (code & WU_TRAP_SITE_HAS_ADDRESS) != 0;
    state->wasm_address = address;
    state->stopped_anywhere = 0;
    if (state->trap_code == WU_TRAP_INTERRUPT) note_compiled_interrupt();
    state->trap_count += 1;
    walk_callback(state, store->limits, pc, fp, sp);
    if (state->snapshot) take_snapshot(state->snapshot, state->registers, activation, store, pc, fp, sp, sp);
    state->in_handler = 0;
    wu_trap_observer_fn observer = observer_callback;
    if (observer) observer(0, NULL, NULL, state);
    errno = saved_errno;
    wu_jump_to_activation_record(activation, WU_INVOKE_TRAPPED);
}

/// Whether `handler` is a function of the Swift runtime library (its crash
/// reporter). Called when installing, not in a signal handler.
static int is_swift_runtime_function(void (*handler)(int)) {
    Dl_info where;
    if (handler == SIG_DFL || handler == SIG_IGN || !dladdr((void *)handler, &where) || !where.dli_fname) return 0;
    return strstr(where.dli_fname, "libswiftCore") != NULL;
}

static void install(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = trap_handler;
    // SA_NODEFER: the handler leaves by a long jump without restoring a
    // mask, so the signal must not be blocked while it runs.
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    // No profiler sample while the handler runs (see the jump at its end).
    sigaddset(&action.sa_mask, SIGPROF);
    for (size_t i = 0; i < SIGNAL_COUNT; i++) {
        sigaction(handled_signals[i], &action, &previous_actions[i]);
        previous_is_swift_reporter[i] = is_swift_runtime_function(previous_actions[i].sa_handler);
    }
}

void wu_trap_unblock_sampling_after_jump(void) {
    wu_thread_trap_state *state = wu_runtime_thread_state;
    if (!state || !state->unblock_sampling) return;
    state->unblock_sampling = 0;
    sigset_t profiling;
    sigemptyset(&profiling);
    sigaddset(&profiling, SIGPROF);
    pthread_sigmask(SIG_UNBLOCK, &profiling, NULL);
}

void wu_trap_handler_install(wu_trap_walk_fn walk) {
    walk_callback = walk;
    pthread_once(&install_once, install);
}

// MARK: - Peer snapshots

// At a trap whose store takes a coredump, the trapping thread asks every
// other thread running wasm to snapshot its own stack: a signal whose
// handler copies the interrupted thread's registers, activations and stack
// into the requester's buffers, as a trap's snapshot, and answers. A thread
// stopped in wasm code then waits in the handler until the requester lets
// it go (it holds no lock there: the requester may allocate); a thread in
// a host call is left running (its wasm frames are below its exit record
// and were copied).

#include <linux/futex.h>

static _Atomic int peer_signal_installed = 0;
static pthread_once_t peer_install_once = PTHREAD_ONCE_INIT;
/// Changes when the requester lets stopped peers go.
static _Atomic uint32_t peers_generation = 0;
/// Set while this thread runs the peer handler (tests prove it allocates
/// nothing), and how many requests the handler has answered.
static _Thread_local int peer_in_handler __attribute__((tls_model("initial-exec"))) = 0;
static _Atomic uint64_t peer_answers = 0;

int wu_peer_in_handler(void) { return peer_in_handler; }
uint64_t wu_peer_answer_count(void) { return atomic_load(&peer_answers); }

static long futex(_Atomic uint32_t *address, int operation, uint32_t value, const struct timespec *timeout) {
    return syscall(SYS_futex, (uint32_t *)address, operation, value, timeout, NULL, 0);
}

int wu_peer_signal(void) { return SIGRTMIN + 4; }

/// What the interrupted thread can give: `where` (WU_PEER_*).
static int32_t peer_snapshot_here(thread_resources *resources, wu_peer *peer, ucontext_t *uc) {
    wu_thread_trap_state *state = &resources->state;
    wu_activation *activation = wu_current_activation();
    // Entering or leaving an activation: its fields are changing.
    if (wu_activation_in_transition()) return WU_PEER_RETRY;
    if (!activation || !activation->jump_buffer) return WU_PEER_NOT_IN_WASM;
    if (state->in_handler) return WU_PEER_RETRY;
    const wu_store_trap_info *store = activation->embedder_context;
    if (!store) return WU_PEER_NOT_IN_WASM;
    uint64_t registers[WU_ARCH_DWARF_REGISTER_COUNT];
    wu_context_dwarf_registers(uc, registers);
    uint64_t pc = wu_context_pc(uc), fp = wu_context_fp(uc), sp = wu_context_sp(uc);
    peer->store = store;
    const wu_code_region *region = find_region(store, pc);
    if (region) {
        // In wasm: from the registers, at an established frame only.
        if (frame_state_at(region, pc) != WU_FRAME_ESTABLISHED) return WU_PEER_RETRY;
        take_snapshot(&peer->snapshot, registers, activation, store, pc, fp, sp, sp);
        return WU_PEER_IN_WASM;
    }
    uint64_t exit_pc = store->limits->last_wasm_exit_pc, exit_fp = store->limits->last_wasm_exit_fp;
    // The exit record counts only above sp (as the sampler's rule): one
    // below belongs to a host call that has returned (the record is not
    // cleared when wasm resumes).
    if (exit_pc != 0 && exit_fp != 0 && exit_fp >= sp) {
        // In a host call (or what it called): from its exit record; the
        // copy starts at the interrupted sp, below the host frames.
        take_snapshot(&peer->snapshot, registers, activation, store, exit_pc, exit_fp, 0, sp);
        return WU_PEER_IN_HOST_CALL;
    }
    // Between wasm and the host (a trampoline, the runtime's entry): soon.
    return WU_PEER_RETRY;
}

static void peer_handler(int signal, siginfo_t *info, void *context) {
    (void)signal;
    (void)info;
    int saved_errno = errno;
    thread_resources *resources = (thread_resources *)wu_runtime_thread_state;
    wu_peer *peer = resources ? atomic_exchange(&resources->peer_request, NULL) : NULL;
    if (!peer) {
        errno = saved_errno;
        return;
    }
    peer_in_handler = 1;
    int32_t where = peer_snapshot_here(resources, peer, context);
    peer->where = where;
    uint32_t generation = atomic_load(&peers_generation);
    atomic_fetch_add(&peer_answers, 1);
    atomic_store(&resources->peer_answer, where);
    futex((_Atomic uint32_t *)&resources->peer_answer, FUTEX_WAKE_PRIVATE, 1, NULL);
    if (where == WU_PEER_IN_WASM) {
        // Stopped until the requester is done reading (bounded: it lets
        // every peer go when it has written the coredump).
        while (atomic_load(&peers_generation) == generation) futex(&peers_generation, FUTEX_WAIT_PRIVATE, generation, NULL);
    }
    peer_in_handler = 0;
    errno = saved_errno;
}

static void install_peer_handler(void);
static void install_peer_handler_once(void) { pthread_once(&peer_install_once, install_peer_handler); }

static void install_peer_handler(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = peer_handler;
    action.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    if (sigaction(wu_peer_signal(), &action, NULL) == 0) atomic_store(&peer_signal_installed, 1);
}

int wu_peer_threads(int64_t *tids, int capacity) {
    int64_t self = (int64_t)syscall(SYS_gettid);
    int count = 0;
    pthread_mutex_lock(&threads_mutex);
    for (thread_resources *thread = threads_list; thread; thread = thread->next_thread) {
        if (thread->tid == self) continue;
        if (count < capacity) tids[count] = thread->tid;
        count++;
    }
    pthread_mutex_unlock(&threads_mutex);
    return count;
}

static uint64_t now_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

/// Whether `tid` blocks the peer signal now (its /proc status' SigBlk).
static int peer_signal_blocked(int64_t tid) {
    char path[64], text[4096];
    snprintf(path, sizeof path, "/proc/self/task/%lld/status", (long long)tid);
    FILE *file = fopen(path, "r");
    if (!file) return 0;
    int blocked = 0;
    while (fgets(text, sizeof text, file)) {
        if (strncmp(text, "SigBlk:", 7) == 0) {
            unsigned long long mask = strtoull(text + 7, NULL, 16);
            blocked = (int)((mask >> (wu_peer_signal() - 1)) & 1);
            break;
        }
    }
    fclose(file);
    return blocked;
}

void wu_peer_snapshot(wu_peer *peer, uint64_t timeout_ns) {
    install_peer_handler_once();
    peer->where = WU_PEER_NOT_IN_WASM;
    peer->store = NULL;
    if (!atomic_load(&peer_signal_installed)) {
        peer->where = WU_PEER_TIMED_OUT;
        return;
    }
    pthread_mutex_lock(&threads_mutex);
    thread_resources *thread = threads_list;
    while (thread && thread->tid != peer->tid) thread = thread->next_thread;
    if (!thread) {
        pthread_mutex_unlock(&threads_mutex);
        return;
    }
    uint64_t deadline = now_ns() + timeout_ns;
    for (;;) {
        // No activation: no wasm frames (a racy read of a pointer the
        // thread writes; the handler decides for certain).
        if (__atomic_load_n(thread->activation_head, __ATOMIC_ACQUIRE) == NULL) break;
        if (peer_signal_blocked(peer->tid)) {
            // In wasm with the signal blocked for a moment (a runtime call
            // that masks signals): again shortly, until the deadline.
            if (now_ns() >= deadline) {
                peer->where = WU_PEER_SIGNAL_BLOCKED;
                break;
            }
            struct timespec pause = {0, 200000};
            nanosleep(&pause, NULL);
            continue;
        }
        atomic_store(&thread->peer_answer, 0);
        atomic_store(&thread->peer_request, peer);
        if (syscall(SYS_tgkill, getpid(), (pid_t)peer->tid, wu_peer_signal()) != 0) {
            // The thread is gone (it is still listed until its resources go).
            atomic_store(&thread->peer_request, NULL);
            break;
        }
        int32_t answer = 0;
        while ((answer = atomic_load(&thread->peer_answer)) == 0) {
            uint64_t now = now_ns();
            if (now >= deadline) break;
            uint64_t left = deadline - now;
            struct timespec wait = {(time_t)(left / 1000000000ull), (long)(left % 1000000000ull)};
            futex((_Atomic uint32_t *)&thread->peer_answer, FUTEX_WAIT_PRIVATE, 0, &wait);
        }
        if (answer == 0) {
            wu_peer *expected = peer;
            if (atomic_compare_exchange_strong(&thread->peer_request, &expected, NULL)) {
                // Never taken (signals blocked there, or the thread is stuck).
                peer->where = WU_PEER_TIMED_OUT;
                break;
            }
            // The handler took it and is copying: wait for its answer.
            while ((answer = atomic_load(&thread->peer_answer)) == 0) {
                futex((_Atomic uint32_t *)&thread->peer_answer, FUTEX_WAIT_PRIVATE, 0, NULL);
            }
        }
        if (answer != WU_PEER_RETRY) {
            peer->where = answer;
            break;
        }
        if (now_ns() >= deadline) {
            peer->where = WU_PEER_TIMED_OUT;
            break;
        }
        struct timespec pause = {0, 200000};
        nanosleep(&pause, NULL);
    }
    pthread_mutex_unlock(&threads_mutex);
}

/// Held from `wu_peers_begin` to `wu_peers_release`: one coredump stops
/// threads at a time (a thread another one stopped has the signal blocked
/// in its handler).
static pthread_mutex_t peers_request_mutex = PTHREAD_MUTEX_INITIALIZER;

void wu_peers_begin(void) { pthread_mutex_lock(&peers_request_mutex); }

void wu_peers_release(void) {
    atomic_fetch_add(&peers_generation, 1);
    futex(&peers_generation, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL);
    pthread_mutex_unlock(&peers_request_mutex);
}
