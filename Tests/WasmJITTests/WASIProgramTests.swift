import Foundation
import Testing
@testable import Verification
import WasmJIT
import WasmWASI

/// Real programs as people build them: C with Debian's wasi-libc and Rust
/// for wasm32-wasi (fixtures/wasi, scripts/build-wasi-fixtures.sh), run by
/// `wasm-unwind run` and by real Wasmtime 50's WASI
/// (scripts/wasmtime-wasi.py), compared: standard output, the program's
/// standard error, the exit status, and every trap's message and frames.
@Suite("WASI programs against Wasmtime")
struct WASIProgramTests {
    static let fixtures = FixtureBuild("build-wasi-fixtures.sh")

    static func directory() throws -> String { try fixtures.directory() }

    /// Each program and the argv runs of it: the ordinary run, then each
    /// way it ends otherwise (exit status, abort, assert, wasm traps, Rust
    /// panics, stack overflow).
    static let runs: [(program: String, arguments: [String])] = [
        ("args", []), ("args", ["5", "x"]), ("args", ["5", "abort"]), ("args", ["5", "assert"]), ("args", ["1", "2", "3"]),
        ("wordfreq", []), ("wordfreq", ["overflow"]), ("wordfreq", ["exit"]),
        ("calc", ["1+2*(3-4)/5"]), ("calc", ["7/(3-3)"]), ("calc", ["2*(3"]),
        ("panics", []), ("panics", ["index"]), ("panics", ["unwrap"]), ("panics", ["panic"]), ("panics", ["exit"]),
        ("panics", ["overflow"]),
        ("collections", []), ("collections", ["0"]),
        ("reader", []),
        ("matrix", []), ("matrix", ["nan"]), ("matrix", ["alloc"]),
        ("interpreter", []), ("interpreter", ["underflow"]), ("interpreter", ["divide"]),
        ("strings", []), ("strings", ["parse"]), ("strings", ["slice"]),
        ("recursion", []), ("recursion", ["deep"]),
    ]

    /// A backtrace display's frame lines, a folded run of identical frames
    /// written out one line each (Wasmtime prints each).
    static func frames(_ lines: [String]) -> [String] {
        lines.flatMap { line -> [String] in
            let trimmed = line.drop { $0 == " " }
            guard let colon = trimmed.firstIndex(of: ":"), let dash = trimmed[..<colon].firstIndex(of: "-"),
                  let first = Int(trimmed[..<dash]), let last = Int(trimmed[trimmed.index(after: dash)..<colon]),
                  let times = line.range(of: " (", options: .backwards) else { return [line] }
            let rest = line[line.index(line.startIndex, offsetBy: line.distance(from: line.startIndex, to: colon) + 1)..<times.lowerBound]
            return (first...last).map { index in
                String(repeating: " ", count: max(0, 3 - String(index).count)) + "  \(index):" + rest
            }
        }
    }

    struct Outcome {
        var stdout: String
        var stderr: String
        var status: Int32?
        var trapMessage: String?
        var display: [String] = []
    }

    static func ours(_ path: String, _ arguments: [String], mode: ExitRecording, details: Bool) throws -> Outcome {
        let run = try runChild(PackagePaths.cli, ["run", path, "--exit-recording", mode.rawValue] + (details ? ["--backtrace-details"] : [])
                               + ["--"] + arguments)
        let parts = run.stderr.components(separatedBy: "error while executing at wasm backtrace:\n")
        var outcome = Outcome(stdout: run.stdout, stderr: parts[0], status: run.status)
        if parts.count > 1 {
            let lines = parts[1].split(separator: "\n").map(String.init)
            outcome.trapMessage = lines.last
            outcome.display = frames(lines.dropLast().filter { !$0.hasPrefix("note:") })
        }
        return outcome
    }

    static func wasmtime(_ path: String, _ arguments: [String], details: Bool) throws -> Outcome {
        let run = try runChild(WasmtimeOracleTests.python, [PackagePaths.root.appendingPathComponent("scripts/wasmtime-wasi.py").path, path]
                               + arguments, environment: details ? ["WASMTIME_BACKTRACE_DETAILS": "1"] : [:])
        let answer = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], "\(run.stderr)")
        var outcome = Outcome(stdout: answer["stdout"] as? String ?? "", stderr: answer["stderr"] as? String ?? "",
                              status: (answer["exit"] as? NSNumber)?.int32Value)
        if let trap = answer["trap"] as? [String: Any] {
            outcome.trapMessage = trap["message"] as? String
            outcome.display = trap["display"] as? [String] ?? []
            outcome.status = 134  // `wasmtime run` exits 128 + SIGABRT on a trap
        }
        return outcome
    }

    @Test("C (wasi-libc) and Rust (wasm32-wasi) programs: output, exit status, and every trap's frames identical to Wasmtime 50's WASI run",
          arguments: exitRecordingModes)
    func againstWasmtime(mode: ExitRecording) throws {
        let directory = try Self.directory()
        var traps = 0, frames = 0
        for (program, arguments) in Self.runs {
            let path = directory + "/\(program).wasm"
            let ours = try Self.ours(path, arguments, mode: mode, details: false)
            let theirs = try Self.wasmtime(path, arguments, details: false)
            let call = "\(program) \(arguments.joined(separator: " "))"
            #expect(ours.stdout == theirs.stdout, "\(call): stdout\n\(ours.stdout)\nWasmtime:\n\(theirs.stdout)")
            #expect(ours.stderr == theirs.stderr, "\(call): stderr\n\(ours.stderr)\nWasmtime:\n\(theirs.stderr)")
            #expect(ours.status == theirs.status, "\(call): status \(ours.status.map(String.init) ?? "-"), Wasmtime \(theirs.status.map(String.init) ?? "-")")
            #expect(ours.trapMessage == theirs.trapMessage, "\(call)")
            // Wasmtime displays the newest frames of a deep stack only.
            #expect(Array(ours.display.prefix(theirs.display.count)) == theirs.display && ours.display.count >= theirs.display.count,
                    "\(call): frames\n\(ours.display.prefix(30).joined(separator: "\n"))\nWasmtime:\n\(theirs.display.joined(separator: "\n"))")
            if theirs.trapMessage != nil { traps += 1 }
            frames += theirs.display.count
        }
        print("WASI (\(mode)): \(Self.runs.count) runs, \(traps) traps, \(frames) frames identical to Wasmtime's")
        #expect(traps >= 16)
    }

    @Test("every WASI call of every run is a checkpoint: the walk there agrees with libunwind's unwind of the same stack, both exit-recording modes",
          arguments: exitRecordingModes)
    func checkpoints(mode: ExitRecording) throws {
        let directory = try Self.directory()
        let session = OracleSession(configuration: Engine.Configuration(exitRecording: mode), observeTraps: false)
        let sink = open("/dev/null", O_WRONLY)
        defer { close(sink) }
        var checkpoints = 0, frames = 0
        for (program, arguments) in Self.runs where !arguments.contains("deep") && !arguments.contains("overflow") {
            let binary = try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory + "/\(program).wasm")))
            var configuration = WASIPreview1.Configuration(arguments: [program + ".wasm"] + arguments)
            configuration.standardOutput = sink
            configuration.standardError = sink
            let wasi = WASIPreview1(configuration: configuration)
            wasi.onCall = { caller, name in
                let (comparison, walk) = OracleSession.compareAtHostCall(caller)
                checkpoints += 1
                frames += walk.frames.count
                #expect(comparison.isMatch, "\(program) \(arguments) at \(name): \(comparison)")
            }
            var imports = Imports()
            imports.fallback = wasi.resolve
            let store = Store(engine: session.engine)
            let instance = try Instance(store: store, module: Module(engine: session.engine, binary: binary), imports: imports)
            _ = try? instance.export("_start")!.call([])
        }
        print("WASI checkpoints (\(mode)): \(checkpoints) calls, \(frames) frames, libunwind agreeing")
        #expect(checkpoints > 100)
    }

    @Test("with WASMTIME_BACKTRACE_DETAILS=1: the traps of the -g WASI programs show Wasmtime's source lines, through wasi-libc and Rust's std")
    func details() throws {
        let directory = try Self.directory()
        var compared = 0
        for (program, arguments) in Self.runs where !arguments.contains("overflow") && !arguments.contains("deep") {
            let path = directory + "/\(program).wasm"
            let theirs = try Self.wasmtime(path, arguments, details: true)
            guard theirs.trapMessage != nil else { continue }
            let ours = try Self.ours(path, arguments, mode: .trampoline, details: true)
            #expect(ours.display == theirs.display, "\(program) \(arguments):\n\(ours.display.joined(separator: "\n"))\nWasmtime:\n\(theirs.display.joined(separator: "\n"))")
            compared += 1
        }
        #expect(compared >= 13)
    }

    @Test("--trap-unknown-imports: an import nothing provides traps when called, naming it, with the caller on the backtrace; without it, the run stops before it starts")
    func unknownImports() throws {
        let directory = try temporaryDirectory("unknown-imports")
        defer { try? FileManager.default.removeItem(at: directory) }
        let module = directory.appendingPathComponent("m.wat").path
        try """
            (module
              (import "env" "missing" (func $missing (param i32) (result i32)))
              (func $caller (export "run") (param i32) (result i32) (call $missing (local.get 0)))
              (func (export "fine") (result i32) (i32.const 7)))
            """.write(toFile: module, atomically: true, encoding: .utf8)
        let refused = try runCLI(["run", module, "--invoke", "fine"])
        #expect(refused.status == 1 && refused.stderr.contains("env") && refused.stderr.contains("missing"), "\(refused.stderr)")
        let fine = try runCLI(["run", module, "--invoke", "fine", "--trap-unknown-imports"])
        #expect(fine.status == 0 && fine.stdout.contains("7"), "\(fine.stdout)\(fine.stderr)")
        let trapped = try runCLI(["run", module, "--invoke", "run", "--trap-unknown-imports", "3"])
        #expect(trapped.status == 134 && trapped.stderr.contains("unknown import: `env::missing` has not been defined")
                && trapped.stderr.contains("!caller"), "\(trapped.stderr)")
    }
}

@Suite("WASI: hostile pointers")
struct WASIHostilePointerTests {
    /// fd_write, args_get and random_get called with pointers and lengths
    /// a program controls: outside memory, wrapping past 4 GiB, iovec
    /// counts past the memory's end. Each is EFAULT (21), never an access
    /// outside; in-bounds calls still work.
    @Test("pointers and lengths outside a program's memory are EFAULT, never a read or write outside it")
    func outside() throws {
        let text = """
            (module
              (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "args_get" (func $args (param i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
              (memory 1)
              (func (export "write") (param $iovs i32) (param $count i32) (param $base i32) (param $length i32) (param $written i32) (result i32)
                (i32.store (i32.const 0) (local.get $base))
                (i32.store (i32.const 4) (local.get $length))
                (call $write (i32.const 1) (local.get $iovs) (local.get $count) (local.get $written)))
              (func (export "args") (param i32 i32) (result i32) (call $args (local.get 0) (local.get 1)))
              (func (export "random") (param i32 i32) (result i32) (call $random (local.get 0) (local.get 1))))
            """
        let sink = open("/dev/null", O_WRONLY)
        defer { close(sink) }
        var configuration = WASIPreview1.Configuration(arguments: ["hostile.wasm", "an argument"])
        configuration.standardOutput = sink
        let wasi = WASIPreview1(configuration: configuration)
        var imports = Imports()
        imports.fallback = wasi.resolve
        let engine = Engine()
        let instance = try Instance(store: Store(engine: engine), module: Module(engine: engine, text: text), imports: imports)
        func call(_ name: String, _ arguments: [Int32]) throws -> Int32 {
            guard case .i32(let errno)? = try instance.export(name)!.call(arguments.map { .i32($0) }).first else { return -1 }
            return errno
        }
        let page = Int32(65536)
        // In bounds: 5 bytes written, the count stored at 16.
        #expect(try call("write", [0, 1, 100, 5, 16]) == 0)
        // The buffer past the end, wrapping, or its length running out.
        #expect(try call("write", [0, 1, page, 1, 16]) == 21)
        #expect(try call("write", [0, 1, -16, 32, 16]) == 21)
        #expect(try call("write", [0, 1, page - 4, 8, 16]) == 21)
        // The iovec list, or the place for the count, outside.
        #expect(try call("write", [page - 4, 1, 0, 0, 16]) == 21)
        #expect(try call("write", [0, 1_000_000, 0, 0, 16]) == 21)
        #expect(try call("write", [0, 1, 100, 5, page - 2]) == 21)
        // argv pointers and strings, random bytes.
        #expect(try call("args", [page - 4, 0]) == 21)
        #expect(try call("args", [0, page - 3]) == 21)
        #expect(try call("args", [0, 100]) == 0)
        #expect(try call("random", [page - 8, 16]) == 21)
        #expect(try call("random", [-1, 2]) == 21)
        #expect(try call("random", [0, 64]) == 0)
    }
}
