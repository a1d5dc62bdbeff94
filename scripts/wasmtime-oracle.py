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
host.check (nothing).

Answer:   {"calls": [{"results": [...]} |
                     {"trap": "wasm trap: ...", "frames": [[module, function, offset], ...]}, ...]}
or {"error": "..."} when the modules cannot be instantiated. A frame's
function is null when the name section has none; its offset is null when
Wasmtime gives none (a trap in a function's prologue).
"""
import json
import sys

import wasmtime


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
    return answer


def run(request):
    config = wasmtime.Config()
    config.wasm_tail_call = True
    engine = wasmtime.Engine(config)
    store = wasmtime.Store(engine)
    linker = wasmtime.Linker(engine)
    entry = {}
    if request.get("host") == "linked":
        unary = wasmtime.FuncType([wasmtime.ValType.i32()], [wasmtime.ValType.i32()])
        linker.define_func("host", "slot", unary, lambda d: signed32(d * 3 + 1))
        linker.define_func("host", "reenter", unary, lambda d: entry["entry"](store, d))
        linker.define_func("host", "check", wasmtime.FuncType([], []), lambda: None)
    instance = None
    try:
        for module in request["modules"]:
            compiled = wasmtime.Module.from_file(engine, module["path"])
            instance = linker.instantiate(store, compiled)
            linker.define_instance(store, module["name"], instance)
    except Exception as error:  # instantiation failed: say why
        return {"error": str(error)}
    exports = instance.exports(store)
    if "entry" in exports:
        entry["entry"] = exports["entry"]
    answers = []
    for call in request["calls"]:
        function = exports[call["export"]]
        # Floats come as text ("1.5", "nan"): JSON has no NaN.
        arguments = [float(a) if isinstance(a, str) else a for a in call.get("args", [])]
        try:
            result = function(store, *arguments)
            if result is None:
                results = []
            elif isinstance(result, list):
                results = result
            else:
                results = [result]
            answers.append({"results": [r if not isinstance(r, float) or r == r else "nan" for r in results]})
        except wasmtime.Trap as trap:
            answers.append(describe_trap(trap))
        except wasmtime.WasmtimeError as error:
            answers.append({"error": str(error)})
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
