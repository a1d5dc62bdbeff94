// The post-mortem descriptor: an exported, well-known symbol that leads a
// reader in another process, or in a core file, to every registered module
// (its code range and a serialized image: names, address maps, stack maps,
// CFI) and to every thread's activation chain (docs/post-mortem.md).
#ifndef WASM_DEBUG_DESCRIPTOR_H
#define WASM_DEBUG_DESCRIPTOR_H

#include <stdint.h>

#include "wasm_unwind_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/// `magic`: the bytes "UNWWDESC" in memory (little-endian 0x4353454457574e55).
#define WU_DEBUG_DESCRIPTOR_MAGIC 0x4353454457574e55ull
/// The layout version a reader must know.
#define WU_DEBUG_DESCRIPTOR_VERSION 1

/// A module's code and its image, in a doubly linked list, newest first.
typedef struct wu_debug_module {
    struct wu_debug_module *next;
    struct wu_debug_module *prev;
    uint64_t code_start;
    uint64_t code_end;
    /// A capture file (docs/capture-format.md) holding this one module and
    /// no stack: the format a reader already knows.
    const uint8_t *image;
    uint64_t image_size;
} wu_debug_module;

/// A thread that has entered wasm, in a doubly linked list, newest first.
typedef struct wu_debug_thread {
    struct wu_debug_thread *next;
    struct wu_debug_thread *prev;
    /// The kernel thread id (NT_PRSTATUS's pr_pid in a core file).
    int64_t tid;
    /// Where the thread keeps its newest activation (its thread-local
    /// `wu_current_activation()`): read it to find the chain.
    wu_activation *const *activation_head;
} wu_debug_thread;

/// The descriptor. A writer makes `generation` odd, changes the lists, and
/// makes it even again (with fences between); a reader that sees an odd
/// generation, or a different one after reading, read a state in change —
/// in a core file that means the process died in the middle of an update.
typedef struct wu_debug_descriptor {
    uint64_t magic;
    uint32_t version;
    /// sizeof(wu_debug_descriptor).
    uint32_t size;
    uint64_t generation;
    wu_debug_module *modules;
    uint64_t module_count;
    wu_debug_thread *threads;
    uint64_t thread_count;
} wu_debug_descriptor;

/// The descriptor, under this name in the executable's symbol table.
extern wu_debug_descriptor wasm_unwind_debug_descriptor;
/// Its address (for Swift, which cannot read a mutable C global safely).
const wu_debug_descriptor *wu_debug_descriptor_address(void);

/// Adds a module (copies `image`); returns its entry for
/// `wu_debug_unregister_module`, or NULL if out of memory. O(1).
wu_debug_module *wu_debug_register_module(uint64_t code_start, uint64_t code_end, const uint8_t *image,
                                          uint64_t image_size);
/// Removes a module's entry and frees it, unless an in-process reader
/// (`wu_debug_reader_begin`) may hold it: then it is left allocated (such a
/// reader is the crash writer of a process about to die). O(1).
void wu_debug_unregister_module(wu_debug_module *module);

/// An in-process reader of the lists (a signal handler) starts and ends
/// reading: entries unlinked meanwhile are not freed. Async-signal-safe.
void wu_debug_reader_begin(void);
void wu_debug_reader_end(void);
/// How many unlinked entries were left allocated for a reader.
uint64_t wu_debug_entries_kept_for_readers(void);

/// Lists the calling thread (once; it is removed when the thread exits).
/// `wu_set_current_activation` calls it on a thread's first entry.
void wu_debug_register_current_thread(void);

#ifdef __cplusplus
}
#endif

#endif
