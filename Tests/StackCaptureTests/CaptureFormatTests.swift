import Foundation
import StackCapture
import Testing
import WasmUnwind
import UnwindReports
import WasmDWARF

/// The committed captures, read as bytes (the format alone: no JIT, no CLI).
enum CaptureFixtures {
    static let root = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func bytes(_ name: String) throws -> [UInt8] {
        try [UInt8](Data(contentsOf: root.appendingPathComponent("fixtures/captures/\(name).capture")))
    }

    static func regression(_ name: String) throws -> [UInt8] {
        try [UInt8](Data(contentsOf: root.appendingPathComponent("fixtures/fuzz-regressions/\(name)")))
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
        #expect(throws: CaptureFormatError(section: nil, offset: 8, expected: "major version 2 (this reader reads 2.2), found 3.0")) {
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
        // The same NOTE with two bytes appended: an error for this version,
        // ignored for the next minor version.
        let longer = replacingSection(bytes, kind: 8, with: [5] + Array("extra".utf8) + [0xAB, 0xCD])
        let error = try #require(catchError { try CaptureFile(parsing: longer) })
        #expect(error.section == "NOTE" && error.expected == "the section to end here (2 bytes left over)")
        var newer = longer
        newer[10] = UInt8(CaptureFormat.minorVersion + 1)
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

    @Test("what is read writes back to the same bytes, for every committed capture")
    func roundTrip() throws {
        for name in ["single", "nested", "trap", "overflow", "refs", "hybrid", "throw", "lines"] {
            let bytes = try CaptureFixtures.bytes(name)
            #expect(try CaptureFile(parsing: bytes).serialized() == bytes, "\(name)")
        }
    }

    @Test("bytes after the last section are a warning with their offset, not an error")
    func trailingBytes() throws {
        let bytes = try CaptureFixtures.bytes("single")
        var warnings: [String] = []
        let file = try CaptureFile(parsing: bytes + [1, 2, 3], warnings: &warnings)
        #expect(file == (try capture()))
        #expect(warnings == ["3 bytes after the last section, from byte \(bytes.count), were ignored"])
    }

    @Test("every range a reader uses later is checked: the .eh_frame must lie in the code after the functions")
    func ehFrameRange() throws {
        var file = try capture()
        file.modules[0].ehFrame.baseAddress = file.modules[0].codeBase - 0x100
        let error = try #require(catchError { try CaptureFile(parsing: file.serialized()) })
        #expect(error.section == "MODULE")
        #expect(error.expected.hasPrefix("the .eh_frame at "))
        // The fixture fuzzing found: one flipped address byte.
        #expect(throws: CaptureFormatError.self) { try CaptureFile(parsing: CaptureFixtures.regression("eh-frame-below-code.capture")) }
    }

    @Test("stubs must be sorted, disjoint and clear of the functions")
    func stubRanges() throws {
        var file = try capture()
        let function = file.modules[0].functions[0].codeRange
        file.modules[0].stubs[0].codeRange = function.lowerBound..<(function.lowerBound + 4)
        let error = try #require(catchError { try CaptureFile(parsing: file.serialized()) })
        #expect(error.section == "MODULE")
        #expect(error.expected.contains("to be sorted and to overlap no function or stub"))
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

@Suite("Captured stacks: module identity and carried DWARF (MODULE_DEBUG)")
struct ModuleDebugSectionTests {
    /// Reads a capture as `dump` does with source lines: parse, walk,
    /// look up every frame's lines in the DWARF it carries, render.
    func readWithLines(_ bytes: [UInt8]) -> String {
        do {
            let stack = try CapturedStack(CaptureFile(parsing: bytes))
            let backtrace = stack.symbolicated()
            let (symbols, problems) = stack.sourceSymbols(of: backtrace, search: try DebugFileSearch(files: [], directories: []),
                                                          captureDirectory: nil)
            _ = TextFormatter().renderDetails(backtrace, symbols ?? [])
            if !problems.isEmpty { return "diagnostic" }
            return symbols == nil ? "no lines" : "lines"
        } catch {
            return "error"
        }
    }

    @Test("the committed capture of a -g program carries its identity and DWARF, and its frames have their source lines")
    func carried() throws {
        let file = try CaptureFile(parsing: CaptureFixtures.bytes("lines"))
        let debug = try #require(file.modules.first?.debug)
        #expect(debug.identity.buildID?.count == 16 && debug.identity.contentHash.count == 32 && debug.sections != nil)
        let stack = try CapturedStack(file)
        let backtrace = stack.symbolicated()
        let (symbols, problems) = stack.sourceSymbols(of: backtrace, search: try DebugFileSearch(files: [], directories: []),
                                                      captureDirectory: nil)
        #expect(problems.isEmpty)
        #expect(symbols?.map { $0.map { "\($0.name ?? "?") \($0.file ?? "?"):\($0.line ?? 0)" } }
                == [["pick ./fixtures/c-lines/crash.c:6", "middle ./fixtures/c-lines/crash.c:9"], ["run ./fixtures/c-lines/crash.c:12"]])
    }

    @Test("a broken walk's source-line display ends with the error line the plain display ends with (it dropped it before)")
    func brokenWalkKeepsItsError() throws {
        let stack = try CapturedStack(CaptureFile(parsing: CaptureFixtures.bytes("lines")))
        let backtrace = stack.registry.symbolicate(stack.backtrace(limits: WalkLimits(maximumFrames: 1, maximumActivations: 10)))
        let symbols = try #require(stack.sourceSymbols(of: backtrace, search: try DebugFileSearch(files: [], directories: []),
                                                       captureDirectory: nil).symbols)
        let plain = backtrace.rendered().split(separator: "\n").last.map(String.init)
        let details = TextFormatter().renderDetails(backtrace, symbols).split(separator: "\n").last.map(String.init)
        #expect(plain?.hasPrefix("backtrace incomplete after 1 frames") == true, "\(backtrace.rendered())")
        #expect(details == plain)
    }

    /// The capture with its MODULE_DEBUG section's body replaced.
    func withBody(_ body: [UInt8]) throws -> [UInt8] {
        let bytes = try CaptureFixtures.bytes("lines")
        return CaptureCorruptionTests().replacingSection(bytes, kind: 10, with: body)
    }

    @Test("a MODULE_DEBUG section for a module the capture does not have, with unknown flags, or carrying sections that are not wasm is an error naming the section and byte")
    func corrupt() throws {
        var writer = ByteWriter()
        writer.writeULEB(3)  // the capture has one module
        writer.write(UInt8(0))
        writer.writeULEB(100)
        writer.write([UInt8](repeating: 1, count: 32))
        let elsewhere = try #require(catchError { try CaptureFile(parsing: try withBody(writer.bytes)) })
        #expect(elsewhere.section == "MODULE_DEBUG" && elsewhere.expected.contains("found one for module 3"), "\(elsewhere)")
        let flags = try #require(catchError { try CaptureFile(parsing: try withBody([0, 0x18])) })
        #expect(flags.section == "MODULE_DEBUG" && flags.expected == "flags of at most 1 | 2 | 4, found 24", "\(flags)")
        var notWasm = ByteWriter()
        notWasm.writeULEB(0)
        notWasm.write(UInt8(4))
        notWasm.writeULEB(100)
        notWasm.write([UInt8](repeating: 1, count: 32))
        notWasm.writeULEB(8)
        notWasm.write(Array("notwasm!".utf8))
        let sections = try #require(catchError { try CaptureFile(parsing: try withBody(notWasm.bytes)) })
        #expect(sections.section == "MODULE_DEBUG" && sections.expected.contains("the debug sections as a wasm binary: the wasm magic"),
                "\(sections)")
        let bytes = try CaptureFixtures.bytes("lines")
        for length in stride(from: 0, to: bytes.count, by: 3) {
            #expect(throws: CaptureFormatError.self, "length \(length)") { try CaptureFile(parsing: Array(bytes.prefix(length))) }
        }
    }

    @Test("flipping any byte of a capture carrying DWARF: an error, a reading with lines, or one diagnostic; never a crash")
    func byteFlips() throws {
        let bytes = try CaptureFixtures.bytes("lines")
        #expect(readWithLines(bytes) == "lines")
        var outcomes: [String: Int] = [:]
        for index in bytes.indices {
            var flipped = bytes
            flipped[index] ^= 0xFF
            outcomes[readWithLines(flipped), default: 0] += 1
        }
        #expect(outcomes.values.reduce(0, +) == bytes.count)
        #expect((outcomes["error"] ?? 0) > 0 && (outcomes["lines"] ?? 0) > 0 && (outcomes["diagnostic"] ?? 0) > 0, "\(outcomes)")
    }
}

@Suite("Module identity: SHA-256")
struct ContentHashTests {
    @Test("FIPS 180-4's test vectors, across the padding boundaries (55, 56, 64 bytes), and sha256sum on the committed captures")
    func vectors() throws {
        func hex(_ bytes: [UInt8]) -> String { ModuleIdentity.hex(ContentHash.sha256(bytes)) }
        #expect(hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(hex([UInt8](repeating: 0x61, count: 1_000_000)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        for name in ["single", "lines", "overflow"] {
            let path = CaptureFixtures.root.appendingPathComponent("fixtures/captures/\(name).capture").path
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
            process.arguments = [path]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(String(output.prefix(64)) == hex(try CaptureFixtures.bytes(name)), "\(name)")
        }
    }
}

@Suite("Captured stacks: round trip")
struct CaptureRoundTripTests {
    @Test("handler scopes no stack map names yet still round-trip (the capture fuzzer found a module whose scopes were dropped on writing)")
    func unreferencedHandlerScopes() throws {
        var warnings: [String] = []
        let file = try CaptureFile(parsing: CaptureFixtures.regression("unreferenced-handler-scopes.capture"), warnings: &warnings)
        #expect(file.modules.contains { !$0.stackMaps.handlerScopes.isEmpty && !$0.stackMaps.hasHandlers })
        #expect(try CaptureFile(parsing: file.serialized()) == file)
    }
}
