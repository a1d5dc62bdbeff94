#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>

#include "malloc_counter.h"
#include "wasm_trap_handler.h"
#include "wasm_sampler.h"

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void __libc_free(void *pointer);

static _Atomic uint64_t in_handler;
static _Atomic uint64_t total;
static _Atomic uint64_t in_sampler;
static _Atomic uint64_t in_peer_handler;
static _Thread_local uint64_t in_handler_on_this_thread __attribute__((tls_model("initial-exec")));
static _Thread_local uint64_t total_on_this_thread __attribute__((tls_model("initial-exec")));

static inline void note(void) {
    atomic_fetch_add_explicit(&total, 1, memory_order_relaxed);
    total_on_this_thread += 1;
    wu_thread_trap_state *state = wu_thread_trap_state_current();
    if (state && state->in_handler) {
        atomic_fetch_add_explicit(&in_handler, 1, memory_order_relaxed);
        in_handler_on_this_thread += 1;
    }
    if (wu_sampler_in_handler()) atomic_fetch_add_explicit(&in_sampler, 1, memory_order_relaxed);
    if (wu_peer_in_handler()) atomic_fetch_add_explicit(&in_peer_handler, 1, memory_order_relaxed);
}

void *malloc(size_t size) { note(); return __libc_malloc(size); }
void *calloc(size_t count, size_t size) { note(); return __libc_calloc(count, size); }
void *realloc(void *pointer, size_t size) { note(); return __libc_realloc(pointer, size); }
void *memalign(size_t alignment, size_t size) { note(); return __libc_memalign(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { note(); return __libc_memalign(alignment, size); }
int posix_memalign(void **result, size_t alignment, size_t size) {
    note();
    void *pointer = __libc_memalign(alignment, size);
    if (!pointer) return 12;  // ENOMEM
    *result = pointer;
    return 0;
}
// A free in a signal handler takes the allocator's lock as malloc does:
// counted the same way.
void free(void *pointer) {
    if (pointer) note();
    __libc_free(pointer);
}

uint64_t malloc_counter_in_trap_handler(void) { return atomic_load(&in_handler); }
uint64_t malloc_counter_in_trap_handler_on_this_thread(void) { return in_handler_on_this_thread; }
uint64_t malloc_counter_total(void) { return atomic_load(&total); }
uint64_t malloc_counter_on_this_thread(void) { return total_on_this_thread; }
uint64_t malloc_counter_in_sampler(void) { return atomic_load(&in_sampler); }
uint64_t malloc_counter_in_peer_handler(void) { return atomic_load(&in_peer_handler); }

uint64_t malloc_counter_self_test(void) {
    wu_thread_trap_state *state = wu_thread_trap_state_current();
    if (!state) return 0;
    uint64_t before = atomic_load(&in_handler);
    state->in_handler = 1;
    void *volatile pointer = malloc(32);
    state->in_handler = 0;
    free(pointer);
    return atomic_load(&in_handler) - before;
}
