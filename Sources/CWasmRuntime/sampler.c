// The sampling profiler's timer and signal handler (see wasm_sampler.h).
#define _GNU_SOURCE
#include "wasm_sampler.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>

#include "wasm_signal_context.h"
#include <unistd.h>

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

// Each profiled thread has its own callback and context: timers are
// thread-directed (SIGEV_THREAD_ID), so the handler serves the thread it
// interrupted. Initial-exec TLS: reading it in the handler calls nothing.
static _Thread_local wu_sample_callback thread_callback __attribute__((tls_model("initial-exec")));
static _Thread_local void *thread_context __attribute__((tls_model("initial-exec")));
static _Thread_local int in_handler __attribute__((tls_model("initial-exec")));
static _Atomic uint64_t signal_count;

// The handler is installed while at least one thread is attached; the
// action before it comes back when the last detaches.
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static int attached_threads;
static struct sigaction previous_action;

static void on_sigprof(int signal, siginfo_t *info, void *context) {
    int saved_errno = errno;
    atomic_fetch_add_explicit(&signal_count, 1, memory_order_relaxed);
    wu_sample_callback callback = thread_callback;
    if (callback) {
        in_handler = 1;
        ucontext_t *uc = context;
        callback(wu_context_pc(uc), wu_context_fp(uc), wu_context_sp(uc), context, thread_context);
        in_handler = 0;
    } else if ((previous_action.sa_flags & SA_SIGINFO) && previous_action.sa_sigaction &&
               previous_action.sa_handler != SIG_DFL && previous_action.sa_handler != SIG_IGN) {
        // A SIGPROF for a thread no profiler of ours samples (someone
        // else's timer): whoever handled it before us gets it.
        previous_action.sa_sigaction(signal, info, context);
    } else if (!(previous_action.sa_flags & SA_SIGINFO) && previous_action.sa_handler != SIG_DFL &&
               previous_action.sa_handler != SIG_IGN && previous_action.sa_handler) {
        previous_action.sa_handler(signal);
    }
    errno = saved_errno;
}

int wu_sampler_attach(wu_sample_callback callback, void *context) {
    if (!callback) return EINVAL;
    if (thread_callback) return EBUSY;
    pthread_mutex_lock(&install_lock);
    if (attached_threads == 0) {
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_sigaction = on_sigprof;
        action.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
        sigemptyset(&action.sa_mask);
        if (sigaction(SIGPROF, &action, &previous_action) != 0) {
            int error = errno;
            pthread_mutex_unlock(&install_lock);
            return error;
        }
    }
    attached_threads += 1;
    pthread_mutex_unlock(&install_lock);
    thread_context = context;
    atomic_signal_fence(memory_order_release);
    thread_callback = callback;
    return 0;
}

int wu_sampler_detach(void) {
    if (!thread_callback) return EINVAL;
    // The thread's timer is gone, but a SIGPROF it sent may still be
    // pending: take it here, blocked, rather than let it reach an action
    // that is no longer ours.
    sigset_t profiling, previous;
    sigemptyset(&profiling);
    sigaddset(&profiling, SIGPROF);
    pthread_sigmask(SIG_BLOCK, &profiling, &previous);
    thread_callback = NULL;
    atomic_signal_fence(memory_order_release);
    thread_context = NULL;
    struct timespec now = {0, 0};
    while (sigtimedwait(&profiling, NULL, &now) == SIGPROF) {}
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    pthread_mutex_lock(&install_lock);
    attached_threads -= 1;
    int error = 0;
    if (attached_threads == 0 && sigaction(SIGPROF, &previous_action, NULL) != 0) error = errno;
    pthread_mutex_unlock(&install_lock);
    return error;
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
