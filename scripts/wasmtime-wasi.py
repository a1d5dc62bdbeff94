#!/usr/bin/env python3
"""Runs a WASI command (a module exporting `_start`) on real Wasmtime
(the `wasmtime` package from PyPI, 50.0.1) as `wasmtime run` would: WASI
preview 1 with the given argv, standard input empty, no environment, no
preopened directories. For the comparisons of `wasm-unwind run` with
Wasmtime (WASIProgramTests).

Usage: wasmtime-wasi.py MODULE [ARG...]

Prints one JSON object: {"stdout": ..., "stderr": ..., "exit": N or null,
"trap": null or {"message": ..., "display": [frame lines]}}. "exit" is the
status proc_exit gave (0 when _start returns); a trap has none. With
WASMTIME_BACKTRACE_DETAILS=1 in the environment, the display has source
lines.
"""
import json
import os
import sys
import tempfile

import wasmtime


def main():
    path, arguments = sys.argv[1], sys.argv[2:]
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    module = wasmtime.Module.from_file(engine, path)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    with tempfile.TemporaryDirectory() as directory:
        out, err = os.path.join(directory, "stdout"), os.path.join(directory, "stderr")
        config = wasmtime.WasiConfig()
        config.argv = [path] + arguments
        config.stdout_file = out
        config.stderr_file = err
        store.set_wasi(config)
        answer = {"exit": None, "trap": None}
        try:
            instance = linker.instantiate(store, module)
            instance.exports(store)["_start"](store)
            answer["exit"] = 0
        except wasmtime.ExitTrap as exit:
            answer["exit"] = exit.code
        except wasmtime.Trap as trap:
            text = str(trap).strip()
            shown = text.split("Caused by:")[0].splitlines()
            # After "Caused by:", one line or numbered ones ("0: memory
            # fault at ...", "1: wasm trap: ..."): the last is the trap.
            last = text.split("Caused by:")[-1].strip().splitlines()[-1].strip()
            if last[:1].isdigit() and ": " in last:
                last = last.split(": ", 1)[1]
            answer["trap"] = {
                "message": last,
                "display": [line for line in shown[1:] if line.strip() and not line.startswith("note:")],
            }
        with open(out, encoding="utf-8", errors="replace") as handle:
            answer["stdout"] = handle.read()
        with open(err, encoding="utf-8", errors="replace") as handle:
            answer["stderr"] = handle.read()
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
