import Foundation
import Testing

/// A fault outside wasm is not a wasm trap, wherever and whenever it
/// happens: the process dies of the original signal after Swift's crash
/// report, as a process without WasmJIT would. Each case runs in a child
/// process (`trap-probe`).
@Suite("Faults outside wasm stay crashes")
struct HostFaultTests {
    /// The signal each probe fault raises, and the words Swift's crash
    /// reporter uses for it.
    static let signals: [(name: String, number: Int32, report: String)] = [
        ("segv", SIGSEGV, "Program crashed: Bad pointer dereference"),
        ("bus", SIGBUS, "Program crashed: Bus error"),
        ("ill", SIGILL, "Program crashed: Illegal instruction"),
        ("fpe", SIGFPE, "Program crashed: Floating point exception"),
    ]

    static let places = ["before", "host", "after", "after-trap", "other-thread"]

    static var cases: [(String, String)] { signals.flatMap { signal in places.map { (signal.name, $0) } } }

    @Test("a real fault in host code dies of its own signal with Swift's crash report", arguments: cases)
    func hostFault(signal: String, place: String) throws {
        let expected = try #require(Self.signals.first { $0.name == signal })
        let result = try runChild(PackagePaths.executable("trap-probe"), ["crash", signal, place])
        #expect(result.signal == expected.number, "exit \(result.status), stderr: \(result.stderr.prefix(400))")
        #expect(result.stderr.contains(expected.report), "stderr: \(result.stderr.prefix(400))")
        #expect(!result.stdout.contains("wasm trap") && !result.stdout.contains("survived"))
    }

    @Test("a previous SIGILL action of SIG_DFL flagged SA_SIGINFO is never called as a function")
    func chainToDefaultWithSiginfoFlag() throws {
        let result = try runChild(PackagePaths.executable("trap-probe"), ["chain-siginfo-default"])
        #expect(result.signal == SIGILL, "exit \(result.status), stderr: \(result.stderr.prefix(400))")
        #expect(!result.stdout.contains("survived"))
    }

    @Test("the thread's alternate signal stack: replaced only when too small, restored on release, kept when big enough")
    func alternateStack() throws {
        let result = try runChild(PackagePaths.executable("trap-probe"), ["alternate-stack"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = Dictionary(uniqueKeysWithValues: result.stdout.split(separator: "\n").map { line -> (String, String) in
            let words = line.split(separator: " ")
            let value = words.suffix(2).joined(separator: " ")
            return (words.dropLast(2).joined(separator: " "), value)
        })
        // Swift gives the main thread a small alternate stack; the handler
        // needs more, so it uses its own while the thread can take traps...
        let before = try #require(lines["before"])
        let during = try #require(lines["taking traps"])
        #expect(before != during)
        #expect(Int(during.split(separator: " ")[1])! >= 64 * 1024)
        // ...and gives Swift's back when the thread no longer needs it.
        #expect(lines["released"] == before)
        // A big enough alternate stack is kept as it is.
        #expect(lines["own"] != nil && lines["own, taking traps"] == lines["own"])
    }

    @Test("1,000 threads that each trap with snapshots on leave memory flat: per-thread resources are freed at exit")
    func threadExit() throws {
        let result = try runChild(PackagePaths.executable("trap-probe"), ["thread-exit", "1000"])
        #expect(result.status == 0, "\(result.stderr)")
        let numbers = result.stdout.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        try #require(numbers.count == 4, "\(result.stdout)")
        #expect(numbers[1] < numbers[0] + (4 << 20), "resident memory grew from \(numbers[0]) to \(numbers[1]) bytes")
        #expect(numbers[3] < numbers[2] + (64 << 20), "virtual memory grew from \(numbers[2]) to \(numbers[3]) bytes")
    }
}

/// What the trap handler takes for a wasm trap: a fault the kernel raised
/// at a trap site of running wasm, a memory access faulting inside one of
/// the store's memories. Anything else ends the process as it would
/// without the runtime.
@Suite("Faults and signals that are not wasm traps", .serialized)
struct NotATrapTests {
    @Test("a memory access in wasm that faults outside every memory of the store is a crash, not an out-of-bounds trap")
    func foreignFault() throws {
        let result = try runChild(PackagePaths.executable("trap-probe"), ["foreign-fault"])
        #expect(result.signal == SIGSEGV, "exit \(result.status): \(result.stdout) \(result.stderr.prefix(300))")
        #expect(result.stderr.contains("Program crashed: Bad pointer dereference"))
        #expect(!result.stdout.contains("wasm trap"))
    }

    /// Runs `fixtures/programs/spin.wat` (wasm loading memory for ever),
    /// sends it `signal` after a second, and returns how it ended and the
    /// dump of its core.
    func sendWhileSpinning(_ signal: String, in directory: URL) throws -> (result: (status: Int32, signal: Int32?, stdout: String, stderr: String), dump: String?) {
        let script = "ulimit -c unlimited; \"$0\" run \"$1\" --invoke spin & pid=$!; sleep 1; kill -\(signal) $pid; wait $pid"
        let result = try runChild("/bin/sh", ["-c", script, PackagePaths.cli, PackagePaths.fixture("programs/spin.wat")],
                                  directory: directory)
        guard CoreFiles.refusal == nil,
              let core = try FileManager.default.contentsOfDirectory(atPath: directory.path).first(where: { $0.hasPrefix("core") })
        else { return (result, nil) }
        return (result, try runCLI(["dump", directory.appendingPathComponent(core).path, "--exe", PackagePaths.cli]).stdout)
    }

    @Test("kill -SEGV and kill -ABRT at wasm spinning over memory loads: the process dies of that signal, its core shows it in wasm, sent",
          arguments: [("SEGV", SIGSEGV), ("ABRT", SIGABRT)])
    func sentSignal(name: String, number: Int32) throws {
        let directory = try temporaryDirectory("sent-\(name)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (result, dump) = try sendWhileSpinning(name, in: directory)
        // The shell reports the child's signal as 128 + N.
        #expect(result.status == 128 + number, "exit \(result.status): \(result.stdout) \(result.stderr.suffix(300))")
        #expect(!result.stdout.contains("wasm trap") && !result.stderr.contains("wasm trap"))
        if let dump {
            #expect(dump.contains("interrupted in wasm") && dump.contains("signal \(number) sent by pid "), "\(dump)")
            #expect(dump.contains("spin!spin"), "\(dump)")
        }
    }

    @Test("a SIGSEGV sent to wasm loading memory is never reported as an out-of-bounds trap (10 tries)")
    func sentSegvIsNoTrap() throws {
        for attempt in 0..<10 {
            let script = "\"$0\" run \"$1\" --invoke spin & pid=$!; sleep 0.3; kill -SEGV $pid; wait $pid"
            let result = try runChild("/bin/sh", ["-c", script, PackagePaths.cli, PackagePaths.fixture("programs/spin.wat")])
            #expect(result.status == 128 + SIGSEGV && !result.stdout.contains("memory fault"), "attempt \(attempt): exit \(result.status) \(result.stdout)")
        }
    }
}
