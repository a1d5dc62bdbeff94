#define _GNU_SOURCE
#include "wasm_live_process.h"

#include <errno.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <sched.h>
#include <time.h>

long wu_live_read(int pid, uint64_t address, void *buffer, uint64_t count) {
    struct iovec local = {buffer, count};
    struct iovec remote = {(void *)(uintptr_t)address, count};
    ssize_t done = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    return done < 0 ? -errno : (long)done;
}

int wu_live_stop(int tid, int timeout_ms, int *pending_signal) {
    *pending_signal = 0;
    if (ptrace(PTRACE_SEIZE, tid, 0, 0) != 0) return -errno;
    if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) != 0) {
        int error = errno;
        ptrace(PTRACE_DETACH, tid, 0, 0);
        return -error;
    }
    // The stop comes within microseconds when the thread runs: poll with
    // sched_yield first, then sleep 50 µs between polls.
    struct timespec pause = {0, 50 * 1000};
    long waited_us = 0;
    struct timespec begun;
    clock_gettime(CLOCK_MONOTONIC, &begun);
    for (;;) {
        int status = 0;
        pid_t got = waitpid(tid, &status, __WALL | WNOHANG);
        if (got == tid) {
            if (WIFEXITED(status) || WIFSIGNALED(status)) return -ESRCH;
            if (WIFSTOPPED(status)) {
                // PTRACE_INTERRUPT's stop is an event stop (SIGTRAP with
                // PTRACE_EVENT_STOP); any other stop is a signal being
                // delivered: keep it for the detach.
                int event = (unsigned)status >> 16;
                if (event != PTRACE_EVENT_STOP) *pending_signal = WSTOPSIG(status);
                return 0;
            }
        } else if (got < 0 && errno != EINTR) {
            return -errno;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        waited_us = (now.tv_sec - begun.tv_sec) * 1000000L + (now.tv_nsec - begun.tv_nsec) / 1000;
        if (waited_us >= (long)timeout_ms * 1000) return -ETIMEDOUT;
        if (waited_us < 200) sched_yield(); else nanosleep(&pause, 0);
    }
}

int wu_live_registers(int tid, uint64_t *pc, uint64_t *fp, uint64_t *sp) {
#if defined(__x86_64__)
    struct user_regs_struct regs;
    if (ptrace(PTRACE_GETREGS, tid, 0, &regs) != 0) return -errno;
    *pc = regs.rip;
    *fp = regs.rbp;
    *sp = regs.rsp;
    return 0;
#else
    (void)tid; (void)pc; (void)fp; (void)sp;
    return -ENOSYS;
#endif
}

int wu_live_resume(int tid, int signal) {
    if (ptrace(PTRACE_DETACH, tid, 0, (void *)(long)signal) != 0) return -errno;
    return 0;
}
