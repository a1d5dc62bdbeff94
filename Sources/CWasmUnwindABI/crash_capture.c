// A capture file written from the signal handler when a fault outside wasm
// kills the process (docs/post-mortem.md): the faulting thread's wasm
// activations, its stack and the modules of the post-mortem descriptor, in
// the capture format (docs/capture-format.md). Async-signal-safe: it reads
// memory and calls write(2) on a file opened beforehand; nothing else.
#include "wasm_crash_capture.h"

#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "wasm_debug_descriptor.h"

static _Atomic int crash_fd = -1;

void wu_crash_capture_set_fd(int fd) { atomic_store(&crash_fd, fd); }

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

void wu_crash_capture_write(int signal, uint64_t sp) {
    int fd = atomic_load(&crash_fd);
    wu_activation *head = wu_current_activation();
    if (fd < 0 || !head || !head->limits) return;
    atomic_store(&crash_fd, -1);  // once
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

    // The modules, if the descriptor is consistent now.
    const uint8_t *bodies[MAX_MODULES];
    uint32_t body_sizes[MAX_MODULES];
    int modules = 0;
    uint64_t generation = __atomic_load_n(&wasm_unwind_debug_descriptor.generation, __ATOMIC_ACQUIRE);
    if (generation % 2 == 0) {
        for (const wu_debug_module *module = wasm_unwind_debug_descriptor.modules; module && modules < MAX_MODULES;
             module = module->next) {
            uint32_t size = 0;
            const uint8_t *body = module_body(module, &size);
            if (body) {
                bodies[modules] = body;
                body_sizes[modules++] = size;
            }
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
    header[8] = 2; header[9] = 0; header[10] = 0; header[11] = 0;  // version 2.0
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
        write_all(fd, stack_header, stack_header_size) || write_all(fd, (const void *)(uintptr_t)base, top - base))
        return;
    for (int i = 0; i < modules; i++) if (write_all(fd, bodies[i], body_sizes[i])) return;
    write_all(fd, note, note_size);
    fsync(fd);
}
