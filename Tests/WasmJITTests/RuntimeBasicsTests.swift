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

    @Test("the store reuses one arguments array: a host that keeps its arguments, and a nested call, see their own values")
    func reusedArgumentsArray() throws {
        var harness = Harness()
        var kept: [[Value]] = []
        var afterNested: [Value] = []
        harness.define("keep", [.i32, .i32], [.i32]) { _, arguments in
            kept.append(arguments)
            return [arguments[0]]
        }
        harness.define("one", [.i64], []) { _, arguments in
            kept.append(arguments)
            return []
        }
        harness.define("outer", [.i32, .i32], []) { caller, arguments in
            // A nested activation's host calls (another arity) while this
            // call's arguments are live.
            _ = try caller.export("inner")!.call([])
            afterNested = arguments
            return []
        }
        let instance = try harness.instantiate("""
            (module
              (import "host" "keep" (func $keep (param i32 i32) (result i32)))
              (import "host" "one" (func $one (param i64)))
              (import "host" "outer" (func $outer (param i32 i32)))
              (func (export "inner") (drop (call $keep (i32.const 5) (i32.const 6))) (call $one (i64.const 7)))
              (func (export "run")
                (drop (call $keep (i32.const 1) (i32.const 2)))
                (drop (call $keep (i32.const 3) (i32.const 4)))
                (call $outer (i32.const 8) (i32.const 9))))
            """)
        _ = try instance.export("run")!.call([])
        #expect(kept == [[.i32(1), .i32(2)], [.i32(3), .i32(4)], [.i32(5), .i32(6)], [.i64(7)]])
        #expect(afterNested == [.i32(8), .i32(9)])
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

@Suite("Host functions on raw slots")
struct SlotHostFunctionTests {
    @Test("arguments of every kind arrive in their slots and the written slot is the result", arguments: exitRecordingModes)
    func slots(_ mode: ExitRecording) throws {
        var harness = Harness(mode)
        var received: [UInt64] = []
        let kinds: [ValueKind] = [.i32, .i64, .externref, .i32, .i64, .externref, .i32, .i64]
        harness.imports.define(module: "host", name: "take", .host(HostFunction.slots(
            signature: Signature(parameters: kinds, results: [.i64])) { _, slots in
                received = (0..<8).map { slots[$0] }
                slots[0] = UInt64(bitPattern: -77)
            }))
        let instance = try harness.instantiate("""
            (module
              (import "host" "take" (func $take (param i32 i64 externref i32 i64 externref i32 i64) (result i64)))
              (func (export "run") (param externref) (result i64)
                i32.const -1
                i64.const 0x123456789
                local.get 0
                i32.const 4
                i64.const -5
                ref.null extern
                i32.const 7
                i64.const 8
                call $take))
            """)
        #expect(try instance.export("run")!.call([.externref(ExternRef(handle: 0xABCD))]) == [.i64(-77)])
        // An i32 slot's upper half is not part of the value.
        #expect(received.enumerated().map { $0.element & (kinds[$0.offset] == .i32 ? 0xFFFF_FFFF : ~0) }
                == [0xFFFF_FFFF, 0x1_2345_6789, 0xABCD, 4, UInt64(bitPattern: -5), 0, 7, 8])
    }

    @Test("a reference passed only as an argument survives a collection during the call; the call has a backtrace",
          arguments: exitRecordingModes)
    func heldArgument(_ mode: ExitRecording) throws {
        var harness = Harness(mode)
        let counter = DeinitCounter()
        let store = harness.store
        harness.imports.define(module: "host", name: "make", .host(HostFunction.slots(
            signature: Signature(parameters: [], results: [.externref])) { caller, slots in
                slots[0] = caller.store.externref(for: Tracked(5, counter)).handle
            }))
        var alive: Bool?
        var names: [String?] = []
        harness.imports.define(module: "host", name: "keep", .host(HostFunction.slots(
            signature: Signature(parameters: [.externref], results: [])) { caller, slots in
                names = caller.backtrace().frames.map { $0.symbol?.functionName }
                _ = try caller.store.collectGarbage()
                alive = caller.store.object(for: ExternRef(handle: slots[0])) != nil
            }))
        let instance = try harness.instantiate("""
            (module
              (import "host" "make" (func $make (result externref)))
              (import "host" "keep" (func $keep (param externref)))
              (func $pass (export "pass") call $make call $keep))
            """)
        _ = try instance.export("pass")!.call([])
        #expect(alive == true)
        #expect(names == ["pass"])
        // Once the call returns nothing holds it.
        _ = try store.collectGarbage()
        #expect(counter.freed == [5])
    }
}
