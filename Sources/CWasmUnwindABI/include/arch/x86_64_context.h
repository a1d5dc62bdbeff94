// x86_64 Linux signal contexts (ucontext_t's gregs). Included through
// wasm_signal_context.h, by C only.
#ifndef WASM_SIGNAL_CONTEXT_X86_64_H
#define WASM_SIGNAL_CONTEXT_X86_64_H

static inline uint64_t wu_context_pc(const ucontext_t *uc) { return (uint64_t)uc->uc_mcontext.gregs[REG_RIP]; }
static inline uint64_t wu_context_fp(const ucontext_t *uc) { return (uint64_t)uc->uc_mcontext.gregs[REG_RBP]; }
static inline uint64_t wu_context_sp(const ucontext_t *uc) { return (uint64_t)uc->uc_mcontext.gregs[REG_RSP]; }

/// Every general register, indexed by DWARF number (rax, rdx, rcx, rbx,
/// rsi, rdi, rbp, rsp, r8 ... r15, rip).
static inline void wu_context_dwarf_registers(const ucontext_t *uc, uint64_t registers[WU_ARCH_DWARF_REGISTER_COUNT]) {
    static const int dwarf_to_greg[WU_ARCH_DWARF_REGISTER_COUNT] = {
        REG_RAX, REG_RDX, REG_RCX, REG_RBX, REG_RSI, REG_RDI, REG_RBP, REG_RSP,
        REG_R8, REG_R9, REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15, REG_RIP};
    for (int i = 0; i < WU_ARCH_DWARF_REGISTER_COUNT; i++) registers[i] = (uint64_t)uc->uc_mcontext.gregs[dwarf_to_greg[i]];
}

#endif
