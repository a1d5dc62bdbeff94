// The post-mortem descriptor (see wasm_debug_descriptor.h).
#define _GNU_SOURCE
#include "wasm_debug_descriptor.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

__attribute__((visibility("default"), used)) wu_debug_descriptor wasm_unwind_debug_descriptor = {
    .magic = WU_DEBUG_DESCRIPTOR_MAGIC,
    .version = WU_DEBUG_DESCRIPTOR_VERSION,
    .size = sizeof(wu_debug_descriptor),
};

const wu_debug_descriptor *wu_debug_descriptor_address(void) { return &wasm_unwind_debug_descriptor; }

static pthread_mutex_t descriptor_lock = PTHREAD_MUTEX_INITIALIZER;

// Odd while the lists change: a reader (a core file's) can tell.
static void begin_update(void) {
    pthread_mutex_lock(&descriptor_lock);
    __atomic_store_n(&wasm_unwind_debug_descriptor.generation, wasm_unwind_debug_descriptor.generation + 1,
                     __ATOMIC_RELEASE);
    atomic_thread_fence(memory_order_seq_cst);
}

static void end_update(void) {
    atomic_thread_fence(memory_order_seq_cst);
    __atomic_store_n(&wasm_unwind_debug_descriptor.generation, wasm_unwind_debug_descriptor.generation + 1,
                     __ATOMIC_RELEASE);
    pthread_mutex_unlock(&descriptor_lock);
}

wu_debug_module *wu_debug_register_module(uint64_t code_start, uint64_t code_end, const uint8_t *image,
                                          uint64_t image_size) {
    wu_debug_module *module = calloc(1, sizeof *module);
    uint8_t *copy = malloc(image_size ? image_size : 1);
    if (!module || !copy) {
        free(module);
        free(copy);
        return NULL;
    }
    memcpy(copy, image, image_size);
    module->code_start = code_start;
    module->code_end = code_end;
    module->image = copy;
    module->image_size = image_size;
    begin_update();
    module->next = wasm_unwind_debug_descriptor.modules;
    if (module->next) module->next->prev = module;
    wasm_unwind_debug_descriptor.modules = module;
    wasm_unwind_debug_descriptor.module_count += 1;
    end_update();
    return module;
}

// In-process readers (the crash writer, in a signal handler) and the
// entries left allocated because one was reading. A reader counts itself
// before it reads the head; a writer unlinks, then looks at the count: in
// the sequentially consistent order of the two, either the reader starts
// after the unlink (and never sees the entry) or the writer sees it.
static _Atomic uint64_t readers;
static _Atomic uint64_t kept_for_readers;

void wu_debug_reader_begin(void) { atomic_fetch_add_explicit(&readers, 1, memory_order_seq_cst); }
void wu_debug_reader_end(void) { atomic_fetch_sub_explicit(&readers, 1, memory_order_seq_cst); }
uint64_t wu_debug_entries_kept_for_readers(void) { return atomic_load(&kept_for_readers); }

void wu_debug_unregister_module(wu_debug_module *module) {
    if (!module) return;
    begin_update();
    if (module->prev) __atomic_store_n(&module->prev->next, module->next, __ATOMIC_SEQ_CST);
    else __atomic_store_n(&wasm_unwind_debug_descriptor.modules, module->next, __ATOMIC_SEQ_CST);
    if (module->next) module->next->prev = module->prev;
    wasm_unwind_debug_descriptor.module_count -= 1;
    end_update();
    if (atomic_load_explicit(&readers, memory_order_seq_cst) != 0) {
        atomic_fetch_add(&kept_for_readers, 1);
        return;
    }
    free((void *)module->image);
    free(module);
}

// Each thread's entry lives in its own thread-local storage; the key's
// destructor takes it out of the list when the thread exits.
static _Thread_local wu_debug_thread thread_entry __attribute__((tls_model("initial-exec")));
static _Thread_local int thread_listed __attribute__((tls_model("initial-exec")));
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

static void unlist_thread(void *entry) {
    wu_debug_thread *thread = entry;
    begin_update();
    if (thread->prev) thread->prev->next = thread->next;
    else wasm_unwind_debug_descriptor.threads = thread->next;
    if (thread->next) thread->next->prev = thread->prev;
    wasm_unwind_debug_descriptor.thread_count -= 1;
    end_update();
    thread_listed = 0;
}

static void make_exit_key(void) { pthread_key_create(&exit_key, unlist_thread); }

void wu_debug_register_current_thread(void) {
    if (thread_listed) return;
    pthread_once(&exit_key_once, make_exit_key);
    thread_listed = 1;
    thread_entry.tid = (int64_t)syscall(SYS_gettid);
    thread_entry.activation_head = wu_current_activation_address();
    begin_update();
    thread_entry.prev = NULL;
    thread_entry.next = wasm_unwind_debug_descriptor.threads;
    if (thread_entry.next) thread_entry.next->prev = &thread_entry;
    wasm_unwind_debug_descriptor.threads = &thread_entry;
    wasm_unwind_debug_descriptor.thread_count += 1;
    end_update();
    pthread_setspecific(exit_key, &thread_entry);
}
