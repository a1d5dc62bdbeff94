import CWasmUnwindABI
import Foundation
import Synchronization
import StackCapture
import Testing
import WasmJIT
import WasmJITTools
import WasmUnwind
import CWasmTools

/// The post-mortem descriptor as a reader of this process's memory (or of a
/// core file of it) finds it.
@Suite("The post-mortem descriptor", .serialized)
struct PostMortemTests {
    /// The descriptor as it is now.
    static var descriptor: wu_debug_descriptor { wu_debug_descriptor_address().pointee }
    var descriptor: wu_debug_descriptor { Self.descriptor }

    /// The entries of a descriptor list, newest first.
    static func list<Entry>(_ head: UnsafeMutablePointer<Entry>?, next: (Entry) -> UnsafeMutablePointer<Entry>?) -> [Entry] {
        var result: [Entry] = []
        var entry = head
        while let current = entry {
            result.append(current.pointee)
            entry = next(current.pointee)
        }
        return result
    }

    /// The module list, read as an in-process reader (`wu_debug_reader_begin`):
    /// modules other tests' threads drop meanwhile stay allocated.
    static func modules() -> [wu_debug_module] {
        wu_debug_reader_begin()
        defer { wu_debug_reader_end() }
        return list(wu_debug_descriptor_address().pointee.modules) { $0.next }
    }
    static func threads() -> [wu_debug_thread] { list(descriptor.threads) { $0.next } }

    @Test("the header: magic, version, size; an even generation")
    func header() {
        #expect(descriptor.magic == WU_DEBUG_DESCRIPTOR_MAGIC)
        #expect(descriptor.version == UInt32(WU_DEBUG_DESCRIPTOR_VERSION))
        #expect(descriptor.size == UInt32(MemoryLayout<wu_debug_descriptor>.size))
        #expect(descriptor.generation % 2 == 0)
        #expect(MemoryLayout<wu_debug_descriptor>.size == 56 && MemoryLayout<wu_debug_module>.size == 48
                && MemoryLayout<wu_debug_thread>.size == 32, "docs/post-mortem.md gives these sizes")
    }

    @Test("a module is listed while it lives, with an image that parses as a capture of it; the generation moves by 2 per change and is even between")
    func moduleListed() throws {
        let engine = Engine(publishing: ToolPublishing(postMortem: true))
        let before = (count: descriptor.module_count, generation: descriptor.generation)
        var module: Module? = try Module(engine: engine, text: try String(contentsOfFile: PackagePaths.fixture("programs/nested.wat"), encoding: .utf8))
        #expect(descriptor.module_count == before.count + 1)
        // Other tests' threads may be listed meanwhile: at least one change.
        #expect(descriptor.generation >= before.generation + 2 && descriptor.generation % 2 == 0)
        let base = UInt64(module!.code.baseAddress)
        let entry = try #require(Self.modules().first { $0.code_start == base })
        #expect(entry.code_end == base + UInt64(module!.code.size))
        let image = [UInt8](UnsafeBufferPointer(start: entry.image, count: Int(entry.image_size)))
        let capture = try CaptureFile(parsing: image)
        let listed = try #require(capture.modules.first)
        #expect(listed.name == "nested" && listed.codeBase == module!.code.baseAddress)
        #expect(listed.functions.map(\.name) == module!.codeModule.functions.map(\.name))
        module = nil
        #expect(descriptor.module_count == before.count)
        #expect(descriptor.generation >= before.generation + 4 && descriptor.generation % 2 == 0)
        #expect(!Self.modules().contains { $0.code_start == base })
        // Off by default.
        _ = try Module(engine: Engine(), text: "(module (func))")
        #expect(descriptor.module_count == before.count)
    }

    @Test("a thread is listed once it enters wasm, with where its activation chain starts; gone when it exits")
    func threadListed() throws {
        let engine = Engine()
        let store = Store(engine: engine)
        nonisolated(unsafe) var seen: (tid: Int64, head: UInt, current: UInt)?
        var imports = Imports()
        imports.define(module: "host", name: "look", .host(HostFunction.slots(signature: Signature(parameters: [], results: [])) { _, _ in
            let tid = Int64(wu_gettid())
            let entry = Self.threads().first { $0.tid == tid }
            seen = (tid, UInt(bitPattern: entry?.activation_head?.pointee), UInt(bitPattern: wu_current_activation()))
        }))
        let module = try Module(engine: engine, text: #"(module (import "host" "look" (func $look)) (func (export "f") (call $look)))"#)
        let instance = try Instance(store: store, module: module, imports: imports)
        nonisolated(unsafe) let function = try #require(instance.export("f"))
        let tid = try runOnThread(stackSize: 1 << 20) { () -> Int64 in
            _ = try function.call([])
            return Int64(wu_gettid())
        }
        // The thread ends after handing back its result.
        for _ in 0..<200 where Self.threads().contains(where: { $0.tid == tid }) { usleep(5_000) }
        let observed = try #require(seen)
        #expect(observed.tid == tid)
        #expect(observed.head != 0 && observed.head == observed.current, "the listed head is the thread's newest activation")
        #expect(!Self.threads().contains { $0.tid == tid }, "the exited thread is still listed")
    }

    @Test("an entry unlinked while an in-process reader reads is left allocated; freed otherwise")
    func readerKeepsEntries() throws {
        let image: [UInt8] = [1, 2, 3]
        let kept = wu_debug_entries_kept_for_readers()
        let first = try #require(image.withUnsafeBufferPointer { wu_debug_register_module(1, 2, $0.baseAddress, 3) })
        wu_debug_reader_begin()
        wu_debug_unregister_module(first)
        wu_debug_reader_end()
        #expect(wu_debug_entries_kept_for_readers() == kept + 1)
        let second = try #require(image.withUnsafeBufferPointer { wu_debug_register_module(1, 2, $0.baseAddress, 3) })
        wu_debug_unregister_module(second)
        #expect(wu_debug_entries_kept_for_readers() == kept + 1)
    }

    @Test("the descriptor is in the executable's symbol table, where a reader of a core file looks it up")
    func symbol() throws {
        let result = try #require(try runTool("readelf", ["-W", "-s", PackagePaths.cli]), "readelf is not installed")
        let line = result.stdout.split(separator: "\n").first { $0.hasSuffix(" wasm_unwind_debug_descriptor") }
        #expect(line?.contains("OBJECT") == true && line?.contains("GLOBAL") == true, "\(line ?? "no symbol")")
    }
}

@Suite("wasm-unwind dump CORE: wasm backtraces from core files", .serialized)
struct CoreDumpTests {
    @Test("a kernel core of a crash in host code under two activations: the crashing thread's wasm frames, its signal",
          .enabled(if: CoreFiles.refusal == nil, CoreFiles.refusal.map { Comment(rawValue: $0) } ?? ""))
    func kernelCore() throws {
        let directory = try temporaryDirectory("postmortem")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = try crashCore(in: directory, [PackagePaths.cli, "run", PackagePaths.fixture("crash/nested-crash.wat"), "--invoke", "main"])
        let dump = try runCLI(["dump", path, "--exe", PackagePaths.cli])
        #expect(dump.status == 0, "\(dump.stderr)")
        let lines = dump.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.contains("2 activations") == true && lines.first?.contains("signal 11") == true, "\(dump.stdout)")
        let frames = lines.dropFirst().filter { $0.contains(" - ") }.map { $0.split(separator: " - ").last.map(String.init) ?? "" }
        #expect(frames == ["nested_crash!leaf", "nested_crash!inner", "nested_crash!middle", "nested_crash!main"], "\(dump.stdout)")
        #expect(dump.stdout.contains("-- host frames; activation 1 --"))
        // --verify: libunwind's remote unwind over the core's stack and our
        // CFI, from the newest wasm frame, as for a capture at a host call.
        let verified = try runCLI(["dump", path, "--verify"])
        #expect(verified.status == 0 && verified.stdout.contains("verify: libunwind agrees on all 4 wasm frames in 2 activations"),
                "\(verified.stdout) \(verified.stderr)")
        // JSON and --roots work as for captures.
        let json = try runCLI(["dump", path, "--format", "json", "--roots"])
        #expect(json.status == 0)
        #expect((try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])?["files"] != nil)
        // A truncated core, a core of another machine, an executable without
        // the descriptor, an ELF file that is no core: errors that say so.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let truncated = directory.appendingPathComponent("truncated.core").path
        #expect(FileManager.default.createFile(atPath: truncated, contents: bytes.prefix(1000)))
        let cut = try runCLI(["dump", truncated])
        #expect(cut.status == 1 && cut.stderr.contains("past the end of the file"), "\(cut.stderr)")
        let wrongExe = try runCLI(["dump", path, "--exe", "/bin/true"])
        #expect(wrongExe.status == 1 && wrongExe.stderr.contains("no symbol wasm_unwind_debug_descriptor")
                || wrongExe.stderr.contains("does not say where /bin/true was mapped"), "\(wrongExe.stderr)")
        var foreign = [UInt8](bytes)
        foreign[18] = 183  // e_machine: EM_AARCH64
        let foreignPath = directory.appendingPathComponent("aarch64.core").path
        #expect(FileManager.default.createFile(atPath: foreignPath, contents: Data(foreign)))
        let other = try runCLI(["dump", foreignPath])
        #expect(other.status == 1 && other.stderr.contains("a core of machine 183, not x86_64"), "\(other.stderr)")
        let notCore = try runCLI(["dump", PackagePaths.cli])
        #expect(notCore.status == 1 && notCore.stderr.contains("not a core file"), "\(notCore.stderr)")
    }

    @Test("a gcore of a process stopped in a host function under two activations",
          .enabled(if: ToolPaths.gdb != nil, "gdb is not installed (make test installs it)"))
    func gcoreDump() throws {
        let directory = try temporaryDirectory("postmortem-gcore")
        defer { try? FileManager.default.removeItem(at: directory) }
        let core = directory.appendingPathComponent("stopped.core").path
        _ = try #require(try runTool("gdb", [
            "-nx", "-batch", "-ex", "break HostModule.swift:\(try hostPrintLine())", "-ex", "run", "-ex", "gcore \(core)", "-ex", "kill",
            "--args", PackagePaths.cli, "run", PackagePaths.fixture("programs/nested.wat"), "--invoke", "outer", "7",
        ]))
        let dump = try runCLI(["dump", core])
        #expect(dump.status == 0, "\(dump.stderr)")
        let frames = dump.stdout.split(separator: "\n").filter { $0.contains(" - ") }.map { $0.split(separator: " - ").last.map(String.init) ?? "" }
        #expect(frames == ["nested!leaf", "nested!inner", "nested!middle", "nested!outer"], "\(dump.stdout)")
    }

    @Test("a core with two threads in wasm: the crashing one first, then the one waiting at a host call",
          .enabled(if: CoreFiles.refusal == nil, CoreFiles.refusal.map { Comment(rawValue: $0) } ?? ""))
    func twoThreads() throws {
        let directory = try temporaryDirectory("postmortem-threads")
        defer { try? FileManager.default.removeItem(at: directory) }
        let probe = PackagePaths.executable("trap-probe")
        let crash = try runChild("/bin/sh", ["-c", "ulimit -c unlimited; exec \"$0\" two-threads", probe], directory: directory)
        #expect(crash.signal == SIGSEGV)
        // What each thread recorded of itself before the crash.
        func recorded(_ label: String) -> [String] {
            crash.stderr.split(separator: "\n").first { $0.hasPrefix("recorded \(label): ") }
                .map { $0.dropFirst("recorded \(label): ".count).split(separator: " ").map(String.init) } ?? []
        }
        #expect(recorded("crashing") == ["probe!call_host", "probe!call_host"], "\(crash.stderr.prefix(500))")
        #expect(recorded("waiting") == ["probe!call_host"])
        let core = try #require(try FileManager.default.contentsOfDirectory(atPath: directory.path).first { $0.hasPrefix("core") })
        let corePath = directory.appendingPathComponent(core).path
        let dump = try runCLI(["dump", corePath, "--exe", probe, "--verify"])
        #expect(dump.status == 0, "\(dump.stderr)")
        // One block per thread, the crashing one first.
        let blocks = dump.stdout.components(separatedBy: "\n\n").filter { $0.contains(" thread ") }
        #expect(blocks.count == 2, "\(dump.stdout)")
        func frames(_ block: String) -> [String] {
            block.split(separator: "\n").filter { $0.contains(" - ") }.map { $0.split(separator: " - ").last.map(String.init) ?? "" }
        }
        #expect(blocks.first?.contains("signal 11") == true, "the crashing thread is not first: \(dump.stdout)")
        #expect(blocks.first.map(frames) == recorded("crashing"), "\(dump.stdout)")
        #expect(blocks.last.map(frames) == recorded("waiting"), "\(dump.stdout)")
        #expect(dump.stdout.components(separatedBy: "verify: libunwind agrees").count == 3, "\(dump.stdout)")
        // gdb on the same core, through the JIT interface: the same wasm frames.
        if ToolPaths.gdb != nil {
            let gdb = try #require(try runTool("gdb", ["-nx", "-batch", "-ex", "thread apply all bt", probe, corePath]))
            let named = gdbFrames(gdb.stdout).filter { $0.hasPrefix("probe!") && !$0.contains("trampoline") }
            #expect(named.filter { $0 == "probe!call_host" }.count == 3, "\(named)")
        }
    }

    @Test("WASM_UNWIND_CRASH_CAPTURE: the signal handler writes a capture at the crash, the process still dies of its signal, and the capture and the core show the same frames",
          .enabled(if: CoreFiles.refusal == nil, CoreFiles.refusal.map { Comment(rawValue: $0) } ?? ""))
    func crashCapture() throws {
        let directory = try temporaryDirectory("crash-capture")
        defer { try? FileManager.default.removeItem(at: directory) }
        let capture = directory.appendingPathComponent("crash.capture").path
        let crash = try runChild("/bin/sh", ["-c", "ulimit -c unlimited; WASM_UNWIND_CRASH_CAPTURE=\"$1\" exec \"$0\" run \"$2\" --invoke outer 0",
                                             PackagePaths.cli, capture, PackagePaths.fixture("programs/crash.wat")], directory: directory)
        #expect(crash.signal == SIGSEGV, "status \(crash.status), signal \(String(describing: crash.signal))")
        #expect(crash.stderr.contains("Program crashed"), "no Swift crash report: \(crash.stderr.suffix(300))")
        let fromCapture = try runCLI(["dump", capture, "--verify"])
        #expect(fromCapture.status == 0, "\(fromCapture.stderr)")
        #expect(fromCapture.stdout.contains("written by the signal handler at a crash outside wasm"))
        #expect(fromCapture.stdout.contains("verify: libunwind agrees on all 4 wasm frames in 2 activations"), "\(fromCapture.stdout)")
        let core = try #require(try FileManager.default.contentsOfDirectory(atPath: directory.path).first { $0.hasPrefix("core") })
        let fromCore = try runCLI(["dump", directory.appendingPathComponent(core).path])
        func frames(_ text: String) -> [String] { text.split(separator: "\n").filter { $0.contains(" - ") }.map(String.init) }
        #expect(frames(fromCapture.stdout) == frames(fromCore.stdout) && frames(fromCore.stdout).count == 4,
                "capture: \(fromCapture.stdout)\ncore: \(fromCore.stdout)")
        // A run that does not crash leaves no file behind, and leaves an
        // earlier capture where it is.
        let quiet = directory.appendingPathComponent("quiet.capture").path
        let fine = try runChild(PackagePaths.cli, ["run", PackagePaths.fixture("programs/factorial.wat"), "--invoke", "fac", "3"],
                                environment: ["WASM_UNWIND_CRASH_CAPTURE": quiet])
        #expect(fine.status == 0 && !FileManager.default.fileExists(atPath: quiet))
        let before = try Data(contentsOf: URL(fileURLWithPath: capture))
        let again = try runChild(PackagePaths.cli, ["run", PackagePaths.fixture("programs/factorial.wat"), "--invoke", "fac", "3"],
                                 environment: ["WASM_UNWIND_CRASH_CAPTURE": capture])
        let after = try Data(contentsOf: URL(fileURLWithPath: capture))
        #expect(again.status == 0 && after == before, "a run without a crash changed the earlier capture")
        let left = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(left.allSatisfy { !$0.contains(".partial-") }, "\(left)")
    }

    @Test("two threads crashing at once: one writes the capture, whole; the other waits for it before the process dies",
          arguments: 1...3)
    func twoCrashes(round: Int) throws {
        let directory = try temporaryDirectory("two-crashes")
        defer { try? FileManager.default.removeItem(at: directory) }
        let capture = directory.appendingPathComponent("crash.capture").path
        // Without the Swift runtime's backtracer: with two threads crashing
        // at once it once outlived the child, holding its output pipes, and
        // this test waited 16 minutes (CI). Only the signal matters here.
        let crash = try runChild(PackagePaths.executable("trap-probe"), ["two-crashes", capture], environment: noSwiftBacktracer,
                                 directory: directory)
        if crash.signal != SIGSEGV { print("two-crashes: status \(crash.status) stdout \(crash.stdout) stderr \(crash.stderr.prefix(3000))") }
        #expect(crash.signal == SIGSEGV)
        let file = try CaptureFile(parsing: [UInt8](Data(contentsOf: URL(fileURLWithPath: capture))))
        #expect(file.activations.count == 1 && file.modules.count == 1)
        let left = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(left.allSatisfy { !$0.contains(".partial-") }, "\(left)")
    }

    /// The crash writer's read of the module list while another thread
    /// compiles and drops modules without pause. A single read saw the
    /// generation odd or moved often enough that a CI run's crash capture
    /// held no modules at all (`crashWhileUnloading`, round 1): each read
    /// here must find the module kept alive, however many retries it took.
    @Test("the crash writer's read of the module list succeeds while another thread changes it without pause")
    func moduleListReadDuringChurn() throws {
        let engine = Engine(publishing: ToolPublishing(postMortem: true))
        let kept = try Module(engine: engine, text: "(module (func (export \"kept\")))")
        final class Flag: Sendable { let running = Atomic<Bool>(true) }
        let flag = Flag()
        let finished = DispatchSemaphore(value: 0)
        let churn = Thread {
            while flag.running.load(ordering: .relaxed) {
                _ = try? Module(engine: engine, text: "(module (func (export \"f\") (result i32) i32.const 1))")
            }
            finished.signal()
        }
        churn.start()
        // The churn ends before the test does: a module it drops later
        // would be unlinked (and freed) under the next test's walk of the
        // descriptor's list, which takes no reader's protection.
        defer {
            flag.running.store(false, ordering: .relaxed)
            finished.wait()
        }
        usleep(50_000)
        var retried = 0, mostAttempts = 0, empty = 0
        for _ in 0..<20_000 {
            var attempts: Int32 = 0
            let count = wu_crash_capture_read_module_list(&attempts)
            if count < 1 { empty += 1 }
            if attempts > 1 { retried += 1 }
            mostAttempts = max(mostAttempts, Int(attempts))
        }
        print("module list reads during churn: 20000, \(retried) retried, at most \(mostAttempts) attempts")
        #expect(empty == 0, "\(empty) of 20000 reads found no modules")
        withExtendedLifetime(kept) {}
    }

    @Test("a crash while another thread compiles and drops listed modules: the capture reads whole", arguments: 1...3)
    func crashWhileUnloading(round: Int) throws {
        let directory = try temporaryDirectory("crash-unloading")
        defer { try? FileManager.default.removeItem(at: directory) }
        let capture = directory.appendingPathComponent("crash.capture").path
        let crash = try runChild(PackagePaths.executable("trap-probe"), ["crash-while-unloading", capture],
                                 environment: noSwiftBacktracer, directory: directory)
        #expect(crash.signal == SIGSEGV, "status \(crash.status), signal \(String(describing: crash.signal))")
        let dump = try runCLI(["dump", capture])
        #expect(dump.status == 0 && dump.stdout.contains("probe!call_host"), "\(dump.stdout) \(dump.stderr)")
    }
}
