// Counts heap allocations made while the trap handler runs on any thread.
// Linked into the test executable only: its malloc family interposes
// glibc's (and forwards to it through __libc_malloc and friends).
#ifndef MALLOC_COUNTER_H
#define MALLOC_COUNTER_H

#include <stdint.h>

/// Allocations made while a thread's trap state had `in_handler` set.
uint64_t malloc_counter_in_trap_handler(void);
/// The same, counting only the calling thread's allocations (tests that
/// run beside others that trap).
uint64_t malloc_counter_in_trap_handler_on_this_thread(void);
/// Allocations made inside the sampling profiler's signal callback.
uint64_t malloc_counter_in_sampler(void);
/// Allocations made inside the peer-snapshot handler (a coredump's other
/// threads).
uint64_t malloc_counter_in_peer_handler(void);
/// Every allocation the process made through the interposed functions.
uint64_t malloc_counter_total(void);
/// Every allocation (and free) the calling thread made.
uint64_t malloc_counter_on_this_thread(void);
/// Allocates and frees once with the calling thread's `in_handler` flag set,
/// and returns how much `malloc_counter_in_trap_handler` grew: proves the
/// counter would see an allocation in the handler.
uint64_t malloc_counter_self_test(void);

#endif
