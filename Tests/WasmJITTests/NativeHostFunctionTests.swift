import Testing
import WasmJIT
import WasmUnwind

/// What native host functions saw, for the tests (C functions capture
/// nothing).
nonisolated(unsafe) private var nativeTrace: [String] = []
nonisolated(unsafe) private var nativeArguments: [String] = []

/// Host functions compiled code calls with C arguments (`HostFunction.native`),
/// in both exit-recording modes: directly from the call site, through the
/// native exit trampoline, through a table, with arguments in registers and
/// on wasm's stack.
@Suite("Native host functions", .serialized)
struct NativeHostFunctionTests {
    static let module = """
        (module $native
          (import "host" "add" (func $add (param i32 i32) (result i32)))
          (import "host" "mix" (func $mix (param i32 f64 i64 f32 i32 i64 f64) (result f64)))
          (import "host" "trace" (func $trace))
          (type $binary (func (param i32 i32) (result i32)))
          (table 1 funcref)
          (elem (i32.const 0) $add)
          (func (export "add") (param i32 i32) (result i32) (call $add (local.get 0) (local.get 1)))
          (func (export "mix") (result f64)
            (call $mix (i32.const -7) (f64.const 1.5) (i64.const 0x100000000) (f32.const -2.25) (i32.const 9)
                       (i64.const -1) (f64.const 1e300)))
          (func $inner (call $trace))
          (func (export "traced") (call $inner))
          (func (export "through_table") (param i32 i32) (result i32)
            (call_indirect (type $binary) (local.get 0) (local.get 1) (i32.const 0)))
        )
        """

    static func instantiate(_ mode: ExitRecording) throws -> Instance {
        let engine = Engine(configuration: Engine.Configuration(exitRecording: mode))
        var imports = Imports()
        imports.define(module: "host", name: "add", .host(HostFunction.native { _, a, b in a &+ b }))
        let mix: @convention(c) (NativeCaller, Int32, Double, Int64, Float, Int32, Int64, Double) -> Double = {
            _, a, b, c, d, e, f, g in
            nativeArguments.append("\(a) \(b) \(c) \(d) \(e) \(f) \(g)")
            return Double(a) + b + Double(c) + Double(d) + Double(e) + Double(f)
        }
        imports.define(module: "host", name: "mix", .host(try HostFunction.native(
            signature: Signature(parameters: [.i32, .f64, .i64, .f32, .i32, .i64, .f64], results: [.f64]),
            address: unsafeBitCast(mix, to: UnsafeRawPointer.self))))
        imports.define(module: "host", name: "trace", .host(HostFunction.native { context in
            nativeTrace = describe(Caller(native: context)!.backtrace())
        }))
        return try Instance(store: Store(engine: engine), module: Module(
            engine: engine, text: module), imports: imports)
    }

    @Test("integers, floats, registers and wasm's stack arguments arrive as C arguments", arguments: exitRecordingModes)
    func arguments(mode: ExitRecording) throws {
        let instance = try Self.instantiate(mode)
        #expect(try instance.export("add")!.call([.i32(40), .i32(2)]) == [.i32(42)])
        #expect(try instance.export("add")!.call([.i32(Int32.max), .i32(1)]) == [.i32(Int32.min)])
        nativeArguments = []
        #expect(try instance.export("mix")!.call([]) == [.f64(-7 + 1.5 + 4294967296 - 2.25 + 9 - 1)])
        #expect(nativeArguments == ["-7 1.5 4294967296 -2.25 9 -1 1e+300"])
    }

    @Test("a native host function sees the wasm frames that called it", arguments: exitRecordingModes)
    func backtrace(mode: ExitRecording) throws {
        nativeTrace = []
        _ = try Self.instantiate(mode).export("traced")!.call([])
        #expect(nativeTrace.map { $0.components(separatedBy: " ").dropFirst().joined(separator: " ") }
                == ["native!inner", "native!<wasm function 6>"])
    }

    @Test("through a table it runs behind its native exit trampoline", arguments: exitRecordingModes)
    func table(mode: ExitRecording) throws {
        #expect(try Self.instantiate(mode).export("through_table")!.call([.i32(5), .i32(6)]) == [.i32(11)])
    }

    @Test("a signature C cannot take natively is refused when the function is made")
    func unsupportedSignature() {
        #expect(throws: HostFunctionError.self) {
            try HostFunction.native(signature: Signature(parameters: [], results: [.i32, .i32]), address: UnsafeRawPointer(bitPattern: 8)!)
        }
        #expect(throws: HostFunctionError.self) {
            try HostFunction.native(signature: Signature(parameters: Array(repeating: .i32, count: 6), results: []),
                                    address: UnsafeRawPointer(bitPattern: 8)!)
        }
    }
}
