// The sampling profiler's signal plumbing: a per-thread CPU-time timer that
// delivers SIGPROF to the thread it measures, and a handler that passes the
// interrupted registers to one callback. Everything the callback does must
// be async-signal-safe.
#ifndef WASM_SAMPLER_H
#define WASM_SAMPLER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Called in the SIGPROF handler on the sampled thread with the interrupted
/// pc, rbp and rsp, the `ucontext_t *` (for a second unwinder) and the
/// context given to `wu_sampler_install`.
typedef void (*wu_sample_callback)(uint64_t pc, uint64_t fp, uint64_t sp, void *ucontext, void *context);

/// Makes SIGPROF on the calling thread call `callback` with `context`.
/// Each thread has its own (several profilers of several threads run at
/// once); the SIGPROF handler (SA_SIGINFO | SA_RESTART | SA_ONSTACK) is
/// installed with the first thread attached. Returns 0, EBUSY if the
/// thread is attached already, or errno.
int wu_sampler_attach(wu_sample_callback callback, void *context);

/// Detaches the calling thread (after its timer is stopped): a SIGPROF
/// still pending for it is taken and dropped; with the last thread
/// detached, SIGPROF's action is what it was before the first attached.
/// Returns 0, EINVAL if the thread was not attached, or errno.
int wu_sampler_detach(void);

/// Starts a timer that sends SIGPROF to the calling thread
/// (SIGEV_THREAD_ID) every `interval_ns` of `clock`: CLOCK_THREAD_CPUTIME_ID
/// (the thread's CPU time; the kernel fires CPU-time timers at its tick, so
/// at most a few hundred Hz) or CLOCK_MONOTONIC (high-resolution: any
/// rate, counting time the thread does not run). Writes a handle for
/// `wu_sampler_stop`; returns 0, or errno.
int wu_sampler_start(int clock, uint64_t interval_ns, uint64_t *timer);

/// Deletes the timer. Returns 0, or errno.
int wu_sampler_stop(uint64_t timer);

/// Whether the calling thread is inside the sample callback (for tests
/// that prove the handler does not allocate).
int wu_sampler_in_handler(void);

/// How many SIGPROF signals the handler has taken in this process.
uint64_t wu_sampler_signal_count(void);

#ifdef __cplusplus
}
#endif

#endif
