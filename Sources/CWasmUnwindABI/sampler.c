// The sampling profiler's timer and signal handler (see wasm_sampler.h).
#define _GNU_SOURCE
#include "wasm_sampler.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

static _Atomic(wu_sample_callback) sample_callback;
static void *_Atomic sample_context;
static _Atomic uint64_t signal_count;
static struct sigaction previous_action;
static _Thread_local int in_handler __attribute__((tls_model("initial-exec")));
static int installed;

static void on_sigprof(int signal, siginfo_t *info, void *context) {
    (void)signal;
    (void)info;
    int saved_errno = errno;
    atomic_fetch_add_explicit(&signal_count, 1, memory_order_relaxed);
    wu_sample_callback callback = atomic_load_explicit(&sample_callback, memory_order_acquire);
    if (callback) {
        in_handler = 1;
        ucontext_t *uc = context;
        callback((uint64_t)uc->uc_mcontext.gregs[REG_RIP], (uint64_t)uc->uc_mcontext.gregs[REG_RBP],
                 (uint64_t)uc->uc_mcontext.gregs[REG_RSP], context,
                 atomic_load_explicit(&sample_context, memory_order_acquire));
        in_handler = 0;
    }
    errno = saved_errno;
}

int wu_sampler_install(wu_sample_callback callback, void *context) {
    if (!callback) {
        atomic_store_explicit(&sample_callback, NULL, memory_order_release);
        if (installed && sigaction(SIGPROF, &previous_action, NULL) != 0) return errno;
        installed = 0;
        return 0;
    }
    atomic_store_explicit(&sample_context, context, memory_order_release);
    atomic_store_explicit(&sample_callback, callback, memory_order_release);
    if (installed) return 0;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigprof;
    action.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGPROF, &action, &previous_action) != 0) return errno;
    installed = 1;
    return 0;
}

int wu_sampler_start(int clock, uint64_t interval_ns, uint64_t *timer) {
    struct sigevent event;
    memset(&event, 0, sizeof event);
    event.sigev_notify = SIGEV_THREAD_ID;
    event.sigev_signo = SIGPROF;
    event.sigev_notify_thread_id = (pid_t)syscall(SYS_gettid);
    timer_t handle;
    if (timer_create((clockid_t)clock, &event, &handle) != 0) return errno;
    struct itimerspec spec;
    spec.it_interval.tv_sec = (time_t)(interval_ns / 1000000000u);
    spec.it_interval.tv_nsec = (long)(interval_ns % 1000000000u);
    spec.it_value = spec.it_interval;
    if (timer_settime(handle, 0, &spec, NULL) != 0) {
        int error = errno;
        timer_delete(handle);
        return error;
    }
    *timer = (uint64_t)(uintptr_t)handle;
    return 0;
}

int wu_sampler_stop(uint64_t timer) {
    return timer_delete((timer_t)(uintptr_t)timer) == 0 ? 0 : errno;
}

uint64_t wu_sampler_signal_count(void) { return atomic_load_explicit(&signal_count, memory_order_relaxed); }

int wu_sampler_in_handler(void) { return in_handler; }
