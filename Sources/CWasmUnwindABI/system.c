#define _GNU_SOURCE
#include <stdatomic.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "wasm_signal_context.h"
#include "wasm_unwind_system.h"

// pthread_getattr_np is slow for the main thread (glibc reads
// /proc/self/maps), so each thread asks once.
// initial-exec: a fixed offset from the thread pointer, no __tls_get_addr.
static _Thread_local uint64_t cached_low __attribute__((tls_model("initial-exec")));
static _Thread_local uint64_t cached_high __attribute__((tls_model("initial-exec")));

int wu_thread_stack_bounds(uint64_t *low, uint64_t *high) {
    if (cached_high != 0) {
        *low = cached_low;
        *high = cached_high;
        return 0;
    }
    pthread_attr_t attributes;
    int result = pthread_getattr_np(pthread_self(), &attributes);
    if (result != 0) return result;
    void *base = 0;
    size_t size = 0;
    result = pthread_attr_getstack(&attributes, &base, &size);
    pthread_attr_destroy(&attributes);
    if (result != 0) return result;
    cached_low = *low = (uint64_t)(uintptr_t)base;
    cached_high = *high = (uint64_t)(uintptr_t)base + size;
    return 0;
}

// From the C++ runtime (libstdc++ or libc++abi), which every Swift program
// on Linux links.
extern char *__cxa_demangle(const char *mangled, char *buffer, size_t *length, int *status);

char *wu_demangle_itanium(const char *mangled) {
    int status = 0;
    char *demangled = __cxa_demangle(mangled, NULL, NULL, &status);
    if (status != 0) {
        free(demangled);
        return NULL;
    }
    return demangled;
}

int32_t wu_gettid(void) { return (int32_t)syscall(SYS_gettid); }

void wu_signal_fence(void) { atomic_signal_fence(memory_order_seq_cst); }

void wu_signal_context_frame(const void *ucontext, uint64_t registers[3]) {
    const ucontext_t *context = ucontext;
    registers[0] = wu_context_pc(context);
    registers[1] = wu_context_fp(context);
    registers[2] = wu_context_sp(context);
}
