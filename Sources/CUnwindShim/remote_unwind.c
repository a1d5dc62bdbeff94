// Unwinding a captured stack offline with libunwind's remote API: the
// registers come from the capture, memory from the captured bytes, and
// procedure info from the captured CFI search tables, the way perf unwinds
// copied user stacks. (No UNW_LOCAL_ONLY here: these are the _Ux86_64_*
// generic entry points, from libunwind-generic.)
#include <libunwind.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "remote_common.h"
#include "unwind_shim.h"

int wu_remote_search_table(unw_addr_space_t as, const wu_oracle_unwind_table *table, unw_word_t ip, unw_proc_info_t *pi,
                           int need_unwind_info, void *arg) {
    unw_dyn_info_t info;
    memset(&info, 0, sizeof info);
    info.start_ip = table->start;
    info.end_ip = table->end;
    info.format = UNW_INFO_FORMAT_REMOTE_TABLE;
    info.u.rti.segbase = table->segbase;
    info.u.rti.table_data = table->table;
    info.u.rti.table_len = table->table_entries * 8 / sizeof(unw_word_t);
    return _Ux86_64_dwarf_search_unwind_table(as, ip, &info, pi, need_unwind_info, arg);
}

int wu_remote_collect_frames(unw_cursor_t *cursor, wu_oracle_frame *frames, int capacity) {
    int count = 0;
    do {
        if (count == capacity) break;
        unw_word_t ip = 0, sp = 0;
        unw_get_reg(cursor, UNW_REG_IP, &ip);
        unw_get_reg(cursor, UNW_REG_SP, &sp);
        memset(&frames[count], 0, sizeof frames[count]);
        frames[count].ip = ip;
        frames[count].sp = sp;
        frames[count].name_status = -1;
        unw_proc_info_t info;
        frames[count].procedure_start = unw_get_proc_info(cursor, &info) == 0 ? info.start_ip : 0;
        count++;
    } while (unw_step(cursor) > 0);
    return count;
}

static int read_word(const wu_remote_image *image, uint64_t address, uint64_t *value) {
    for (uint64_t i = 0; i < image->segment_count; i++) {
        const wu_remote_segment *segment = &image->segments[i];
        if (address >= segment->base && address - segment->base <= segment->length &&
            segment->length - (address - segment->base) >= 8) {
            memcpy(value, segment->bytes + (address - segment->base), 8);
            return 0;
        }
    }
    return -UNW_EINVAL;
}

static int find_proc_info(unw_addr_space_t as, unw_word_t ip, unw_proc_info_t *pi, int need_unwind_info,
                          void *arg) {
    const wu_remote_image *image = arg;
    for (uint64_t i = 0; i < image->table_count; i++) {
        const wu_oracle_unwind_table *table = &image->tables[i];
        if (ip < table->start || ip >= table->end) continue;
        return wu_remote_search_table(as, table, ip, pi, need_unwind_info, arg);
    }
    return -UNW_ENOINFO;
}

static void put_unwind_info(unw_addr_space_t as, unw_proc_info_t *pi, void *arg) {
    (void)as; (void)pi; (void)arg;  // table-format info is libunwind's own to free
}

static int get_dyn_info_list_addr(unw_addr_space_t as, unw_word_t *address, void *arg) {
    (void)as; (void)address; (void)arg;
    return -UNW_ENOINFO;
}

static int access_mem(unw_addr_space_t as, unw_word_t address, unw_word_t *value, int write, void *arg) {
    (void)as;
    if (write) return -UNW_EINVAL;
    uint64_t word;
    int result = read_word(arg, address, &word);
    if (result == 0) *value = word;
    return result;
}

static int access_reg(unw_addr_space_t as, unw_regnum_t regnum, unw_word_t *value, int write, void *arg) {
    (void)as;
    const wu_remote_image *image = arg;
    if (write) return -UNW_EINVAL;
    if (regnum < 0 || regnum > 16) return -UNW_EBADREG;
    // Registers the capture does not have read as 0; wasm frames need only
    // rip, rsp and rbp.
    *value = (image->register_mask >> regnum) & 1 ? image->registers[regnum] : 0;
    return 0;
}

static int access_fpreg(unw_addr_space_t as, unw_regnum_t regnum, unw_fpreg_t *value, int write, void *arg) {
    (void)as; (void)regnum; (void)value; (void)write; (void)arg;
    return -UNW_EBADREG;
}

static int resume(unw_addr_space_t as, unw_cursor_t *cursor, void *arg) {
    (void)as; (void)cursor; (void)arg;
    return -UNW_EINVAL;
}

static int get_proc_name(unw_addr_space_t as, unw_word_t address, char *buffer, size_t length, unw_word_t *offset,
                         void *arg) {
    (void)as; (void)address; (void)buffer; (void)length; (void)offset; (void)arg;
    return -UNW_ENOINFO;
}

static unw_accessors_t accessors = {
    .find_proc_info = find_proc_info,
    .put_unwind_info = put_unwind_info,
    .get_dyn_info_list_addr = get_dyn_info_list_addr,
    .access_mem = access_mem,
    .access_reg = access_reg,
    .access_fpreg = access_fpreg,
    .resume = resume,
    .get_proc_name = get_proc_name,
};

static pthread_once_t space_once = PTHREAD_ONCE_INIT;
static unw_addr_space_t space;
static pthread_mutex_t space_lock = PTHREAD_MUTEX_INITIALIZER;

static void make_space(void) {
    space = unw_create_addr_space(&accessors, 0);
    // Captures reuse addresses with different code: remember nothing.
    if (space) unw_set_caching_policy(space, UNW_CACHE_NONE);
}

int wu_oracle_unwind_remote(const wu_remote_image *image, wu_oracle_frame *frames, int capacity) {
    pthread_once(&space_once, make_space);
    if (!space) return -UNW_ENOMEM;
    pthread_mutex_lock(&space_lock);
    unw_cursor_t cursor;
    int result = unw_init_remote(&cursor, space, (void *)image);
    if (result >= 0) result = wu_remote_collect_frames(&cursor, frames, capacity);
    pthread_mutex_unlock(&space_lock);
    return result;
}
