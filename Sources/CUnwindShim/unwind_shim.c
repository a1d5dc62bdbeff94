#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "unwind_shim.h"
#include "wasm_trap_handler.h"

// libunwind's list of dynamically registered code is read without a lock
// while another thread may register or cancel (and free) an entry, and its
// caches remember rules for code that has since been unmapped. The oracle
// therefore serialises registration, cancellation and unwinding, and flushes
// the cache for a code range whenever its registration changes.
static pthread_mutex_t oracle_lock = PTHREAD_MUTEX_INITIALIZER;

static int collect(unw_cursor_t *cursor, wu_oracle_frame *frames, int capacity, int with_names) {
    int count = 0;
    do {
        if (count == capacity) break;
        wu_oracle_frame *frame = &frames[count];
        unw_word_t ip = 0, sp = 0;
        unw_get_reg(cursor, UNW_REG_IP, &ip);
        unw_get_reg(cursor, UNW_REG_SP, &sp);
        frame->ip = ip;
        frame->sp = sp;
        frame->is_signal_frame = unw_is_signal_frame(cursor) > 0;
        unw_proc_info_t info;
        frame->procedure_start = unw_get_proc_info(cursor, &info) == 0 ? info.start_ip : 0;
        frame->name[0] = 0;
        frame->name_offset = 0;
        frame->name_status = -1;
        if (with_names) {
            unw_word_t offset = 0;
            frame->name_status = unw_get_proc_name(cursor, frame->name, sizeof frame->name, &offset);
            frame->name_offset = offset;
        }
        count++;
    } while (unw_step(cursor) > 0);
    return count;
}

__attribute__((noinline)) int wu_oracle_unwind_here(wu_oracle_frame *frames, int capacity, int with_names) {
    unw_context_t context;
    unw_cursor_t cursor;
    unw_getcontext(&context);
    pthread_mutex_lock(&oracle_lock);
    int result = unw_init_local(&cursor, &context);
    // Skip this function's own frame.
    if (result >= 0) result = unw_step(&cursor) > 0 ? collect(&cursor, frames, capacity, with_names) : 0;
    pthread_mutex_unlock(&oracle_lock);
    return result;
}

int wu_oracle_unwind_signal_context(void *ucontext, wu_oracle_frame *frames, int capacity) {
    unw_cursor_t cursor;
    pthread_mutex_lock(&oracle_lock);
    int result = unw_init_local2(&cursor, (unw_context_t *)ucontext, UNW_INIT_SIGNAL_FRAME);
    if (result >= 0) result = collect(&cursor, frames, capacity, 0);
    pthread_mutex_unlock(&oracle_lock);
    return result;
}

int wu_oracle_backtrace(void **buffer, int size) { return unw_backtrace(buffer, size); }

void *wu_oracle_register(const wu_oracle_unwind_table *table) {
    unw_dyn_info_t *info = calloc(1, sizeof *info);
    if (!info) return NULL;
    info->start_ip = table->start;
    info->end_ip = table->end;
    info->format = UNW_INFO_FORMAT_REMOTE_TABLE;
    info->u.rti.name_ptr = 0;
    info->u.rti.segbase = table->segbase;
    info->u.rti.table_data = table->table;
    // Counted in unw_word_t units: one int32 pair is one word on x86_64.
    info->u.rti.table_len = table->table_entries * 8 / sizeof(unw_word_t);
    pthread_mutex_lock(&oracle_lock);
    unw_flush_cache(unw_local_addr_space, table->start, table->end);
    _U_dyn_register(info);
    pthread_mutex_unlock(&oracle_lock);
    return info;
}

void wu_oracle_unregister(void *handle) {
    if (!handle) return;
    unw_dyn_info_t *info = handle;
    pthread_mutex_lock(&oracle_lock);
    _U_dyn_cancel(info);
    unw_flush_cache(unw_local_addr_space, info->start_ip, info->end_ip);
    pthread_mutex_unlock(&oracle_lock);
    free(info);
}

extern char *swift_demangle(const char *mangled_name, size_t mangled_name_length, char *output_buffer,
                            size_t *output_buffer_size, uint32_t flags);

char *wu_oracle_swift_demangle(const char *name) {
    return swift_demangle(name, strlen(name), NULL, NULL, 0);
}

// MARK: - Trap observation

#define TRAP_FRAME_CAPACITY 65536
static _Thread_local wu_oracle_frame *trap_frames;
static _Thread_local int trap_frame_count;

static void observe(int signal, void *info, void *ucontext, wu_thread_trap_state *state) {
    (void)signal; (void)info;
    if (!trap_frames) return;
    if (ucontext) {
        trap_frame_count = wu_oracle_unwind_signal_context(ucontext, trap_frames, TRAP_FRAME_CAPACITY);
        return;
    }
    // A trap raised by a call from its stub (no signal): unwind from here,
    // and start at the trapping frame, whose return address is right after
    // the stub's call — reported, as a signal context would, as the pc
    // inside the trapping code (state->pc, one byte before it).
    int count = wu_oracle_unwind_here(trap_frames, TRAP_FRAME_CAPACITY, 0);
    int first = 0;
    while (first < count && trap_frames[first].ip != state->pc + 1) first++;
    if (first == count) {
        trap_frame_count = 0;
        return;
    }
    memmove(trap_frames, trap_frames + first, (size_t)(count - first) * sizeof *trap_frames);
    trap_frames[0].ip = state->pc;
    trap_frame_count = count - first;
}

void wu_oracle_observe_traps(void) {
    if (!trap_frames) trap_frames = calloc(TRAP_FRAME_CAPACITY, sizeof(wu_oracle_frame));
    wu_trap_handler_set_observer(observe);
}

int wu_oracle_last_trap_frames(const wu_oracle_frame **frames) {
    *frames = trap_frames;
    return trap_frame_count;
}

int wu_oracle_unwind_signal_context_ips(void *ucontext, uint64_t *ips, int capacity) {
    // A sample may interrupt this thread while it holds the lock (a module
    // being registered): then there is no second opinion for this sample.
    if (pthread_mutex_trylock(&oracle_lock) != 0) return -1;
    unw_cursor_t cursor;
    int count = unw_init_local2(&cursor, (unw_context_t *)ucontext, UNW_INIT_SIGNAL_FRAME);
    if (count >= 0) {
        count = 0;
        do {
            if (count == capacity) break;
            unw_word_t ip = 0;
            unw_get_reg(&cursor, UNW_REG_IP, &ip);
            ips[count++] = ip;
        } while (unw_step(&cursor) > 0);
    }
    pthread_mutex_unlock(&oracle_lock);
    return count;
}
