import Foundation
import StackCapture
import Testing
import WasmCoredumpFormat
import WasmJIT
import WasmUnwind

/// A `trap-probe live` child: running until the test kills it, its
/// standard error in a file the test reads.
final class LiveChild {
    let process = Process()
    let errorFile: URL

    init(_ arguments: [String]) throws {
        errorFile = FileManager.default.temporaryDirectory.appendingPathComponent("live-probe-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).err")
        _ = FileManager.default.createFile(atPath: errorFile.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: PackagePaths.executable("trap-probe"))
        process.arguments = ["live"] + arguments
        process.standardError = try FileHandle(forWritingTo: errorFile)
        process.standardOutput = FileHandle.nullDevice
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=no"
        process.environment = environment
        try process.run()
        // Both threads in place: the waiting one blocked, the other spinning.
        let deadline = Date().addingTimeInterval(60)
        while !stderr.contains("ready") {
            guard process.isRunning, Date() < deadline else { throw ChildError(stderr: stderr) }
            usleep(20_000)
        }
    }

    struct ChildError: Error, CustomStringConvertible {
        var stderr: String
        var description: String { "the probe did not get ready: \(stderr)" }
    }

    var pid: Int32 { process.processIdentifier }
    var stderr: String { (try? String(contentsOf: errorFile, encoding: .utf8)) ?? "" }

    /// The frames a `recorded LABEL: ...` line lists (the newest one).
    func recorded(_ label: String) -> [String] {
        stderr.split(separator: "\n").last { $0.hasPrefix("recorded \(label): ") }
            .map { $0.dropFirst("recorded \(label): ".count).split(separator: " ").map(String.init) } ?? []
    }

    /// Asks the spinning thread to record its own backtrace, and waits for it.
    func selfReport() -> [String] {
        let before = stderr.components(separatedBy: "recorded spinning").count
        kill(pid, SIGUSR1)
        let deadline = Date().addingTimeInterval(30)
        while stderr.components(separatedBy: "recorded spinning").count == before, Date() < deadline { usleep(10_000) }
        return recorded("spinning")
    }

    /// `/proc/PID/status`'s state and tracer: running, and nobody attached.
    var status: (state: String, tracer: String) {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        func field(_ name: String) -> String {
            text.split(separator: "\n").first { $0.hasPrefix(name + ":") }.map { $0.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces) } ?? ""
        }
        return (field("State"), field("TracerPid"))
    }

    deinit {
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: errorFile)
    }
}

@Suite("Live processes: wasm stacks of a running embedder, read from outside", .serialized)
struct LiveProcessTests {
    /// The wasm frames (`module!function`) of each thread block of a text dump.
    static func threadFrames(_ dump: String) -> [[String]] {
        dump.components(separatedBy: "\n\n").filter { $0.contains(" thread ") }.map { block in
            block.split(separator: "\n").filter { $0.contains(" - ") }.map { String($0.split(separator: " - ").last ?? "") }
        }
    }

    @Test("dump --pid: a thread spinning in wasm under two activations and one blocked in a host call — the frames each prints of itself, libunwind agrees, gdb names the same, and the process runs on",
          arguments: [ExitRecording.trampoline, .inline])
    func dumpMatchesSelfReport(mode: ExitRecording) throws {
        let child = try LiveChild([mode.rawValue])
        let dump = try runCLI(["dump", "--pid", String(child.pid), "--verify"])
        #expect(dump.status == 0, "\(dump.stderr)")
        let threads = Self.threadFrames(dump.stdout)
        #expect(threads.count == 2, "\(dump.stdout)")
        // Threads sorted by id: the main thread (spinning) first.
        #expect(threads.first == child.selfReport() && threads.first == ["live!spin", "live!inner", "live!middle", "live!main"],
                "\(dump.stdout)\n\(child.stderr)")
        #expect(threads.last == child.recorded("waiting") && threads.last == ["live!wait"], "\(dump.stdout)")
        // libunwind twice per thread: offline over the bytes read, and
        // libunwind-ptrace over the live thread while it was stopped,
        // through the host frames between the activations.
        #expect(dump.stdout.components(separatedBy: "verify: libunwind agrees").count == 3, "\(dump.stdout)")
        #expect(dump.stdout.contains("agrees on all 4 wasm frames in 2 activations\n")
                && dump.stdout.components(separatedBy: "verify (live): libunwind-ptrace, unwinding the stopped thread through").count == 3,
                "\(dump.stdout)")
        // Which thread was read which way (without --verify, the one in a
        // host call is not stopped).
        let plain = try runCLI(["dump", "--pid", String(child.pid)])
        #expect(Self.threadFrames(plain.stdout) == threads, "\(plain.stdout)")
        #expect(plain.stdout.contains("interrupted in wasm") && plain.stdout.contains(", stopped for "), "\(plain.stdout)")
        #expect(plain.stdout.contains("in a host call, read from its exit record without stopping it"), "\(plain.stdout)")
        // gdb, attached to the same process, names the same wasm frames.
        if ToolPaths.gdb != nil {
            let gdb = try #require(try runTool("gdb", ["-nx", "-batch", "-p", String(child.pid), "-ex", "thread apply all bt"]))
            let named = Set(gdbFrames(gdb.stdout).filter { $0.hasPrefix("live!") && !$0.contains("trampoline") })
            #expect(named == ["live!spin", "live!inner", "live!middle", "live!main", "live!wait"], "\(gdb.stdout)")
        }
        // The process runs on, unharmed: not stopped, nobody attached, and
        // it still answers.
        #expect(child.process.isRunning && child.status.tracer == "0" && !child.status.state.hasPrefix("t"), "\(child.status)")
        #expect(child.selfReport() == ["live!spin", "live!inner", "live!middle", "live!main"])
        let json = try runCLI(["dump", "--pid", String(child.pid), "--format", "json"])
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let notes = (object?["files"] as? [[String: Any]])?.compactMap { $0["note"] as? String } ?? []
        #expect(notes.count == 2 && notes.contains { $0.contains("stopped for") }, "\(json.stdout)")
    }

    @Test("1,000 reads while another thread compiles and drops modules without pause: never a torn list or a failed read, the retries counted, and the process still runs with nothing stopped")
    func readsDuringChurn() throws {
        let child = try LiveChild(["trampoline", "churn"])
        let process = try LiveProcess(pid: child.pid)
        var retries = 0, stopped = 0, unstopped = 0, withRetries = 0
        var slowest: UInt64 = 0
        for _ in 0..<1000 {
            let read = try process.read()
            retries += read.retries
            if read.retries > 0 { withRetries += 1 }
            let frames = try read.threads.map { thread in
                try CapturedStack(thread.capture).symbolicated().frames.map { $0.symbol?.printedName ?? "?" }
            }
            #expect(frames == [["live!spin", "live!inner", "live!middle", "live!main"], ["live!wait"]], "\(frames)")
            for how in read.reads.values {
                switch how {
                case .stopped(let nanoseconds):
                    stopped += 1
                    slowest = max(slowest, nanoseconds)
                case .hostCall: unstopped += 1
                }
            }
        }
        print("live reads: 1000 reads, \(retries) retries (\(withRetries) reads retried), \(stopped) threads stopped (longest \(slowest / 1000) µs), \(unstopped) read unstopped")
        #expect(unstopped == 1000)
        #expect(child.process.isRunning && child.status.tracer == "0" && !child.status.state.hasPrefix("t"), "\(child.status)")
        #expect(child.selfReport() == ["live!spin", "live!inner", "live!middle", "live!main"])
        // And the command line, a few times, as an operator would.
        for _ in 0..<5 {
            let dump = try runCLI(["dump", "--pid", String(child.pid)])
            #expect(dump.status == 0 && Self.threadFrames(dump.stdout).count == 2, "\(dump.stdout)\(dump.stderr)")
        }
    }

    @Test("errors: no such process, not an embedder, another user's process, a descriptor of another version, a process that exits while it is read — each a clear message and exit 1")
    func errors() throws {
        let none = try runCLI(["dump", "--pid", "999999999"])
        #expect(none.status == 1 && none.stderr.contains("process 999999999: no such process"), "\(none.stderr)")

        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["60"]
        try sleeper.run()
        defer { sleeper.terminate() }
        let plain = try runCLI(["dump", "--pid", String(sleeper.processIdentifier)])
        #expect(plain.status == 1 && plain.stderr.contains("is not a program that embeds the WasmUnwind runtime"), "\(plain.stderr)")

        let child = try LiveChild(["trampoline"])
        if geteuid() == 0 {
            // As another user: the kernel refuses, and the message says why.
            let other = try runChild("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", PackagePaths.cli,
                                                          "dump", "--pid", String(child.pid)])
            #expect(other.status == 1 && other.stderr.contains("it belongs to uid 0 and this is uid 65534: run as uid 0, or as root"),
                    "\(other.stderr)")
        }
        let foreign = try LiveChild(["trampoline", "foreign-version"])
        let version = try runCLI(["dump", "--pid", String(foreign.pid)])
        #expect(version.status == 1 && version.stderr.contains("post-mortem descriptor version 2, this reader knows 1"), "\(version.stderr)")

        // Reads racing the process's death: each a dump or an error that
        // says it exited — never a crash or a hang.
        let dying = try LiveChild(["trampoline", "churn"])
        let reader = try LiveProcess(pid: dying.pid)
        var outcomes: [String: Int] = [:]
        let victim = dying.pid
        let killer = Thread { usleep(50_000); kill(victim, SIGKILL) }
        killer.start()
        for _ in 0..<5000 {
            do {
                _ = try reader.read()
                outcomes["read", default: 0] += 1
            } catch {
                #expect(error.problem.contains("exited") || error.problem.contains("no such process") || error.problem.contains("not in process"),
                        "\(error)")
                outcomes["exited", default: 0] += 1
                break
            }
        }
        #expect(outcomes["exited"] == 1, "\(outcomes)")
        let after = try runCLI(["dump", "--pid", String(dying.pid)])
        #expect(after.status == 1, "\(after.stderr)")
        #expect(child.process.isRunning && child.status.tracer == "0")
    }

    @Test("coredump --pid: a standard wasm coredump of the running process — both threads, their instances, the spinning loop's counter as it was; wasm-tools validates it")
    func coredumpOfLiveProcess() throws {
        let child = try LiveChild(["trampoline"])
        let directory = try temporaryDirectory("live-coredump")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("live.core").path
        let run = try runCLI(["coredump", "--pid", String(child.pid), "-o", path])
        #expect(run.status == 0 && run.stdout.contains("2 threads, 5 frames"), "\(run.stdout)\(run.stderr)")
        let coredump = try WasmCoredump(parsing: [UInt8](Data(contentsOf: URL(fileURLWithPath: path))))
        // Imports are functions 0-2: wait 3, main 4, middle 5, inner 6, spin 7.
        #expect(coredump.threads.map { $0.frames.map(\.function) } == [[7, 6, 5, 4], [3]], "\(coredump.threads)")
        // Each thread runs its own store: two instances of the one module.
        #expect(Set(coredump.threads.map { $0.frames[0].instance }).count == 2 && coredump.modules.count == 1)
        // spin's one local, its loop counter, read from the stopped thread's frame.
        guard case .i32? = coredump.threads[0].frames[0].locals.first else {
            Issue.record("spin's counter is \(coredump.threads[0].frames[0].locals)")
            return
        }
        let validate = try runChild(PackagePaths.root.appendingPathComponent(".venv/bin/wasm-tools").path, ["validate", path])
        #expect(validate.status == 0, "\(validate.stderr)")
        #expect(child.process.isRunning && child.status.tracer == "0")
    }

    /// three_parts' share of three_parts + one_part in folded stacks.
    static func ratioShare(_ folded: String) -> Double {
        var three = 0, one = 0
        for line in folded.split(separator: "\n") {
            let count = Int(line.split(separator: " ").last ?? "") ?? 0
            if line.contains("ratio!three_parts") { three += count }
            if line.contains("ratio!one_part") { one += count }
        }
        return three + one == 0 ? 0 : Double(three) / Double(three + one)
    }

    @Test("profile --pid: the 3:1 workload's shares within 5% of the in-process profiler's on the same workload; SVG and Firefox outputs; the process runs on")
    func profileShares() throws {
        let inProcess = try runCLI(["profile", "fixtures/programs/ratio.wat", "--invoke", "main", "1000", "--hz", "10000"])
        #expect(inProcess.status == 0, "\(inProcess.stderr)")
        let expected = Self.ratioShare(inProcess.stdout)
        let target = Process()
        target.executableURL = URL(fileURLWithPath: PackagePaths.cli)
        target.arguments = ["run", PackagePaths.fixture("programs/ratio.wat"), "--invoke", "main", "1000000"]
        target.standardOutput = FileHandle.nullDevice
        target.standardError = FileHandle.nullDevice
        try target.run()
        defer { target.terminate(); target.waitUntilExit() }
        usleep(300_000)
        let live = try runCLI(["profile", "--pid", String(target.processIdentifier), "--duration", "3", "--hz", "1000"])
        #expect(live.status == 0, "\(live.stderr)")
        let share = Self.ratioShare(live.stdout)
        print("profile --pid: three_parts' share \(share) (in-process \(expected), truth 0.75); \(live.stderr)")
        #expect(abs(share - expected) <= expected * 0.05 && abs(share - 0.75) <= 0.75 * 0.05, "live \(share), in-process \(expected)")
        #expect(live.stderr.contains("threads stopped") && live.stdout.split(separator: "\n").count >= 2)
        let directory = try temporaryDirectory("live-profile")
        defer { try? FileManager.default.removeItem(at: directory) }
        for format in ["svg", "firefox"] {
            let path = directory.appendingPathComponent("p.\(format)").path
            let run = try runCLI(["profile", "--pid", String(target.processIdentifier), "--duration", "0.5", "--hz", "200",
                                  "--format", format, "-o", path])
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            #expect(run.status == 0 && text.contains("three_parts"), "\(format): \(run.stderr)")
        }
        #expect(target.isRunning)
    }
}
