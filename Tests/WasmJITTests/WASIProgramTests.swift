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

    static let runs = WASIComparison.fixtureRuns

    static func ours(_ path: String, _ arguments: [String], mode: ExitRecording, details: Bool) throws -> WASIComparison.Outcome {
        try WASIComparison.ours(cli: PackagePaths.cli, path, arguments,
                                options: ["--exit-recording", mode.rawValue] + (details ? ["--backtrace-details"] : []))
    }

    static func wasmtime(_ path: String, _ arguments: [String], details: Bool) throws -> WASIComparison.Outcome {
        try WASIComparison.wasmtime(python: WasmtimeOracleTests.python,
                                    script: PackagePaths.root.appendingPathComponent("scripts/wasmtime-wasi.py").path,
                                    path, arguments, details: details)
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
            for difference in WASIComparison.differences(ours, theirs) { Issue.record("\(call): \(difference)") }
            if theirs.trapMessage != nil { traps += 1 }
            frames += theirs.display.count
        }
        print("WASI (\(mode)): \(Self.runs.count) runs, \(traps) traps, \(frames) frames identical to Wasmtime's")
        #expect(traps >= 16)
    }

    @Test("every WASI call and every trap of every run is a checkpoint: the walk there agrees with libunwind's unwind of the same stack, both exit-recording modes",
          arguments: exitRecordingModes)
    func checkpoints(mode: ExitRecording) throws {
        let directory = try Self.directory()
        let checker = WASICheckpoints(configuration: Engine.Configuration(exitRecording: mode))
        var summary = WASICheckpoints.Summary()
        for (program, arguments) in Self.runs where !arguments.contains("deep") && !arguments.contains("overflow") {
            let binary = try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory + "/\(program).wasm")))
            try checker.check(binary, name: program + ".wasm", arguments: arguments, into: &summary)
        }
        for mismatch in summary.mismatches.prefix(3) { Issue.record("\(mismatch.run) \(mismatch.place): \(mismatch.report)") }
        print("WASI checkpoints (\(mode)): \(summary.checkpoints) calls, \(summary.traps) traps, \(summary.framesCompared) frames, libunwind agreeing")
        #expect(summary.mismatches.isEmpty)
        #expect(summary.checkpoints > 100 && summary.traps >= 10)
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
