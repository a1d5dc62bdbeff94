// Making many files durable at once, for the backtrace service's group
// commit (Sources/BacktraceService/GroupCommit.swift).
#ifndef WASM_FILE_SYNC_H
#define WASM_FILE_SYNC_H

#ifdef __cplusplus
extern "C" {
#endif

/// syncfs(2) on the file system that holds `fd`: every file's data and
/// metadata written there reaches the disk. 0, or -1 with errno (writeback
/// errors are reported since Linux 5.8).
int wu_syncfs(int fd);

#ifdef __cplusplus
}
#endif

#endif
