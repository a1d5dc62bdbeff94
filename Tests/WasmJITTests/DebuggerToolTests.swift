import Foundation
import Testing
import WasmJIT
import WasmJITTools
import WasmUnwind
@testable import JITTools
import CWasmRuntime

/// Runs a tool from PATH; nil when it is not installed.
func runTool(_ name: String, _ arguments: [String], directory: URL? = nil, environment: [String: String] = [:])
    throws -> (status: Int32, signal: Int32?, stdout: String, stderr: String)?
{
    guard let path = ToolPaths.find(name) else { return nil }
    return try runChild(path, arguments, environment: environment, directory: directory)
}

enum ToolPaths {
    static func find(_ name: String) -> String? {
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    static let gdb = find("gdb")

    /// Whether `perf record -e cpu-clock` works here, or why not.
    static let perfRefusal: String? = {
        guard find("perf") != nil else { return "perf is not installed (make test installs linux-perf)" }
        guard let result = try? runTool("perf", ["record", "-q", "-e", "cpu-clock", "-o", "/dev/null", "--", "true"]),
              result.status == 0 else {
            return "this kernel refuses perf events: perf_event_paranoid is "
                + readProcFile("/proc/sys/kernel/perf_event_paranoid").trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return nil
    }()
}

/// The function names of gdb's `bt` output, newest first: `#3  0x... in
/// name (args) at file:line`, or `#0  name (...)` for the innermost.
func gdbFrames(_ output: String) -> [String] {
    output.split(separator: "\n").compactMap { line -> String? in
        guard line.hasPrefix("#"), let space = line.firstIndex(of: " ") else { return nil }
        var rest = line[space...].drop { $0 == " " }
        if rest.hasPrefix("0x"), let range = rest.range(of: " in ") { rest = rest[range.upperBound...] }
        // The name ends at " (" — but names such as "m!<entry trampoline
        // (i32) -> ()>" contain it: end at the first " (" after any '<'...'>'.
        var depth = 0, end = rest.endIndex
        var index = rest.startIndex
        while index < rest.endIndex {
            let character = rest[index]
            if character == "<" { depth += 1 }
            if character == ">", index > rest.startIndex, rest[rest.index(before: index)] != "-" { depth -= 1 }
            if depth == 0, character == " ", rest[index...].hasPrefix(" (") { end = index; break }
            index = rest.index(after: index)
        }
        return String(rest[..<end])
    }
}

/// The source line of the host function docs/debugging.md breaks in.
func hostPrintLine() throws -> Int {
    let source = try String(contentsOfFile: PackagePaths.root.appendingPathComponent("Sources/wasm-unwind/HostModule.swift").path,
                            encoding: .utf8)
    let lines = source.split(separator: "\n", omittingEmptySubsequences: false)
    return try #require(lines.firstIndex { $0.contains("debugging.md: host print") }) + 1
}

/// The wasm frames (and trampolines) of the two-activation fixtures, in
/// order, between host frames: what gdb must show, by name.
func expectTwoActivations(_ frames: [String], module: String, host: String) {
    #expect(!frames.contains { $0 == "??" || $0.hasPrefix("?? ") }, "a frame gdb could not name: \(frames)")
    let expected = [
        "\(module)!<exit trampoline for host::\(host)>", "\(module)!leaf", "\(module)!inner",
        "\(module)!<entry trampoline (i32) -> ()>", "wu_enter",
        "\(module)!<exit trampoline for host::call:inner>", "\(module)!middle", "\(module)!outer",
        "\(module)!<entry trampoline (i32) -> ()>", "wu_enter",
    ]
    // In order (host frames between them), exit trampolines only when
    // the call went through one.
    var position = frames.startIndex
    for name in expected {
        guard let found = frames[position...].firstIndex(of: name) else {
            if name.contains("exit trampoline") { continue }
            Issue.record("gdb's backtrace lacks \(name) after frame \(position): \(frames)")
            return
        }
        position = found + 1
    }
    #expect(frames.last == "main" || frames.last == "wasm_unwind_main", "the backtrace ends at \(frames.last ?? "nothing")")
}

@Suite("gdb sees wasm frames through the GDB JIT interface", .serialized)
struct GDBTests {
    /// Division by zero traps through the runtime, not a signal: without
    /// the `int3` that `--debug-info` compiles in under a tracer, gdb never
    /// stopped (`bt` said "No stack").
    @Test("a trap under gdb with --debug-info stops at the trapping wasm instruction: bt and info registers there, continue prints the trap",
          .enabled(if: ToolPaths.gdb != nil, "gdb is not installed (make test installs it)"),
          arguments: exitRecordingModes)
    func stopsAtTrap(mode: ExitRecording) throws {
        let result = try #require(try runTool("gdb", [
            "-nx", "-batch", "-ex", "run", "-ex", "bt", "-ex", "echo @@registers\n", "-ex", "info registers rip",
            "-ex", "echo @@continue\n", "-ex", "continue",
            "--args", PackagePaths.cli, "run", PackagePaths.fixture("programs/average.wat"), "--invoke", "report", "7",
            "--debug-info", "--exit-recording", mode.rawValue,
        ]))
        let output = result.stdout
        #expect(output.contains("received signal SIGTRAP"), "\(output)")
        let backtrace = output.components(separatedBy: "@@registers")[0]
        let frames = gdbFrames(backtrace)
        #expect(Array(frames.prefix(2)) == ["average!average", "average!report"], "\(frames)")
        #expect(backtrace.contains("in average!average () at average.wasm:86"), "\(backtrace)")
        let registers = output.components(separatedBy: "@@registers").last?.components(separatedBy: "@@continue").first ?? ""
        #expect(registers.contains("<average!average+"), "\(registers)")
        let after = output.components(separatedBy: "@@continue").last ?? ""
        #expect(after.contains("wasm trap: integer divide by zero") || result.stderr.contains("wasm trap: integer divide by zero"),
                "\(after)\(result.stderr)")
    }

    @Test("bt at a breakpoint in a host function under two activations names every frame; finish leaves a wasm frame",
          .enabled(if: ToolPaths.gdb != nil, "gdb is not installed (make test installs it)"),
          arguments: exitRecordingModes)
    func breakpoint(mode: ExitRecording) throws {
        let line = try hostPrintLine()
        let result = try #require(try runTool("gdb", [
            "-nx", "-batch", "-ex", "break HostModule.swift:\(line)", "-ex", "run", "-ex", "bt",
            "-ex", "echo @@frame\\n", "-ex", "frame function nested!leaf", "-ex", "echo @@finish\\n", "-ex", "finish",
            "--args", PackagePaths.cli, "run", PackagePaths.fixture("programs/nested.wat"), "--invoke", "outer", "7",
            "--debug-info", "--exit-recording", mode.rawValue,
        ]))
        let output = result.stdout
        let backtrace = output.components(separatedBy: "@@frame")[0]
        let frames = gdbFrames(backtrace)
        expectTwoActivations(frames, module: "nested", host: "print_i32")
        // Wasm frames have lines: their wasm offsets.
        #expect(output.contains("nested!leaf () at nested.wasm:"), "\(output)")
        // `finish` returns from leaf into inner.
        let afterFinish = output.components(separatedBy: "@@finish").dropFirst().first ?? ""
        #expect(afterFinish.contains("\nnested!inner () at nested.wasm:") || afterFinish.contains("in nested!inner () at nested.wasm:"),
                "finish did not stop in nested!inner: \(afterFinish)")
    }

    @Test("a module without DWARF: gdb's stop and list show each line's wasm offset in hex with its function (the listing the image names), as every other output prints offsets",
          .enabled(if: ToolPaths.gdb != nil, "gdb is not installed (make test installs it)"))
    func hexOffsets() throws {
        let result = try #require(try runTool("gdb", [
            "-nx", "-batch", "-ex", "set breakpoint pending on", "-ex", "break nested!leaf", "-ex", "run", "-ex", "echo @@list\n",
            "-ex", "list",
            "--args", PackagePaths.cli, "run", PackagePaths.fixture("programs/nested.wat"), "--invoke", "outer", "7", "--debug-info",
        ]))
        // wasm-objdump -d: leaf's first instruction is at 0x6c (108).
        #expect(result.stdout.contains("nested!leaf () at nested.wasm:108\n108\t0x6c  nested!leaf"), "\(result.stdout)")
        let listed = result.stdout.components(separatedBy: "@@list").dropFirst().first ?? ""
        #expect(listed.contains("103\t0x67  nested!inner") && listed.contains("110\t0x6e  nested!leaf"), "\(listed)")
    }

    @Test("a module built with -g: break FILE:LINE stops in wasm, bt shows C++ files and lines through every wasm frame, list shows the source, up shows the caller's line",
          .enabled(if: ToolPaths.gdb != nil, "gdb is not installed (make test installs it)"),
          arguments: exitRecordingModes)
    func sourceLines(mode: ExitRecording) throws {
        let module = try CProgramTests.directory() + "/debug/shapes-O0.wasm"
        let result = try #require(try runTool("gdb", [
            "-nx", "-batch", "-ex", "set breakpoint pending on", "-ex", "break shapes.cpp:28", "-ex", "run", "-ex", "bt",
            "-ex", "echo @@list\n", "-ex", "list 28,28", "-ex", "echo @@up\n", "-ex", "up",
            "--args", PackagePaths.cli, "run", module, "--invoke", "degenerate", "0", "--debug-info", "--exit-recording", mode.rawValue,
        ]))
        let output = result.stdout
        let backtrace = output.components(separatedBy: "@@list")[0]
        let source = PackagePaths.root.appendingPathComponent("fixtures/c/shapes.cpp").path
        // The wasm frames, newest first, each at its C++ line (the module
        // keeps its own name: no `shapes-O0.wasm.wasm`).
        let expected = [
            "shapes-O0.wasm!geometry::Triangle::area() const () at \(source):28",
            "shapes-O0.wasm!geometry::Accumulator<unsigned int>::add(geometry::Shape const&) () at \(source):36",
            "shapes-O0.wasm!geometry::measure(geometry::Shape**, unsigned int) () at \(source):41",
            "shapes-O0.wasm!degenerate () at \(source):76",
        ]
        for line in expected { #expect(backtrace.contains(line), "no `\(line)` in:\n\(backtrace)") }
        #expect(backtrace.contains("shapes-O0.wasm!<entry trampoline (i32) -> (i32)>") && backtrace.contains("wu_enter"))
        let listed = output.components(separatedBy: "@@list").dropFirst().first ?? ""
        #expect(listed.contains("28\t        if (height <= 0) abort();"), "\(listed)")
        // (area() traps in abort(): `finish` could not return; `up` goes to the caller.)
        let caller = output.components(separatedBy: "@@up").dropFirst().first ?? ""
        #expect(caller.contains("geometry::Accumulator<unsigned int>::add(geometry::Shape const&) () at \(source):36")
                && caller.contains("36\t"), "up did not show add's line: \(caller)")
    }

    @Test("C through two activations (fixtures/c-lines/reenter.c, -g): break FILE:LINE, bt names both activations' frames at their C lines across the host frames, finish returns to the caller's line",
          .enabled(if: ToolPaths.gdb != nil, "gdb is not installed (make test installs it)"),
          arguments: exitRecordingModes)
    func sourceLinesTwoActivations(mode: ExitRecording) throws {
        let directory = try OfflineSourceLineTests.build("reenter", flags: "-Wl,--allow-undefined")
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try #require(try runTool("gdb", [
            "-nx", "-batch", "-ex", "set breakpoint pending on", "-ex", "break reenter.c:15", "-ex", "run", "-ex", "bt",
            "-ex", "echo @@finish\n", "-ex", "finish",
            "--args", PackagePaths.cli, "run", directory.appendingPathComponent("reenter.wasm").path, "--invoke", "outer", "1",
            "--debug-info", "--exit-recording", mode.rawValue,
        ]))
        let parts = result.stdout.components(separatedBy: "@@finish")
        let source = PackagePaths.root.appendingPathComponent("fixtures/c-lines/reenter.c").path
        let frames = parts[0].split(separator: "\n").filter { $0.hasPrefix("#") }.map(String.init)
        func index(_ text: String) -> Int? { frames.firstIndex { $0.contains(text) } }
        let leaf = index("reenter.wasm!leaf () at \(source):15"), inner = index("reenter.wasm!inner () at \(source):19")
        let host = index("HostModule"), outer = index("reenter.wasm!outer () at \(source):22")
        #expect(leaf == 0 && inner == 1, "\(frames)")
        #expect(host != nil && outer != nil && host! < outer! && index("wu_enter") != nil, "\(frames)")
        let finished = parts.dropFirst().first ?? ""
        #expect(finished.contains("reenter.wasm!inner () at \(source):19")
                && finished.contains("19\t__attribute__((export_name(\"inner\"))) void inner(int depth) { leaf(depth); }"),
                "finish: \(finished)")
    }

    @Test("without --debug-info gdb cannot name or unwind wasm frames (what the interface adds)",
          .enabled(if: ToolPaths.gdb != nil, "gdb is not installed (make test installs it)"))
    func withoutDebugInfo() throws {
        let line = try hostPrintLine()
        let result = try #require(try runTool("gdb", [
            "-nx", "-batch", "-ex", "break HostModule.swift:\(line)", "-ex", "run", "-ex", "bt",
            "--args", PackagePaths.cli, "run", PackagePaths.fixture("programs/nested.wat"), "--invoke", "outer", "7",
        ]))
        let frames = gdbFrames(result.stdout)
        #expect(frames.contains("??"), "\(frames)")
        #expect(!frames.contains("nested!leaf"))
    }

    @Test("a core file of a process that crashed in a host function under wasm: gdb names every frame",
          .enabled(if: ToolPaths.gdb != nil, "gdb is not installed (make test installs it)"),
          .enabled(if: CoreFiles.refusal == nil, CoreFiles.refusal.map { Comment(rawValue: $0) } ?? ""))
    func coreFile() throws {
        let directory = try temporaryDirectory("core")
        defer { try? FileManager.default.removeItem(at: directory) }
        let core = try crashCore(in: directory, [PackagePaths.cli, "run", PackagePaths.fixture("programs/crash.wat"),
                                                  "--invoke", "outer", "0", "--debug-info"])
        let result = try #require(try runTool("gdb", ["-nx", "-batch", "-ex", "bt", PackagePaths.cli, core]))
        #expect(result.stdout.contains("signal SIGSEGV"), "\(result.stdout)")
        let frames = gdbFrames(result.stdout)
        #expect(frames.first?.contains("HostModule") == true && frames.first?.contains("crash") == true, "\(frames)")
        expectTwoActivations(frames, module: "crashing", host: "crash")
    }

    @Test("gcore of a process stopped at a breakpoint: the core's backtrace names the wasm frames",
          .enabled(if: ToolPaths.gdb != nil, "gdb is not installed (make test installs it)"))
    func gcore() throws {
        let directory = try temporaryDirectory("gcore")
        defer { try? FileManager.default.removeItem(at: directory) }
        let core = directory.appendingPathComponent("stopped.core").path
        let line = try hostPrintLine()
        _ = try #require(try runTool("gdb", [
            "-nx", "-batch", "-ex", "break HostModule.swift:\(line)", "-ex", "run", "-ex", "gcore \(core)", "-ex", "kill",
            "--args", PackagePaths.cli, "run", PackagePaths.fixture("programs/nested.wat"), "--invoke", "outer", "7", "--debug-info",
        ]))
        #expect(FileManager.default.fileExists(atPath: core))
        let result = try #require(try runTool("gdb", ["-nx", "-batch", "-ex", "bt", PackagePaths.cli, core]))
        expectTwoActivations(gdbFrames(result.stdout), module: "nested", host: "print_i32")
    }
}

/// Runs `command` in `directory` with core files on; it must die of
/// SIGSEGV. Returns the core file's path.
func crashCore(in directory: URL, _ command: [String]) throws -> String {
    let crash = try runChild("/bin/sh", ["-c", "ulimit -c unlimited; exec \"$0\" \"$@\""] + command, directory: directory)
    #expect(crash.signal == SIGSEGV, "the crash ended with status \(crash.status), signal \(String(describing: crash.signal))")
    let core = try #require(try FileManager.default.contentsOfDirectory(atPath: directory.path).first { $0.hasPrefix("core") },
                            "no core file in \(directory.path) (core_pattern: \(readProcFile("/proc/sys/kernel/core_pattern")))")
    return directory.appendingPathComponent(core).path
}

enum CoreFiles {
    /// Why a crashing child leaves no core file in its directory here, if
    /// it does not.
    static let refusal: String? = {
        let pattern = readProcFile("/proc/sys/kernel/core_pattern").trimmingCharacters(in: .whitespacesAndNewlines)
        if pattern.hasPrefix("|") { return "core_pattern pipes cores to a program (\(pattern)), not to the working directory" }
        if pattern.hasPrefix("/") { return "core_pattern writes cores to \(pattern), not to the working directory" }
        return nil
    }()
}

@Suite("The object file the GDB JIT interface registers")
struct GDBJITImageTests {
    @Test("a module compiled with debug info is registered while it lives and unregistered when it goes")
    func registration() throws {
        let before = GDBJITImage.registeredCount
        do {
            let engine = Engine(publishing: ToolPublishing(debugInfo: true))
            let module = try Module(engine: engine, text: try String(contentsOfFile: PackagePaths.fixture("programs/nested.wat"), encoding: .utf8))
            #expect(GDBJITImage.registeredCount == before + 1)
            withExtendedLifetime(module) {}
        }
        #expect(GDBJITImage.registeredCount == before)
        // The listing of wasm offsets lives as long as the image; one a
        // killed process left is removed by the next process that makes one.
        let stale = FileManager.default.temporaryDirectory.appendingPathComponent("wasm-unwind-gdb-999999999/7f00")
        try FileManager.default.createDirectory(at: stale, withIntermediateDirectories: true)
        try Data("0x1  x\n".utf8).write(to: stale.appendingPathComponent("x.wasm"))
        var listing: String?
        do {
            let engine = Engine(publishing: ToolPublishing(debugInfo: true))
            let module = try Module(engine: engine, text: try String(contentsOfFile: PackagePaths.fixture("programs/nested.wat"), encoding: .utf8))
            let image = try GDBJITImage(module.toolDescription)
            listing = image.listing?.path
            let lines = try String(contentsOfFile: try #require(listing), encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            #expect(lines[107] == "0x6c  nested!leaf", "\(lines[100..<112])")
            withExtendedLifetime(module) {}
        }
        #expect(!FileManager.default.fileExists(atPath: try #require(listing)))
        // (Removed when this process made its directory, unless another
        // test's image already had: then as the next process would.)
        GDBJITImage.Listing.removeListings(in: FileManager.default.temporaryDirectory.path, ofDeadProcessesOtherThan: getpid())
        #expect(!FileManager.default.fileExists(atPath: stale.deletingLastPathComponent().path), "a dead process's listings stayed")
        _ = try Module(engine: Engine(), text: "(module (func))")
        #expect(GDBJITImage.registeredCount == before, "registered without debugInfo")
    }

    @Test("readelf reads its sections, symbols, CFI and line table: names, real addresses, wasm offsets as lines")
    func readelf() throws {
        let engine = Engine()
        let module = try Module(engine: engine, text: try String(contentsOfFile: PackagePaths.fixture("programs/nested.wat"), encoding: .utf8))
        let description = module.toolDescription
        let object = GDBJITImage.objectFile(for: description)
        let directory = try temporaryDirectory("elf")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("nested.o").path
        #expect(FileManager.default.createFile(atPath: path, contents: Data(object)))
        let result = try #require(try runTool("readelf", ["-W", "-S", "-s", "--debug-dump=frames,decodedline", path]),
                                  "readelf (binutils) is not installed")
        #expect(result.stderr.isEmpty, "readelf complained: \(result.stderr)")
        let text = result.stdout
        let base = module.code.baseAddress
        // .text at the code's address, .eh_frame at the CFI's.
        #expect(text.contains(String(format: ".text             NOBITS          %016lx", base)), "\(text)")
        #expect(text.contains(String(format: ".eh_frame         PROGBITS        %016lx", base + UInt(module.unwindInfo.ehFrame.lowerBound))))
        for name in ["nested!leaf", "nested!outer", "nested!<entry trampoline (i32) -> ()>", "nested!<exit trampoline for host::call:inner>"] {
            #expect(text.contains(name), "no symbol \(name)")
        }
        // The CFI's FDEs cover the functions at their real addresses.
        let leaf = try #require(description.module.functions.first { $0.name == "leaf" })
        let start = base + leaf.codeRange.lowerBound
        #expect(text.contains(String(format: "pc=%016lx..%016lx", start, base + leaf.codeRange.upperBound)), "\(text)")
        // Line rows: the file and the wasm offsets of leaf's instructions.
        let offsets = Set(leaf.addressMap.compactMap(\.moduleOffset))
        let rows = text.split(separator: "\n").filter { $0.hasPrefix("nested.wasm") }
        #expect(rows.contains { row in offsets.contains { row.contains(" \($0) ") } }, "\(rows.prefix(5))")
    }

    @Test("bad .eh_frame bytes are an error naming the offset")
    func badCFI() throws {
        #expect(throws: EhFrameError.self) { try EhFrame(bytes: [0x30, 0, 0, 0, 1, 0, 0, 0], address: 0x1000) }
        do {
            _ = try EhFrame(bytes: [0x10, 0, 0, 0, 0x40, 0, 0, 0] + [UInt8](repeating: 0, count: 12), address: 0x1000)
            Issue.record("an FDE without a CIE was accepted")
        } catch {
            #expect(error.description == ".eh_frame offset 0: FDE points to no CIE before it (at -60)")
        }
    }
}

@Suite("perf sees wasm frames: perf map and jitdump", .serialized)
struct PerfTests {
    /// `perf script -F ip,sym` samples: each a list of symbols, newest
    /// first. A sample is its callchain's lines, `\t    7f12 hot!work`
    /// (symbols may hold spaces); samples are separated by blank lines.
    static func samples(_ script: String) -> [[String]] {
        script.components(separatedBy: "\n\n").map { block in
            block.split(separator: "\n").compactMap { line -> String? in
                let fields = line.trimmingCharacters(in: .whitespaces).split(separator: " ", maxSplits: 1)
                guard fields.count == 2, fields[0].allSatisfy(\.isHexDigit) else { return nil }
                return String(fields[1])
            }
        }.filter { !$0.isEmpty }
    }

    static func record(_ arguments: [String], in directory: URL, profile: [String]) throws -> String {
        let recorded = try #require(try runTool("perf", ["record", "-q", "-e", "cpu-clock", "-o", "perf.data"] + arguments + [
            "--", PackagePaths.cli, "run", PackagePaths.fixture("programs/hot.wat"), "--invoke", "main", "8000",
        ] + profile, directory: directory))
        #expect(recorded.status == 0, "perf record: \(recorded.stderr)")
        return "perf.data"
    }

    @Test("perf map: perf report names the hot wasm functions with their wasm callers (frame-pointer call graphs)",
          .enabled(if: ToolPaths.perfRefusal == nil, ToolPaths.perfRefusal.map { Comment(rawValue: $0) } ?? ""))
    func perfMap() throws {
        let directory = try temporaryDirectory("perfmap")
        // The child's /tmp/perf-PID.map stays after it exits (perf reads it
        // then): remove the ones this test made.
        func maps() -> Set<String> {
            Set(((try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? []).filter { $0.hasPrefix("perf-") && $0.hasSuffix(".map") })
        }
        let before = maps()
        defer {
            try? FileManager.default.removeItem(at: directory)
            for name in maps().subtracting(before) { try? FileManager.default.removeItem(atPath: "/tmp/" + name) }
        }
        let data = try Self.record(["-g"], in: directory, profile: ["--profile", "perfmap"])
        let report = try #require(try runTool("perf", ["report", "-i", data, "--stdio", "--no-children", "-g", "none", "--sort", "sym"],
                                              directory: directory))
        #expect(report.stdout.contains("hot!work") && report.stdout.contains("hot!mix"), "\(report.stdout)")
        let script = try #require(try runTool("perf", ["script", "-i", data, "-F", "ip,sym"], directory: directory))
        let work = Self.samples(script.stdout).filter { $0.first == "hot!work" }
        #expect(work.count > 50, "\(work.count) samples in hot!work")
        // The caller is spin, then main's function, then the entry trampoline,
        // except for samples before work's `mov rbp, rsp` (its prologue),
        // where the frame-pointer chain skips spin.
        let exact = work.filter { Array($0.prefix(4)) == ["hot!work", "hot!spin", "hot!<wasm function 3>", "hot!<entry trampoline (i32) -> (i32)>"] }
        #expect(Double(exact.count) >= 0.95 * Double(work.count), "\(exact.count) of \(work.count) with the full wasm chain")
    }

    @Test("jitdump: perf inject --jit names the code, perf annotate shows wasm offsets, --call-graph dwarf unwinds through JIT frames",
          .enabled(if: ToolPaths.perfRefusal == nil, ToolPaths.perfRefusal.map { Comment(rawValue: $0) } ?? ""))
    func jitdump() throws {
        let directory = try temporaryDirectory("jitdump")
        defer { try? FileManager.default.removeItem(at: directory) }
        for (graph, name) in [(["-g"], "fp"), (["--call-graph", "dwarf"], "dwarf")] {
            let data = try Self.record(["-k", "1"] + graph, in: directory, profile: ["--profile", "jitdump", "--jitdump-directory", directory.path])
            let injected = try #require(try runTool("perf", ["inject", "--jit", "-i", data, "-o", "\(name).data"], directory: directory))
            #expect(injected.status == 0, "perf inject: \(injected.stderr)")
            let script = try #require(try runTool("perf", ["script", "-i", "\(name).data", "-F", "ip,sym"], directory: directory))
            let work = Self.samples(script.stdout).filter { $0.first == "hot!work" }
            #expect(work.count > 20, "\(name): \(work.count) samples in hot!work")
            let through = work.filter { chain in
                Array(chain.prefix(5)) == ["hot!work", "hot!spin", "hot!<wasm function 3>", "hot!<entry trampoline (i32) -> (i32)>", "wu_enter"]
            }
            #expect(Double(through.count) >= 0.95 * Double(work.count), "\(name): \(through.count) of \(work.count) unwound through the JIT frames")
        }
        let lines = try #require(try runTool("perf", ["report", "-i", "fp.data", "--stdio", "--no-children", "-g", "none", "--sort", "sym,srcline"],
                                             directory: directory))
        #expect(lines.stdout.contains("hot.wasm:"), "\(lines.stdout.prefix(2000))")
        let annotate = try #require(try runTool("perf", ["annotate", "-i", "fp.data", "--stdio", "-s", "hot!work"], directory: directory))
        #expect(annotate.stdout.contains("hot.wasm:") && annotate.stdout.contains("push   %rbp"), "\(annotate.stdout.prefix(2000))")
    }

    @Test("a C program built with -g (fixtures/c-lines/hot.c): perf report --sort srcline shows its C lines, the inlined mix's own, no wasm offsets; perf annotate interleaves the C source",
          .enabled(if: ToolPaths.perfRefusal == nil, ToolPaths.perfRefusal.map { Comment(rawValue: $0) } ?? ""))
    func sourceLines() throws {
        let module = try SourceLineTests.hotProgram.get()
        let directory = try temporaryDirectory("perf-lines")
        defer { try? FileManager.default.removeItem(at: directory) }
        let recorded = try #require(try runTool("perf", ["record", "-q", "-k", "1", "-e", "cpu-clock", "-g", "-o", "perf.data", "--",
                                                         PackagePaths.cli, "run", module, "--invoke", "main",
                                                         "--profile", "jitdump", "--jitdump-directory", directory.path, "--", "300"],
                                                directory: directory))
        #expect(recorded.status == 0, "perf record: \(recorded.stderr)")
        let injected = try #require(try runTool("perf", ["inject", "--jit", "-i", "perf.data", "-o", "jit.data"], directory: directory))
        #expect(injected.status == 0, "perf inject: \(injected.stderr)")
        let report = try #require(try runTool("perf", ["report", "-i", "jit.data", "--stdio", "--no-children", "-g", "none",
                                                       "--sort", "sym,srcline"], directory: directory))
        // Rows of the wasm functions: `hot.wasm!spin ... hot.c:8`.
        let rows = report.stdout.split(separator: "\n").filter { $0.contains("hot.wasm!") }
        func share(_ row: Substring) -> Double { Double(row.split(separator: "%").first?.trimmingCharacters(in: .whitespaces) ?? "") ?? 0 }
        let loop = rows.filter { $0.contains("hot.wasm!spin") && $0.hasSuffix("hot.c:8") }.map(share).reduce(0, +)
        let mix = rows.filter { $0.contains("hot.wasm!spin") && $0.hasSuffix("hot.c:5") }.map(share).reduce(0, +)
        #expect(loop > 20 && mix > 5, "spin at hot.c:8 \(loop)%, mix at hot.c:5 \(mix)%:\n\(rows.joined(separator: "\n"))")
        #expect(!rows.contains { $0.contains("hot.wasm:") }, "wasm offsets instead of source lines:\n\(rows.joined(separator: "\n"))")
        let annotate = try #require(try runTool("perf", ["annotate", "-i", "jit.data", "--stdio", "-s", "hot.wasm!spin"], directory: directory))
        #expect(annotate.stdout.contains("for (unsigned i = 0; i < n; i++) acc += mix(i + acc);")
                && annotate.stdout.contains("push   %rbp"), "\(annotate.stdout.prefix(3000))")
    }

    @Test("the jitdump's records: per routine debug info, unwinding info, then the load; a close record at exit")
    func records() throws {
        let directory = try temporaryDirectory("records")
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = try runCLI(["run", PackagePaths.fixture("programs/hot.wat"), "--invoke", "main", "1",
                              "--profile", "jitdump", "--jitdump-directory", directory.path])
        #expect(run.status == 0, "\(run.stderr)")
        let file = try #require(try FileManager.default.contentsOfDirectory(atPath: directory.path).first { $0.hasPrefix("jit-") })
        let bytes = [UInt8](try Data(contentsOf: directory.appendingPathComponent(file)))
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * $1) } }
        #expect(u32(0) == 0x4A69_5444 && u32(4) == 1 && u32(8) == 40 && u32(12) == 62)
        var kinds: [UInt32] = []
        var offset = 40
        while offset + 16 <= bytes.count {
            kinds.append(u32(offset))
            offset += Int(u32(offset + 4))
        }
        #expect(offset == bytes.count, "records end at \(offset) of \(bytes.count)")
        // 4 functions with lines, 1 trampoline without: D U L ×4, U L, then close.
        #expect(kinds == [2, 4, 0, 2, 4, 0, 2, 4, 0, 2, 4, 0, 4, 0, 3], "\(kinds)")
    }
}
