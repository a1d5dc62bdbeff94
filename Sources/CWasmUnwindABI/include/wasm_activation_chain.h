// The one way to follow a thread's activation records: newest first, under
// the rules that keep a corrupt chain finite, with what each activation of
// one store saved. Every reader uses it — the live walk and the sampling
// profiler (Swift: `LiveActivations`, `SampledActivations`), the trap
// handler's snapshot and the crash writer (C) — so the rules are written
// once. Static inline: plain loads, no calls, async-signal-safe.
#ifndef WASM_ACTIVATION_CHAIN_H
#define WASM_ACTIVATION_CHAIN_H

#include <stdint.h>

#include "wasm_unwind_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Upper bound on the activation records a reader follows: a corrupt or
/// cyclic chain ends here (Swift: `WalkLimits.default.maximumActivations`).
#define WU_MAXIMUM_ACTIVATION_RECORDS 100000

/// Why a chain ended before its oldest record.
enum {
    WU_CHAIN_COMPLETE = 0,
    /// A record's `older` link does not point to a higher address (records
    /// live in the host frames that entered wasm and the stack grows down,
    /// so a cycle cannot climb for ever).
    WU_CHAIN_OUT_OF_ORDER = 1,
    /// More than `maximum_records` records.
    WU_CHAIN_TOO_LONG = 2,
};

/// What to do at an activation of the store whose saved exit pc is zero —
/// one with no wasm frame on the stack when the next newer one entered.
enum {
    /// It and every older activation have no wasm frames: stop (captures at
    /// a host call or a trap, where the chain is consistent).
    WU_CHAIN_STOP_AT_NO_WASM = 0,
    /// Skip it: older ones may still have wasm frames (a sampling profiler
    /// or a crash writer, which interrupt the thread anywhere).
    WU_CHAIN_SKIP_NO_WASM = 1,
};

/// A position in a thread's chain of activation records.
typedef struct wu_activation_chain {
    /// The next record to visit, or NULL at the end.
    wu_activation *next;
    uint64_t visited;
    uint64_t maximum_records;
    /// `WU_CHAIN_*`: why the chain ended early, if it did; with
    /// `WU_CHAIN_OUT_OF_ORDER`, the record whose link broke the order and
    /// where it pointed.
    uint32_t failure;
    uint32_t padding;
    uint64_t broken_record;
    uint64_t broken_older;
} wu_activation_chain;

/// What an activation of the store saved when it entered: the limits
/// record's fields as the next older activation left them.
typedef struct wu_saved_exit {
    uint64_t exit_pc;
    uint64_t exit_fp;
    uint64_t entry_fp;
    uint64_t stack_limit;
} wu_saved_exit;

/// A chain starting at `head` (normally `wu_current_activation()`).
static inline wu_activation_chain wu_activation_chain_start(wu_activation *head, uint64_t maximum_records) {
    wu_activation_chain chain = {head, 0, maximum_records, WU_CHAIN_COMPLETE, 0, 0, 0};
    return chain;
}

// The steps take the chain by value and return it advanced, with what they
// found: a caller keeps no local whose address escapes, so Swift's walk
// needs no stack protector (scripts/check-walker-codegen.sh), and after
// inlining the copies disappear.

/// A chain advanced by one record, and the record (NULL at the end).
typedef struct wu_chain_record {
    wu_activation_chain chain;
    wu_activation *record;
} wu_chain_record;

/// The next record of any store, or NULL at the end. A record whose older
/// link breaks the order is returned, and ends the chain with
/// `WU_CHAIN_OUT_OF_ORDER`; the record past `maximum_records` ends it with
/// `WU_CHAIN_TOO_LONG` and is not returned.
static inline wu_chain_record wu_activation_chain_next_record(wu_activation_chain chain) {
    wu_chain_record step = {chain, chain.next};
    wu_activation *record = chain.next;
    if (!record) return step;
    if (++step.chain.visited > chain.maximum_records) {
        step.chain.next = NULL;
        step.chain.failure = WU_CHAIN_TOO_LONG;
        step.record = NULL;
        return step;
    }
    wu_activation *older = record->older;
    if (older && (uintptr_t)older <= (uintptr_t)record) {
        step.chain.next = NULL;
        step.chain.failure = WU_CHAIN_OUT_OF_ORDER;
        step.chain.broken_record = (uint64_t)(uintptr_t)record;
        step.chain.broken_older = (uint64_t)(uintptr_t)older;
        return step;
    }
    step.chain.next = older;
    return step;
}

/// A chain advanced past the next activation of one store with wasm
/// frames, and what that activation saved (all zeros at the end: a saved
/// exit pc is never zero for an activation with wasm frames).
typedef struct wu_chain_exit {
    wu_activation_chain chain;
    wu_saved_exit exit;
} wu_chain_exit;

/// The next older activation of the store whose limits record is `limits`
/// that has wasm frames. `no_wasm` (`WU_CHAIN_STOP_AT_NO_WASM` or
/// `WU_CHAIN_SKIP_NO_WASM`) says what an activation without wasm means.
static inline wu_chain_exit wu_activation_chain_next_exit(wu_activation_chain chain, const wu_runtime_limits *limits,
                                                          int no_wasm) {
    wu_chain_exit step = {chain, {0, 0, 0, 0}};
    for (;;) {
        wu_chain_record next = wu_activation_chain_next_record(step.chain);
        step.chain = next.chain;
        wu_activation *record = next.record;
        if (!record) return step;
        if (record->limits != limits) continue;
        if (record->saved_exit_pc == 0) {
            if (no_wasm == WU_CHAIN_SKIP_NO_WASM) continue;
            step.chain.next = NULL;
            return step;
        }
        step.exit.exit_pc = record->saved_exit_pc;
        step.exit.exit_fp = record->saved_exit_fp;
        step.exit.entry_fp = record->saved_entry_fp;
        step.exit.stack_limit = record->saved_stack_limit;
        return step;
    }
}

#ifdef __cplusplus
}
#endif

#endif
