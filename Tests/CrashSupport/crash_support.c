#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "crash_support.h"

void crash_segv(void) {
    volatile int *pointer = (volatile int *)(unsigned long)8;
    *pointer = 1;
}

void crash_bus(void) {
    FILE *file = tmpfile();
    if (!file) abort();
    // A page of an empty file: mapping it works, touching it is past EOF.
    volatile int *page = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fileno(file), 0);
    if (page == MAP_FAILED) abort();
    printf("%d\n", *page);
}

void crash_ill(void) { __builtin_trap(); }

int crash_fpe(void) {
    volatile int dividend = 7, divisor = 0;
    return dividend / divisor;
}

void call_with_stack_padding(unsigned long bytes, void (*body)(void *), void *context) {
    volatile char *padding = __builtin_alloca(bytes + 1);
    padding[0] = 0;  // used, so the allocation stays
    body(context);
    padding[bytes] = 0;
}
