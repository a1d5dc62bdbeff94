// Wasmtime 50.0.1 through its C API, for the benchmarks: the shared library
// of the `wasmtime` PyPI package (`wasmtime/linux-x86_64/_libwasmtime.so`),
// opened with dlopen. The few functions and layouts used are declared here
// from the C API's headers (wasm.h, wasmtime/*.h of Wasmtime 50; their
// sizes were checked against the package's own ctypes bindings).
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchmark_support.h"

typedef struct wasm_engine_t wasm_engine_t;
typedef struct wasm_config_t wasm_config_t;
typedef struct wasmtime_store wasmtime_store_t;
typedef struct wasmtime_context wasmtime_context_t;
typedef struct wasmtime_module wasmtime_module_t;
typedef struct wasmtime_linker wasmtime_linker_t;
typedef struct wasmtime_error wasmtime_error_t;
typedef struct wasm_trap_t wasm_trap_t;
typedef struct wasm_frame_t wasm_frame_t;
typedef struct wasm_functype_t wasm_functype_t;
typedef struct wasm_valtype_t wasm_valtype_t;
typedef struct wasmtime_caller wasmtime_caller_t;

typedef struct { size_t size; uint8_t *data; } wasm_byte_vec_t;
typedef wasm_byte_vec_t wasm_name_t;
typedef wasm_byte_vec_t wasm_message_t;
typedef struct { size_t size; wasm_frame_t **data; } wasm_frame_vec_t;
typedef struct { size_t size; wasm_valtype_t **data; } wasm_valtype_vec_t;
typedef struct { uint64_t store_id; void *private_; } wasmtime_func_t;
typedef struct { uint64_t store_id; size_t private_; } wasmtime_instance_t;
// wasmtime_extern_t: a kind byte and a 24-byte union (32 bytes).
typedef struct {
    uint8_t kind;
    union {
        wasmtime_func_t func;
        uint8_t bytes[24];
    } of;
} wasmtime_extern_t;
// wasmtime_val_t: a kind byte and a 24-byte union (32 bytes).
typedef struct {
    uint8_t kind;
    union {
        int32_t i32;
        int64_t i64;
        uint8_t bytes[24];
    } of;
} wasmtime_val_t;
typedef union {
    int32_t i32;
    int64_t i64;
    uint8_t bytes[16];
} wasmtime_val_raw_t;

_Static_assert(sizeof(wasmtime_extern_t) == 32, "wasmtime_extern_t");
_Static_assert(sizeof(wasmtime_val_t) == 32, "wasmtime_val_t");
_Static_assert(sizeof(wasmtime_val_raw_t) == 16, "wasmtime_val_raw_t");
_Static_assert(sizeof(wasmtime_instance_t) == 16, "wasmtime_instance_t");

enum { WASM_I32 = 0, WASMTIME_I32 = 0, WASMTIME_EXTERN_FUNC = 0 };

typedef wasm_trap_t *(*wasmtime_func_callback_t)(void *env, wasmtime_caller_t *caller, const wasmtime_val_t *args,
                                                 size_t nargs, wasmtime_val_t *results, size_t nresults);
typedef wasm_trap_t *(*wasmtime_func_unchecked_callback_t)(void *env, wasmtime_caller_t *caller,
                                                           wasmtime_val_raw_t *args_and_results, size_t num);

static struct {
    wasm_engine_t *(*engine_new)(void);
    wasm_config_t *(*config_new)(void);
    void (*config_exceptions)(wasm_config_t *, bool);
    wasm_engine_t *(*engine_new_with_config)(wasm_config_t *);
    void (*engine_delete)(wasm_engine_t *);
    wasmtime_store_t *(*store_new)(wasm_engine_t *, void *, void (*)(void *));
    void (*store_delete)(wasmtime_store_t *);
    wasmtime_context_t *(*store_context)(wasmtime_store_t *);
    wasmtime_error_t *(*wat2wasm)(const char *, size_t, wasm_byte_vec_t *);
    void (*byte_vec_delete)(wasm_byte_vec_t *);
    wasmtime_error_t *(*module_new)(wasm_engine_t *, const uint8_t *, size_t, wasmtime_module_t **);
    void (*module_delete)(wasmtime_module_t *);
    wasmtime_linker_t *(*linker_new)(wasm_engine_t *);
    void (*linker_delete)(wasmtime_linker_t *);
    wasmtime_error_t *(*linker_define_func)(wasmtime_linker_t *, const char *, size_t, const char *, size_t,
                                            const wasm_functype_t *, wasmtime_func_callback_t, void *,
                                            void (*)(void *));
    wasmtime_error_t *(*linker_define_func_unchecked)(wasmtime_linker_t *, const char *, size_t, const char *, size_t,
                                                      const wasm_functype_t *, wasmtime_func_unchecked_callback_t,
                                                      void *, void (*)(void *));
    wasmtime_error_t *(*linker_instantiate)(const wasmtime_linker_t *, wasmtime_context_t *,
                                            const wasmtime_module_t *, wasmtime_instance_t *, wasm_trap_t **);
    int (*instance_export_get)(wasmtime_context_t *, const wasmtime_instance_t *, const char *, size_t,
                               wasmtime_extern_t *);
    wasmtime_error_t *(*func_call)(wasmtime_context_t *, const wasmtime_func_t *, const wasmtime_val_t *, size_t,
                                   wasmtime_val_t *, size_t, wasm_trap_t **);
    wasmtime_error_t *(*func_call_unchecked)(wasmtime_context_t *, const wasmtime_func_t *, wasmtime_val_raw_t *,
                                             size_t, wasm_trap_t **);
    void (*trap_trace)(const wasm_trap_t *, wasm_frame_vec_t *);
    void (*frame_vec_delete)(wasm_frame_vec_t *);
    const wasm_name_t *(*frame_func_name)(const wasm_frame_t *);
    const wasm_name_t *(*frame_module_name)(const wasm_frame_t *);
    size_t (*frame_module_offset)(const wasm_frame_t *);
    void (*trap_message)(const wasm_trap_t *, wasm_message_t *);
    void (*trap_delete)(wasm_trap_t *);
    void (*error_message)(const wasmtime_error_t *, wasm_name_t *);
    void (*error_delete)(wasmtime_error_t *);
    wasm_valtype_t *(*valtype_new)(uint8_t);
    void (*valtype_vec_new)(wasm_valtype_vec_t *, size_t, wasm_valtype_t *const *);
    wasm_functype_t *(*functype_new)(wasm_valtype_vec_t *, wasm_valtype_vec_t *);
    void (*functype_delete)(wasm_functype_t *);
} api;

struct wu_wasmtime {
    wasm_engine_t *engine;
    wasmtime_store_t *store;
    wasmtime_context_t *context;
    wasmtime_module_t *module;
    wasmtime_linker_t *linker;
    wasmtime_instance_t instance;
    wasmtime_func_t functions[16];
    int function_count;
};

static int loaded;

static int load(const char *path, char *error, size_t capacity) {
    if (loaded) return 0;
    void *library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        snprintf(error, capacity, "dlopen %s: %s", path, dlerror());
        return -1;
    }
#define SYMBOL(field, name)                                                       \
    do {                                                                          \
        *(void **)&api.field = dlsym(library, name);                             \
        if (!api.field) {                                                         \
            snprintf(error, capacity, "%s has no symbol %s", path, name);         \
            return -1;                                                            \
        }                                                                         \
    } while (0)
    SYMBOL(engine_new, "wasm_engine_new");
    SYMBOL(config_new, "wasm_config_new");
    SYMBOL(config_exceptions, "wasmtime_config_wasm_exceptions_set");
    SYMBOL(engine_new_with_config, "wasm_engine_new_with_config");
    SYMBOL(engine_delete, "wasm_engine_delete");
    SYMBOL(store_new, "wasmtime_store_new");
    SYMBOL(store_delete, "wasmtime_store_delete");
    SYMBOL(store_context, "wasmtime_store_context");
    SYMBOL(wat2wasm, "wasmtime_wat2wasm");
    SYMBOL(byte_vec_delete, "wasm_byte_vec_delete");
    SYMBOL(module_new, "wasmtime_module_new");
    SYMBOL(module_delete, "wasmtime_module_delete");
    SYMBOL(linker_new, "wasmtime_linker_new");
    SYMBOL(linker_delete, "wasmtime_linker_delete");
    SYMBOL(linker_define_func, "wasmtime_linker_define_func");
    SYMBOL(linker_define_func_unchecked, "wasmtime_linker_define_func_unchecked");
    SYMBOL(linker_instantiate, "wasmtime_linker_instantiate");
    SYMBOL(instance_export_get, "wasmtime_instance_export_get");
    SYMBOL(func_call, "wasmtime_func_call");
    SYMBOL(func_call_unchecked, "wasmtime_func_call_unchecked");
    SYMBOL(trap_trace, "wasm_trap_trace");
    SYMBOL(frame_vec_delete, "wasm_frame_vec_delete");
    SYMBOL(frame_func_name, "wasmtime_frame_func_name");
    SYMBOL(frame_module_name, "wasmtime_frame_module_name");
    SYMBOL(frame_module_offset, "wasm_frame_module_offset");
    SYMBOL(trap_message, "wasm_trap_message");
    SYMBOL(trap_delete, "wasm_trap_delete");
    SYMBOL(error_message, "wasmtime_error_message");
    SYMBOL(error_delete, "wasmtime_error_delete");
    SYMBOL(valtype_new, "wasm_valtype_new");
    SYMBOL(valtype_vec_new, "wasm_valtype_vec_new");
    SYMBOL(functype_new, "wasm_functype_new");
    SYMBOL(functype_delete, "wasm_functype_delete");
#undef SYMBOL
    loaded = 1;
    return 0;
}

static int failed(wasmtime_error_t *failure, const char *what, char *error, size_t capacity) {
    if (!failure) return 0;
    wasm_name_t message;
    api.error_message(failure, &message);
    snprintf(error, capacity, "%s: %.*s", what, (int)message.size, (const char *)message.data);
    api.byte_vec_delete(&message);
    api.error_delete(failure);
    return -1;
}

/// The host functions of the benchmark module: (i32, i32) -> i32, returning
/// the first argument — on raw slots, and on typed values.
static wasm_trap_t *noop_unchecked(void *env, wasmtime_caller_t *caller, wasmtime_val_raw_t *values, size_t count) {
    (void)env; (void)caller; (void)values; (void)count;
    return NULL;
}

static wasm_trap_t *noop_typed(void *env, wasmtime_caller_t *caller, const wasmtime_val_t *args, size_t nargs,
                               wasmtime_val_t *results, size_t nresults) {
    (void)env; (void)caller; (void)nargs; (void)nresults;
    results[0].kind = WASMTIME_I32;
    results[0].of.i32 = args[0].of.i32;
    return NULL;
}

static wasm_functype_t *binary_type(void) {
    wasm_valtype_t *parameters[2] = {api.valtype_new(WASM_I32), api.valtype_new(WASM_I32)};
    wasm_valtype_t *results[1] = {api.valtype_new(WASM_I32)};
    wasm_valtype_vec_t parameter_vec, result_vec;
    api.valtype_vec_new(&parameter_vec, 2, parameters);
    api.valtype_vec_new(&result_vec, 1, results);
    return api.functype_new(&parameter_vec, &result_vec);
}

/// An engine, store, module and instance of `binary` (a wasm binary, or
/// the text `wat2wasm` turned into one).
static wu_wasmtime *open_binary(const uint8_t *binary, size_t size, char *error, size_t capacity) {
    wu_wasmtime *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    // Exceptions on, explicitly (the throw benchmark's module uses them).
    // Backtrace details follow WASMTIME_BACKTRACE_DETAILS, read here.
    wasm_config_t *config = api.config_new();
    api.config_exceptions(config, true);
    w->engine = api.engine_new_with_config(config);
    w->store = api.store_new(w->engine, NULL, NULL);
    w->context = api.store_context(w->store);
    if (failed(api.module_new(w->engine, binary, size, &w->module), "module", error, capacity)) return NULL;
    w->linker = api.linker_new(w->engine);
    wasm_functype_t *type = binary_type();
    if (failed(api.linker_define_func_unchecked(w->linker, "host", 4, "noop", 4, type, noop_unchecked, NULL, NULL),
               "define noop", error, capacity))
        return NULL;
    if (failed(api.linker_define_func(w->linker, "host", 4, "noop_typed", 10, type, noop_typed, NULL, NULL),
               "define noop_typed", error, capacity))
        return NULL;
    api.functype_delete(type);
    wasm_trap_t *trap = NULL;
    if (failed(api.linker_instantiate(w->linker, w->context, w->module, &w->instance, &trap), "instantiate", error,
               capacity))
        return NULL;
    if (trap) {
        snprintf(error, capacity, "instantiation trapped");
        api.trap_delete(trap);
        return NULL;
    }
    return w;
}

wu_wasmtime *wu_wasmtime_open(const char *library, const char *wat, char *error, size_t capacity) {
    if (load(library, error, capacity) != 0) return NULL;
    wasm_byte_vec_t binary;
    if (failed(api.wat2wasm(wat, strlen(wat), &binary), "wat2wasm", error, capacity)) return NULL;
    wu_wasmtime *w = open_binary((const uint8_t *)binary.data, binary.size, error, capacity);
    api.byte_vec_delete(&binary);
    return w;
}

wu_wasmtime *wu_wasmtime_open_binary(const char *library, const uint8_t *binary, size_t size, char *error,
                                     size_t capacity) {
    if (load(library, error, capacity) != 0) return NULL;
    return open_binary(binary, size, error, capacity);
}

int wu_wasmtime_function(wu_wasmtime *w, const char *name) {
    if (w->function_count == 16) return -1;
    wasmtime_extern_t item;
    if (!api.instance_export_get(w->context, &w->instance, name, strlen(name), &item) ||
        item.kind != WASMTIME_EXTERN_FUNC)
        return -1;
    w->functions[w->function_count] = item.of.func;
    return w->function_count++;
}

/// Reads what a trap's frames say — each frame's module name, function
/// name and module offset, as a backtrace printer would — into a checksum.
static uint64_t read_frames(wasm_trap_t *trap, uint64_t *frame_count) {
    wasm_frame_vec_t frames;
    api.trap_trace(trap, &frames);
    uint64_t checksum = 0;
    for (size_t i = 0; i < frames.size; i++) {
        const wasm_name_t *function = api.frame_func_name(frames.data[i]);
        const wasm_name_t *module = api.frame_module_name(frames.data[i]);
        checksum += api.frame_module_offset(frames.data[i]);
        if (function) checksum += function->size + (function->size ? function->data[0] : 0);
        if (module) checksum += module->size;
    }
    *frame_count = frames.size;
    api.frame_vec_delete(&frames);
    return checksum;
}

int64_t wu_wasmtime_call(wu_wasmtime *w, int function, int32_t argument, int with_message, uint64_t *frame_count) {
    wasmtime_val_raw_t values[1];
    values[0].i64 = 0;
    values[0].i32 = argument;
    wasm_trap_t *trap = NULL;
    wasmtime_error_t *error = api.func_call_unchecked(w->context, &w->functions[function], values, 1, &trap);
    if (error) {
        api.error_delete(error);
        return -1;
    }
    *frame_count = 0;
    if (!trap) return values[0].i32;
    uint64_t checksum = read_frames(trap, frame_count);
    if (with_message) {
        // The Display of a trap: its backtrace and message, as Wasmtime
        // prints it.
        wasm_message_t message;
        api.trap_message(trap, &message);
        checksum += message.size;
        api.byte_vec_delete(&message);
    }
    api.trap_delete(trap);
    return (int64_t)checksum;
}

int64_t wu_wasmtime_call_typed(wu_wasmtime *w, int function, int32_t argument) {
    wasmtime_val_t arguments[1], results[1];
    memset(arguments, 0, sizeof arguments);
    arguments[0].kind = WASMTIME_I32;
    arguments[0].of.i32 = argument;
    wasm_trap_t *trap = NULL;
    wasmtime_error_t *error = api.func_call(w->context, &w->functions[function], arguments, 1, results, 1, &trap);
    if (error) {
        api.error_delete(error);
        return -1;
    }
    if (trap) {
        api.trap_delete(trap);
        return -1;
    }
    return results[0].of.i32;
}

int64_t wu_wasmtime_instantiate_and_call(wu_wasmtime *w, const char *name, int32_t argument) {
    // A store of its own each time (a store keeps its instances until it
    // is dropped), as a server instantiating per request would.
    wasmtime_store_t *store = api.store_new(w->engine, NULL, NULL);
    wasmtime_context_t *context = api.store_context(store);
    wasmtime_instance_t instance;
    wasm_trap_t *trap = NULL;
    int64_t result = -1;
    wasmtime_error_t *error = api.linker_instantiate(w->linker, context, w->module, &instance, &trap);
    wasmtime_extern_t item;
    if (!error && !trap && api.instance_export_get(context, &instance, name, strlen(name), &item)) {
        wasmtime_val_raw_t values[1];
        values[0].i64 = 0;
        values[0].i32 = argument;
        error = api.func_call_unchecked(context, &item.of.func, values, 1, &trap);
        if (!error && !trap) result = values[0].i32;
    }
    if (error) api.error_delete(error);
    if (trap) api.trap_delete(trap);
    api.store_delete(store);
    return result;
}

void wu_wasmtime_close(wu_wasmtime *w) {
    if (!w) return;
    api.linker_delete(w->linker);
    api.module_delete(w->module);
    api.store_delete(w->store);
    api.engine_delete(w->engine);
    free(w);
}
