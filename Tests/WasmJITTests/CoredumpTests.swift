import Foundation
import Testing
@testable import Verification
import WasmCoredumpFormat
import WasmJIT
import CWasmUnwindABI

/// Standard wasm coredumps (tool-conventions Coredump.md): written at a
/// trap with every local's and operand's value, read back by `dump`,
/// checked against what generated programs know and against wasm-tools.
@Suite("Wasm coredumps")
struct CoredumpTests {
    @Test("generated programs with known values: every local and operand in the coredump equals the generator's, NaN payloads and -0.0 included",
          arguments: [(ExitRecording.trampoline, TrapInstructions.runtimeCall), (.inline, .runtimeCall), (.trampoline, .ud2)])
    func knownValues(mode: ExitRecording, traps: TrapInstructions) throws {
        let engine = Engine(configuration: Engine.Configuration(exitRecording: mode, trapInstructions: traps))
        var frames = 0
        for seed in 1...300 {
            let program = CoredumpValueProgram(seed: UInt64(seed))
            let (problems, compared) = try program.check(engine: engine)
            frames += compared
            for problem in problems.prefix(3) { Issue.record("seed \(seed): \(problem)\n\(program.text)") }
            if !problems.isEmpty { break }
        }
        print("coredump values (\(mode), \(traps)): 300 programs, \(frames) frames compared")
        #expect(frames > 900)
    }
}

extension CoredumpTests {
    /// Every trap of the C and C++ fixtures, with coredumps on: the
    /// coredump's frames are the backtrace's (function index and module
    /// offset, through the module's code section), and every coredump
    /// validates with wasm-tools, which knows the core sections.
    @Test("every trap of the C fixtures: the coredump's frames are the backtrace's, and wasm-tools validates and reads every coredump",
          arguments: exitRecordingModes)
    func cFixtures(mode: ExitRecording) throws {
        let directory = try CProgramTests.directory()
        let output = try temporaryDirectory("coredumps")
        defer { try? FileManager.default.removeItem(at: output) }
        let engine = Engine(configuration: Engine.Configuration(exitRecording: mode))
        var written: [String] = []
        var frames = 0
        for file in try FileManager.default.contentsOfDirectory(atPath: directory).filter({ $0.hasSuffix(".wasm") }).sorted() {
            let binary = try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory + "/" + file)))
            let symbols = try ModuleSymbols(parsing: binary)
            let store = Store(engine: engine)
            store.coredumpOnTrap = true
            let instance = try Instance(store: store, module: Module(engine: engine, binary: binary))
            for (export, arguments) in CFixtureCalls.calls[CFixtureCalls.program(ofFile: file)]! {
                do {
                    _ = try instance.export(export)!.call(arguments)
                } catch let trap as Trap {
                    let coredump = try #require(trap.coredump, "\(file) \(export)")
                    let dumped = coredump.dump.threads[0].frames.map { frame in
                        "\(frame.function)@\(symbols.moduleOffset(function: frame.function, codeOffset: frame.codeOffset) ?? -1)"
                    }
                    let live = trap.backtrace.frames.compactMap { frame -> String? in
                        guard let symbol = frame.symbol, let function = symbol.functionIndex else { return nil }
                        // A prologue's pc has no offset: the coredump says the function's start.
                        let offset = symbol.moduleOffset.map(Int.init) ?? symbols.bodyStarts[Int(function)]!
                        return "\(function)@\(offset)"
                    }
                    #expect(dumped == live, "\(file) \(export)\(arguments)")
                    frames += dumped.count
                    let path = output.appendingPathComponent("\(file)-\(export)-\(written.count).core").path
                    try coredump.write(to: path)
                    written.append(path)
                }
            }
        }
        for path in written {
            let validate = try runChild(PackagePaths.root.appendingPathComponent(".venv/bin/wasm-tools").path, ["validate", path])
            #expect(validate.status == 0, "\(path): \(validate.stderr)")
            let dump = try runChild(PackagePaths.root.appendingPathComponent(".venv/bin/wasm-tools").path, ["dump", path])
            #expect(dump.status == 0 && dump.stdout.contains("CoreDumpStackFrame"), "\(path): \(dump.stderr)")
        }
        print("coredumps of the C fixtures (\(mode)): \(written.count) traps, \(frames) frames equal to the backtraces, all valid")
        #expect(written.count >= 30 && frames >= 150)
    }

    @Test("a trap's coredump holds every thread in wasm: one stopped in a loop (its older frames' values; stopped until the coredump is taken, then it goes on), one blocked in a host call (every value); their stores' instances and memories; wasm-tools validates it",
          arguments: exitRecordingModes)
    func otherThreads(mode: ExitRecording) throws {
        let engine = Engine(configuration: Engine.Configuration(exitRecording: mode))
        // A thread spinning in wasm under two calls: it says where it is in
        // memory[4], and stops spinning when memory[0] is set.
        let spinner = try Module(engine: engine, text: """
            (module $spinner (memory (export "memory") 1)
              (func $spin (param i32) (local i64)
                (local.set 1 (i64.const 1234))
                (i32.store (i32.const 4) (local.get 0))
                (loop $wait (br_if $wait (i32.eqz (i32.load (i32.const 0))))))
              (func $middle (param i32) (local f64)
                (local.set 1 (f64.const 2.5))
                (call $spin (i32.add (local.get 0) (i32.const 1))))
              (func (export "run") (param i32) (call $middle (i32.mul (local.get 0) (i32.const 3)))))
            """)
        // A thread blocked in a host call under two calls.
        let blocker = try Module(engine: engine, text: """
            (module $blocker (import "host" "block" (func $block (param i32)))
              (func $inner (param i32) (local i32)
                (local.set 1 (i32.const 99))
                (call $block (i32.add (local.get 0) (local.get 1))))
              (func (export "run") (param i32) (call $inner (i32.sub (local.get 0) (i32.const 1)))))
            """)
        final class Shared: @unchecked Sendable {
            let entered = DispatchSemaphore(value: 0)
            let release = DispatchSemaphore(value: 0)
            var spinnerMemory: Memory?
            var spinnerTID: Int32 = 0
            var blockerTID: Int32 = 0
            var failures: [String] = []
        }
        let shared = Shared()
        let spinning = Thread {
            do {
                let store = Store(engine: engine)
                let instance = try Instance(store: store, module: spinner)
                shared.spinnerMemory = instance.memory
                shared.spinnerTID = wu_gettid()
                _ = try instance.export("run")!.call([.i32(7)])
            } catch { shared.failures.append("spinner: \(error)") }
        }
        let blocking = Thread {
            do {
                let store = Store(engine: engine)
                var imports = Imports()
                imports.define(module: "host", name: "block", .host(HostFunction(signature: Signature(parameters: [.i32], results: [])) { _, _ in
                    shared.entered.signal()
                    shared.release.wait()
                    return []
                }))
                shared.blockerTID = wu_gettid()
                let instance = try Instance(store: store, module: blocker, imports: imports)
                _ = try instance.export("run")!.call([.i32(10)])
            } catch { shared.failures.append("blocker: \(error)") }
        }
        spinning.start()
        blocking.start()
        shared.entered.wait()
        let deadline = Date().addingTimeInterval(20)
        while shared.spinnerMemory.map({ memory in memory.withBytes { $0.load(fromByteOffset: 4, as: Int32.self) } }) != 22,
              Date() < deadline { usleep(1000) }

        let store = Store(engine: engine)
        store.coredumpOnTrap = true
        let trapping = try Instance(store: store, module: Module(engine: engine, text: """
            (module $trapping (func $fail (param i32) unreachable) (func (export "run") (call $fail (i32.const 5))))
            """))
        var coredump: CapturedCoredump?
        do { _ = try trapping.export("run")!.call([]) } catch let trap as Trap { coredump = trap.coredump }
        // Let both go on: the spinner ends its loop, the blocker returns.
        shared.spinnerMemory?.withBytes { $0.storeBytes(of: Int32(1), toByteOffset: 0, as: Int32.self) }
        shared.release.signal()
        let finished = Date().addingTimeInterval(20)
        while (spinning.isExecuting || blocking.isExecuting) && Date() < finished { usleep(1000) }
        #expect(!spinning.isExecuting && !blocking.isExecuting && shared.failures.isEmpty, "\(shared.failures)")

        let dump = try #require(coredump).dump
        #expect(dump.threads.first?.frames.map(\.function) == [0, 1])
        let names = dump.modules
        func module(of frame: WasmCoredump.Frame) -> String { names[Int(dump.instances[Int(frame.instance)].module)] }
        // The spinner, stopped in $spin's loop: its values are known at
        // the calls below it.
        let spin = try #require(dump.threads.first { $0.name == "\(shared.spinnerTID)" }, "\(dump.threads.map(\.name))")
        #expect(spin.frames.map(\.function) == [0, 1, 2] && spin.frames.allSatisfy { module(of: $0) == "spinner" }, "\(spin.frames)")
        #expect(spin.frames.first?.locals == [.missing, .missing])
        #expect(spin.frames[1].locals == [.i32(21), .f64(Double(2.5).bitPattern)] && spin.frames[1].stack == [.i32(22)], "\(spin.frames[1])")
        #expect(spin.frames[2].locals == [.i32(7)] && spin.frames[2].stack == [.i32(21)])
        // The blocker, in its host call: every value, the newest frame's too.
        let block = try #require(dump.threads.first { $0.name == "\(shared.blockerTID)" })
        #expect(block.frames.map(\.function) == [1, 2] && block.frames.allSatisfy { module(of: $0) == "blocker" }, "\(block.frames)")
        #expect(block.frames[0].locals == [.i32(9), .i32(99)] && block.frames[0].stack == [.i32(108)], "\(block.frames[0])")
        #expect(block.frames[1].locals == [.i32(10)] && block.frames[1].stack == [.i32(9)])
        // The spinner's memory, copied: its flag word as it was (22 at 4,
        // 0 at 0; zeros trimmed).
        let spinnerInstance = try #require(spin.frames.first).instance
        let memoryIndex = try #require(dump.instances[Int(spinnerInstance)].memories.first)
        let segments = dump.memories[Int(memoryIndex)].segments
        #expect(segments.count == 1 && segments.first?.offset == 4 && segments.first?.bytes == [22], "\(segments)")

        let output = try temporaryDirectory("threads")
        defer { try? FileManager.default.removeItem(at: output) }
        let path = output.appendingPathComponent("threads.core").path
        try #require(coredump).write(to: path)
        let validate = try runChild(PackagePaths.root.appendingPathComponent(".venv/bin/wasm-tools").path, ["validate", path])
        #expect(validate.status == 0, "\(validate.stderr)")
        let reread = try WasmCoredump(parsing: [UInt8](Data(contentsOf: URL(fileURLWithPath: path))))
        #expect(reread.threads.count == dump.threads.count && reread.threads.map(\.frames) == dump.threads.map(\.frames))
        // `dump` prints every thread, named by the modules' name sections.
        let printed = try runChild(PackagePaths.cli, ["dump", path])
        #expect(printed.status == 0 && printed.stdout.contains("thread \(shared.spinnerTID): 3 frames")
                && printed.stdout.contains("thread \(shared.blockerTID): 2 frames"), "\(printed.stdout)\(printed.stderr)")
        print("coredump with other threads (\(mode)):\n\(printed.stdout)")

        // Off: only the trapping thread.
        store.coredumpIncludesOtherThreads = false
        do { _ = try trapping.export("run")!.call([]) } catch let trap as Trap {
            #expect(trap.coredump?.dump.threads.count == 1)
        }
    }

    @Test("the peer-snapshot handler allocates nothing: 100 coredumps at traps with a thread spinning in wasm and one in a host call, in a process of its own")
    func peerHandlerAllocations() throws {
        let result = try runChild(PackagePaths.executable("trap-probe"), ["peer-allocations", "100"], environment: noSwiftBacktracer)
        // Each coredump: the trapping thread and both others; each other
        // thread answered each time; the handler allocated nothing.
        #expect(result.status == 0 && result.stdout.contains("coredumps 100 threads [3] answers 200 allocations 0"),
                "\(result.stdout)\(result.stderr)")
    }

    @Test("a stack-exhaustion trap: the frame in its prologue has no local values yet (missing), the others all theirs")
    func prologue() throws {
        let engine = Engine()
        let store = Store(engine: engine)
        store.coredumpOnTrap = true
        let text = """
            (module (func $deep (export "deep") (param i64) (result i64) (local f64)
              (local.set 1 (f64.const 2.5))
              (i64.add (call $deep (i64.add (local.get 0) (i64.const 1))) (i64.const 1))))
            """
        let instance = try Instance(store: store, module: Module(engine: engine, text: text))
        do {
            _ = try instance.export("deep")!.call([.i64(0)])
            Issue.record("returned")
        } catch let trap as Trap {
            #expect(trap.code == .stackOverflow)
            let frames = try #require(trap.coredump?.dump.threads.first?.frames)
            #expect(frames.first?.locals == [.missing, .missing] && frames.first?.stack == [])
            // The frame below called with depth n: its parameter is n, its
            // local 2.5, its stack the call's argument n + 1.
            let caller = frames[1]
            guard case .i64(let depth) = caller.locals[0] else { Issue.record("\(caller)"); return }
            #expect(caller.locals == [.i64(depth), .f64(Double(2.5).bitPattern)] && caller.stack == [.i64(depth + 1)])
            #expect(frames.count > 100 && frames.last?.locals == [.i64(0), .f64(Double(2.5).bitPattern)])
        }
    }

    @Test("an uncaught wasm exception: the coredump is taken at the throw, with the throwing frames' values read in place")
    func uncaughtException() throws {
        let engine = Engine()
        let store = Store(engine: engine)
        store.coredumpOnTrap = true
        let text = """
            (module
              (tag $t (param i32))
              (func $inner (param i32) (local i64)
                (local.set 1 (i64.const -77))
                (throw $t (i32.add (local.get 0) (i32.const 1))))
              (func (export "run") (param i32)
                (call $inner (i32.mul (local.get 0) (i32.const 2)))))
            """
        let instance = try Instance(store: store, module: Module(engine: engine, text: text))
        do {
            _ = try instance.export("run")!.call([.i32(20)])
            Issue.record("returned")
        } catch let trap as Trap {
            let frames = try #require(trap.coredump?.dump.threads.first?.frames)
            #expect(frames.map(\.function) == [0, 1])
            #expect(frames[0].locals == [.i32(40), .i64(-77)] && frames[0].stack == [.i32(41)])
            #expect(frames[1].locals == [.i32(20)] && frames[1].stack == [.i32(40)])
        }
    }

    /// A coredump's every byte flipped and every prefix: each read either
    /// succeeds or names a problem, never crashes or hangs.
    @Test("truncated and bit-flipped coredumps: an error naming the offset and field, never a crash")
    func hostileInput() throws {
        let engine = Engine()
        let program = CoredumpValueProgram(seed: 7)
        let store = Store(engine: engine)
        store.coredumpOnTrap = true
        let instance = try Instance(store: store, module: Module(engine: engine, text: program.text))
        var bytes: [UInt8] = []
        do { _ = try instance.export("run")!.call(program.arguments) } catch let trap as Trap {
            bytes = CoredumpEncoder.encode(try #require(trap.coredump).withMemoryBytes)
        }
        #expect(try WasmCoredump(parsing: bytes).threads.count == 1)
        // A prefix is an error unless it ends between sections (then it is
        // a smaller coredump: one without the last sections).
        var errors = 0, whole = 0
        for length in 0..<bytes.count {
            do {
                let read = try WasmCoredump(parsing: Array(bytes[..<length]))
                #expect(read.threads.isEmpty, "a prefix of \(length) bytes has the thread")
                whole += 1
            } catch { errors += 1 }
        }
        #expect(errors > bytes.count - 10 && whole < 10, "\(errors) errors, \(whole) whole")
        var random = SplitMix64(seed: 1)
        for _ in 0..<4000 {
            var mutated = bytes
            mutated[Int(random.next() % UInt64(bytes.count))] ^= UInt8(1 << (random.next() % 8))
            if case .failure(let error) = Result(catching: { try WasmCoredump(parsing: mutated) }) {
                #expect(!"\(error)".isEmpty)
            }
        }
        // A count far larger than the section: an error, not an allocation.
        let error = #expect(throws: CoredumpError.self) {
            try WasmCoredump(parsing: [0, 0x61, 0x73, 0x6D, 1, 0, 0, 0, 0, 12, 9] + Array("corestack".utf8) + [0])
        }
        #expect(error.map { "\($0)".contains("thread") || "\($0)".contains("runs past") } == true, "\(String(describing: error))")
        let notCore = #expect(throws: CoredumpError.self) { try WasmCoredump(parsing: try Module.binary(ofText: "(module)")) }
        #expect(notCore.map { "\($0)".contains("no `core` custom section") } == true)
    }

    @Test("run --coredump-on-trap writes the coredump; dump prints its frames with named locals; dump --format json too")
    func command() throws {
        let directory = try temporaryDirectory("coredump-command")
        defer { try? FileManager.default.removeItem(at: directory) }
        let module = directory.appendingPathComponent("cd.wat").path
        try """
            (module $cd
              (memory 1)
              (global $g (mut i32) (i32.const 7))
              (data (i32.const 100) "hello")
              (func $leaf (param $x i32) (param $y i64) (result i32) (local $f f32) (local $d f64)
                (local.set $f (f32.const 1.5))
                (local.set $d (f64.const -0.0))
                (i32.div_s (local.get $x) (i32.const 0)))
              (func $mid (export "run") (param $n i32) (result i32)
                (i32.add (i32.const 11) (call $leaf (i32.add (local.get $n) (i32.const 1)) (i64.const -5)))))
            """.write(toFile: module, atomically: true, encoding: .utf8)
        let core = directory.appendingPathComponent("cd.core").path
        let run = try runCLI(["run", module, "--invoke", "run", "--coredump-on-trap", core, "41"])
        #expect(run.status == 134 && run.stderr.contains("coredump written to \(core)"), "\(run.stderr)")
        // The trap's own backtrace names the same frames and offsets.
        #expect(run.stderr.contains("    0:     0x50 - cd!leaf\n    1:     0x5d - cd!mid"), "\(run.stderr)")
        let dump = try runCLI(["dump", core])
        #expect(dump.status == 0, "\(dump.stderr)")
        #expect(dump.stdout == """
            \(core): wasm coredump of \(module): 1 module, 1 instance, 1 memory (1 page, 5 bytes of data), 1 global
            thread main: 2 frames
               0:     0x50 - cd!leaf (instance 0, function 0)
                         locals: x = i32 42, y = i64 -5, f = f32 1.5, d = f64 -0
                         stack: i32 42, i32 0
               1:     0x5d - cd!mid (instance 0, function 1)
                         locals: n = i32 41
                         stack: i32 11, i32 42, i64 -5

            """, "\(dump.stdout)")
        let json = try runCLI(["dump", core, "--format", "json"])
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let file = (object?["files"] as? [[String: Any]])?.first?["coredump"] as? [String: Any]
        let frame = ((file?["threads"] as? [[String: Any]])?.first?["frames"] as? [[String: Any]])?.first
        #expect(frame?["function_name"] as? String == "leaf" && (frame?["locals"] as? [[String: Any]])?.count == 4, "\(json.stdout)")
        // The module moved away: indices, and a warning that says how to name it.
        try FileManager.default.removeItem(atPath: module)
        let lost = try runCLI(["dump", core])
        #expect(lost.stdout.contains("<wasm function 0>") && lost.stderr.contains("give it with --module PATH"), "\(lost.stdout)\(lost.stderr)")
    }
}

extension CoredumpTests {
    @Test("the committed coredumps dump exactly to their golden text and JSON, and a trap of their sources writes them again byte for byte",
          arguments: [("values", "fixtures/coredumps/values.wat"), ("divide", "fixtures/coredumps/divide.wasm")])
    func golden(name: String, module: String) throws {
        let core = "fixtures/coredumps/\(name).core"
        func golden(_ suffix: String) throws -> String {
            try String(contentsOfFile: PackagePaths.fixture("coredumps/\(name)\(suffix)"), encoding: .utf8)
        }
        let text = try runCLI(["dump", core])
        #expect(text.status == 0 && text.stderr.isEmpty, "\(text.stderr)")
        #expect(text.stdout == (try golden(".txt")))
        let json = try runCLI(["dump", core, "--format", "json"])
        #expect(json.status == 0)
        #expect(json.stdout == (try golden(".json")))
        let directory = try temporaryDirectory("coredump-golden")
        defer { try? FileManager.default.removeItem(at: directory) }
        let again = directory.appendingPathComponent("again.core").path
        _ = try runCLI(["run", module, "--invoke", "run", name == "values" ? "5" : "4", "--coredump-on-trap", again])
        #expect(try Data(contentsOf: URL(fileURLWithPath: again)) == Data(contentsOf: URL(fileURLWithPath: PackagePaths.fixture("coredumps/\(name).core"))))
    }

    @Test("a C program's coredump names locals and operands by its DWARF variables, with values the program computed, and has source lines")
    func dwarfVariables() throws {
        let text = try runCLI(["dump", "fixtures/coredumps/divide.core"])
        // values = {2, 3, 5, 7}; average(values, 4) sums them (17) and
        // divides by 4 - 4 in the inlined ratio(total, parts).
        #expect(text.stdout.contains("""
               0:     0x99 - divide.wasm!average (instance 0, function 0)
                            - ratio
                                at ./fixtures/c-lines/divide.c:4:62
                            - average
                                at ./fixtures/c-lines/divide.c:8:12
            """), "\(text.stdout)")
        #expect(text.stdout.contains("count = i32 4") && text.stdout.contains("stack: total = i32 17, parts = i32 0"), "\(text.stdout)")
    }
}

extension CoredumpTests {
    @Test("coredump CORE of fixtures/crash/nested-crash.wat — a kernel core and gdb's gcore at the same crash — gives the frames dump CORE prints, two activations deep",
          .enabled(if: CoreFiles.refusal == nil && ToolPaths.gdb != nil, "needs core files and gdb"))
    func convertKernelCoreAndGcore() throws {
        let directory = try temporaryDirectory("coredump-nested")
        defer { try? FileManager.default.removeItem(at: directory) }
        let module = PackagePaths.fixture("crash/nested-crash.wat")
        let crash = try runChild("/bin/sh", ["-c", "ulimit -c unlimited; exec \"$0\" run \"$1\" --invoke main", PackagePaths.cli, module],
                                 environment: noSwiftBacktracer, directory: directory)
        #expect(crash.signal == SIGSEGV, "status \(crash.status)")
        let kernel = directory.appendingPathComponent(try #require(try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .first { $0.hasPrefix("core") })).path
        // gdb stops the same program at its SIGSEGV and writes a core of it.
        let gcore = directory.appendingPathComponent("gcore.core").path
        _ = try #require(try runTool("gdb", ["-nx", "-batch", "-ex", "run", "-ex", "gcore \(gcore)", "-ex", "kill",
                                             "--args", PackagePaths.cli, "run", module, "--invoke", "main"],
                                     environment: noSwiftBacktracer))
        for core in [kernel, gcore] {
            let dump = try runCLI(["dump", core])
            #expect(dump.status == 0, "\(core): \(dump.stderr)")
            let native = dump.stdout.split(separator: "\n").filter { $0.contains(" - nested_crash!") }.map { String($0.drop { $0 == " " }) }
            let converted = directory.appendingPathComponent("converted.core").path
            let conversion = try runCLI(["coredump", core, "-o", converted])
            #expect(conversion.status == 0, "\(conversion.stderr)")
            let wasm = try runCLI(["dump", converted, "--module", module])
            #expect(wasm.status == 0, "\(wasm.stderr)")
            let frames = wasm.stdout.split(separator: "\n").filter { $0.contains(" - nested_crash!") }
                .map { String($0.drop { $0 == " " }.prefix { $0 != "(" }.dropLast()) }
            #expect(native.count == 4 && frames == native, "\(core)\ndump CORE:\n\(dump.stdout)\ncoredump:\n\(wasm.stdout)")
            // Every local the core's stack holds: the i32 0 passed down.
            #expect(wasm.stdout.components(separatedBy: "locals: local 0 = i32 0").count - 1 >= 3, "\(wasm.stdout)")
        }
    }
}

extension CoredumpTests {
    /// The frames of a coredump as (function, code offset) per thread.
    static func frames(_ path: String) throws -> [[String]] {
        try WasmCoredump(parsing: [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))).threads.map { thread in
            thread.frames.map { "\($0.function)+\($0.codeOffset)" }
        }
    }

    @Test("coredump CAPTURE: the frames of a trap's capture converted equal the coredump written live at the same trap")
    func convertCapture() throws {
        let directory = try temporaryDirectory("coredump-convert")
        defer { try? FileManager.default.removeItem(at: directory) }
        let capture = directory.appendingPathComponent("trap.capture").path
        let live = directory.appendingPathComponent("live.core").path
        let converted = directory.appendingPathComponent("converted.core").path
        let run = try runCLI(["run", PackagePaths.fixture("programs/average.wat"), "--invoke", "report", "--capture", capture,
                              "--coredump-on-trap", live, "7"])
        #expect(run.status == 134, "\(run.stderr)")
        let conversion = try runCLI(["coredump", capture, "-o", converted])
        #expect(conversion.status == 0 && conversion.stdout.contains("1 thread, 2 frames, 1 module, 1 instance"), "\(conversion.stdout)\(conversion.stderr)")
        #expect(try Self.frames(converted) == Self.frames(live) && Self.frames(live) == [["0+30", "1+12"]])
        // The values too: the capture carries the frame layout.
        let liveFrames = try WasmCoredump(parsing: [UInt8](Data(contentsOf: URL(fileURLWithPath: live)))).threads[0].frames
        let convertedFrames = try WasmCoredump(parsing: [UInt8](Data(contentsOf: URL(fileURLWithPath: converted)))).threads[0].frames
        #expect(convertedFrames == liveFrames && liveFrames[0].locals == [.i64(21), .i32(0), .f64(Double(10.5).bitPattern)],
                "\(convertedFrames)\n\(liveFrames)")
        let validate = try runChild(PackagePaths.root.appendingPathComponent(".venv/bin/wasm-tools").path, ["validate", converted])
        #expect(validate.status == 0, "\(validate.stderr)")
        let dump = try runCLI(["dump", converted, "--module", PackagePaths.fixture("programs/average.wat")])
        #expect(dump.stdout.contains("0x56 - average!average") && dump.stdout.contains("0x65 - average!report"), "\(dump.stdout)")
    }

    @Test("coredump CORE: a real core of a process that crashed under wasm converts with every thread in wasm; the crash capture of the same crash converts to the same frames",
          .enabled(if: CoreFiles.refusal == nil, CoreFiles.refusal.map { Comment(rawValue: $0) } ?? ""))
    func convertCore() throws {
        let directory = try temporaryDirectory("coredump-core")
        defer { try? FileManager.default.removeItem(at: directory) }
        let capture = directory.appendingPathComponent("crash.capture").path
        let crash = try runChild("/bin/sh", ["-c", "ulimit -c unlimited; WASM_UNWIND_CRASH_CAPTURE=\"$1\" exec \"$0\" run \"$2\" --invoke outer 0",
                                             PackagePaths.cli, capture, PackagePaths.fixture("programs/crash.wat")],
                                 environment: noSwiftBacktracer, directory: directory)
        #expect(crash.signal == SIGSEGV, "status \(crash.status)")
        let core = try #require(try FileManager.default.contentsOfDirectory(atPath: directory.path).first { $0.hasPrefix("core") })
        let fromCore = directory.appendingPathComponent("from-core.core").path
        let fromCapture = directory.appendingPathComponent("from-capture.core").path
        let a = try runCLI(["coredump", directory.appendingPathComponent(core).path, "-o", fromCore])
        let b = try runCLI(["coredump", capture, "-o", fromCapture])
        #expect(a.status == 0 && b.status == 0, "\(a.stderr)\(b.stderr)")
        let coreFrames = try Self.frames(fromCore), captureFrames = try Self.frames(fromCapture)
        #expect(coreFrames.count == 1 && coreFrames.first?.count == 4 && coreFrames == captureFrames, "\(coreFrames) \(captureFrames)")
        // Values from the core (through the descriptor's images, each
        // frame's slots in the core's stack) and from the crash capture
        // (the C writer copies the layouts) as far as it holds the stack:
        // it starts at the newest wasm frame's fp (the exit the host call
        // recorded), so that frame's slots, below it, are missing.
        let coreValues = try WasmCoredump(parsing: [UInt8](Data(contentsOf: URL(fileURLWithPath: fromCore)))).threads[0].frames
        let captureValues = try WasmCoredump(parsing: [UInt8](Data(contentsOf: URL(fileURLWithPath: fromCapture)))).threads[0].frames
        #expect(coreValues.allSatisfy { $0.locals == [.i32(0)] && $0.stack == [.i32(0)] }, "\(coreValues)")
        #expect(Array(captureValues.dropFirst()) == Array(coreValues.dropFirst())
                && captureValues.first?.locals == [.missing] && captureValues.first?.stack == [.missing], "\(captureValues)")
        for path in [fromCore, fromCapture] {
            let validate = try runChild(PackagePaths.root.appendingPathComponent(".venv/bin/wasm-tools").path, ["validate", path])
            #expect(validate.status == 0, "\(path): \(validate.stderr)")
        }
        // The thread is named by its tid in a core.
        #expect(try Int(WasmCoredump(parsing: [UInt8](Data(contentsOf: URL(fileURLWithPath: fromCore)))).threads[0].name) != nil)

        // Two threads in wasm (one crashing, one waiting in a host call):
        // a corestack each, the crashing one first.
        let threads = try temporaryDirectory("coredump-threads")
        defer { try? FileManager.default.removeItem(at: threads) }
        let probe = PackagePaths.executable("trap-probe")
        let twoThreads = try runChild("/bin/sh", ["-c", "ulimit -c unlimited; exec \"$0\" two-threads", probe],
                                      environment: noSwiftBacktracer, directory: threads)
        #expect(twoThreads.signal == SIGSEGV)
        let twoCore = try #require(try FileManager.default.contentsOfDirectory(atPath: threads.path).first { $0.hasPrefix("core") })
        let converted = threads.appendingPathComponent("two.core").path
        let conversion = try runCLI(["coredump", threads.appendingPathComponent(twoCore).path, "--exe", probe, "-o", converted])
        #expect(conversion.status == 0 && conversion.stdout.contains("2 threads, 3 frames"), "\(conversion.stdout)\(conversion.stderr)")
        #expect(try Self.frames(converted).map(\.count) == [2, 1])
    }
}
