#include <pthread.h>
#include <stdlib.h>

#include "wasm_jit_debug.h"

// The names and layout gdb looks for (gdb/jit.c, version 1).
enum { JIT_NOACTION = 0, JIT_REGISTER_FN = 1, JIT_UNREGISTER_FN = 2 };

struct jit_descriptor {
    uint32_t version;
    uint32_t action_flag;
    wu_jit_code_entry *relevant_entry;
    wu_jit_code_entry *first_entry;
};

// gdb sets a breakpoint here; the call must stay a call (noinline, and an
// empty asm so it is not folded away).
void __attribute__((noinline, used)) __jit_debug_register_code(void) { __asm__ volatile("" ::: "memory"); }

// Statically initialised to version 1, as gdb requires before the first
// registration.
struct jit_descriptor __jit_debug_descriptor __attribute__((used)) = {1, JIT_NOACTION, 0, 0};

static pthread_mutex_t jit_debug_lock = PTHREAD_MUTEX_INITIALIZER;

wu_jit_code_entry *wu_jit_debug_register(const char *symfile, uint64_t size) {
    wu_jit_code_entry *entry = calloc(1, sizeof *entry);
    if (!entry) return 0;
    entry->symfile_addr = symfile;
    entry->symfile_size = size;
    pthread_mutex_lock(&jit_debug_lock);
    entry->next_entry = __jit_debug_descriptor.first_entry;
    if (entry->next_entry) entry->next_entry->prev_entry = entry;
    __jit_debug_descriptor.first_entry = entry;
    __jit_debug_descriptor.relevant_entry = entry;
    __jit_debug_descriptor.action_flag = JIT_REGISTER_FN;
    __jit_debug_register_code();
    __jit_debug_descriptor.action_flag = JIT_NOACTION;
    pthread_mutex_unlock(&jit_debug_lock);
    return entry;
}

void wu_jit_debug_unregister(wu_jit_code_entry *entry) {
    if (!entry) return;
    pthread_mutex_lock(&jit_debug_lock);
    if (entry->prev_entry) entry->prev_entry->next_entry = entry->next_entry;
    else __jit_debug_descriptor.first_entry = entry->next_entry;
    if (entry->next_entry) entry->next_entry->prev_entry = entry->prev_entry;
    __jit_debug_descriptor.relevant_entry = entry;
    __jit_debug_descriptor.action_flag = JIT_UNREGISTER_FN;
    __jit_debug_register_code();
    __jit_debug_descriptor.action_flag = JIT_NOACTION;
    __jit_debug_descriptor.relevant_entry = 0;
    pthread_mutex_unlock(&jit_debug_lock);
    free(entry);
}

uint64_t wu_jit_debug_entry_count(void) {
    uint64_t count = 0;
    pthread_mutex_lock(&jit_debug_lock);
    for (wu_jit_code_entry *entry = __jit_debug_descriptor.first_entry; entry; entry = entry->next_entry) count++;
    pthread_mutex_unlock(&jit_debug_lock);
    return count;
}
