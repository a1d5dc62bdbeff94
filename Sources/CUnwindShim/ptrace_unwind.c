// Unwinding a thread of another, live process with libunwind-ptrace: the
// thread is stopped by the caller (PTRACE_SEIZE + PTRACE_INTERRUPT), and
// libunwind reads its registers and memory itself through ptrace
// (_UPT_access_reg, _UPT_access_mem) and finds unwind information in the
// ELF files the process maps (_UPT_find_proc_info) — except for JIT code,
// which no file holds: for that, the search tables the caller names (the
// code's CFI and table, in the process's memory at those addresses).
#include <libunwind.h>
#include <libunwind-ptrace.h>
#include <stdlib.h>
#include <string.h>

#include "remote_common.h"
#include "unwind_shim.h"

typedef struct {
    void *upt;
    const wu_oracle_unwind_table *tables;
    uint64_t table_count;
} ptrace_target;

// The unwind in progress on this thread. libunwind passes the accessors'
// `arg` on to the _UPT_ functions, and they call these accessors back with
// their own argument (the _UPT handle): so the accessors take the target
// from here, never from `arg`.
static __thread ptrace_target *current;

static const wu_oracle_unwind_table *jit_table(const ptrace_target *target, unw_word_t ip) {
    for (uint64_t i = 0; i < target->table_count; i++) {
        if (ip >= target->tables[i].start && ip < target->tables[i].end) return &target->tables[i];
    }
    return 0;
}

static int pt_find_proc_info(unw_addr_space_t as, unw_word_t ip, unw_proc_info_t *pi, int need_unwind_info, void *arg) {
    (void)arg;
    ptrace_target *target = current;
    const wu_oracle_unwind_table *table = jit_table(target, ip);
    if (!table) return _UPT_find_proc_info(as, ip, pi, need_unwind_info, target->upt);
    return wu_remote_search_table(as, table, ip, pi, need_unwind_info, target->upt);
}

static void pt_put_unwind_info(unw_addr_space_t as, unw_proc_info_t *pi, void *arg) {
    (void)arg;
    ptrace_target *target = current;
    // Table-format info for JIT code is libunwind's own to free.
    if (!jit_table(target, pi->start_ip)) _UPT_put_unwind_info(as, pi, target->upt);
}

static int pt_get_dyn_info_list_addr(unw_addr_space_t as, unw_word_t *address, void *arg) {
    (void)arg;
    return _UPT_get_dyn_info_list_addr(as, address, current->upt);
}

static int pt_access_mem(unw_addr_space_t as, unw_word_t address, unw_word_t *value, int write, void *arg) {
    (void)arg;
    if (write) return -UNW_EINVAL;
    return _UPT_access_mem(as, address, value, 0, current->upt);
}

static int pt_access_reg(unw_addr_space_t as, unw_regnum_t regnum, unw_word_t *value, int write, void *arg) {
    (void)arg;
    if (write) return -UNW_EINVAL;
    return _UPT_access_reg(as, regnum, value, 0, current->upt);
}

static int pt_access_fpreg(unw_addr_space_t as, unw_regnum_t regnum, unw_fpreg_t *value, int write, void *arg) {
    (void)arg;
    if (write) return -UNW_EINVAL;
    return _UPT_access_fpreg(as, regnum, value, 0, current->upt);
}

static int pt_resume(unw_addr_space_t as, unw_cursor_t *cursor, void *arg) {
    (void)as; (void)cursor; (void)arg;
    return -UNW_EINVAL;  // never resumes the thread: the caller does
}

static int pt_get_proc_name(unw_addr_space_t as, unw_word_t address, char *buffer, size_t length, unw_word_t *offset,
                            void *arg) {
    (void)arg;
    ptrace_target *target = current;
    if (jit_table(target, address)) return -UNW_ENOINFO;
    return _UPT_get_proc_name(as, address, buffer, length, offset, target->upt);
}

static unw_accessors_t ptrace_accessors = {
    .find_proc_info = pt_find_proc_info,
    .put_unwind_info = pt_put_unwind_info,
    .get_dyn_info_list_addr = pt_get_dyn_info_list_addr,
    .access_mem = pt_access_mem,
    .access_reg = pt_access_reg,
    .access_fpreg = pt_access_fpreg,
    .resume = pt_resume,
    .get_proc_name = pt_get_proc_name,
};

int wu_oracle_unwind_ptrace(int tid, const wu_oracle_unwind_table *tables, uint64_t table_count,
                            wu_oracle_frame *frames, int capacity) {
    ptrace_target target = {_UPT_create(tid), tables, table_count};
    if (!target.upt) return -UNW_ENOMEM;
    unw_addr_space_t space = unw_create_addr_space(&ptrace_accessors, 0);
    if (!space) {
        _UPT_destroy(target.upt);
        return -UNW_ENOMEM;
    }
    unw_set_caching_policy(space, UNW_CACHE_NONE);
    current = &target;
    unw_cursor_t cursor;
    int result = unw_init_remote(&cursor, space, target.upt);
    if (result >= 0) result = wu_remote_collect_frames(&cursor, frames, capacity);
    current = 0;
    unw_destroy_addr_space(space);
    _UPT_destroy(target.upt);
    return result;
}
