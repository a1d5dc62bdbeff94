// What code is at an address, answerable inside a signal handler: a trap
// handler asks it whether a faulting pc is wasm (take the trap) or host
// code (a host crash: chain to the previous handler). The embedder
// publishes the table after each registration (Swift: `SignalSafeCodeMap`,
// which a `CodeRegistry` can publish to); a lookup reads it with atomics
// only, and a table is freed only once no lookup is inside it.
#ifndef WASM_CODE_MAP_H
#define WASM_CODE_MAP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// One piece of code: absolute range, its `CodeKind` (1 wasm function, 2
/// entry trampoline, 3 exit trampoline) and its module's index in the
/// registry at publication.
typedef struct wu_code_map_entry {
    uint64_t start;
    uint64_t end;
    uint32_t kind;
    uint32_t module;
} wu_code_map_entry;

typedef struct wu_code_map wu_code_map;

/// An empty map, or NULL without memory.
wu_code_map *wu_code_map_create(void);
/// Frees the map; no lookup may run or start.
void wu_code_map_destroy(wu_code_map *map);

/// Replaces the published entries with a copy of `entries` (sorted by
/// start, disjoint). The old table is freed once the lookups that began
/// before the swap are done — later ones never delay it — waiting at most a
/// second for one that was interrupted and never resumed (after that the
/// old table is leaked rather than freed under a reader). Allocates: not for signal
/// handlers. Returns 0, or ENOMEM.
int wu_code_map_publish(wu_code_map *map, const wu_code_map_entry *entries, uint64_t count);

/// The entry whose range holds `pc`, copied to `out`: 1 if there is one,
/// else 0. Async-signal-safe and lock-free: atomics and loads only.
int wu_code_map_lookup(wu_code_map *map, uint64_t pc, wu_code_map_entry *out);

#ifdef __cplusplus
}
#endif

#endif
