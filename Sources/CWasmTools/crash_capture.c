// A capture file written from the signal handler when a fault outside wasm
// kills the process (docs/post-mortem.md): the faulting thread's wasm
// activations, its stack and the modules of the post-mortem descriptor, in
// the capture format (docs/capture-format.md). Async-signal-safe: it reads
// memory and calls open(2), write(2), fsync(2), rename(2) and
// nanosleep(2); nothing else.
#include "wasm_crash_capture.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wasm_debug_descriptor.h"

// The file to write, and the name it is written under first: the capture
// appears under its name complete, or not at all, and an earlier capture
// there is only ever replaced by a complete newer one.
static char crash_path[4096];
static char crash_partial_path[4096 + 32];

// The one thread that writes: claimed by exchange (0 -> 1); 2 when done.
// Another thread crashing meanwhile waits for the write to end before it
// lets its own crash kill the process.
enum { CRASH_IDLE = 0, CRASH_WRITING = 1, CRASH_DONE = 2, CRASH_DISARMED = 3 };
static _Atomic int crash_state = CRASH_DISARMED;

int wu_crash_capture_set_path(const char *path) {
    if (!path) {
        atomic_store(&crash_state, CRASH_DISARMED);
        return 0;
    }
    size_t length = strlen(path);
    if (length + 1 > sizeof crash_path) return ENAMETOOLONG;
    memcpy(crash_path, path, length + 1);
    snprintf(crash_partial_path, sizeof crash_partial_path, "%s.partial-%d", path, (int)getpid());
    atomic_store(&crash_state, CRASH_IDLE);
    return 0;
}

enum { SECTION_ARCHITECTURE = 1, SECTION_REGISTERS = 2, SECTION_ACTIVATIONS = 3, SECTION_STACK = 4,
       SECTION_MODULE = 5, SECTION_NOTE = 8, MAX_ACTIVATIONS = 64, MAX_MODULES = 64 };

typedef struct {
    uint8_t start_is_pc;
    uint64_t start, fp, sp, entry_fp;
} activation_entry;

static size_t uleb(uint8_t *out, uint64_t value) {
    size_t n = 0;
    do {
        uint8_t byte = value & 0x7F;
        value >>= 7;
        out[n++] = byte | (value ? 0x80 : 0);
    } while (value);
    return n;
}

static void put32(uint8_t *out, uint32_t value) { for (int i = 0; i < 4; i++) out[i] = (uint8_t)(value >> (8 * i)); }
static void put64(uint8_t *out, uint64_t value) { for (int i = 0; i < 8; i++) out[i] = (uint8_t)(value >> (8 * i)); }
static uint32_t get32(const uint8_t *in) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = v << 8 | in[i]; return v; }

static int write_all(int fd, const void *bytes, size_t count) {
    const uint8_t *at = bytes;
    while (count > 0) {
        ssize_t written = write(fd, at, count);
        if (written <= 0) return -1;
        at += written;
        count -= (size_t)written;
    }
    return 0;
}

/// The MODULE section's body inside a one-module capture image.
static const uint8_t *module_body(const wu_debug_module *module, uint32_t *size) {
    const uint8_t *image = module->image;
    if (module->image_size < 16) return NULL;
    uint32_t count = get32(image + 12);
    for (uint32_t i = 0; i < count && 16 + 16 * (uint64_t)(i + 1) <= module->image_size; i++) {
        const uint8_t *entry = image + 16 + 16 * i;
        uint32_t offset = get32(entry + 8), length = get32(entry + 12);
        if (get32(entry) == SECTION_MODULE && (uint64_t)offset + length <= module->image_size) {
            *size = length;
            return image + offset;
        }
    }
    return NULL;
}

static void write_capture(int fd, wu_activation *head, uint64_t sp);

void wu_crash_capture_write(int signal, uint64_t sp) {
    (void)signal;
    wu_activation *head = wu_current_activation();
    if (!head || !head->limits || atomic_load(&crash_state) == CRASH_DISARMED) return;
    int expected = CRASH_IDLE;
    if (!atomic_compare_exchange_strong(&crash_state, &expected, CRASH_WRITING)) {
        // Another thread is writing (or wrote) the capture: let it finish
        // before this crash ends the process, for at most two seconds.
        for (int i = 0; i < 2000 && atomic_load(&crash_state) == CRASH_WRITING; i++) {
            struct timespec millisecond = {0, 1000000};
            nanosleep(&millisecond, NULL);
        }
        return;
    }
    int fd = open(crash_partial_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        write_capture(fd, head, sp);
        int written = fsync(fd) == 0;
        close(fd);
        if (written) rename(crash_partial_path, crash_path);
        else unlink(crash_partial_path);
    }
    atomic_store(&crash_state, CRASH_DONE);
}

static void write_capture(int fd, wu_activation *head, uint64_t sp) {
    const wu_runtime_limits *limits = head->limits;

    // The activations, newest first, as a capture at a host call: the live
    // exit record if a host call from wasm is running (above sp), then each
    // record's saved one.
    activation_entry activations[MAX_ACTIVATIONS];
    int count = 0;
    uint64_t top = 0;
    if (limits->last_wasm_exit_pc && limits->last_wasm_exit_fp >= sp) {
        activations[count++] = (activation_entry){0, limits->last_wasm_exit_pc, limits->last_wasm_exit_fp,
                                                  limits->last_wasm_exit_fp, limits->last_wasm_entry_fp};
    }
    const wu_activation *previous = NULL;
    for (const wu_activation *record = head; record && count < MAX_ACTIVATIONS; record = record->older) {
        if (previous && record <= previous) break;  // out of order: stop
        previous = record;
        if (record->limits == limits && record->saved_exit_pc) {
            activations[count++] = (activation_entry){0, record->saved_exit_pc, record->saved_exit_fp,
                                                      record->saved_exit_fp, record->saved_entry_fp};
        }
    }
    if (count == 0) return;
    for (int i = 0; i < count; i++) if (activations[i].entry_fp + 16 > top) top = activations[i].entry_fp + 16;
    uint64_t base = activations[0].sp;
    if (top <= base) return;

    // The modules, if the descriptor is consistent now. As a reader of the
    // list, entries another thread unlinks meanwhile are not freed under
    // us (wu_debug_reader_begin); a generation that moved while we read
    // means the list changed: then no modules rather than a mix.
    const uint8_t *bodies[MAX_MODULES];
    uint32_t body_sizes[MAX_MODULES];
    int modules = 0;
    // The module bodies are copied as their images have them: the file's
    // minor version is the newest of theirs (it says how a MODULE section
    // ends: handler lists, handler scopes).
    uint16_t minor = 0;
    wu_debug_reader_begin();
    uint64_t generation = __atomic_load_n(&wasm_unwind_debug_descriptor.generation, __ATOMIC_SEQ_CST);
    if (generation % 2 == 0) {
        for (const wu_debug_module *module = __atomic_load_n(&wasm_unwind_debug_descriptor.modules, __ATOMIC_SEQ_CST);
             module && modules < MAX_MODULES; module = __atomic_load_n(&module->next, __ATOMIC_SEQ_CST)) {
            uint32_t size = 0;
            const uint8_t *body = module_body(module, &size);
            if (body) {
                bodies[modules] = body;
                body_sizes[modules++] = size;
                uint16_t image_minor = (uint16_t)(module->image[10] | module->image[11] << 8);
                if (image_minor > minor) minor = image_minor;
            }
        }
        if (__atomic_load_n(&wasm_unwind_debug_descriptor.generation, __ATOMIC_SEQ_CST) != generation) {
            modules = 0;
            minor = 0;
        }
    }

    // Small sections, built here; the stack and module bodies are written
    // from where they are.
    uint8_t architecture[2] = {1, 8};
    uint8_t registers[1 + 3 * 9];
    size_t registers_size = uleb(registers, 3);
    uint8_t numbers[3] = {16, 6, 7};
    uint64_t values[3] = {activations[0].start, activations[0].fp, activations[0].sp};
    for (int i = 0; i < 3; i++) {
        registers[registers_size] = numbers[i];
        put64(registers + registers_size + 1, values[i]);
        registers_size += 9;
    }
    uint8_t activation_bytes[10 + MAX_ACTIVATIONS * 33];
    size_t activations_size = uleb(activation_bytes, (uint64_t)count);
    for (int i = 0; i < count; i++) {
        uint8_t *at = activation_bytes + activations_size;
        at[0] = activations[i].start_is_pc;
        put64(at + 1, activations[i].start);
        put64(at + 9, activations[i].fp);
        put64(at + 17, activations[i].sp);
        put64(at + 25, activations[i].entry_fp);
        activations_size += 33;
    }
    uint8_t stack_header[1 + 8 + 10];
    size_t stack_header_size = uleb(stack_header, 1);
    put64(stack_header + stack_header_size, base);
    stack_header_size += 8;
    stack_header_size += uleb(stack_header + stack_header_size, top - base);
    static const char note_text[] = "written by the signal handler at a crash outside wasm";
    uint8_t note[80];
    size_t note_size = uleb(note, sizeof note_text - 1);
    memcpy(note + note_size, note_text, sizeof note_text - 1);
    note_size += sizeof note_text - 1;

    // Header and section table.
    uint32_t sections = 5 + (uint32_t)modules;
    uint8_t header[16 + 16 * (5 + MAX_MODULES)];
    static const uint8_t magic[8] = {0x57, 0x55, 0x43, 0x41, 0x50, 0x0D, 0x0A, 0x1A};
    memcpy(header, magic, 8);
    header[8] = 2; header[9] = 0; header[10] = (uint8_t)minor; header[11] = (uint8_t)(minor >> 8);  // version 2.minor
    put32(header + 12, sections);
    uint32_t offset = 16 + 16 * sections;
    uint32_t kinds[5] = {SECTION_ARCHITECTURE, SECTION_REGISTERS, SECTION_ACTIVATIONS, SECTION_STACK, SECTION_NOTE};
    uint64_t sizes[5] = {2, registers_size, activations_size, stack_header_size + (top - base), note_size};
    uint8_t *entry = header + 16;
    for (int i = 0; i < 4; i++, entry += 16) {
        put32(entry, kinds[i]); put32(entry + 4, 0); put32(entry + 8, offset); put32(entry + 12, (uint32_t)sizes[i]);
        offset += (uint32_t)sizes[i];
    }
    for (int i = 0; i < modules; i++, entry += 16) {
        put32(entry, SECTION_MODULE); put32(entry + 4, 0); put32(entry + 8, offset); put32(entry + 12, body_sizes[i]);
        offset += body_sizes[i];
    }
    put32(entry, SECTION_NOTE); put32(entry + 4, 0); put32(entry + 8, offset); put32(entry + 12, (uint32_t)note_size);

    if (write_all(fd, header, 16 + 16 * (size_t)sections) || write_all(fd, architecture, 2) ||
        write_all(fd, registers, registers_size) || write_all(fd, activation_bytes, activations_size) ||
        write_all(fd, stack_header, stack_header_size) || write_all(fd, (const void *)(uintptr_t)base, top - base)) {
        wu_debug_reader_end();
        return;
    }
    for (int i = 0; i < modules; i++) {
        if (write_all(fd, bodies[i], body_sizes[i])) {
            wu_debug_reader_end();
            return;
        }
    }
    wu_debug_reader_end();
    write_all(fd, note, note_size);
}
