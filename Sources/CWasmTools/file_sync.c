// syncfs(2) is a GNU extension: glibc declares it under _GNU_SOURCE only,
// which Swift's Glibc module does not set.
#define _GNU_SOURCE
#include <unistd.h>

#include "wasm_file_sync.h"

int wu_syncfs(int fd) { return syncfs(fd); }
