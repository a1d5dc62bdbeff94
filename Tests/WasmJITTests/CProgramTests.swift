import Foundation
import Testing
import Verification
import WasmJIT
import WasmUnwind

/// Programs compiled by a real compiler: the C and C++ fixtures
/// (fixtures/c) built by the Swift toolchain's clang and wasm-ld, for the
/// MVP CPU and clang's default one (scripts/build-c-fixtures.sh, which
/// this suite runs into a directory of its own).
@Suite("C and C++ programs compiled by clang")
struct CProgramTests {
    /// The built fixtures, once per test process.
    static let fixtures = FixtureBuild("build-c-fixtures.sh")

    struct BuildError: Error { var output: String }

    static func directory() throws -> String { try fixtures.directory() }

    static let cpus = ["mvp", "default"]

    /// Each program's checksum, computed by the program itself (the same
    /// for both CPUs and in Wasmtime, which `WasmtimeOracleTests` checks).
    static let checksums: [String: Int32] = [
        "recursion": -101_499_638, "qsort": -262_246_101, "interpreter": -121_712_947,
        "allocator": -449_485_514, "floats": 494_464_907, "shapes": 49,
    ]

    func instance(_ program: String, _ cpu: String, mode: ExitRecording = .trampoline) throws -> Instance {
        let path = try Self.directory() + "/\(program)-\(cpu).wasm"
        let binary = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let engine = Engine(configuration: Engine.Configuration(exitRecording: mode))
        return try Instance(store: Store(engine: engine), module: Module(engine: engine, binary: binary))
    }

    @Test("every program's checksum, for both CPUs", arguments: cpus)
    func checksums(cpu: String) throws {
        for (program, expected) in Self.checksums {
            let result = try instance(program, cpu).export("checksum")!.call([])
            #expect(result == [.i32(expected)], "\(program)-\(cpu)")
        }
    }

    /// (program, export, arguments, message, newest frames' function names)
    static let traps: [(String, String, [Value], String, [String])] = [
        ("recursion", "abort_deep", [.i32(2)], "wasm trap: wasm `unreachable` instruction executed",
         ["countdown", "countdown", "countdown", "abort_deep"]),
        ("recursion", "exhaust", [], "wasm trap: call stack exhausted", ["deeper", "deeper"]),
        ("recursion", "overflow", [], "wasm trap: out of bounds memory access", ["runaway", "runaway"]),
        ("qsort", "null_comparator", [], "wasm trap: uninitialized element", ["sort", "null_comparator"]),
        ("qsort", "mistyped_comparator", [], "wasm trap: indirect call type mismatch", ["sort", "mistyped_comparator"]),
        ("interpreter", "bad_opcode", [.i32(77)], "wasm trap: wasm `unreachable` instruction executed", ["run", "bad_opcode"]),
        ("allocator", "write_past_end", [.i32(8)], "wasm trap: out of bounds memory access", ["store_at", "write_past_end"]),
        ("floats", "convert", [.f64(2e9)], "wasm trap: integer overflow", ["to_int", "convert"]),
        ("floats", "convert", [.f64(.nan)], "wasm trap: invalid conversion to integer", ["to_int", "convert"]),
        ("shapes", "degenerate", [.i32(0)], "wasm trap: wasm `unreachable` instruction executed",
         ["_ZNK8geometry8Triangle4areaEv", "_ZN8geometry11AccumulatorIjE3addERKNS_5ShapeE",
          "_ZN8geometry7measureEPPNS_5ShapeEj", "degenerate"]),
    ]

    @Test("realistic traps: abort, runaway recursion, bad function pointers, a wild pointer, float overflow",
          arguments: exitRecordingModes)
    func traps(mode: ExitRecording) throws {
        for cpu in Self.cpus {
            for (program, export, arguments, message, names) in Self.traps {
                let function = try instance(program, cpu, mode: mode).export(export)!
                do {
                    _ = try function.call(arguments)
                    Issue.record("\(program)-\(cpu) \(export) did not trap")
                } catch let trap as Trap {
                    #expect(trap.message == message, "\(program)-\(cpu) \(export)")
                    let actual = trap.backtrace.frames.prefix(names.count).map { $0.symbol?.functionName ?? "?" }
                    #expect(actual == names, "\(program)-\(cpu) \(export)")
                    #expect(trap.backtrace.error == nil)
                }
            }
        }
    }

    @Test("`wasm-unwind run` of a clang-compiled C++ program prints demangled names, as Wasmtime does")
    func demangledBacktrace() throws {
        let result = try runCLI(["run", try Self.directory() + "/shapes-default.wasm", "--invoke", "degenerate", "0"])
        #expect(result.status == 134)
        #expect(result.stderr == """
            error while executing at wasm backtrace:
                0:    0x343 - shapes-default.wasm!geometry::Triangle::area() const
                1:     0xf1 - shapes-default.wasm!geometry::Accumulator<unsigned int>::add(geometry::Shape const&)
                2:     0xb6 - shapes-default.wasm!geometry::measure(geometry::Shape**, unsigned int)
                3:    0x2f3 - shapes-default.wasm!degenerate
            wasm trap: wasm `unreachable` instruction executed

            """)
        let json = try runCLI(["run", try Self.directory() + "/shapes-default.wasm", "--invoke", "degenerate", "0",
                               "--format", "json"])
        #expect(json.stdout.contains(#""function_name": "_ZNK8geometry8Triangle4areaEv","#))
        #expect(json.stdout.contains(#""demangled_name": "geometry::Triangle::area() const","#))
    }
}
