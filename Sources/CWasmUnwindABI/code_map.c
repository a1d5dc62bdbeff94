#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wasm_code_map.h"

typedef struct code_table {
    uint64_t count;
    wu_code_map_entry entries[];
} code_table;

// Readers count themselves in one of two counters, chosen by the epoch's
// parity when they start (as userspace RCU does). A writer swaps the table,
// then flips the epoch, then waits for the old parity's counter to drain:
// only lookups that began before the flip — bounded — can hold the old
// table, and a steady stream of new lookups never holds the writer up.
// (A lookup that read the old epoch but counts itself after the writer saw
// zero reads the table after the swap: the new one. Sequentially
// consistent atomics throughout.)
struct wu_code_map {
    _Atomic(code_table *) table;
    _Atomic uint64_t epoch;
    _Atomic uint64_t readers[2];
};

wu_code_map *wu_code_map_create(void) {
    wu_code_map *map = calloc(1, sizeof *map);
    return map;
}

void wu_code_map_destroy(wu_code_map *map) {
    if (!map) return;
    free(atomic_load(&map->table));
    free(map);
}

int wu_code_map_publish(wu_code_map *map, const wu_code_map_entry *entries, uint64_t count) {
    code_table *table = malloc(sizeof *table + count * sizeof *entries);
    if (!table) return ENOMEM;
    table->count = count;
    if (count) memcpy(table->entries, entries, count * sizeof *entries);
    // Sequentially consistent: a lookup that starts after the exchange
    // reads the new table; one that counted itself before may hold the old.
    code_table *old = atomic_exchange(&map->table, table);
    uint64_t parity = atomic_fetch_add(&map->epoch, 1) & 1;
    for (int waited = 0; atomic_load(&map->readers[parity]) != 0; waited++) {
        if (waited == 1000) return 0;  // a reader stopped inside: leak the old table
        struct timespec millisecond = {0, 1000000};
        nanosleep(&millisecond, NULL);
    }
    free(old);
    return 0;
}

int wu_code_map_lookup(wu_code_map *map, uint64_t pc, wu_code_map_entry *out) {
    uint64_t parity = atomic_load(&map->epoch) & 1;
    atomic_fetch_add(&map->readers[parity], 1);
    const code_table *table = atomic_load(&map->table);
    int found = 0;
    if (table) {
        uint64_t low = 0, high = table->count;
        while (low < high) {
            uint64_t middle = low + (high - low) / 2;
            if (table->entries[middle].start <= pc) low = middle + 1; else high = middle;
        }
        if (low > 0 && pc < table->entries[low - 1].end) {
            *out = table->entries[low - 1];
            found = 1;
        }
    }
    atomic_fetch_sub(&map->readers[parity], 1);
    return found;
}
