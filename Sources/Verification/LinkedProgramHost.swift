import WasmJIT

/// The host side of a `LinkedProgram`, the same for every runtime it is
/// compared on (scripts/wasmtime-oracle.py defines the same functions):
///
/// * `host.slot (i32) -> i32`: a host function in `lib`'s table,
///   returning `3d + 1` (a checkpoint too: reached through the table, it
///   runs behind an exit trampoline in both exit-recording modes);
/// * `host.reenter (i32) -> i32`: calls `main.entry` again (a new
///   activation) with its argument;
/// * `host.check ()`: a checkpoint; `check` runs there, and `tick` (an
///   epoch comparison advances the engine's epoch there).
public enum LinkedProgramHost {
    public static func instantiate(_ program: LinkedProgram, in store: Store, engine: Engine,
                                   check: @escaping (Caller) -> Void = { _ in }, tick: @escaping () -> Void = {})
        throws -> (lib: Instance, main: Instance)
    {
        let unary = Signature(parameters: [.i32], results: [.i32])
        var imports = Imports()
        imports.define(module: "host", name: "slot", .host(HostFunction(signature: unary) { caller, arguments in
            check(caller)
            guard case .i32(let d) = arguments[0] else { return [.i32(0)] }
            return [.i32(d &* 3 &+ 1)]
        }))
        imports.define(module: "host", name: "reenter", .host(HostFunction(signature: unary) { caller, arguments in
            try caller.export("entry")!.call(arguments)
        }))
        imports.define(module: "host", name: "check", .host(HostFunction(signature: Signature(parameters: [], results: [])) { caller, _ in
            check(caller)
            tick()
            return []
        }))
        let lib = try Instance(store: store, module: Module(engine: engine, text: program.lib), imports: imports)
        imports.define(module: "lib", exportsOf: lib)
        let main = try Instance(store: store, module: Module(engine: engine, text: program.main), imports: imports)
        return (lib, main)
    }
}
