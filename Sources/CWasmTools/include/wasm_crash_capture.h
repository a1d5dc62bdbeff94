// The capture written at a crash outside wasm (docs/post-mortem.md).
#ifndef WASM_CRASH_CAPTURE_H
#define WASM_CRASH_CAPTURE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The file the trap handler writes a capture to when a fault outside wasm
/// kills the process, or NULL for none. Nothing is created before a crash;
/// at the crash the capture is written to `PATH.partial-PID` and renamed to
/// PATH when complete. Returns 0, or ENAMETOOLONG.
int wu_crash_capture_set_path(const char *path);

/// Writes the capture of the calling thread, interrupted at `sp`, once per
/// process: the first crashing thread writes; another crashing meanwhile
/// waits (up to two seconds) for it to finish. Async-signal-safe; called by
/// the trap handler before it chains.
void wu_crash_capture_write(int signal, uint64_t sp);

/// Reads the post-mortem descriptor's module list as the crash writer does
/// (one consistent read, retried while another thread changes the list)
/// and returns how many modules it held, or -1 when every read failed;
/// `*attempts` is how many reads it took. For tests.
int wu_crash_capture_read_module_list(int *attempts);

#ifdef __cplusplus
}
#endif

#endif
