import Foundation
import Testing
import JITCapture
import StackCapture
@testable import Verification
import UnwindReports
import WasmDWARF
import WasmJIT
import WasmUnwind

/// Source lines after the process is gone: captures carrying the modules'
/// DWARF, debug files given or found by build id and content, the
/// `external_debug_info` section, and core files — each checked against
/// the live trap's display of the same program.
@Suite("Source lines offline")
struct OfflineSourceLineTests {
    /// The frame lines of a details display (no header, no message).
    static func frameLines(_ text: String) -> [String] {
        text.split(separator: "\n").map(String.init).filter { line in
            line.hasPrefix("    ") || line.hasPrefix("       --")
        }
    }

    @Test("every trap of every -g fixture: a capture with the DWARF, and one with only the module's identity plus the module as --debug-file or in a --debug-dir, show the live trap's source lines",
          arguments: exitRecordingModes)
    func everyTrap(mode: ExitRecording) throws {
        var details = Engine.Configuration(exitRecording: mode)
        details.backtraceDetails = true
        var plain = Engine.Configuration(exitRecording: mode)
        plain.backtraceDetails = false
        let formatter = TextFormatter()
        var traps = 0, frames = 0
        for path in try SourceLineTests.debugFixtures() + SourceLineTests.rustFixtures() {
            let binary = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            let program = CFixtureCalls.program(ofFile: URL(fileURLWithPath: path).lastPathComponent)
            // One search per way of finding the DWARF, reused over the calls.
            let byFile = try DebugFileSearch(files: [path], directories: [])
            let byDirectory = try DebugFileSearch(files: [], directories: [URL(fileURLWithPath: path).deletingLastPathComponent().path])
            let nothing = try DebugFileSearch(files: [], directories: [])
            for (configuration, searches) in [(details, [("carried", nothing)]),
                                              (plain, [("--debug-file", byFile), ("--debug-dir", byDirectory)])] {
                let engine = Engine(configuration: configuration)
                let store = Store(engine: engine)
                store.enableTrapSnapshots()
                let instance = try Instance(store: store, module: Module(engine: engine, binary: binary))
                let live = Engine(configuration: details)
                let liveInstance = try Instance(store: Store(engine: live), module: Module(engine: live, binary: binary))
                for (export, arguments) in CFixtureCalls.calls[program]! {
                    let expected: String
                    do {
                        _ = try liveInstance.export(export)!.call(arguments)
                        continue
                    } catch let trap as Trap {
                        let report = trap.report
                        expected = formatter.renderDetails(report.backtrace, try #require(report.sourceSymbols))
                    }
                    let trap: Trap
                    do {
                        _ = try instance.export(export)!.call(arguments)
                        Issue.record("\(path) \(export): no trap")
                        continue
                    } catch let caught as Trap {
                        trap = caught
                    }
                    let capture = try #require(LiveCapture.atTrap(trap, store: store))
                    // Through the bytes, as `dump` reads them.
                    let stack = try CapturedStack(CaptureFile(parsing: capture.serialized()))
                    #expect((stack.capture.modules[0].debug?.sections != nil) == configuration.backtraceDetails)
                    let backtrace = stack.symbolicated()
                    for (how, search) in searches {
                        let (symbols, problems) = stack.sourceSymbols(of: backtrace, search: search, captureDirectory: nil)
                        #expect(problems.isEmpty, "\(path) \(export) \(how): \(problems)")
                        let shown = symbols.map { formatter.renderDetails(backtrace, $0) } ?? "(no lines)"
                        #expect(Self.frameLines(shown) == Self.frameLines(expected),
                                "\(path) \(export)\(arguments) \(how) (\(mode)):\n\(shown)\nlive:\n\(expected)")
                    }
                    traps += 1
                    frames += backtrace.frames.count
                }
                // Without anything to find the DWARF by, a capture without
                // it has no lines (and no warning: nothing was asked).
                if !configuration.backtraceDetails, let function = instance.export(CFixtureCalls.calls[program]!.last!.0) {
                    do { _ = try function.call(CFixtureCalls.calls[program]!.last!.1) } catch let trap as Trap {
                        let stack = try CapturedStack(CaptureFile(parsing: try #require(LiveCapture.atTrap(trap, store: store)).serialized()))
                        let (symbols, problems) = stack.sourceSymbols(of: stack.symbolicated(), search: nothing, captureDirectory: nil)
                        #expect(symbols == nil && problems.isEmpty)
                    }
                }
            }
        }
        print("offline source lines (\(mode)): \(traps) captured traps, \(frames) frames, each the live display")
        #expect(traps >= 120 && frames >= 600, "\(traps) traps, \(frames) frames")
    }

    /// A program of fixtures/c-lines built by the toolchain's clang with
    /// -g -O1 and `flags`, into a new directory.
    static func build(_ name: String, flags: String = "") throws -> URL {
        let directory = try temporaryDirectory("lines-\(name)")
        let output = directory.appendingPathComponent(name + ".wasm").path
        let source = PackagePaths.root.appendingPathComponent("fixtures/c-lines/\(name).c").path
        let result = try runChild("/bin/sh", ["-c", "\"$(dirname \"$(command -v swift)\")/clang\" --target=wasm32 -g -O1 "
                                              + "-nostdlib -Wl,--no-entry \(flags) -o \"$2\" \"$1\"", "sh", source, output])
        guard result.status == 0 else { throw CProgramTests.BuildError(output: result.stderr) }
        return directory
    }

    /// `bytes` with a custom section `name` holding `payload` appended.
    static func appendingCustomSection(_ bytes: [UInt8], name: String, payload: [UInt8]) -> [UInt8] {
        func leb(_ value: Int) -> [UInt8] {
            var value = value, out: [UInt8] = []
            repeat {
                out.append(UInt8(value & 0x7F) | (value >> 7 != 0 ? 0x80 : 0))
                value >>= 7
            } while value != 0
            return out
        }
        let body = leb(name.utf8.count) + Array(name.utf8) + payload
        return bytes + [0] + leb(body.count) + body
    }

    @Test("a module stripped of its DWARF (wasm-tools strip) with a build id: its capture's lines come from the unstripped module by --debug-file, from BUILDID.debug and .build-id/ in a --debug-dir, and a debug file of another build is refused by name")
    func strippedWithBuildID() throws {
        let directory = try Self.build("crash", flags: "-Wl,--build-id")
        defer { try? FileManager.default.removeItem(at: directory) }
        let original = directory.appendingPathComponent("crash.wasm").path
        let stripped = directory.appendingPathComponent("stripped.wasm").path
        let strip = try runChild(SourceLineTests.wasmTools, ["strip", "-d", "^\\.debug_", original, "-o", stripped])
        #expect(strip.status == 0, "\(strip.stderr)")
        let buildID = try #require(try WasmSections(parsing: [UInt8](Data(contentsOf: URL(fileURLWithPath: stripped)))).buildID)
        #expect(try WasmSections(parsing: [UInt8](Data(contentsOf: URL(fileURLWithPath: stripped)))).custom[".debug_info"] == nil)
        let live = try runCLI(["run", original, "--invoke", "run", "9", "--backtrace-details"])
        let expected = Self.frameLines(live.stderr)
        #expect(expected.contains("                    at \(PackagePaths.root.path)/fixtures/c-lines/crash.c:6:20")
                && expected.contains("                - middle"), "\(live.stderr)")
        let capture = directory.appendingPathComponent("stripped.capture").path
        _ = try runCLI(["run", stripped, "--invoke", "run", "9", "--capture", capture])
        let bare = try runCLI(["dump", capture])
        #expect(bare.status == 0 && !bare.stdout.contains("  at "), "\(bare.stdout)")
        let withFile = try runCLI(["dump", capture, "--debug-file", original])
        #expect(withFile.status == 0 && Self.frameLines(withFile.stdout) == expected, "\(withFile.stdout)\n\(withFile.stderr)")
        // A debug directory laid out by build id, as gdb's debug-file-directory.
        let hex = ModuleIdentity.hex(buildID)
        let debugDirectory = directory.appendingPathComponent("debug")
        let nested = debugDirectory.appendingPathComponent(".build-id/\(hex.prefix(2))")
        try FileManager.default.createDirectory(at: nested, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: original, toPath: nested.appendingPathComponent("\(hex.dropFirst(2)).debug").path)
        let fromTree = try runCLI(["dump", capture, "--debug-dir", debugDirectory.path])
        #expect(Self.frameLines(fromTree.stdout) == expected, "\(fromTree.stdout)\n\(fromTree.stderr)")
        let flat = directory.appendingPathComponent("flat")
        try FileManager.default.createDirectory(at: flat, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: original, toPath: flat.appendingPathComponent("\(hex).debug").path)
        let fromFlat = try runCLI(["dump", capture, "--debug-dir", flat.path, "--format", "json"])
        let document = try JSONSerialization.jsonObject(with: Data(fromFlat.stdout.utf8)) as? [String: Any]
        let dumps = document?["files"] as? [[String: Any]] ?? []
        let frames = (dumps.first?["backtrace"] as? [String: Any])?["frames"] as? [[String: Any]]
        let symbols = frames?.first?["symbols"] as? [[String: Any]]
        #expect(symbols?.first?["function"] as? String == "pick" && symbols?.first?["line"] as? Int == 6, "\(fromFlat.stdout)")
        // Another build of the same source (a different build id): refused.
        let other = try Self.build("crash", flags: "-Wl,--build-id=0x0123456789abcdef")
        defer { try? FileManager.default.removeItem(at: other) }
        let wrong = try runCLI(["dump", capture, "--debug-file", other.appendingPathComponent("crash.wasm").path])
        #expect(wrong.status == 0 && !wrong.stdout.contains("  at "), "\(wrong.stdout)")
        #expect(wrong.stderr.contains("no debug file for it (build_id \(hex))")
                && wrong.stderr.contains("matched no module with DWARF in the dumped files (its build_id: 0123456789abcdef)"), "\(wrong.stderr)")
        // Not a wasm file at all: an error naming it, exit 1.
        let garbage = try runCLI(["dump", capture, "--debug-file", capture])
        #expect(garbage.status == 1 && garbage.stderr.contains("\(capture) is not a wasm module or debug file: module at byte 0"),
                "\(garbage.stderr)")
    }

    @Test("external_debug_info: a stripped module naming its debug file gets its lines from the file beside the capture, or in a --debug-dir, and says where it looked when it is missing")
    func externalDebugInfo() throws {
        let directory = try Self.build("crash")
        defer { try? FileManager.default.removeItem(at: directory) }
        let original = directory.appendingPathComponent("crash.wasm").path
        let stripped = directory.appendingPathComponent("stripped-plain.wasm").path
        _ = try runChild(SourceLineTests.wasmTools, ["strip", "-d", "^\\.debug_", original, "-o", stripped])
        // No build id: the debug file is the module before stripping, found
        // by the name the section gives and accepted only with a matching
        // build id — so give both a build id, as a toolchain splitting
        // DWARF does.
        let buildID: [UInt8] = (0..<16).map { UInt8($0 * 7 + 1) }
        let idSection: [UInt8] = [UInt8(buildID.count)] + buildID
        let debugBytes = Self.appendingCustomSection(try [UInt8](Data(contentsOf: URL(fileURLWithPath: original))), name: "build_id", payload: idSection)
        var module = Self.appendingCustomSection(try [UInt8](Data(contentsOf: URL(fileURLWithPath: stripped))), name: "build_id", payload: idSection)
        let name = "crash.debug.wasm"
        module = Self.appendingCustomSection(module, name: "external_debug_info", payload: [UInt8(name.utf8.count)] + Array(name.utf8))
        let modulePath = directory.appendingPathComponent("app.wasm").path
        try Data(module).write(to: URL(fileURLWithPath: modulePath))
        let live = try runCLI(["run", original, "--invoke", "run", "7", "--backtrace-details"])
        let expected = Self.frameLines(live.stderr)
        let captures = directory.appendingPathComponent("captures")
        try FileManager.default.createDirectory(at: captures, withIntermediateDirectories: true)
        let capture = captures.appendingPathComponent("app.capture").path
        _ = try runCLI(["run", modulePath, "--invoke", "run", "7", "--capture", capture])
        let missing = try runCLI(["dump", capture])
        #expect(missing.status == 0 && !missing.stdout.contains("  at "))
        #expect(missing.stderr.contains("its external_debug_info \"crash.debug.wasm\" was not found or does not match (looked at \(captures.path)/crash.debug.wasm)"),
                "\(missing.stderr)")
        try Data(debugBytes).write(to: captures.appendingPathComponent(name))
        let beside = try runCLI(["dump", capture])
        #expect(Self.frameLines(beside.stdout) == expected && beside.stderr.isEmpty, "\(beside.stdout)\n\(beside.stderr)")
        try FileManager.default.removeItem(atPath: captures.appendingPathComponent(name).path)
        let symbols = directory.appendingPathComponent("symbols")
        try FileManager.default.createDirectory(at: symbols, withIntermediateDirectories: true)
        try Data(debugBytes).write(to: symbols.appendingPathComponent(name))
        let inDirectory = try runCLI(["dump", capture, "--debug-dir", symbols.path])
        #expect(Self.frameLines(inDirectory.stdout) == expected, "\(inDirectory.stdout)\n\(inDirectory.stderr)")
        // The live runtime follows the section too: beside the module.
        let notBeside = try runCLI(["run", modulePath, "--invoke", "run", "7", "--backtrace-details"])
        #expect(Self.frameLines(notBeside.stderr) != expected
                && notBeside.stderr.contains("names its debug information \"crash.debug.wasm\" (external_debug_info), which is not at \(directory.path)/crash.debug.wasm"),
                "\(notBeside.stderr)")
        try Data(debugBytes).write(to: directory.appendingPathComponent(name))
        let liveExternal = try runCLI(["run", modulePath, "--invoke", "run", "7", "--backtrace-details"])
        #expect(Self.frameLines(liveExternal.stderr) == expected, "\(liveExternal.stderr)")
        // ... and a capture taken so carries the debug file's sections.
        let carried = captures.appendingPathComponent("carried.capture").path
        _ = try runCLI(["run", modulePath, "--invoke", "run", "7", "--backtrace-details", "--capture", carried])
        let fromCarried = try runCLI(["dump", carried])
        #expect(Self.frameLines(fromCarried.stdout) == expected, "\(fromCarried.stdout)\n\(fromCarried.stderr)")
    }

    @Test("two activations of C (fixtures/c-lines/reenter.c): host.backtrace prints source lines with details, and its capture dumps the same lines with the activation boundary")
    func twoActivations() throws {
        let directory = try Self.build("reenter", flags: "-Wl,--allow-undefined")
        defer { try? FileManager.default.removeItem(at: directory) }
        let module = directory.appendingPathComponent("reenter.wasm").path
        let capture = directory.appendingPathComponent("re.capture").path
        let live = try runCLI(["run", module, "--invoke", "outer", "1", "--backtrace-details", "--capture-backtraces", "--capture", capture])
        #expect(live.status == 0, "\(live.stderr)")
        let source = PackagePaths.root.appendingPathComponent("fixtures/c-lines/reenter.c").path
        let shown = Self.frameLines(live.stdout + live.stderr)
        #expect(shown == ["    0:     0x85 - leaf", "                    at \(source):15:5",
                          "    1:     0x98 - inner", "                    at \(source):19:63",
                          "    2:     0xa4 - outer", "                    at \(source):22:5"], "\(live.stdout)\(live.stderr)")
        let dump = try runCLI(["dump", capture])
        var expected = shown
        expected.insert("       -- host frames; activation 1 --", at: 4)
        #expect(Self.frameLines(dump.stdout) == expected, "\(dump.stdout)")
    }

    @Test("a core file of a process killed in wasm: dump CORE shows source lines, from the DWARF the post-mortem image carries (details on) or from --debug-file (details off)",
          .enabled(if: CoreFiles.refusal == nil, CoreFiles.refusal.map { Comment(rawValue: $0) } ?? ""))
    func coreFile() throws {
        let module = try SourceLineTests.hotProgram.get()
        for details in [true, false] {
            let directory = try temporaryDirectory("lines-core")
            defer { try? FileManager.default.removeItem(at: directory) }
            let script = "ulimit -c unlimited; \"$0\" run \"$1\" --invoke main \(details ? "--backtrace-details" : "") -- 100000000 & pid=$!; sleep 1; kill -SEGV $pid; wait $pid"
            let result = try runChild("/bin/sh", ["-c", script, PackagePaths.cli, module], environment: noSwiftBacktracer, directory: directory)
            #expect(result.status == 128 + SIGSEGV, "\(result.stderr.suffix(300))")
            let core = try #require(try FileManager.default.contentsOfDirectory(atPath: directory.path).first { $0.hasPrefix("core") })
            let arguments = ["dump", directory.appendingPathComponent(core).path, "--exe", PackagePaths.cli]
            let dump = try runCLI(arguments + (details ? [] : ["--debug-file", module]))
            #expect(dump.status == 0, "\(dump.stderr)")
            let lines = Self.frameLines(dump.stdout)
            // The newest frames are in spin or its inlined mix; the oldest is run.
            #expect(lines.contains { $0.hasSuffix("- run") } && lines.contains { $0.contains("at ") && $0.contains("hot.c:") }
                    && lines.contains { $0.hasSuffix(" - spin") || $0.hasSuffix("- mix") }, "details \(details):\n\(dump.stdout)\n\(dump.stderr)")
            if !details {
                let bare = try runCLI(arguments)
                #expect(!bare.stdout.contains("hot.c:"), "\(bare.stdout)")
            }
        }
    }
}
