import Foundation
import JITCapture
import StackCapture
import Testing
import WasmDWARF
import WasmUnwind
import UnwindReports

/// The committed captures in fixtures/captures, made by
/// scripts/make-capture-fixtures.sh from the committed WAT sources.
enum CaptureFixtures {
    /// Name, and the `wasm-unwind run` arguments that made it.
    static let all: [(name: String, run: [String])] = [
        ("single", ["fixtures/programs/factorial.wat", "--invoke", "fac", "3", "--capture-backtraces"]),
        ("nested", ["fixtures/demo/nested.wat", "--invoke", "main", "7", "--capture-backtraces"]),
        ("trap", ["fixtures/traps/traps.wat", "--invoke", "outer"]),
        ("overflow", ["fixtures/traps/traps.wat", "--invoke", "recurse", "0", "--max-wasm-stack", "8192"]),
        ("refs", ["fixtures/captures/refs.wat", "--invoke", "outer", "1", "--capture-backtraces"]),
        ("hybrid", ["fixtures/programs/hybrid.wat", "--invoke", "outer", "--capture-backtraces"]),
        ("throw", ["fixtures/programs/exceptions.wat", "--invoke", "run", "5", "--capture-throws"]),
    ]

    static func path(_ name: String, _ suffix: String = ".capture") -> String { "fixtures/captures/\(name)\(suffix)" }

    static func bytes(_ name: String) throws -> [UInt8] {
        try [UInt8](Data(contentsOf: URL(fileURLWithPath: PackagePaths.fixture("captures/\(name).capture"))))
    }

    static func golden(_ name: String, _ suffix: String) throws -> String {
        try String(contentsOfFile: PackagePaths.fixture("captures/\(name)\(suffix)"), encoding: .utf8)
    }

    /// The lines of a text dump that must not change between captures of
    /// the same program: frames, activation boundaries, the trap, the roots.
    static func stableLines(_ dump: String) -> [String] {
        dump.split(separator: "\n").dropFirst().map(String.init)
    }
}

@Suite("Captured stacks: committed fixtures")
struct CaptureFixtureTests {
    @Test("each committed capture dumps exactly to its golden text and JSON", arguments: CaptureFixtures.all.map(\.name))
    func golden(name: String) throws {
        let text = try runCLI(["dump", CaptureFixtures.path(name), "--roots"])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout == (try CaptureFixtures.golden(name, ".txt")))
        let json = try runCLI(["dump", CaptureFixtures.path(name), "--roots", "--format", "json"])
        #expect(json.status == 0)
        #expect(json.stdout == (try CaptureFixtures.golden(name, ".json")))
    }

    @Test("the capture of a -g C program carries its DWARF: it dumps to its golden text and JSON with source lines and the module's build id")
    func lines() throws {
        let text = try runCLI(["dump", CaptureFixtures.path("lines"), "--roots"])
        #expect(text.status == 0 && text.stderr.isEmpty, "\(text.stderr)")
        #expect(text.stdout == (try CaptureFixtures.golden("lines", ".txt")))
        #expect(text.stdout.contains("                    at ./fixtures/c-lines/crash.c:6:20"))
        let json = try runCLI(["dump", CaptureFixtures.path("lines"), "--roots", "--format", "json"])
        #expect(json.stdout == (try CaptureFixtures.golden("lines", ".json")))
    }

    @Test("the hybrid capture keeps every host frame and dumps to its golden")
    func hybrid() throws {
        let result = try runCLI(["dump", CaptureFixtures.path("hybrid"), "--hybrid"])
        #expect(result.status == 0)
        #expect(result.stdout == (try CaptureFixtures.golden("hybrid", ".hybrid.txt")))
    }

    @Test("libunwind, unwinding each capture offline, agrees with the walk frame for frame")
    func verify() throws {
        let result = try runCLI(["dump", "--verify"] + CaptureFixtures.all.map { CaptureFixtures.path($0.name) })
        #expect(result.status == 0, "\(result.stdout)")
        let verdicts = result.stdout.split(separator: "\n").filter { $0.hasPrefix("verify:") }
        #expect(verdicts == [
            "verify: libunwind agrees on all 4 wasm frames in 1 activation",
            "verify: libunwind agrees on all 6 wasm frames in 3 activations",
            "verify: libunwind agrees on all 2 wasm frames in 2 activations",
            "verify: libunwind agrees on all 133 wasm frames in 1 activation",
            "verify: libunwind agrees on all 2 wasm frames in 1 activation",
            "verify: libunwind agrees on all 2 wasm frames in 2 activations",
            "verify: libunwind agrees on all 3 wasm frames in 1 activation",
        ])
    }

    @Test("capturing the same program again gives the same frames, names and offsets", arguments: CaptureFixtures.all.map(\.name))
    func recapture(name: String) throws {
        let fixture = CaptureFixtures.all.first { $0.name == name }!
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("recapture-\(name)-\(getpid()).capture").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try runCLI(["run"] + fixture.run + ["--capture", path])
        let fresh = try runCLI(["dump", path, "--roots"])
        #expect(fresh.status == 0)
        // How many frames of a runaway recursion fit in --max-wasm-stack
        // depends on where the host stack stood at entry (its alignment
        // against the frame size), which any change to the host code moves:
        // a folded run's length is compared as "N".
        func runLengthFree(_ lines: [String]) -> [String] {
            lines.map { line in
                line.replacing(/^(\s*)1-\d+:/, with: { "\($0.output.1)1-N:" })
                    .replacing(/\(\d+ times\)/, with: "(N times)")
                    // Where a handler resumes is an address of that run.
                    .replacing(/resumes with sp 0x[0-9a-f]+ at 0x[0-9a-f]+/, with: "resumes with sp SP at PAD")
                    // And the landing pad's offset in the function's code,
                    // which any change to the code generator moves.
                    .replacing(/-> \+0x[0-9a-f]+\s/, with: "-> +PAD ")
            }
        }
        #expect(runLengthFree(CaptureFixtures.stableLines(fresh.stdout))
                == runLengthFree(CaptureFixtures.stableLines(try CaptureFixtures.golden(name, ".txt"))))
    }
}

@Suite("Captured stacks: bad input on the command line")
struct CaptureCommandLineTests {
    func capture() throws -> CaptureFile { try CaptureFile(parsing: CaptureFixtures.bytes("single")) }

    @Test("dump reports a bad file, still dumps the others, and exits with 1")
    func manyFiles() throws {
        let directory = FileManager.default.temporaryDirectory
        let bad = directory.appendingPathComponent("bad-\(getpid()).capture").path
        let broken = directory.appendingPathComponent("broken-\(getpid()).capture").path
        defer {
            try? FileManager.default.removeItem(atPath: bad)
            try? FileManager.default.removeItem(atPath: broken)
        }
        #expect(FileManager.default.createFile(atPath: bad, contents: Data("not a capture".utf8)))
        var file = try capture()
        file.activations[0].startFramePointer += 8
        #expect(FileManager.default.createFile(atPath: broken, contents: Data(file.serialized())))
        let result = try runCLI(["dump", bad, CaptureFixtures.path("single"), broken])
        #expect(result.status == 1)
        #expect(result.stderr.contains("\(bad): not a valid capture: byte 0: expected the 8-byte magic (8 bytes), but only 13 remain")
                || result.stderr.contains("\(bad): not a valid capture: byte 0: expected the magic"))
        #expect(result.stderr.contains("\(broken): the captured frame chain is broken after 0 frames: frame pointer"))
        #expect(result.stdout.contains("0x3e - factorial!fac"))
        #expect(result.stdout.contains("backtrace incomplete after 0 frames"))
    }
}

@Suite("Captured stacks: fuzz regressions")
struct CaptureRegressionTests {
    @Test("every input in fixtures/fuzz-regressions reads to an error or a sound result")
    func regressions() throws {
        let directory = PackagePaths.fixture("fuzz-regressions")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { !$0.hasSuffix(".md") }.sorted()
        #expect(!names.isEmpty)
        for name in names {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory + "/" + name)))
            // core-fuzz's inputs: a core, an executable, a recording of a
            // post-mortem reader's reads (scripts/fuzz.sh).
            if name.hasSuffix(".core") {
                if let core = try? CoreFile(bytes: bytes) { _ = core.threads.map { core.word(at: $0.sp) } }
                continue
            }
            if name.hasSuffix(".elf") {
                _ = try? ELFExecutable(InputBytes(bytes: bytes, name: name)).symbol("wasm_unwind_debug_descriptor")
                continue
            }
            // dwarf-fuzz's inputs: wasm modules with debug sections, looked
            // up across their code as the fuzzer does.
            if name.hasSuffix(".wasm") {
                if let info = try? ModuleDebugInfo(module: bytes), let codeStart = info.codeStart {
                    for offset in stride(from: codeStart, to: bytes.count, by: 3) { _ = info.symbols(atModuleOffset: UInt32(offset)) }
                }
                continue
            }
            if name.hasSuffix(".recording") {
                if let recording = try? ProcessRecording(parsing: bytes),
                   let threads = try? PostMortem.threads(of: recording, descriptorAt: recording.descriptorAddress, program: name) {
                    for thread in threads {
                        guard let stack = try? CapturedStack(thread.capture) else { continue }
                        _ = TextFormatter().render(stack.dump(file: name, backtrace: stack.backtrace(), roots: true))
                    }
                }
                continue
            }
            do {
                let stack = try CapturedStack(CaptureFile(parsing: bytes))
                let trace = stack.backtrace(limits: WalkLimits(maximumFrames: 100_000, maximumActivations: 10_000))
                var dump = stack.dump(file: name, backtrace: trace, roots: true)
                dump.hybrid = stack.hybridFrames(backtrace: trace)
                dump.verification = stack.verify(backtrace: trace)
                _ = TextFormatter().render(dump)
                _ = JSONFormatter().render(DumpReport(entries: [.dump(dump)]))
            } catch {
                // An error naming the problem is a sound result.
                #expect(!"\(error)".isEmpty)
            }
        }
        // The committed one: its activation claims an entry frame far above
        // the captured bytes, so the walk takes the real entry trampoline's
        // frame for a fifth frame, then stops where the chain leaves the
        // captured memory, keeping the five frames it found.
        let stack = try CapturedStack(CaptureFile(parsing: [UInt8](Data(contentsOf: URL(
            fileURLWithPath: directory + "/chain-past-captured-bytes.capture")))))
        let trace = stack.backtrace()
        #expect(trace.frames.count == 5)
        #expect(trace.error?.rule == "frame-pointer-outside-stack")

        // Found by mutating captures for `dump --verify`: an .eh_frame below
        // the code base made the verification build a reversed range and
        // crash. The reader refuses it, naming the section and the byte.
        let below = try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory + "/eh-frame-below-code.capture")))
        #expect(throws: CaptureFormatError.self) { try CaptureFile(parsing: below) }
        let result = try runCLI(["dump", "--verify", "fixtures/fuzz-regressions/eh-frame-below-code.capture"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("not a valid capture: section MODULE, byte 677: expected the .eh_frame at 0x5f"))

        // Found by `make fuzz` from the capture taken at a throw: a CIE's
        // DW_CFA_register whose second register runs past the record into
        // the next one's length (register 16,348), which libunwind used as
        // an index and crashed on under `dump --verify`. The reader checks
        // every CFA instruction first and names the byte.
        let cfa = try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory + "/cfa-register-past-record.capture")))
        #expect(throws: CaptureFormatError.self) { try CaptureFile(parsing: cfa) }
        let refused = try runCLI(["dump", "--verify", "fixtures/fuzz-regressions/cfa-register-past-record.capture"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("section MODULE, byte 687: expected in the .eh_frame, a register before the record's end"))
    }
}
