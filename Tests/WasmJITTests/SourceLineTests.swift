import Foundation
import Testing
@testable import Verification
import WasmDWARF
import WasmJIT
import WasmUnwind

/// Source lines from the modules' DWARF, checked against tools nobody
/// here wrote: Wasmtime 50 with WASMTIME_BACKTRACE_DETAILS=1 (the trap
/// display, frame for frame and symbol for symbol) and `wasm-tools
/// addr2line` (every instruction offset of every fixture), on the C and C++
/// fixtures built with -g at -O0, -O1, -O2 and with DWARF 5.
@Suite("Source lines from DWARF")
struct SourceLineTests {
    static func debugFixtures() throws -> [String] {
        let directory = try CProgramTests.directory() + "/debug"
        return try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".wasm") }.sorted()
            .map { directory + "/" + $0 }
    }

    /// fixtures/rust built by Debian's rustc with -g at opt-levels 0 to 2
    /// (scripts/build-rust-fixtures.sh), once per test process.
    static let rust = FixtureBuild("build-rust-fixtures.sh")

    static func rustFixtures() throws -> [String] {
        let directory = try rust.directory()
        return try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".wasm") }.sorted()
            .map { directory + "/" + $0 }
    }

    static var wasmTools: String { PackagePaths.root.appendingPathComponent(".venv/bin/wasm-tools").path }

    /// `wasm-tools addr2line` at module offsets: per offset, its lines
    /// (`name file:line:column`, innermost first), empty when it found none.
    static func addr2line(_ path: String, _ offsets: [Int]) throws -> [Int: [String]] {
        var result: [Int: [String]] = [:]
        // One process per few hundred offsets.
        for chunk in stride(from: 0, to: offsets.count, by: 400).map({ Array(offsets[$0..<min($0 + 400, offsets.count)]) }) {
            let run = try runChild(wasmTools, ["addr2line", path] + chunk.map { "0x" + String($0, radix: 16) })
            #expect(run.status == 0, "wasm-tools addr2line: \(run.stderr)")
            var current: Int?
            for line in run.stdout.split(separator: "\n", omittingEmptySubsequences: true) {
                if line.hasPrefix("0x"), let colon = line.firstIndex(of: ":"),
                   let offset = Int(line[line.index(line.startIndex, offsetBy: 2)..<colon], radix: 16) {
                    current = offset
                    let rest = line[line.index(after: colon)...].drop { $0 == " " }
                    result[offset] = rest.hasPrefix("no dwarf frames") ? [] : [String(rest)]
                } else if let current {
                    result[current, default: []].append(line.drop { $0 == "\t" || $0 == " " }.description)
                }
            }
        }
        return result
    }

    /// Our symbols in `wasm-tools addr2line`'s form (which demangles Rust
    /// names without their `::h0123456789abcdef` hash; Wasmtime's display
    /// and ours keep it).
    static func addr2lineForm(_ symbols: [SourceSymbol]) -> [String] {
        func withoutHash(_ name: String) -> String {
            let parts = name.split(separator: "::", omittingEmptySubsequences: false)
            guard let last = parts.last, last.count == 17, last.first == "h",
                  last.dropFirst().allSatisfy(\.isHexDigit) else { return name }
            return parts.dropLast().joined(separator: "::")
        }
        return symbols.map { symbol in
            "\(symbol.name.map { withoutHash(Demangling.demangle($0)) } ?? "??") \(symbol.file ?? "??")"
                + (symbol.line.map { ":\($0):\(symbol.column ?? 0)" } ?? "")
        }
    }

    @Test("wasm-tools addr2line agrees at every instruction offset of every -g fixture (DWARF 4 and 5, -O0 to -O2)")
    func everyInstruction() throws {
        let engine = Engine()
        var compared = 0, withLines = 0, inlined = 0
        for path in try Self.debugFixtures() {
            let binary = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            let module = try Module(engine: engine, binary: binary)
            let info = try ModuleDebugInfo(module: binary)
            let offsets = Set(module.codeModule.functions.flatMap { $0.addressMap.compactMap { $0.moduleOffset.map(Int.init) } }).sorted()
            let theirs = try Self.addr2line(path, offsets)
            for offset in offsets {
                let ours = Self.addr2lineForm(info.symbols(atModuleOffset: UInt32(offset)))
                compared += 1
                if !ours.isEmpty { withLines += 1 }
                if ours.count > 1 { inlined += 1 }
                #expect(ours == theirs[offset] ?? [], "\(path) at 0x\(String(offset, radix: 16)): ours \(ours), wasm-tools \(theirs[offset] ?? [])")
            }
            #expect(info.diagnostic == nil, "\(path): \(info.diagnostic!)")
        }
        print("addr2line: \(compared) offsets compared, \(withLines) with lines, \(inlined) in inlined functions")
        #expect(compared > 5_000 && withLines > compared / 2 && inlined > 100)
    }

    /// llvm-dwarfdump's location-list entries that are exactly one wasm
    /// local or operand (`DW_OP_WASM_location 0x0 N` or `0x2 N`, then at most
    /// `DW_OP_stack_value`): per code address where one starts inside the
    /// variable's function (a subprogram or an inlined subroutine: a
    /// debugger shows a function's variables where it runs), per place,
    /// the names of the variables it says are there.
    static func dwarfdumpLocals(_ path: String) throws -> [UInt64: [WasmPlace: Set<String>]] {
        let run = try runChild("/usr/bin/llvm-dwarfdump", ["--debug-info", path])
        #expect(run.status == 0, "llvm-dwarfdump: \(run.stderr)")
        var result: [UInt64: [WasmPlace: Set<String>]] = [:]
        struct DIE { var depth: Int; var tag: String; var ranges: [Range<UInt64>] = []; var name: String?; var entries: [(UInt64, WasmPlace)] = [] }
        var open: [DIE] = []
        var attribute = ""
        func close(above depth: Int) {
            while let last = open.last, last.depth >= depth {
                open.removeLast()
                guard let name = last.name, ["DW_TAG_formal_parameter", "DW_TAG_variable"].contains(last.tag),
                      let function = open.last(where: { ["DW_TAG_subprogram", "DW_TAG_inlined_subroutine"].contains($0.tag) }) else { continue }
                for (address, local) in last.entries where function.ranges.contains(where: { $0.contains(address) }) {
                    result[address, default: [:]][local, default: []].insert(name)
                }
            }
        }
        func quoted(_ line: Substring) -> String? {
            guard let first = line.firstIndex(of: "\""), let last = line.lastIndex(of: "\""), first < last else { return nil }
            return String(line[line.index(after: first)..<last])
        }
        func hex(_ text: some StringProtocol) -> UInt64? { UInt64(text.trimmingCharacters(in: .whitespaces).dropFirst(2), radix: 16) }
        for line in run.stdout.split(separator: "\n") {
            let text = line.drop { $0 == " " }
            if text.hasPrefix("0x"), let colon = text.firstIndex(of: ":") {
                let rest = text[text.index(after: colon)...]
                let depth = rest.prefix { $0 == " " }.count
                close(above: depth)
                open.append(DIE(depth: depth, tag: rest.trimmingCharacters(in: .whitespaces)))
                attribute = ""
            } else if text.hasPrefix("DW_AT_") {
                attribute = String(text.prefix { $0 != "\t" && $0 != " " })
                if attribute == "DW_AT_name" || (attribute == "DW_AT_abstract_origin" && open.last?.name == nil) { open[open.count - 1].name = quoted(text) }
                if attribute == "DW_AT_low_pc", let low = hex(text.drop { $0 != "(" }.dropFirst().prefix { $0 != ")" }) {
                    open[open.count - 1].ranges = [low..<low]
                }
                if attribute == "DW_AT_high_pc", let range = open.last?.ranges.first,
                   let high = hex(text.drop { $0 != "(" }.dropFirst().prefix { $0 != ")" }) {
                    open[open.count - 1].ranges = [range.lowerBound..<max(range.lowerBound, high)]
                }
            } else if text.hasPrefix("["), let close = text.firstIndex(of: ")"), !open.isEmpty {
                let bounds = text.dropFirst()[..<close].split(separator: ",")
                guard bounds.count == 2, let start = hex(bounds[0]), let end = hex(bounds[1]) else { continue }
                if attribute == "DW_AT_ranges" { open[open.count - 1].ranges.append(start..<max(start, end)); continue }
                guard attribute == "DW_AT_location" else { continue }
                let expression = text[text.index(after: close)...].dropFirst().trimmingCharacters(in: .whitespaces)
                    .trimmingCharacters(in: CharacterSet(charactersIn: ")"))
                let parts = expression.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                let words = parts.first?.split(separator: " ") ?? []
                guard words.count == 3, words[0] == "DW_OP_WASM_location", words[1] == "0x0" || words[1] == "0x2",
                      parts.count == 1 || (parts.count == 2 && parts[1] == "DW_OP_stack_value"),
                      let index = UInt32(words[2].dropFirst(2), radix: 16) else { continue }
                open[open.count - 1].entries.append((start, words[1] == "0x0" ? .local(index) : .operand(index)))
            }
        }
        close(above: 0)
        return result
    }

    @Test("DWARF variables name wasm locals as llvm-dwarfdump reads them: every location-list entry in one local or operand, C fixtures (DWARF 4 and 5, -O1/-O2) and Rust")
    func variableNames() throws {
        var compared = 0, operands = 0
        for path in try Self.debugFixtures() + Self.rustFixtures() {
            let info = try ModuleDebugInfo(module: try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))))
            let codeStart = UInt64(try #require(info.codeStart))
            // Dead code's entries (wasm-ld's tombstone addresses) are at no offset.
            for (address, locals) in try Self.dwarfdumpLocals(path) {
                guard let offset = UInt32(exactly: codeStart + address) else { continue }
                let ours = info.variables(atModuleOffset: offset)
                for (place, names) in locals {
                    compared += 1
                    if case .operand = place { operands += 1 }
                    #expect(names.isSubset(of: ours[place] ?? []),
                            "\(path) at 0x\(String(address, radix: 16)): \(place) is \(names.sorted()) to llvm-dwarfdump, \(ours[place] ?? []) to us")
                }
            }
            #expect(info.diagnostic == nil, "\(path): \(info.diagnostic!)")
        }
        print("DWARF variables: \(compared) location-list entries compared with llvm-dwarfdump, \(operands) of them operands")
        #expect(compared > 300 && operands > 100)
    }

    /// Every fixture in `paths`, each with its calls (`CFixtureCalls`), on
    /// our runtime with backtrace details and on Wasmtime 50 with
    /// WASMTIME_BACKTRACE_DETAILS=1.
    static func compareDetails(_ paths: [String], mode: ExitRecording) throws -> WasmtimeComparison.Summary {
        let comparison = try WasmtimeComparison(python: WasmtimeOracleTests.python,
                                                script: PackagePaths.root.appendingPathComponent("scripts/wasmtime-oracle.py").path,
                                                configuration: detailsConfiguration(mode))
        var summary = WasmtimeComparison.Summary()
        for path in paths {
            let file = URL(fileURLWithPath: path).lastPathComponent
            comparison.compare(file: path, calls: CFixtureCalls.calls[CFixtureCalls.program(ofFile: file)]!, into: &summary)
        }
        return summary
    }

    static func detailsConfiguration(_ mode: ExitRecording) -> Engine.Configuration {
        var configuration = Engine.Configuration(exitRecording: mode)
        configuration.backtraceDetails = true
        return configuration
    }

    @Test("Wasmtime 50 with WASMTIME_BACKTRACE_DETAILS=1: every trap of every -g fixture displays the same functions, files, lines and columns",
          arguments: exitRecordingModes)
    func wasmtimeDetails(mode: ExitRecording) throws {
        let summary = try Self.compareDetails(try Self.debugFixtures(), mode: mode)
        WasmtimeOracleTests.report(summary)
        #expect(summary.mismatches.isEmpty)
        #expect(summary.traps >= 60 && summary.detailFramesCompared >= 300, "\(summary.traps) traps, \(summary.detailFramesCompared) frames")
        // Where our first frame is the `unreachable` and Wasmtime's the
        // branch before it, our symbols are what wasm-tools says at ours.
        for (path, offset, display) in summary.detailsAtOurOffset {
            let theirs = try Self.addr2line(path, [offset])[offset] ?? []
            let ours = display.compactMap { line -> String? in
                let text = line.drop { $0 == " " }
                return text.hasPrefix("at ") ? String(text.dropFirst(3)) : nil
            }
            let lines = theirs.map { String($0.split(separator: " ").last ?? "") }
            #expect(ours.map { $0.split(separator: ":").count == 2 ? $0 + ":0" : $0 } == lines,
                    "\(path) @ 0x\(String(offset, radix: 16)): ours \(display), wasm-tools \(theirs)")
        }
        print("details (\(mode)): \(summary.traps) traps, \(summary.detailFramesCompared) frames compared, \(summary.detailsAtOurOffset.count) first frames checked with wasm-tools")
    }

    /// The Swift toolchain's llvm-symbolizer, if it ships one.
    static var llvmSymbolizer: String? {
        let path = ProcessInfo.processInfo.environment["PATH", default: ""].split(separator: ":")
            .map { "\($0)/swift" }.first { FileManager.default.isExecutableFile(atPath: $0) }
            .map { URL(fileURLWithPath: $0).resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("llvm-symbolizer").path }
        return path.flatMap { FileManager.default.isExecutableFile(atPath: $0) ? $0 : nil }
    }

    @Test("llvm-symbolizer (the Swift toolchain's) agrees on the lines of every inlined frame at every instruction of the C fixtures and the Rust program's own functions",
          .enabled(if: llvmSymbolizer != nil, "no llvm-symbolizer next to swift"))
    func llvmSymbolizerAgrees() throws {
        let symbolizer = try #require(Self.llvmSymbolizer)
        var compared = 0, inlined = 0
        for path in try Self.debugFixtures() + Self.rustFixtures() {
            let binary = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            let module = try Module(engine: Engine(), binary: binary)
            let info = try ModuleDebugInfo(module: binary)
            let codeStart = try #require(info.codeStart)
            let own = module.codeModule.functions.filter { function in
                !path.contains("rust") || (function.name.map { $0.contains("panics") || !$0.hasPrefix("_ZN") } ?? false)
            }
            let offsets = Set(own.flatMap { $0.addressMap.compactMap { $0.moduleOffset.map(Int.init) } }).sorted()
            // llvm-symbolizer takes code-section addresses, as DWARF has them.
            for chunk in stride(from: 0, to: offsets.count, by: 500).map({ Array(offsets[$0..<min($0 + 500, offsets.count)]) }) {
                let run = try runChild(symbolizer, ["--obj=\(path)", "--inlines", "--output-style=JSON"]
                                       + chunk.map { "0x" + String($0 - codeStart, radix: 16) })
                #expect(run.status == 0, "llvm-symbolizer: \(run.stderr)")
                let answers = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [[String: Any]])
                #expect(answers.count == chunk.count)
                for (offset, answer) in zip(chunk, answers) {
                    // Line 0 is "no line": its column means nothing either.
                    let theirs = (answer["Symbol"] as? [[String: Any]] ?? []).compactMap { symbol -> String? in
                        guard let file = symbol["FileName"] as? String, !file.isEmpty else { return nil }
                        let line = symbol["Line"] as? Int ?? 0
                        return "\(file):\(line):\(line == 0 ? 0 : symbol["Column"] as? Int ?? 0)"
                    }
                    let ours = info.symbols(atModuleOffset: UInt32(offset)).map { symbol in
                        "\(symbol.file ?? "?"):\(symbol.line ?? 0):\(symbol.line == nil ? 0 : symbol.column ?? 0)"
                    }
                    compared += 1
                    if ours.count > 1 { inlined += 1 }
                    #expect(ours == theirs, "\(path) at 0x\(String(offset, radix: 16)): ours \(ours), llvm-symbolizer \(theirs)")
                }
            }
        }
        print("llvm-symbolizer: \(compared) offsets compared, \(inlined) with inlined frames")
        #expect(compared > 5_000 && inlined > 500, "\(compared) offsets, \(inlined) inlined")
    }

    @Test("Rust panics (rustc 1.63, -g, opt-levels 0 to 2): Wasmtime 50's details display, frame for frame through std's panic machinery, with Rust names and lines",
          arguments: exitRecordingModes)
    func rustPanics(mode: ExitRecording) throws {
        let fixtures = try Self.rustFixtures()
        let summary = try Self.compareDetails(fixtures, mode: mode)
        WasmtimeOracleTests.report(summary)
        #expect(summary.mismatches.isEmpty)
        // Three panics per opt-level (the second and third of an instance
        // abort early in std: a panic while its count says panicking, as
        // in Wasmtime — the instance is shared, as the oracle's).
        #expect(fixtures.count == 3 && summary.traps == 9 && summary.detailFramesCompared >= 60,
                "\(summary.traps) traps, \(summary.detailFramesCompared) frames")
        // What a Rust developer reads: the panic machinery by name, the
        // program's own frames with their lines.
        let engine = Engine(configuration: Self.detailsConfiguration(mode))
        let module = try Module(engine: engine, binary: [UInt8](Data(contentsOf: URL(fileURLWithPath: fixtures[1]))))
        let instance = try Instance(store: Store(engine: engine), module: module)
        do {
            _ = try instance.export("unwrap_none")!.call([.i32(3)])
            Issue.record("no panic")
        } catch let trap as Trap {
            let text = trap.description
            for expected in ["core::panicking::panic::", "rust_begin_unwind", "std::panicking::begin_panic_handler::{{closure}}",
                             "core::option::Option<T>::unwrap", "                - unwrap_none", "/fixtures/rust/panics.rs:39:5"] {
                #expect(text.contains(expected), "\(expected) in\n\(text)")
            }
        }
        print("rust (\(mode)): \(summary.traps) panics, \(summary.detailFramesCompared) frames identical to Wasmtime's")
    }

    @Test("wasm-tools addr2line agrees on the Rust fixtures: every instruction of the program's own functions and a sample of std's")
    func rustAddr2line() throws {
        var compared = 0, inlined = 0
        for path in try Self.rustFixtures() {
            let binary = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            let module = try Module(engine: Engine(), binary: binary)
            let info = try ModuleDebugInfo(module: binary)
            var offsets: [Int] = []
            for (position, function) in module.codeModule.functions.enumerated() {
                let own = function.name.map { $0.contains("panics") || !$0.hasPrefix("_ZN") } ?? false
                guard own || position % 25 == 0 else { continue }
                offsets += function.addressMap.compactMap { $0.moduleOffset.map(Int.init) }
            }
            offsets = Set(offsets).sorted()
            let theirs = try Self.addr2line(path, offsets)
            for offset in offsets {
                let ours = Self.addr2lineForm(info.symbols(atModuleOffset: UInt32(offset)))
                compared += 1
                if ours.count > 1 { inlined += 1 }
                #expect(ours == theirs[offset] ?? [], "\(path) at 0x\(String(offset, radix: 16)): ours \(ours), wasm-tools \(theirs[offset] ?? [])")
            }
            #expect(info.diagnostic == nil)
        }
        print("rust addr2line: \(compared) offsets compared, \(inlined) in inlined functions")
        #expect(compared > 1_000 && inlined > 50, "\(compared) offsets, \(inlined) inlined")
    }

    @Test("a trap prints Wasmtime's hint when a module has DWARF and details are off, and source lines when they are on")
    func hintAndDetails() throws {
        let path = try Self.debugFixtures().first { $0.hasSuffix("shapes-O2.wasm") }!
        let off = try runCLI(["run", path, "--invoke", "degenerate", "0"])
        #expect(off.stderr.contains("note: using the `WASMTIME_BACKTRACE_DETAILS=1` environment variable may show more debugging information"))
        #expect(!off.stderr.contains("                    at "))
        let on = try runCLI(["run", path, "--invoke", "degenerate", "0", "--backtrace-details"])
        #expect(on.stderr.contains("                    at ") && on.stderr.contains("shapes.cpp:"), "\(on.stderr)")
        #expect(!on.stderr.contains("note: using"))
        let json = try runCLI(["run", path, "--invoke", "degenerate", "0", "--backtrace-details", "--format", "json"])
        let document = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let frames = ((document?["trap"] as? [String: Any])?["backtrace"] as? [String: Any])?["frames"] as? [[String: Any]]
        let symbols = frames?.first?["symbols"] as? [[String: Any]]
        let firstAt = on.stderr.split(separator: "\n").first { $0.hasPrefix("                    at ") }
        #expect(firstAt.map { String($0.dropFirst(23).split(separator: ":").first!) } == symbols?.first?["file"] as? String,
                "\(on.stderr)")
        // Without DWARF, nothing changes.
        let plain = try runCLI(["run", try CProgramTests.directory() + "/shapes-default.wasm", "--invoke", "degenerate", "0",
                                "--backtrace-details"])
        #expect(!plain.stderr.contains("                    at ") && !plain.stderr.contains("note:"), "\(plain.stderr)")
    }

    @Test("crafted DWARF: truncated and bit-flipped debug sections give lines or one diagnostic naming the section, never a crash")
    func craftedDWARF() throws {
        let path = try Self.debugFixtures().first { $0.hasSuffix("shapes-O1-dwarf5.wasm") }!
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let sections = try WasmSections(parsing: original)
        let codeStart = try #require(sections.codeStart)
        let offsets = stride(from: codeStart, to: codeStart + 600, by: 3).map(UInt32.init)
        var diagnostics: [String: Int] = [:]
        var generator = SystemRandomNumberGenerator()
        var mutated = 0
        for name in [".debug_info", ".debug_abbrev", ".debug_line", ".debug_str_offsets", ".debug_addr", ".debug_rnglists",
                     ".debug_str", ".debug_line_str"] {
            guard let range = sections.custom[name], !range.isEmpty else { continue }
            for round in 0..<150 {
                var bytes = original
                switch round % 3 {
                case 0:  // a bit flipped
                    let at = Int.random(in: range, using: &generator)
                    bytes[at] ^= 1 << UInt8.random(in: 0...7, using: &generator)
                case 1:  // a byte at an extreme
                    bytes[Int.random(in: range, using: &generator)] = [0, 0xff, 0x80, 0x7f].randomElement(using: &generator)!
                default:  // the section's contents cut short (zeros: same layout)
                    let cut = Int.random(in: range, using: &generator)
                    for at in cut..<range.upperBound { bytes[at] = 0 }
                }
                mutated += 1
                guard let info = try? ModuleDebugInfo(module: bytes) else { continue }
                for offset in offsets { _ = info.symbols(atModuleOffset: offset) }
                if let diagnostic = info.diagnostic { diagnostics[diagnostic.section, default: 0] += 1 }
            }
        }
        print("crafted DWARF: \(mutated) mutated modules, diagnostics by section: \(diagnostics.sorted { $0.key < $1.key })")
        #expect(mutated >= 1_000)
        #expect(diagnostics[".debug_info", default: 0] > 0)
        // A module whose .debug_info is cut off after its first unit header.
        var truncated = original
        let info = try #require(sections.custom[".debug_info"])
        for at in (info.lowerBound + 4)..<info.upperBound { truncated[at] = 0xff }
        let broken = try ModuleDebugInfo(module: truncated)
        #expect(broken.symbols(atModuleOffset: UInt32(codeStart + 10)).isEmpty)
        let diagnostic = try #require(broken.diagnostic)
        #expect(diagnostic.section == ".debug_info" && "\(diagnostic)".contains("expected"), "\(diagnostic)")
    }

    /// fixtures/c-lines/hot.c built with -g -O1 by the toolchain's clang.
    static let hotProgram: Result<String, CProgramTests.BuildError> = {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wasm-unwind-lines-\(getpid())").path
        let output = directory + "/hot.wasm"
        let source = PackagePaths.root.appendingPathComponent("fixtures/c-lines/hot.c").path
        do {
            let result = try runChild("/bin/sh", ["-c", "mkdir -p \"$2\" && \"$(dirname \"$(command -v swift)\")/clang\" --target=wasm32 -g -O1 "
                                                  + "-nostdlib -Wl,--no-entry -o \"$3\" \"$1\"", "sh", source, directory, output])
            guard result.status == 0 else { return .failure(CProgramTests.BuildError(output: result.stderr)) }
            return .success(output)
        } catch {
            return .failure(CProgramTests.BuildError(output: "\(error)"))
        }
    }()

    @Test("profile --lines: frames labelled with source lines, inlined functions as frames of their own, shares kept; the Firefox profile has lines and columns")
    func profileLines() throws {
        let module = try Self.hotProgram.get()
        let folded = try runCLI(["profile", module, "--invoke", "main", "--lines", "--hz", "2000", "--", "1500"])
        #expect(folded.status == 0, "\(folded.stderr)")
        let lines = folded.stdout.split(separator: "\n").map(String.init)
        func count(_ line: String) -> Int { Int(line.split(separator: " ").last ?? "") ?? 0 }
        // Every wasm frame is labelled with its file; the loop's calls with their lines.
        #expect(lines.allSatisfy { $0.hasPrefix("run (hot.c") || $0.hasPrefix("[host]") }, "\(lines)")
        #expect(lines.contains { $0.contains("run (hot.c:16);three_parts (hot.c:11);spin (hot.c:8)") }, "\(lines)")
        #expect(lines.contains { $0.hasSuffix(";spin (hot.c:8);mix (hot.c:5) \(count($0))") }, "the inlined mix is not a frame: \(lines)")
        let three = lines.filter { $0.contains("three_parts (hot.c:11)") }.map(count).reduce(0, +)
        let one = lines.filter { $0.contains("one_part (hot.c:12)") }.map(count).reduce(0, +)
        let share = Double(three) / Double(three + one)
        // 3:1 by work. CPU-time samples on an idle machine give 0.74-0.77;
        // a CI run with the machine loaded by a parallel build gave 0.806
        // (1,262 / 303): the bound allows for that, not for a lost frame.
        #expect(three + one > 500 && abs(share - 0.75) < 0.08, "three_parts \(three), one_part \(one)")
        // The same run as a Firefox profile: lines and columns in the frame table.
        let directory = try temporaryDirectory("profile-lines")
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("profile.json").path
        let firefox = try runCLI(["run", module, "--invoke", "main", "--profile", "firefox", "--lines", "--profile-output", output, "--", "300"])
        #expect(firefox.status == 0, "\(firefox.stderr)")
        let document = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output))) as? [String: Any]
        let thread = try #require((document?["threads"] as? [[String: Any]])?.first)
        let strings = try #require(thread["stringTable"] as? [String])
        let frames = try #require((thread["frameTable"] as? [String: Any])?["data"] as? [[Any]])
        let spin = frames.first { (strings[($0[0] as? Int) ?? 0]).hasPrefix("spin (") && $0[4] is Int }
        #expect(spin.map { strings[$0[0] as! Int].hasSuffix("hot.c:8:\($0[5] as? Int ?? 0))") && $0[4] as? Int == 8 } == true,
                "\(frames.prefix(6).map { ($0, strings[($0[0] as? Int) ?? 0]) })")
    }
}
