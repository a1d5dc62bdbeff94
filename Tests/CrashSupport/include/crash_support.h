// Real faults in host code, one per signal the trap handler takes, for the
// child processes of the trap tests: each is an instruction that faults, not
// a `raise`, so the kernel delivers the signal exactly as for a host bug.
#ifndef CRASH_SUPPORT_H
#define CRASH_SUPPORT_H

#ifdef __cplusplus
extern "C" {
#endif

/// Writes through address 8 (the first page is never mapped): SIGSEGV.
void crash_segv(void);
/// Reads a shared mapping of an empty file, past its end: SIGBUS.
void crash_bus(void);
/// Executes `ud2`: SIGILL.
void crash_ill(void);
/// Divides an integer by zero with `idiv`: SIGFPE.
int crash_fpe(void);

/// Calls `body(context)` with `bytes` more of the stack in use than
/// without: the wasm it runs then starts at another position relative to
/// the thread's stack limit.
void call_with_stack_padding(unsigned long bytes, void (*body)(void *), void *context);

#ifdef __cplusplus
}
#endif

#endif
