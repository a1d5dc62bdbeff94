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

/// Wasmtime through its C API (the shared library of the `wasmtime` PyPI
/// package, opened with dlopen): one engine, store and instance of `wat`,
/// whose imports `host.noop` (on raw slots) and `host.noop_typed` (on typed
/// values) are no-op functions (i32, i32) -> i32 returning the first
/// argument. NULL with a message in `error` when it cannot be opened.
typedef struct wu_wasmtime wu_wasmtime;
wu_wasmtime *wu_wasmtime_open(const char *library, const char *wat, char *error, size_t capacity);
/// The same for a wasm binary (with DWARF, for the source-line rows; set
/// WASMTIME_BACKTRACE_DETAILS=1 first to have Wasmtime show lines).
wu_wasmtime *wu_wasmtime_open_binary(const char *library, const uint8_t *binary, size_t size, char *error,
                                     size_t capacity);
/// The index of export `name` (a function) for the calls below, or -1.
int wu_wasmtime_function(wu_wasmtime *w, const char *name);
/// Calls function `function` (i32) -> i32 through the unchecked API. If it
/// returns, the result; if it traps, reads every frame's module, function
/// and offset (and with `with_message` the trap's message) into a checksum,
/// returned, with the frame count in `frame_count`; -1 on an error.
int64_t wu_wasmtime_call(wu_wasmtime *w, int function, int32_t argument, int with_message, uint64_t *frame_count);
/// Calls function `function` (i32) -> i32 through the typed API
/// (`wasmtime_func_call`).
int64_t wu_wasmtime_call_typed(wu_wasmtime *w, int function, int32_t argument);
/// In a new store: instantiates the module, calls export `name` (i32) ->
/// i32, drops the store. The result, or -1.
int64_t wu_wasmtime_instantiate_and_call(wu_wasmtime *w, const char *name, int32_t argument);
void wu_wasmtime_close(wu_wasmtime *w);

/// Bytes of heap in use (glibc's mallinfo2 uordblks), for memory rows.
size_t wu_heap_bytes_in_use(void);

#endif
