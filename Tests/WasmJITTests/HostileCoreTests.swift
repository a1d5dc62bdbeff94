import Foundation
import StackCapture
import Testing
@_spi(Tools) import WasmUnwind
import UnwindReports

/// A core file, the executable beside it, and the memory the crashed
/// process left are all hostile input: every copy of a real core that is
/// truncated, bit-flipped or has fields at extreme values, and every value
/// a crashed process can leave in the descriptor's lists and records, is
/// read or refused with an error — never a crash, a hang or unbounded work.
@Suite("Crafted cores, executables and process memory", .serialized,
       .enabled(if: CoreFiles.refusal == nil, CoreFiles.refusal.map { Comment(rawValue: $0) } ?? ""))
struct HostileCoreTests {
    /// A kernel core of `run fixtures/crash/nested-crash.wat` (a crash in a
    /// host function under two activations), made once per test process.
    struct RealCore {
        let bytes: [UInt8]
        let core: CoreFile
        let descriptorAddress: UInt
        /// Exactly what the reader read of it, and each read.
        let recording: ProcessRecording
        let reads: [Range<UInt>]
    }

    nonisolated(unsafe) static var cached: RealCore?

    static func realCore() throws -> RealCore {
        if let cached { return cached }
        let directory = try temporaryDirectory("hostile-core")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = try crashCore(in: directory, [PackagePaths.cli, "run", PackagePaths.fixture("crash/nested-crash.wat"), "--invoke", "main"])
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let core = try CoreFile(bytes: bytes)
        let recorder = ReadRecorder(core)
        let address = try PostMortem.descriptorAddress(in: recorder, executable: try InputBytes(path: PackagePaths.cli))
        let threads = try PostMortem.threads(of: recorder, descriptorAt: address, program: "wasm-unwind")
        #expect(threads.count == 1)
        let made = RealCore(bytes: bytes, core: core, descriptorAddress: address,
                            recording: ProcessRecording(of: core, descriptorAddress: address, reads: recorder.reads),
                            reads: recorder.reads)
        cached = made
        return made
    }

    /// Reads a process image as `dump` does: the threads with wasm, each
    /// walked, symbolicated and rendered. Returns the error's text, or nil.
    @discardableResult
    static func read(_ process: some ProcessImage, descriptorAt address: UInt) -> String? {
        do {
            for thread in try PostMortem.threads(of: process, descriptorAt: address, program: "wasm-unwind") {
                let stack = try CapturedStack(thread.capture)
                let trace = stack.backtrace(limits: WalkLimits(maximumFrames: 100_000, maximumActivations: 10_000))
                _ = TextFormatter().render(stack.dump(file: "mutated", backtrace: trace, roots: true))
            }
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// A deterministic generator, so a failure names a mutation that
    /// reproduces.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test("1,900 mutated copies of a real core: truncated, bit-flipped, fields at extreme values — each read or refused")
    func mutatedCores() throws {
        let real = try Self.realCore()
        let bytes = real.bytes
        func u64(_ at: Int) -> Int { Int(bytes[at..<(at + 8)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }) }
        let phoff = u64(32), phnum = Int(bytes[56]) | Int(bytes[57]) << 8
        let headersEnd = phoff + 56 * phnum
        let notes = (0..<phnum).map { phoff + 56 * $0 }.first { bytes[$0] == 4 }.map { (u64($0 + 8), u64($0 + 32)) }!
        var generator = Generator(state: 24)
        let input = InputBytes(bytes: bytes, name: "core")
        var mutations: [(String, InputBytes)] = []
        // Truncations: inside the ELF header, the program headers, the
        // notes, and the memory.
        for length in stride(from: 0, to: 64, by: 4) { mutations.append(("cut at \(length)", input.patched(truncatedTo: length))) }
        for _ in 0..<150 {
            let length = Int.random(in: 64..<min(bytes.count, notes.0 + notes.1 + 8192), using: &generator)
            mutations.append(("cut at \(length)", input.patched(truncatedTo: length)))
        }
        // Single bit flips: every bit of the ELF header, and at random in
        // the program headers and the notes.
        func flipped(_ bit: Int) -> InputBytes {
            input.patched([bytes[bit / 8] ^ 1 << UInt8(bit % 8)], at: bit / 8)
        }
        for bit in 0..<(64 * 8) { mutations.append(("flip bit \(bit)", flipped(bit))) }
        for _ in 0..<500 { let bit = Int.random(in: (phoff * 8)..<(headersEnd * 8), using: &generator); mutations.append(("flip bit \(bit)", flipped(bit))) }
        for _ in 0..<500 { let bit = Int.random(in: (notes.0 * 8)..<((notes.0 + notes.1) * 8), using: &generator); mutations.append(("flip bit \(bit)", flipped(bit))) }
        // Fields at extreme values: every 64-bit field of the ELF header and
        // of the first program headers, and the 16-bit counts.
        let extremes: [UInt64] = [0, 1, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, UInt64.max, UInt64.max - 7, UInt64(bytes.count)]
        func setting(_ at: Int, _ size: Int, _ value: UInt64) -> InputBytes {
            input.patched((0..<size).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }, at: at)
        }
        for at in [24, 32, 40] + (0..<min(phnum, 6)).flatMap({ header in [8, 16, 24, 32, 40].map { phoff + 56 * header + $0 } }) {
            for value in extremes { mutations.append(("field at \(at) = \(value)", setting(at, 8, value))) }
        }
        for at in [54, 56, 58, 60, 62] {
            for value: UInt64 in [0, 1, 0xFFFF, 0x7FFF] { mutations.append(("u16 at \(at) = \(value)", setting(at, 2, value))) }
        }
        var read = 0, refused = 0
        for (what, mutated) in mutations {
            guard let core = try? CoreFile(mutated) else {
                refused += 1
                continue
            }
            if Self.read(core, descriptorAt: real.descriptorAddress) == nil { read += 1 } else { refused += 1 }
            _ = what
        }
        #expect(read + refused == mutations.count)
        #expect(mutations.count >= 1_900 && read > 0 && refused > 0, "\(mutations.count) mutations: \(read) read, \(refused) refused")
        // The executable's side, in full, on a sample.
        for (_, mutated) in mutations.prefix(64) {
            if let core = try? CoreFile(mutated) {
                _ = try? PostMortem.threads(of: core, executable: try InputBytes(path: PackagePaths.cli))
            }
        }
    }

    /// The words of the descriptor, its entries and the activation and
    /// limits records (the small regions the reader read), at every value a
    /// crashed process could leave there.
    @Test("every word of the descriptor, its list entries and the records, at hostile values")
    func hostileProcessMemory() throws {
        let real = try Self.realCore()
        let recording = real.recording
        #expect(Self.read(recording, descriptorAt: real.descriptorAddress) == nil, "the recording replays the core")
        let values: [(String, (UInt) -> UInt)] = [
            ("0", { _ in 0 }), ("~0", { _ in .max }), ("~0 - 7", { _ in .max - 7 }), ("8", { _ in 8 }),
            ("bit 63", { $0 ^ (1 << 63) }), ("+8", { $0 &+ 8 }), ("-8", { $0 &- 8 }), ("bit 0", { $0 ^ 1 }),
        ]
        var mutated = 0, refused = 0
        let records = Set(real.reads.filter { $0.count <= 64 })
        for region in records.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            for word in stride(from: 0, to: region.count - 7, by: 8) {
                let address = region.lowerBound + UInt(word)
                let original = recording.word(at: address)!
                for (_, value) in values {
                    let new = value(original)
                    let bytes = (0..<8).map { UInt8(truncatingIfNeeded: new >> (8 * $0)) }
                    guard let changed = recording.replacing(bytes, at: address) else { continue }
                    mutated += 1
                    if Self.read(changed, descriptorAt: real.descriptorAddress) != nil { refused += 1 }
                }
            }
        }
        #expect(mutated >= 300 && refused > 0, "\(mutated) mutations, \(refused) refused")
    }

    @Test("a cyclic thread list and a cyclic module list are refused at the first revisit")
    func cyclicLists() throws {
        let real = try Self.realCore()
        let recording = real.recording
        let descriptor = real.descriptorAddress
        func pointing(_ entry: UInt, to target: UInt) -> ProcessRecording {
            recording.replacing((0..<8).map { UInt8(truncatingIfNeeded: target >> (8 * UInt($0))) }, at: entry)!
        }
        let threadHead = try #require(recording.word(at: descriptor + 40))
        let moduleHead = try #require(recording.word(at: descriptor + 24))
        let started = ContinuousClock.now
        let threads = try #require(Self.read(pointing(threadHead, to: threadHead), descriptorAt: descriptor))
        #expect(threads.contains("the thread list has a cycle: it comes back to \(hex(threadHead)) after 1 entries"), "\(threads)")
        let modules = try #require(Self.read(pointing(moduleHead, to: moduleHead), descriptorAt: descriptor))
        #expect(modules.contains("the module list has a cycle"), "\(modules)")
        #expect(ContinuousClock.now - started < .seconds(10), "a cycle took \(ContinuousClock.now - started)")
    }
}

/// The executable is hostile too: a corrupt `--exe` is refused with an
/// error that names it, never a crash.
@Suite("Crafted executables")
struct HostileExecutableTests {
    /// A small executable with the descriptor's symbol, built with the
    /// system's C compiler.
    static func smallExecutable(in directory: URL) throws -> [UInt8] {
        let source = directory.appendingPathComponent("program.c")
        try "unsigned long wasm_unwind_debug_descriptor[7];\nint main(void) { return (int)wasm_unwind_debug_descriptor[0]; }\n"
            .write(to: source, atomically: true, encoding: .utf8)
        let output = directory.appendingPathComponent("program").path
        let compiled = try runChild("/usr/bin/cc", ["-Wl,--build-id", "-o", output, source.path])
        try #require(compiled.status == 0, "\(compiled.stderr)")
        return try [UInt8](Data(contentsOf: URL(fileURLWithPath: output)))
    }

    @Test("every bit of the headers flipped, and header and section fields at extreme values")
    func mutatedExecutables() throws {
        let directory = try temporaryDirectory("hostile-exe")
        defer { try? FileManager.default.removeItem(at: directory) }
        let bytes = try Self.smallExecutable(in: directory)
        let original = try ELFExecutable(InputBytes(bytes: bytes, name: "program"))
        #expect(try original.symbol("wasm_unwind_debug_descriptor") != nil)
        #expect(original.buildID?.count == 20)
        func u64(_ at: Int) -> Int { Int(bytes[at..<(at + 8)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }) }
        let shoff = u64(40), shnum = Int(bytes[60]) | Int(bytes[61]) << 8
        var mutations: [[UInt8]] = []
        for bit in 0..<(64 * 8) {
            var copy = bytes
            copy[bit / 8] ^= 1 << UInt8(bit % 8)
            mutations.append(copy)
        }
        let extremes: [UInt64] = [0, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, UInt64.max, UInt64(bytes.count)]
        let fields = [24, 32, 40] + (0..<shnum).flatMap { section in [24, 32].map { shoff + 64 * section + $0 } }
        for at in fields {
            for value in extremes {
                var copy = bytes
                for index in 0..<8 { copy[at + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(index))) }
                mutations.append(copy)
            }
        }
        for length in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 200)) { mutations.append(Array(bytes.prefix(length))) }
        var refused = 0
        for mutated in mutations {
            do {
                let executable = try ELFExecutable(InputBytes(bytes: mutated, name: "program"))
                _ = try executable.symbol("wasm_unwind_debug_descriptor")
            } catch {
                refused += 1
                #expect("\(error)".hasPrefix("program: "), "\(error)")
            }
        }
        #expect(refused > 0 && refused < mutations.count, "\(refused) of \(mutations.count) refused")
    }
}
