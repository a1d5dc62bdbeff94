// What the two remote unwinders (a captured stack, a stopped live thread)
// share: the JIT code's search tables as libunwind's dynamic info, and
// stepping a cursor into frames.
#ifndef WU_REMOTE_COMMON_H
#define WU_REMOTE_COMMON_H

#include <libunwind.h>

#include "unwind_shim.h"

// Exported by libunwind, absent from its headers (perf declares it too).
extern int _Ux86_64_dwarf_search_unwind_table(unw_addr_space_t as, unw_word_t ip, unw_dyn_info_t *di,
                                              unw_proc_info_t *pi, int need_unwind_info, void *arg);

/// Looks `ip` up in `table` (a remote search table and its FDEs) through
/// the address space's accessors, which get `arg`.
int wu_remote_search_table(unw_addr_space_t as, const wu_oracle_unwind_table *table, unw_word_t ip, unw_proc_info_t *pi,
                           int need_unwind_info, void *arg);

/// Steps `cursor` until libunwind stops or `capacity` frames: the number
/// of frames written.
int wu_remote_collect_frames(unw_cursor_t *cursor, wu_oracle_frame *frames, int capacity);

#endif
