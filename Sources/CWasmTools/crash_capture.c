// A capture file written from the signal handler when a fault outside wasm
// kills the process (docs/post-mortem.md): the faulting thread's wasm
// activations, its stack and the modules of the post-mortem descriptor, in
// the capture format (docs/capture-format.md). Async-signal-safe: it reads
// memory and calls open(2), write(2), fsync(2), rename(2), nanosleep(2)
// and sched_yield(2); nothing else.
#define _GNU_SOURCE
#include "wasm_crash_capture.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "wasm_activation_chain.h"
#include "wasm_capture_format.h"
#include "wasm_debug_descriptor.h"
#include "wasm_unwind_arch.h"

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

enum { MAX_ACTIVATIONS = 64, MAX_MODULES = 64 };

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

/// The body of the section of `kind` (MODULE, MODULE_DEBUG) inside a
/// one-module capture image, or NULL.
static const uint8_t *image_section(const wu_debug_module *module, uint32_t kind, uint32_t *size) {
    const uint8_t *image = module->image;
    if (module->image_size < WU_CAPTURE_HEADER_SIZE) return NULL;
    uint32_t count = get32(image + WU_CAPTURE_SECTION_COUNT_OFFSET);
    for (uint32_t i = 0;
         i < count && WU_CAPTURE_HEADER_SIZE + WU_CAPTURE_TABLE_ENTRY_SIZE * (uint64_t)(i + 1) <= module->image_size; i++) {
        const uint8_t *entry = image + WU_CAPTURE_HEADER_SIZE + WU_CAPTURE_TABLE_ENTRY_SIZE * i;
        uint32_t offset = get32(entry + 8), length = get32(entry + 12);
        if (get32(entry) == kind && (uint64_t)offset + length <= module->image_size) {
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

/// The activations to write, newest first, as a capture at a host call:
/// the live exit record if a host call from wasm is running (above sp),
/// then what each older activation of the store saved. The chain is
/// followed as every reader follows it; activations without wasm frames
/// are skipped (a crash may come at any instruction).
static int collect_activations(wu_activation *head, uint64_t sp, activation_entry *activations) {
    const wu_runtime_limits *limits = head->limits;
    int count = 0;
    if (limits->last_wasm_exit_pc && limits->last_wasm_exit_fp >= sp) {
        activations[count++] = (activation_entry){WU_CAPTURE_START_RETURN_ADDRESS, limits->last_wasm_exit_pc,
                                                  limits->last_wasm_exit_fp, limits->last_wasm_exit_fp,
                                                  limits->last_wasm_entry_fp};
    }
    wu_activation_chain chain = wu_activation_chain_start(head, WU_MAXIMUM_ACTIVATION_RECORDS);
    while (count < MAX_ACTIVATIONS) {
        wu_chain_exit step = wu_activation_chain_next_exit(chain, limits, WU_CHAIN_SKIP_NO_WASM);
        chain = step.chain;
        if (step.exit.exit_pc == 0) break;
        activations[count++] = (activation_entry){WU_CAPTURE_START_RETURN_ADDRESS, step.exit.exit_pc,
                                                  step.exit.exit_fp, step.exit.exit_fp, step.exit.entry_fp};
    }
    return count;
}

/// A module image's sections that a crash capture copies: its MODULE body,
/// and its MODULE_DEBUG body (the module's identity, its DWARF when
/// carried), or NULL.
typedef struct {
    const uint8_t *body, *debug, *layout;
    uint32_t body_size, debug_size, layout_size;
} module_sections;

/// How many times the crash writer reads the module list before it gives
/// up on it: another thread may be changing it (its generation odd, or
/// moved while we read). Each failed read yields the processor, so a writer
/// preempted inside its update runs and finishes; if the crashing thread
/// itself holds the list (a crash inside an update) every read fails and
/// the capture has no modules, saying why.
enum { MODULE_LIST_ATTEMPTS = 100000 };

/// One read of the post-mortem descriptor's images: the MODULE (and
/// MODULE_DEBUG) bodies and the newest minor version among them (it says
/// how a MODULE section ends: handler lists, handler scopes), or -1 when
/// the list changed under the read. As a reader of the list, entries
/// another thread unlinks meanwhile are not freed under us
/// (`wu_debug_reader_begin`, which the caller holds).
static int read_modules_once(module_sections *found, uint16_t *minor) {
    int modules = 0;
    *minor = 0;
    uint64_t generation = __atomic_load_n(&wasm_unwind_debug_descriptor.generation, __ATOMIC_SEQ_CST);
    if (generation % 2 != 0) return -1;
    for (const wu_debug_module *module = __atomic_load_n(&wasm_unwind_debug_descriptor.modules, __ATOMIC_SEQ_CST);
         module && modules < MAX_MODULES; module = __atomic_load_n(&module->next, __ATOMIC_SEQ_CST)) {
        uint32_t size = 0, debug_size = 0;
        const uint8_t *body = image_section(module, WU_CAPTURE_SECTION_MODULE, &size);
        const uint8_t *debug = image_section(module, WU_CAPTURE_SECTION_MODULE_DEBUG, &debug_size);
        uint32_t layout_size = 0;
        const uint8_t *layout = image_section(module, WU_CAPTURE_SECTION_FRAME_LAYOUT, &layout_size);
        // An image's MODULE_DEBUG and FRAME_LAYOUT name its one module:
        // position 0, one byte.
        if (debug && (debug_size < 1 || debug[0] != 0)) debug = NULL;
        if (layout && (layout_size < 1 || layout[0] != 0)) layout = NULL;
        if (body) {
            found[modules++] = (module_sections){body, debug, layout, size, debug ? debug_size : 0, layout ? layout_size : 0};
            uint16_t image_minor = (uint16_t)(module->image[WU_CAPTURE_MINOR_OFFSET] |
                                              module->image[WU_CAPTURE_MINOR_OFFSET + 1] << 8);
            if (image_minor > *minor) *minor = image_minor;
        }
    }
    if (__atomic_load_n(&wasm_unwind_debug_descriptor.generation, __ATOMIC_SEQ_CST) != generation) return -1;
    return modules;
}

/// The module list as one consistent read (bounded retries; see
/// MODULE_LIST_ATTEMPTS), or -1 with no modules when none succeeded.
/// `*attempts` says how many reads it took.
static int collect_modules(module_sections *found, uint16_t *minor, int *attempts) {
    for (*attempts = 1; *attempts <= MODULE_LIST_ATTEMPTS; *attempts += 1) {
        int modules = read_modules_once(found, minor);
        if (modules >= 0) return modules;
        syscall(SYS_sched_yield);
    }
    *attempts = MODULE_LIST_ATTEMPTS;
    *minor = 0;
    return -1;
}

int wu_crash_capture_read_module_list(int *attempts) {
    module_sections found[MAX_MODULES];
    uint16_t minor = 0;
    wu_debug_reader_begin();
    int modules = collect_modules(found, &minor, attempts);
    wu_debug_reader_end();
    return modules;
}

/// ACTIVATIONS: the count, then a row per activation.
static size_t encode_activations(uint8_t *out, const activation_entry *activations, int count) {
    size_t size = uleb(out, (uint64_t)count);
    for (int i = 0; i < count; i++, size += WU_CAPTURE_ACTIVATION_ROW_SIZE) {
        uint8_t *at = out + size;
        at[0] = activations[i].start_is_pc;
        put64(at + 1, activations[i].start);
        put64(at + 9, activations[i].fp);
        put64(at + 17, activations[i].sp);
        put64(at + 25, activations[i].entry_fp);
    }
    return size;
}

/// REGISTERS: the newest activation's pc, fp and sp, by DWARF number.
static size_t encode_registers(uint8_t *out, const activation_entry *newest) {
    size_t size = uleb(out, 3);
    uint8_t numbers[3] = {WU_ARCH_DWARF_PC, WU_ARCH_DWARF_FP, WU_ARCH_DWARF_SP};
    uint64_t values[3] = {newest->start, newest->fp, newest->sp};
    for (int i = 0; i < 3; i++, size += 9) {
        out[size] = numbers[i];
        put64(out + size + 1, values[i]);
    }
    return size;
}

/// The header and section table: ARCH, REGISTERS, ACTIVATIONS, STACK, the
/// modules, their MODULE_DEBUG sections, NOTE, laid out in that order after
/// the table.
static size_t encode_header(uint8_t *out, uint16_t minor, const uint64_t *sizes, const module_sections *found,
                            int modules) {
    uint32_t sections = 5 + (uint32_t)modules;
    for (int i = 0; i < modules; i++) sections += (found[i].debug != NULL) + (found[i].layout != NULL);
    put64(out, WU_CAPTURE_MAGIC);
    out[WU_CAPTURE_MAJOR_OFFSET] = WU_CAPTURE_VERSION_MAJOR;
    out[WU_CAPTURE_MAJOR_OFFSET + 1] = 0;
    out[WU_CAPTURE_MINOR_OFFSET] = (uint8_t)minor;
    out[WU_CAPTURE_MINOR_OFFSET + 1] = (uint8_t)(minor >> 8);
    put32(out + WU_CAPTURE_SECTION_COUNT_OFFSET, sections);
    uint32_t offset = WU_CAPTURE_HEADER_SIZE + WU_CAPTURE_TABLE_ENTRY_SIZE * sections;
    static const uint32_t kinds[5] = {WU_CAPTURE_SECTION_ARCHITECTURE, WU_CAPTURE_SECTION_REGISTERS,
                                      WU_CAPTURE_SECTION_ACTIVATIONS, WU_CAPTURE_SECTION_STACK,
                                      WU_CAPTURE_SECTION_NOTE};
    uint8_t *entry = out + WU_CAPTURE_HEADER_SIZE;
    for (int i = 0; i < 4; i++, entry += WU_CAPTURE_TABLE_ENTRY_SIZE) {
        put32(entry, kinds[i]); put32(entry + 4, 0); put32(entry + 8, offset); put32(entry + 12, (uint32_t)sizes[i]);
        offset += (uint32_t)sizes[i];
    }
    for (int i = 0; i < modules; i++, entry += WU_CAPTURE_TABLE_ENTRY_SIZE) {
        put32(entry, WU_CAPTURE_SECTION_MODULE); put32(entry + 4, 0); put32(entry + 8, offset);
        put32(entry + 12, found[i].body_size);
        offset += found[i].body_size;
    }
    for (int i = 0; i < modules; i++) {
        if (!found[i].debug) continue;
        put32(entry, WU_CAPTURE_SECTION_MODULE_DEBUG); put32(entry + 4, 0); put32(entry + 8, offset);
        put32(entry + 12, found[i].debug_size);
        offset += found[i].debug_size;
        entry += WU_CAPTURE_TABLE_ENTRY_SIZE;
    }
    for (int i = 0; i < modules; i++) {
        if (!found[i].layout) continue;
        put32(entry, WU_CAPTURE_SECTION_FRAME_LAYOUT); put32(entry + 4, 0); put32(entry + 8, offset);
        put32(entry + 12, found[i].layout_size);
        offset += found[i].layout_size;
        entry += WU_CAPTURE_TABLE_ENTRY_SIZE;
    }
    put32(entry, kinds[4]); put32(entry + 4, 0); put32(entry + 8, offset); put32(entry + 12, (uint32_t)sizes[4]);
    return WU_CAPTURE_HEADER_SIZE + WU_CAPTURE_TABLE_ENTRY_SIZE * (size_t)sections;
}

static void write_capture(int fd, wu_activation *head, uint64_t sp) {
    activation_entry activations[MAX_ACTIVATIONS];
    int count = collect_activations(head, sp, activations);
    if (count == 0) return;
    uint64_t top = 0;
    for (int i = 0; i < count; i++) if (activations[i].entry_fp + 16 > top) top = activations[i].entry_fp + 16;
    uint64_t base = activations[0].sp;
    if (top <= base) return;

    module_sections found[MAX_MODULES];
    uint16_t minor = 0;
    wu_debug_reader_begin();
    int attempts = 0;
    int modules = collect_modules(found, &minor, &attempts);
    int list_changing = modules < 0;
    if (list_changing) modules = 0;

    // Small sections, built here; the stack and module bodies are written
    // from where they are.
    uint8_t architecture[2] = {WU_ARCH_CAPTURE_CODE, WU_CAPTURE_WORD_SIZE};
    uint8_t registers[1 + 3 * 9];
    size_t registers_size = encode_registers(registers, &activations[0]);
    uint8_t activation_bytes[10 + MAX_ACTIVATIONS * WU_CAPTURE_ACTIVATION_ROW_SIZE];
    size_t activations_size = encode_activations(activation_bytes, activations, count);
    uint8_t stack_header[1 + 8 + 10];
    size_t stack_header_size = uleb(stack_header, 1);
    put64(stack_header + stack_header_size, base);
    stack_header_size += 8;
    stack_header_size += uleb(stack_header + stack_header_size, top - base);
    static const char note_text[] = "written by the signal handler at a crash outside wasm";
    static const char changing_text[] =
        "written by the signal handler at a crash outside wasm; no modules: the post-mortem descriptor's "
        "module list was changing on every read";
    const char *text = list_changing ? changing_text : note_text;
    size_t text_size = list_changing ? sizeof changing_text - 1 : sizeof note_text - 1;
    uint8_t note[160];
    size_t note_size = uleb(note, text_size);
    memcpy(note + note_size, text, text_size);
    note_size += text_size;

    uint8_t header[WU_CAPTURE_HEADER_SIZE + WU_CAPTURE_TABLE_ENTRY_SIZE * (5 + 3 * MAX_MODULES)];
    uint64_t sizes[5] = {2, registers_size, activations_size, stack_header_size + (top - base), note_size};
    size_t header_size = encode_header(header, minor, sizes, found, modules);

    int failed = write_all(fd, header, header_size) || write_all(fd, architecture, 2) ||
                 write_all(fd, registers, registers_size) || write_all(fd, activation_bytes, activations_size) ||
                 write_all(fd, stack_header, stack_header_size) ||
                 write_all(fd, (const void *)(uintptr_t)base, top - base);
    for (int i = 0; !failed && i < modules; i++) failed = write_all(fd, found[i].body, found[i].body_size);
    // Each MODULE_DEBUG renumbered to its module's position here (below
    // MAX_MODULES: one uleb byte, as the image's 0 was).
    for (int i = 0; !failed && i < modules; i++) {
        if (!found[i].debug) continue;
        uint8_t position = (uint8_t)i;
        failed = write_all(fd, &position, 1) || write_all(fd, found[i].debug + 1, found[i].debug_size - 1);
    }
    for (int i = 0; !failed && i < modules; i++) {
        if (!found[i].layout) continue;
        uint8_t position = (uint8_t)i;
        failed = write_all(fd, &position, 1) || write_all(fd, found[i].layout + 1, found[i].layout_size - 1);
    }
    wu_debug_reader_end();
    if (!failed) write_all(fd, note, note_size);
}
