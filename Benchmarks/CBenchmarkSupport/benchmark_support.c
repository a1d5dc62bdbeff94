#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "benchmark_support.h"
#include <malloc.h>

size_t wu_floor_walk(const uint64_t *starts, size_t activation_count, uint64_t *pcs, size_t capacity) {
    size_t count = 0;
    for (size_t a = 0; a < activation_count; a++) {
        uint64_t pc = starts[3 * a], fp = starts[3 * a + 1], entry = starts[3 * a + 2];
        while (fp != entry && count < capacity) {
            pcs[count++] = pc;
            const uint64_t *record = (const uint64_t *)(uintptr_t)fp;
            pc = record[1];
            fp = record[0];
        }
    }
    return count;
}

__attribute__((noinline)) int wu_libunwind_step_ips(uint64_t *ips, int capacity) {
    unw_context_t context;
    unw_cursor_t cursor;
    unw_getcontext(&context);
    if (unw_init_local(&cursor, &context) < 0) return 0;
    int count = 0;
    do {
        unw_word_t ip;
        unw_get_reg(&cursor, UNW_REG_IP, &ip);
        ips[count++] = ip;
    } while (count < capacity && unw_step(&cursor) > 0);
    return count;
}

int wu_libunwind_backtrace(void **ips, int capacity) { return unw_backtrace(ips, capacity); }

size_t wu_heap_bytes_in_use(void) { return mallinfo2().uordblks; }
