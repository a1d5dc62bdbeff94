import CMallocCounter
import Testing
import WasmJIT
import WasmUnwind

@Suite("Typed calls from the host")
struct TypedFuncTests {
    static let module = """
        (module $typed
          (import "host" "fail" (func $fail))
          (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
          (func (export "mix") (param i64 f32 f64 i32) (result f64)
            (f64.add (f64.add (f64.convert_i64_s (local.get 0)) (f64.promote_f32 (local.get 1)))
                     (f64.add (local.get 2) (f64.convert_i32_s (local.get 3)))))
          (func (export "neg") (param i64) (result i64) (i64.sub (i64.const 0) (local.get 0)))
          (func (export "half") (param f32) (result f32) (f32.mul (local.get 0) (f32.const 0.5)))
          (func (export "nothing"))
          (func (export "answer") (result i32) (i32.const 42))
          (func (export "divide") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
          (func (export "fails") (call $fail))
          (export "fail" (func $fail)))
        """

    func instance() throws -> Instance {
        let engine = Engine()
        var imports = Imports()
        imports.define(module: "host", name: "fail", .host(HostFunction(signature: Signature(parameters: [], results: [])) { _, _ in
            throw CallError.nativeHostFunction
        }))
        return try Instance(store: Store(engine: engine), module: try Module(engine: engine, text: Self.module), imports: imports)
    }

    @Test("arguments and results of every value type go in and out as Swift values")
    func values() throws {
        let instance = try instance()
        #expect(try instance.typedExport("add", (Int32, Int32).self, Int32.self)!.call(2, 40) == 42)
        #expect(try instance.typedExport("add", (Int32, Int32).self, Int32.self)!.call(Int32.max, 1) == Int32.min)
        #expect(try instance.typedExport("mix", (Int64, Float, Double, Int32).self, Double.self)!.call(1, 0.5, 0.25, -3) == -1.25)
        #expect(try instance.typedExport("neg", Int64.self, Int64.self)!.call(Int64.min + 1) == Int64.max)
        #expect(try instance.typedExport("half", Float.self, Float.self)!.call(Float(3)) == Float(1.5))
        _ = try instance.typedExport("nothing", Void.self, NoResults.self)!.call()
        #expect(try instance.typedExport("answer", Void.self, Int32.self)!.call() == 42)
        #expect(try instance.typedExport("missing", Void.self, Int32.self) == nil)
    }

    @Test("a signature that is not the function's is refused when the TypedFunc is made")
    func mismatch() throws {
        let instance = try instance()
        #expect(throws: CallError.self) { try instance.typedExport("add", (Int32, Int64).self, Int32.self) }
        #expect(throws: CallError.self) { try instance.typedExport("add", (Int32, Int32).self, NoResults.self) }
        #expect(throws: CallError.self) { try instance.typedExport("add", Int32.self, Int32.self) }
        do {
            _ = try instance.typedExport("add", (Int32, Int32).self, Int64.self)
            Issue.record("no error")
        } catch {
            #expect("\(error)" == "the function's type is (i32, i32) -> (i32), not (i32, i32) -> (i64)")
        }
        // A host import re-exported is not compiled code: called where it is defined.
        #expect(throws: CallError.self) { try instance.typedExport("fail", Void.self, NoResults.self) }
    }

    @Test("a trap and a failing host function are thrown as traps, with the backtrace, and the store stays usable")
    func traps() throws {
        let instance = try instance()
        let divide = try #require(try instance.typedExport("divide", (Int32, Int32).self, Int32.self))
        let error = try #require(throws: Trap.self) { try divide.call(1, 0) }
        #expect(error.code == .integerDivisionByZero)
        #expect(error.backtrace.frames.first?.symbol?.printedName == "typed!<wasm function 7>")
        #expect(throws: Trap.self) { try instance.typedExport("fails", Void.self, NoResults.self)!.call() }
        #expect(try divide.call(84, 2) == 42)
        #expect(instance.store.activationDepth == 0)
    }

    @Test("a typed call allocates nothing")
    func noAllocation() throws {
        let instance = try instance()
        let add = try #require(try instance.typedExport("add", (Int32, Int32).self, Int32.self))
        _ = try add.call(1, 2)
        let before = malloc_counter_on_this_thread()
        var sum: Int32 = 0
        for value in 0..<1000 { sum &+= try add.call(Int32(value), 1) }
        let allocations = malloc_counter_on_this_thread() - before
        #expect(sum == 500_500)
        #expect(allocations == 0, "\(allocations) allocations in 1,000 calls")
        // The untyped call, for comparison, allocates its arrays.
        let untyped = try #require(instance.export("add"))
        let start = malloc_counter_on_this_thread()
        _ = try untyped.call([.i32(1), .i32(2)])
        #expect(malloc_counter_on_this_thread() > start)
    }

    @Test("an instance called through Func.call and TypedFunc is freed when the last of them goes")
    func instancesAreFreed() throws {
        weak var weakInstance: Instance?
        do {
            let instance = try instance()
            weakInstance = instance
            var add = try #require(try instance.typedExport("add", (Int32, Int32).self, Int32.self))
            #expect(try add.call(1, 2) == 3)
            _ = try instance.export("add")!.call([.i32(1), .i32(2)])
            add = try #require(try instance.typedExport("add", (Int32, Int32).self, Int32.self))
            withExtendedLifetime(add) {}
        }
        #expect(weakInstance == nil)
    }
}
