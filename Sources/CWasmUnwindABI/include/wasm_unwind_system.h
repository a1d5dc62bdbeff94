// libc facilities Swift cannot reach directly (GNU extensions), wrapped in
// the smallest C functions that do the job.
#ifndef WASM_UNWIND_SYSTEM_H
#define WASM_UNWIND_SYSTEM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The calling thread's stack, lowest address and one past the highest.
/// Returns 0 on success, an errno value otherwise. Uses `pthread_getattr_np`
/// and `pthread_attr_getstack`.
int wu_thread_stack_bounds(uint64_t *low, uint64_t *high);

/// The C++ (Itanium ABI) demangling of `mangled`, from the C++ runtime's
/// `__cxa_demangle`, in memory the caller frees with `free`; NULL when
/// `mangled` is no valid mangled name.
char *wu_demangle_itanium(const char *mangled);

/// The calling thread's kernel thread id (`gettid`).
int32_t wu_gettid(void);

/// The pc, frame pointer and stack pointer of a signal handler's
/// interrupted context (its third argument, a `ucontext_t *`), into
/// `registers[0..<3]`. Async-signal-safe.
void wu_signal_context_frame(const void *ucontext, uint64_t registers[3]);

/// `atomic_signal_fence(memory_order_seq_cst)`: stores before it are not
/// moved after it, as a signal handler on this thread sees them.
void wu_signal_fence(void);

#ifdef __cplusplus
}
#endif

#endif
