// Stopping one thread of another process for a moment, for a reader of its
// wasm stacks (`wasm-unwind dump --pid`, `profile --pid`): ptrace is
// variadic in C, which Swift cannot call, so these wrap it.
#ifndef WASM_LIVE_PROCESS_H
#define WASM_LIVE_PROCESS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Copies `count` bytes at `address` in process `pid` to `buffer` with
/// process_vm_readv (not exposed to Swift without _GNU_SOURCE). Returns the
/// bytes copied (fewer where the range runs into unmapped memory), or
/// -errno.
long wu_live_read(int pid, uint64_t address, void *buffer, uint64_t count);

/// Attaches to thread `tid` with PTRACE_SEIZE (no signal is sent to it) and
/// stops it with PTRACE_INTERRUPT, waiting at most `timeout_ms` for the
/// stop. Returns 0 when it is stopped; then `*pending_signal` is a signal
/// that arrived meanwhile (to deliver on detach) or 0. Returns -errno on
/// failure (EPERM: not allowed; ESRCH: no such thread; ETIMEDOUT: it did
/// not stop, and is detached as soon as it does — or when we exit).
int wu_live_stop(int tid, int timeout_ms, int *pending_signal);

/// The stopped thread's rip, rbp and rsp. Returns 0, or -errno.
int wu_live_registers(int tid, uint64_t *pc, uint64_t *fp, uint64_t *sp);

/// Detaches from the stopped thread, delivering `signal` (0: none): it
/// runs on as before. Returns 0, or -errno.
int wu_live_resume(int tid, int signal);

#ifdef __cplusplus
}
#endif

#endif
