// The GDB JIT interface (gdb's manual, "JIT Compilation Interface"): the
// process-wide list of in-memory object files that describe JIT code, which
// gdb reads through the symbols `__jit_debug_descriptor` and
// `__jit_debug_register_code` (a breakpoint it sets on the latter). Also
// read from a core file, so a crashed process's JIT code can be named.
#ifndef WASM_JIT_DEBUG_H
#define WASM_JIT_DEBUG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// One registered object file (gdb's `struct jit_code_entry`).
typedef struct wu_jit_code_entry {
    struct wu_jit_code_entry *next_entry;
    struct wu_jit_code_entry *prev_entry;
    const char *symfile_addr;
    uint64_t symfile_size;
} wu_jit_code_entry;

/// Links an entry for the `size` bytes at `symfile` (which must stay valid
/// until it is unregistered) and tells gdb. Returns NULL when out of memory.
/// Thread-safe.
wu_jit_code_entry *wu_jit_debug_register(const char *symfile, uint64_t size);

/// Unlinks `entry`, tells gdb, and frees the entry. Thread-safe.
void wu_jit_debug_unregister(wu_jit_code_entry *entry);

/// The entries registered now, for tests: walks the list under the lock.
uint64_t wu_jit_debug_entry_count(void);

#ifdef __cplusplus
}
#endif

#endif
