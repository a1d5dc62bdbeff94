import Foundation
import JITCapture
import StackCapture
import Testing
import WasmUnwind

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
        #expect(CaptureFixtures.stableLines(fresh.stdout) == CaptureFixtures.stableLines(try CaptureFixtures.golden(name, ".txt")))
    }
}

@Suite("Captured stacks: bad input")
struct CaptureCorruptionTests {
    /// Parses and reads a capture all the way, as `dump --roots` does.
    /// Returns what happened; must never crash or hang.
    func readFully(_ bytes: [UInt8]) -> String {
        do {
            let stack = try CapturedStack(CaptureFile(parsing: bytes))
            let backtrace = stack.backtrace()
            let report = DumpReport(entries: [.dump(stack.dump(file: "x", backtrace: backtrace, roots: true))])
            _ = TextFormatter().render(report)
            _ = JSONFormatter().render(report)
            return backtrace.error == nil ? "ok" : "broken chain"
        } catch {
            return "error"
        }
    }

    @Test("every truncation of a capture is a format error, never a crash")
    func truncations() throws {
        let bytes = try CaptureFixtures.bytes("single")
        for length in 0..<bytes.count {
            #expect(throws: CaptureFormatError.self, "length \(length)") { try CaptureFile(parsing: Array(bytes.prefix(length))) }
        }
        #expect(readFully(bytes) == "ok")
    }

    @Test("flipping any byte of a capture gives an error or a reading, never a crash or a hang")
    func byteFlips() throws {
        let bytes = try CaptureFixtures.bytes("single")
        var outcomes: [String: Int] = [:]
        for index in bytes.indices {
            var flipped = bytes
            flipped[index] ^= 0xFF
            outcomes[readFully(flipped), default: 0] += 1
        }
        // Flips in the header, the section table and the counts are caught
        // as format errors; flips in stack bytes break the chain or change
        // values the walk does not use.
        #expect(outcomes.values.reduce(0, +) == bytes.count)
        #expect((outcomes["error"] ?? 0) > 0)
        #expect((outcomes["broken chain"] ?? 0) > 0)
    }

    func capture() throws -> CaptureFile { try CaptureFile(parsing: CaptureFixtures.bytes("single")) }

    @Test("the wrong magic names what was expected")
    func wrongMagic() throws {
        var bytes = try CaptureFixtures.bytes("single")
        bytes[0] = 0x7F
        #expect(throws: CaptureFormatError(section: nil, offset: 0, expected: "the magic \"WUCAP\\r\\n\\x1a\" of a wasm-unwind capture")) {
            try CaptureFile(parsing: bytes)
        }
    }

    @Test("an unknown major version is rejected naming both versions")
    func unknownMajor() throws {
        var bytes = try CaptureFixtures.bytes("single")
        bytes[8] = 3
        #expect(throws: CaptureFormatError(section: nil, offset: 8, expected: "major version 2 (this reader reads 2.0), found 3.0")) {
            try CaptureFile(parsing: bytes)
        }
    }

    /// The table entry (position of its kind field) of the first section of `kind`.
    func tableEntry(_ bytes: [UInt8], kind: UInt8) -> Int? {
        let count = Int(bytes[12]) | Int(bytes[13]) << 8
        return (0..<count).map { 16 + 16 * $0 }.first { bytes[$0] == kind }
    }

    /// `bytes` with section `kind`'s body replaced: the new body is appended
    /// and the table entry pointed at it.
    func replacingSection(_ bytes: [UInt8], kind: UInt8, with body: [UInt8]) -> [UInt8] {
        var bytes = bytes
        let entry = tableEntry(bytes, kind: kind)!
        var writer = ByteWriter()
        writer.write(UInt32(bytes.count))
        writer.write(UInt32(body.count))
        bytes.replaceSubrange((entry + 8)..<(entry + 16), with: writer.bytes)
        return bytes + body
    }

    @Test("a newer minor version may append fields to a section; unknown sections are skipped")
    func newerMinor() throws {
        var file = try capture()
        file.note = "extra"
        let bytes = file.serialized()
        // The same NOTE with two bytes appended: an error for 1.0, ignored for 1.1.
        let longer = replacingSection(bytes, kind: 8, with: [5] + Array("extra".utf8) + [0xAB, 0xCD])
        let error = try #require(catchError { try CaptureFile(parsing: longer) })
        #expect(error.section == "NOTE" && error.expected == "the section to end here (2 bytes left over)")
        var newer = longer
        newer[10] = 1
        #expect(try CaptureFile(parsing: newer) == file)
        // A section of unknown kind 99 is skipped: the note is gone, nothing else.
        var unknown = bytes
        unknown[tableEntry(bytes, kind: 8)!] = 99
        var withoutNote = file
        withoutNote.note = nil
        #expect(try CaptureFile(parsing: unknown) == withoutNote)
    }

    @Test("a section running past the end of the file is rejected with its table entry's offset")
    func sectionPastEnd() throws {
        var bytes = try CaptureFixtures.bytes("single")
        // First table entry (ARCH) at 16: kind, reserved, offset, length.
        bytes[28] = 0xFF
        bytes[29] = 0xFF
        #expect(throws: CaptureFormatError.self) { try CaptureFile(parsing: bytes) }
        let error = try #require(catchError { try CaptureFile(parsing: bytes) })
        #expect(error.offset == 16)
        #expect(error.expected.contains("section ARCH to lie between the section table's end"))
    }

    @Test("overlapping sections are rejected")
    func overlapping() throws {
        var bytes = try CaptureFixtures.bytes("single")
        // Point the second section (REGISTERS) at the first's bytes.
        bytes[40...43] = bytes[24...27]
        let error = try #require(catchError { try CaptureFile(parsing: bytes) })
        #expect(error.expected.hasPrefix("sections not to overlap"))
    }

    @Test("a missing STACK section is named")
    func missingStack() throws {
        var bytes = try CaptureFixtures.bytes("single")
        // Turn the STACK section (kind 4, the fourth entry at 64) into an unknown kind.
        #expect(bytes[64] == 4)
        bytes[64] = 77
        #expect(throws: CaptureFormatError(section: nil, offset: 12, expected: "a STACK section")) { try CaptureFile(parsing: bytes) }
    }

    @Test("a billion-activation claim is caught before anything is allocated")
    func billionActivations() throws {
        let bytes = replacingSection(try CaptureFixtures.bytes("single"), kind: 3, with: [0x80, 0x94, 0xEB, 0xDC, 0x03])
        let error = try #require(catchError { try CaptureFile(parsing: bytes) })
        #expect(error.section == "ACTIVATIONS")
        #expect(error.expected == "the activation count of at most 0, found 1000000000")
    }

    @Test("a stack segment claiming more bytes than the file has is rejected")
    func segmentPastEnd() throws {
        // One segment at 0x1000 claiming 2^40 bytes.
        let bytes = replacingSection(try CaptureFixtures.bytes("single"), kind: 4,
                                     with: [1, 0, 0x10, 0, 0, 0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20])
        let error = try #require(catchError { try CaptureFile(parsing: bytes) })
        #expect(error.section == "STACK")
        #expect(error.expected == "stack segment 0's length of at most 6, found 1099511627776")
    }

    @Test("a frame chain leaving the captured memory stops with the frames before it")
    func chainLeavesMemory() throws {
        var file = try capture()
        let stack = file.stack[0]
        file.activations[0].entryFramePointer = stack.range.upperBound + 0x1000
        // The outermost frame's saved fp points past the captured bytes.
        let outermost = try CapturedStack(capture()).backtrace().frames.last!.framePointer
        var bytes = stack.bytes
        let offset = Int(outermost - stack.baseAddress)
        withUnsafeBytes(of: UInt64(stack.range.upperBound + 0x100).littleEndian) { bytes.replaceSubrange(offset..<(offset + 8), with: $0) }
        file.stack[0].bytes = bytes
        let trace = try CapturedStack(file).backtrace()
        #expect(trace.frames.count == 4)
        #expect(trace.error == .framePointerOutsideStack(fp: stack.range.upperBound + 0x100, stack: stack.range))
    }

    @Test("a cycle in the captured chain stops with the frames before it")
    func cycle() throws {
        var file = try capture()
        let frames = try CapturedStack(file).backtrace().frames
        let second = frames[1].framePointer
        let offset = Int(second - file.stack[0].baseAddress)
        withUnsafeBytes(of: UInt64(second).littleEndian) { file.stack[0].bytes.replaceSubrange(offset..<(offset + 8), with: $0) }
        let trace = try CapturedStack(file).backtrace()
        #expect(trace.frames.count == 2)
        #expect(trace.error == .framePointerDidNotAdvance(fp: second))
    }

    @Test("a misaligned frame pointer is rejected before it is read")
    func misaligned() throws {
        var file = try capture()
        file.activations[0].startFramePointer += 8
        let trace = try CapturedStack(file).backtrace()
        #expect(trace.frames.isEmpty)
        #expect(trace.error == .misalignedFramePointer(fp: file.activations[0].startFramePointer, alignment: 16))
    }

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

func catchError(_ body: () throws -> Any) -> CaptureFormatError? {
    do {
        _ = try body()
        return nil
    } catch let error as CaptureFormatError {
        return error
    } catch {
        return nil
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
    }
}
