import Testing
import WasmJIT

@Suite("Runtime basics")
struct RuntimeBasicsTests {
    @Test("a compiled function returns its result")
    func add() throws {
        let engine = Engine()
        let module = try Module(engine: engine, text: """
            (module
              (func (export "add") (param i32 i32) (result i32)
                local.get 0
                local.get 1
                i32.add))
            """)
        let store = Store(engine: engine)
        let instance = try Instance(store: store, module: module)
        #expect(try instance.export("add")!.call([.i32(40), .i32(2)]) == [.i32(42)])
    }

    @Test("a host function sees the wasm frames that called it")
    func hostBacktrace() throws {
        let engine = Engine()
        let module = try Module(engine: engine, text: """
            (module $m
              (import "host" "bt" (func $bt))
              (func $inner (call $bt))
              (func $outer (export "run") (call $inner)))
            """)
        let store = Store(engine: engine)
        var imports = Imports()
        var captured: SymbolicatedBacktrace?
        imports.define(module: "host", name: "bt", .host(HostFunction(signature: Signature(parameters: [], results: [])) { caller, _ in
            captured = caller.backtrace()
            return []
        }))
        let instance = try Instance(store: store, module: module, imports: imports)
        _ = try instance.export("run")!.call([])
        let trace = try #require(captured)
        #expect(trace.frames.map { $0.symbol?.functionName } == ["inner", "outer"])
    }
}
