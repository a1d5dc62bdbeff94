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

#ifdef __cplusplus
}
#endif

#endif
