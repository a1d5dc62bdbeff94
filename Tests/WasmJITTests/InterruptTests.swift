import Foundation
import Testing
@testable import Verification
import WasmJIT
import WasmUnwind

/// Stopping running wasm from outside with a backtrace of where it was:
/// SIGINT, SIGTERM and --timeout on `run` (real signals to a child), and
/// `Interruption.request()` in process, the interrupted stack compared with
/// libunwind's unwind from the same signal context.
@Suite("Interrupting wasm", .serialized)
struct InterruptTests {
    /// `descend(n)` calls itself n times, then spins in `spin` for some
    /// 10^10 iterations (seconds: long past any stop, yet a test whose
    /// stop failed ends instead of hanging).
    static let spinner = """
        (module
          (func $spin (param i64) (result i32)
            (local i64)
            (loop $again
              (local.set 1 (i64.add (local.get 1) (i64.const 1)))
              (br_if $again (i64.ne (local.get 1) (local.get 0))))
            (i32.wrap_i64 (local.get 1)))
          (func $descend (param i32) (result i32)
            (if (result i32) (i32.eqz (local.get 0))
              (then (call $spin (i64.const 10000000000)))
              (else (i32.add (call $descend (i32.sub (local.get 0) (i32.const 1))) (i32.const 1)))))
          (func (export "run") (param i32) (result i32) (call $descend (local.get 0))))
        """

    /// The spinner's `loop`: where a compiled epoch check stops `spin`.
    static let spinLoopOffset = 0x2b

    /// By signal (no checks compiled: stopped at whatever instruction it
    /// is at) and by the epoch (checks compiled: `request()` advances the
    /// epoch, no signal to the wasm, stopped at the loop's check).
    @Test("Interruption.request() stops spinning wasm at depths 0, 5 and 300 with a trap walked exactly, libunwind agreeing: by signal, and by compiled epoch checks at the loop header",
          arguments: exitRecordingModes, [false, true])
    func inProcess(mode: ExitRecording, epochChecks: Bool) throws {
        let session = OracleSession(configuration: Engine.Configuration(exitRecording: mode, epochInterruption: epochChecks),
                                    observeTraps: true)
        let store = Store(engine: session.engine)
        let instance = try Instance(store: store, module: Module(engine: session.engine, text: Self.spinner))
        let run = try #require(instance.export("run"))
        try Interruption.install(epochOf: session.engine)
        defer { Interruption.uninstall() }
        for depth in [0, 5, 300] {
            if epochChecks { store.setEpochDeadline(1) }
            let asker = Thread {
                Thread.sleep(forTimeInterval: 0.05)
                Interruption.request()
            }
            asker.start()
            do {
                _ = try run.call([.i32(Int32(depth))])
                Issue.record("depth \(depth): the spin returned")
            } catch let trap as Trap {
                #expect(trap.code == .interrupt && trap.message == "wasm trap: interrupt")
                #expect(Interruption.last == .request && Interruption.pending == nil)
                let names = trap.backtrace.frames.map { $0.symbol?.functionName ?? "?" }
                let expected = ["spin"] + Array(repeating: "descend", count: depth + 1) + ["?"]
                #expect(names == expected, "depth \(depth): \(names.prefix(8))...")
                if epochChecks {
                    // Always the loop's check: a signal stops it anywhere in the body.
                    #expect(trap.backtrace.frames.first?.symbol?.moduleOffset == UInt32(Self.spinLoopOffset),
                            "\(String(describing: trap.backtrace.frames.first))")
                }
                let comparison = OracleSession.compareAtTrap(trap, store: store)
                #expect(comparison.isMatch, "depth \(depth): \(comparison)")
            }
        }
    }

    @Test("the stop runs in a signal handler and allocates nothing: counted in a process of its own (trap-probe), both exit-recording modes",
          arguments: exitRecordingModes)
    func noAllocation(mode: ExitRecording) throws {
        let directory = try temporaryDirectory("interrupt-allocations")
        defer { try? FileManager.default.removeItem(at: directory) }
        let module = directory.appendingPathComponent("spin.wat").path
        try Self.spinner.write(toFile: module, atomically: true, encoding: .utf8)
        let result = try runChild(PackagePaths.executable("trap-probe"), ["interrupt-allocations", mode.rawValue, module],
                                  environment: noSwiftBacktracer)
        #expect(result.status == 0 && result.stdout.contains("stops 3 frames [3, 8, 303] allocations 0"), "\(result.stdout)\(result.stderr)")
    }

    /// Runs the spinner at `depth` in a child and sends it `signal` after
    /// a second (or lets --timeout stop it).
    func child(_ arguments: [String], signal: String?) throws -> (status: Int32, stderr: String) {
        let directory = try temporaryDirectory("interrupt")
        defer { try? FileManager.default.removeItem(at: directory) }
        let module = directory.appendingPathComponent("spin.wat").path
        try Self.spinner.write(toFile: module, atomically: true, encoding: .utf8)
        let command = ["\"$0\"", "run", "\"$1\"", "--invoke", "run"] + arguments
        let script = signal.map { "\(command.joined(separator: " ")) & pid=$!; sleep 1; kill -\($0) $pid; wait $pid" }
            ?? command.joined(separator: " ")
        let result = try runChild("/bin/sh", ["-c", script, PackagePaths.cli, module], environment: noSwiftBacktracer)
        return (result.status, result.stderr)
    }

    /// The frame lines of a trap display.
    static func frames(_ text: String) -> [String] {
        text.split(separator: "\n").filter { $0.contains(" - ") }.map { String($0.split(separator: " - ").last!) }
    }

    @Test("Ctrl-C (SIGINT) and SIGTERM on run: the wasm stops where it spins, its backtrace printed, exit 130 / 143",
          arguments: [("INT", Int32(130)), ("TERM", Int32(143))])
    func signals(name: String, status: Int32) throws {
        for mode in exitRecordingModes {
            let (exit, stderr) = try child(["--exit-recording", mode.rawValue, "5"], signal: name)
            #expect(exit == status, "\(mode): exit \(exit): \(stderr)")
            #expect(stderr.contains("SIG\(name): stopped here\nwasm trap: interrupt"), "\(stderr)")
            #expect(Self.frames(stderr) == ["<unknown>!spin"] + Array(repeating: "<unknown>!descend", count: 6)
                    + ["<unknown>!<wasm function 2>"], "\(stderr)")
        }
    }

    @Test("Ctrl-C while a WASI program waits in fd_read (fixtures/wasi/c/reader.c): stopped in the host call, the backtrace of the wait through wasi-libc, exit 130")
    func blockedRead() throws {
        let module = try WASIProgramTests.directory() + "/reader.wasm"
        // Its standard input a pipe that stays open (and empty) for 5 s.
        let script = "sleep 5 | \"$0\" run \"$1\" & pid=$!; sleep 1; kill -INT $pid; wait $pid"
        let result = try runChild("/bin/bash", ["-c", script, PackagePaths.cli, module], environment: noSwiftBacktracer)
        #expect(result.status == 130, "\(result.status): \(result.stderr)")
        #expect(result.stderr.contains("SIGINT while the program waited in fd_read"), "\(result.stderr)")
        let frames = Self.frames(result.stderr)
        #expect(Array(frames.prefix(6)) == ["reader.wasm!__wasi_fd_read", "reader.wasm!read", "reader.wasm!__stdio_read",
                                            "reader.wasm!__uflow", "reader.wasm!fgets", "reader.wasm!read_line"], "\(result.stderr)")
    }

    @Test("Ctrl-C on profile: the samples so far are written, then the backtrace of where the wasm was, exit 130")
    func profile() throws {
        let directory = try temporaryDirectory("interrupt-profile")
        defer { try? FileManager.default.removeItem(at: directory) }
        let module = directory.appendingPathComponent("spin.wat").path
        try Self.spinner.write(toFile: module, atomically: true, encoding: .utf8)
        let script = "\"$0\" profile \"$1\" --invoke run --hz 1000 -- 2 & pid=$!; sleep 1; kill -INT $pid; wait $pid"
        let result = try runChild("/bin/sh", ["-c", script, PackagePaths.cli, module], environment: noSwiftBacktracer)
        #expect(result.status == 130, "\(result.status): \(result.stderr)")
        #expect(result.stdout.contains("<unknown>!<wasm function 2>;<unknown>!descend;<unknown>!descend;<unknown>!descend;<unknown>!spin "),
                "\(result.stdout)")
        #expect(result.stderr.contains("SIGINT: stopped here\nwasm trap: interrupt") && Self.frames(result.stderr).count == 5,
                "\(result.stderr)")
    }

    @Test("--timeout: a run past it stops at the spin loop's epoch check with the backtrace and exit 134; one that ends in time is unchanged; a bad duration is named")
    func timeout() throws {
        let (exit, stderr) = try child(["--timeout", "200ms", "3"], signal: nil)
        #expect(exit == 134 && stderr.contains("--timeout 200ms: stopped here\nwasm trap: interrupt"), "\(exit): \(stderr)")
        #expect(Self.frames(stderr).count == 6, "\(stderr)")
        #expect(stderr.contains("    0:     0x\(String(Self.spinLoopOffset, radix: 16)) - <unknown>!spin"), "\(stderr)")
        // Ctrl-C during a run with --timeout: the same checks stop it.
        for mode in exitRecordingModes {
            let (exit, stderr) = try child(["--exit-recording", mode.rawValue, "--timeout", "60s", "2"], signal: "INT")
            #expect(exit == 130 && stderr.contains("SIGINT: stopped here\nwasm trap: interrupt"), "\(exit): \(stderr)")
            #expect(stderr.contains("    0:     0x\(String(Self.spinLoopOffset, radix: 16)) - <unknown>!spin"), "\(stderr)")
            #expect(Self.frames(stderr).count == 5, "\(stderr)")
        }
        let quick = try runCLI(["run", PackagePaths.fixture("programs/factorial.wat"), "--invoke", "fac", "--timeout", "5s", "5"])
        #expect(quick.status == 0 && quick.stdout.contains("120"), "\(quick.stdout)\(quick.stderr)")
        let bad = try runCLI(["run", PackagePaths.fixture("programs/factorial.wat"), "--invoke", "fac", "--timeout", "soon", "5"])
        #expect(bad.status != 0 && bad.stderr.contains("--timeout expects a duration such as 500ms, 2s or 1m, got `soon`"), "\(bad.stderr)")
    }

    @Test("--fuel: enough runs the call unchanged; too little stops it with Wasmtime's message, its backtrace and exit 134; a bad value is named")
    func fuel() throws {
        let factorial = PackagePaths.fixture("programs/factorial.wat")
        let enough = try runCLI(["run", factorial, "--invoke", "fac", "--fuel", "1000", "5"])
        #expect(enough.status == 0 && enough.stdout.contains("120"), "\(enough.stdout)\(enough.stderr)")
        let short = try runCLI(["run", factorial, "--invoke", "fac", "--fuel", "20", "5"])
        #expect(short.status == 134 && short.stderr.contains("wasm trap: all fuel consumed by WebAssembly"), "\(short.stderr)")
        #expect(Self.frames(short.stderr).count >= 2 && Self.frames(short.stderr).allSatisfy { $0.hasSuffix("!fac") }, "\(short.stderr)")
        let bad = try runCLI(["run", factorial, "--invoke", "fac", "--fuel", "lots", "5"])
        #expect(bad.status != 0 && bad.stderr.contains("lots"), "\(bad.stderr)")
    }
}
