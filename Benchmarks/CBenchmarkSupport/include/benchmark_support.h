// Baselines for the benchmarks, in C, compiled with -O2.
#ifndef BENCHMARK_SUPPORT_H
#define BENCHMARK_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

/// The floor: follows the frame-pointer chain of each activation — `starts`
/// holds (pc, fp, entry fp) triples, newest first — writing each frame's pc
/// to `pcs`. No checks at all. Returns the number of frames.
size_t wu_floor_walk(const uint64_t *starts, size_t activation_count, uint64_t *pcs, size_t capacity);

/// libunwind's unw_getcontext / unw_init_local / unw_step loop, writing the
/// ip of every frame of the calling thread to `ips`. Returns the count.
int wu_libunwind_step_ips(uint64_t *ips, int capacity);

/// libunwind's unw_backtrace.
int wu_libunwind_backtrace(void **ips, int capacity);

#endif
