#!/usr/bin/env python3
"""Runs wasm programs on real Wasmtime (the `wasmtime` package from PyPI,
50.0.1) for `wasm-unwind verify-wasmtime`: one JSON request per line on
stdin, one JSON answer per line on stdout.

Request:  {"modules": [{"name": "lib", "path": "/tmp/lib.wasm"}, ...],
           "host": "linked" | "none",
           "calls": [{"export": "entry", "args": [3]}, ...]}
The modules are instantiated in order, each registered under its name for
the next ones to import. With "host": "linked", the host functions of a
linked program are defined (Sources/Verification/LinkedProgramHost.swift):
host.slot (3d + 1), host.reenter (calls the last module's "entry"),
host.check (nothing). With "host": "exceptions", the host functions of
an exception program (Sources/Verification/ExceptionProgramHost.swift):
host.reenter calls the last module's "entry" and passes an uncaught
exception on unchanged (Wasmtime then throws it into the calling wasm);
host.throw throws the first module's tag "t0" with payload 7d. Both are
C-API callbacks: Python's own host functions turn every error into a
fresh trap, which no wasm frame can catch.

Arguments and results: an i32 or i64 is a JSON number; an f32 or f64 is
{"f32": "HEX"} / {"f64": "HEX"} with its bit pattern in hex, so NaN payloads and the
sign of zero are compared exactly (calls go through the C API's raw
values: Python floats would quiet a signaling NaN).

With "consume_fuel": true, Wasmtime counts fuel: the store starts with
2^40, and a call with "fuel": N is given N first; its answer then has
"fuel_left" (`Store.get_fuel` after the call).

With "epoch": true, Wasmtime checks its epoch: each call starts with the
store's deadline one tick ahead, and every third host.check of a linked
program's call advances the engine's epoch (the call then stops at its
next function entry or loop header with "wasm trap: interrupt").

Answer:   {"calls": [{"results": [...]} |
                     {"trap": "wasm trap: ...", "frames": [[module, function, offset], ...]}, ...]}
or {"error": "..."} when the modules cannot be instantiated. A frame's
function is null when the name section has none; its offset is null when
Wasmtime gives none (a trap in a function's prologue).
"""
import ctypes
import json
import os
import sys

import wasmtime
from wasmtime import _ffi as ffi

# C callbacks and their finalizer stay alive as long as the process.
KEEP = []


def signed32(value):
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def describe_trap(trap):
    frames = []
    for frame in trap.frames or []:
        offset = frame.module_offset
        frames.append([frame.module_name, frame.func_name, None if offset is None or offset < 0 or offset == 0xFFFFFFFFFFFFFFFF else offset])
    # After "Caused by:", one line, or numbered lines ("0: memory fault at
    # ...", "1: wasm trap: ..."): the last is the trap, the one before it
    # the cause.
    text = str(trap).strip()
    caused = text.split("Caused by:")[-1].strip().splitlines()
    lines = [line.strip().split(": ", 1)[1] if line.strip()[:1].isdigit() else line.strip() for line in caused]
    answer = {"trap": lines[-1], "frames": frames}
    if len(lines) > 1:
        answer["cause"] = lines[-2]
    # With WASMTIME_BACKTRACE_DETAILS=1: the backtrace as displayed, one
    # string per line (frames with their symbols and source lines).
    if os.environ.get("WASMTIME_BACKTRACE_DETAILS") == "1":
        shown = text.split("Caused by:")[0].splitlines()
        answer["display"] = [line for line in shown[1:] if line.strip() and not line.startswith("note:")]
    return answer


def call_exactly(store, function, arguments):
    """Calls `function` with raw values: floats as bit patterns both ways."""
    from wasmtime._func import enter_wasm
    kind = function.type(store)
    if len(arguments) != len(kind.params):
        raise wasmtime.WasmtimeError("%d arguments for %d parameters" % (len(arguments), len(kind.params)))
    params = (ffi.wasmtime_val_t * max(1, len(arguments)))()
    for index, (type_, value) in enumerate(zip(kind.params, arguments)):
        raw = params[index]
        if type_ == wasmtime.ValType.i32():
            raw.kind, raw.of.i32 = ffi.WASMTIME_I32, signed32(value)
        elif type_ == wasmtime.ValType.i64():
            raw.kind, raw.of.i64 = ffi.WASMTIME_I64, signed64(value)
        elif type_ == wasmtime.ValType.f32():
            raw.kind, raw.of.i32 = ffi.WASMTIME_F32, signed32(int(value["f32"], 16))
        elif type_ == wasmtime.ValType.f64():
            raw.kind, raw.of.i64 = ffi.WASMTIME_F64, signed64(int(value["f64"], 16))
        else:
            raise wasmtime.WasmtimeError("cannot pass a %s" % type_)
    results = (ffi.wasmtime_val_t * max(1, len(kind.results)))()
    with enter_wasm(store) as trap:
        error = ffi.wasmtime_func_call(store._context(), ctypes.byref(function._func), params, len(arguments),
                                       results, len(kind.results), trap)
        if error:
            raise wasmtime.WasmtimeError._from_ptr(error)
    answer = []
    for index in range(len(kind.results)):
        raw = results[index]
        if raw.kind == ffi.WASMTIME_I32.value:
            answer.append(raw.of.i32)
        elif raw.kind == ffi.WASMTIME_I64.value:
            answer.append(raw.of.i64)
        elif raw.kind == ffi.WASMTIME_F32.value:
            answer.append({"f32": "%08x" % (raw.of.i32 & 0xFFFFFFFF)})
        elif raw.kind == ffi.WASMTIME_F64.value:
            answer.append({"f64": "%016x" % (raw.of.i64 & 0xFFFFFFFFFFFFFFFF)})
        else:
            answer.append(None)  # a reference: compared as null
    return answer


def signed64(value):
    value &= 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value >= 1 << 63 else value


def exception_host(store, linker, entry, tags):
    """host.reenter and host.throw as C-API callbacks (see above)."""
    unary = wasmtime.FuncType([wasmtime.ValType.i32()], [wasmtime.ValType.i32()])

    @ffi.wasmtime_func_callback_t
    def reenter(env, caller, params, nparams, results, nresults):
        context = ffi.wasmtime_caller_context(caller)
        args = (ffi.wasmtime_val_t * 1)()
        args[0].kind = ffi.WASMTIME_I32
        args[0].of.i32 = params[0].of.i32
        out = (ffi.wasmtime_val_t * 1)()
        trap = ctypes.POINTER(ffi.wasm_trap_t)()
        error = ffi.wasmtime_func_call(context, ctypes.byref(entry["entry"]._func), args, 1, out, 1, ctypes.byref(trap))
        if error:
            return ctypes.cast(ffi.wasmtime_trap_new(b"reenter failed", 14), ctypes.c_void_p).value
        if trap:
            return ctypes.cast(trap, ctypes.c_void_p).value
        results[0].kind = ffi.WASMTIME_I32
        results[0].of.i32 = out[0].of.i32
        return 0

    @ffi.wasmtime_func_callback_t
    def throw(env, caller, params, nparams, results, nresults):
        context = ffi.wasmtime_caller_context(caller)
        fields = (ffi.wasmtime_val_t * 1)()
        fields[0].kind = ffi.WASMTIME_I32
        fields[0].of.i32 = signed32(params[0].of.i32 * 7)
        exn = ffi.wasmtime_exnref_t()
        error = ffi.wasmtime_exnref_new(context, ctypes.byref(tags["t0"]._tag), fields, 1, ctypes.byref(exn))
        if error:
            return ctypes.cast(ffi.wasmtime_trap_new(b"exnref_new failed", 17), ctypes.c_void_p).value
        return ctypes.cast(ffi.wasmtime_context_set_exception(context, ctypes.byref(exn)), ctypes.c_void_p).value

    finalizer = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda data: None)
    KEEP.extend([reenter, throw, finalizer])
    for name, callback in (("reenter", reenter), ("throw", throw)):
        raw = ffi.wasmtime_func_t()
        ffi.wasmtime_func_new(store._context(), unary.ptr(), callback, None, finalizer, ctypes.byref(raw))
        linker.define(store, "host", name, wasmtime.Func._from_raw(raw))


def run(request):
    config = wasmtime.Config()
    config.wasm_tail_call = True
    config.wasm_exceptions = True
    fuel = bool(request.get("consume_fuel"))
    config.consume_fuel = fuel
    epoch = bool(request.get("epoch"))
    config.epoch_interruption = epoch
    engine = wasmtime.Engine(config)
    store = wasmtime.Store(engine)
    if epoch:
        store.set_epoch_deadline(1)
    if fuel:
        store.set_fuel(1 << 40)
    linker = wasmtime.Linker(engine)
    entry = {}
    checks = {"count": 0}
    if request.get("host") == "linked":
        unary = wasmtime.FuncType([wasmtime.ValType.i32()], [wasmtime.ValType.i32()])
        linker.define_func("host", "slot", unary, lambda d: signed32(d * 3 + 1))
        linker.define_func("host", "reenter", unary, lambda d: entry["entry"](store, d))
        def check():
            checks["count"] += 1
            if epoch and checks["count"] % 3 == 0:
                engine.increment_epoch()
        linker.define_func("host", "check", wasmtime.FuncType([], []), check)
    tags = {}
    if request.get("host") == "exceptions":
        exception_host(store, linker, entry, tags)
    instance = None
    try:
        for module in request["modules"]:
            compiled = wasmtime.Module.from_file(engine, module["path"])
            instance = linker.instantiate(store, compiled)
            linker.define_instance(store, module["name"], instance)
            if not tags and "t0" in instance.exports(store):
                tags["t0"] = instance.exports(store)["t0"]
    except Exception as error:  # instantiation failed: say why
        return {"error": str(error)}
    exports = instance.exports(store)
    if "entry" in exports:
        entry["entry"] = exports["entry"]
    answers = []
    for call in request["calls"]:
        function = exports[call["export"]]
        if "fuel" in call:
            store.set_fuel(call["fuel"])
        if epoch:
            store.set_epoch_deadline(1)
        checks["count"] = 0
        try:
            answer = {"results": call_exactly(store, function, call.get("args", []))}
        except wasmtime.Trap as trap:
            answer = describe_trap(trap)
        except wasmtime.WasmtimeError as error:
            answer = {"error": str(error)}
        if "fuel" in call:
            answer["fuel_left"] = store.get_fuel()
        answers.append(answer)
    return {"calls": answers}


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = run(json.loads(line))
        except Exception as error:
            answer = {"error": "%s: %s" % (type(error).__name__, error)}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
