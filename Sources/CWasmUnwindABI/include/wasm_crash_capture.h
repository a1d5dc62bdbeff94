// The capture written at a crash outside wasm (docs/post-mortem.md).
#ifndef WASM_CRASH_CAPTURE_H
#define WASM_CRASH_CAPTURE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The file the trap handler writes a capture to when a fault outside wasm
/// kills the process (opened by the embedder beforehand), or -1 for none.
void wu_crash_capture_set_fd(int fd);

/// Writes the capture of the calling thread, interrupted at `sp`, once.
/// Async-signal-safe; called by the trap handler before it chains.
void wu_crash_capture_write(int signal, uint64_t sp);

#ifdef __cplusplus
}
#endif

#endif
