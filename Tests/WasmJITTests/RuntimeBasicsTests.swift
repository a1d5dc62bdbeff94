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

@Suite("Values across the trampolines")
struct TrampolineValueTests {
    @Test("eight arguments of every kind reach the host exactly, through registers and the stack")
    func hostArguments() throws {
        var harness = Harness()
        var received: [Value] = []
        let kinds: [ValueKind] = [.i32, .i64, .externref, .i32, .i64, .externref, .i32, .i64]
        harness.define("take", kinds, [.i64]) { _, arguments in
            received = arguments
            return [.i64(-77)]
        }
        let instance = try harness.instantiate("""
            (module
              (import "host" "take" (func $take (param i32 i64 externref i32 i64 externref i32 i64) (result i64)))
              (func (export "run") (param externref externref) (result i64)
                i32.const -1
                i64.const 0x123456789
                local.get 0
                i32.const 4
                i64.const -5
                local.get 1
                i32.const 7
                i64.const 8
                call $take))
            """)
        let first = ExternRef(handle: 0xABCD), second = ExternRef(handle: 0x1234)
        #expect(try instance.export("run")!.call([.externref(first), .externref(second)]) == [.i64(-77)])
        #expect(received == [.i32(-1), .i64(0x1_2345_6789), .externref(first), .i32(4), .i64(-5),
                             .externref(second), .i32(7), .i64(8)])
    }

    @Test("eight arguments reach wasm from the host through the entry trampoline")
    func entryArguments() throws {
        let harness = Harness()
        let instance = try harness.instantiate("""
            (module
              (func (export "mix") (param i64 i64 i64 i64 i64 i64 i64 i64) (result i64)
                local.get 0 local.get 1 i64.const 10 i64.mul i64.add
                local.get 2 i64.const 100 i64.mul i64.add local.get 3 i64.const 1000 i64.mul i64.add
                local.get 4 i64.const 10000 i64.mul i64.add local.get 5 i64.const 100000 i64.mul i64.add
                local.get 6 i64.const 1000000 i64.mul i64.add local.get 7 i64.const 10000000 i64.mul i64.add))
            """)
        #expect(try instance.export("mix")!.call((1...8).map { .i64(Int64($0)) }) == [.i64(87_654_321)])
    }
}
