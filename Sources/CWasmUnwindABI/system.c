#define _GNU_SOURCE
#include <pthread.h>

#include "wasm_unwind_system.h"

int wu_thread_stack_bounds(uint64_t *low, uint64_t *high) {
    pthread_attr_t attributes;
    int result = pthread_getattr_np(pthread_self(), &attributes);
    if (result != 0) return result;
    void *base = 0;
    size_t size = 0;
    result = pthread_attr_getstack(&attributes, &base, &size);
    pthread_attr_destroy(&attributes);
    if (result != 0) return result;
    *low = (uint64_t)(uintptr_t)base;
    *high = (uint64_t)(uintptr_t)base + size;
    return 0;
}
