import CBenchmarkSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import WasmDWARF
import WasmJIT
import WasmUnwind

/// A C program built with -g -O2 for the source-line rows: `descend`
/// recurses to the depth asked for, `leaf` (inlined into it) traps at the
/// bottom — every frame has a line, the newest an inlined function too.
let sourceLineProgram = """
    volatile int sink;
    static inline int leaf(int n) {
        if (n == 0) __builtin_trap();
        return n * 2;
    }
    __attribute__((noinline)) int descend(int n) {
        int value = leaf(n);
        int below = n > 1 ? descend(n - 1) : leaf(n - 1);
        sink = below;
        return below + value;
    }
    __attribute__((export_name("trap_at"))) int trap_at(int depth) { return descend(depth); }
    """

/// The program compiled by the Swift toolchain's clang (nil without one).
func compileSourceLineProgram() throws -> [UInt8]? {
    try compileCProgram(sourceLineProgram, flags: ["-g", "-O2"])
}

/// `source` compiled for wasm32 by the Swift toolchain's clang with
/// `flags`, without libc (nil without a clang).
func compileCProgram(_ source: String, flags: [String]) throws -> [UInt8]? {
    let swift = ProcessInfo.processInfo.environment["PATH", default: ""].split(separator: ":")
        .map { "\($0)/swift" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    guard let swift else { return nil }
    let clang = URL(fileURLWithPath: swift).resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("clang").path
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wasm-unwind-bench-c-\(getpid())")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let sourceFile = directory.appendingPathComponent("program.c"), output = directory.appendingPathComponent("program.wasm")
    try source.write(to: sourceFile, atomically: true, encoding: .utf8)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: clang)
    process.arguments = ["--target=wasm32"] + flags + ["-nostdlib", "-Wl,--no-entry", "-o", output.path, sourceFile.path]
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { return nil }
    return try [UInt8](Data(contentsOf: output))
}

/// A trap's display with source lines, ours and Wasmtime 50's
/// (WASMTIME_BACKTRACE_DETAILS=1), on the same -g -O2 module; and ours
/// without details, for what the lines cost.
func sourceLineBenchmarks(_ harness: inout Harness, library: String, notes: inout [String]) throws {
    guard harness.groupFilter.map({ "source lines".contains($0) || $0.contains("source lines") || $0.contains("symbolication") }) ?? true else { return }
    guard let binary = try compileSourceLineProgram() else {
        notes.append("source lines: no clang next to swift; the rows are missing")
        return
    }
    var error = [CChar](repeating: 0, count: 512)
    setenv("WASMTIME_BACKTRACE_DETAILS", "1", 1)
    let wasmtime = binary.withUnsafeBufferPointer { wu_wasmtime_open_binary(library, $0.baseAddress, $0.count, &error, error.count) }
    unsetenv("WASMTIME_BACKTRACE_DETAILS")
    guard let wasmtime else {
        notes.append("Wasmtime (source lines): \(String(cString: error))")
        return
    }
    let trapAt = wu_wasmtime_function(wasmtime, "trap_at")
    func ours(details: Bool) throws -> Func {
        let engine = Engine(configuration: Engine.Configuration(backtraceDetails: details))
        let instance = try Instance(store: Store(engine: engine), module: Module(engine: engine, binary: binary))
        return instance.export("trap_at")!
    }
    let withLines = try ours(details: true), withoutLines = try ours(details: false)
    func ourTrap(_ function: Func, _ depth: Int) -> UInt {
        do {
            _ = try function.call([.i32(Int32(depth - 1))])
            return 0
        } catch let trap as Trap {
            return UInt(trap.description.utf8.count)
        } catch {
            return 0
        }
    }
    for depth in [10, 100] {
        let group = "trap + the printed message with source lines (-g -O2 C), \(depth) wasm frames"
        harness.measure(group, "ours: trap + Trap.description, details on", items: depth) { consume(ourTrap(withLines, depth)) }
        harness.measure(group, "Wasmtime 50: trap + wasm_trap_message, WASMTIME_BACKTRACE_DETAILS=1", items: depth) {
            var frames: UInt64 = 0
            consume(UInt(truncatingIfNeeded: wu_wasmtime_call(wasmtime, trapAt, Int32(depth - 1), 1, &frames)))
        }
        harness.measure(group, "ours: trap + Trap.description, details off", items: depth) { consume(ourTrap(withoutLines, depth)) }
    }
    // Symbolication of a trap's frames, with and without their lines (the
    // ≤ 2x target): names and offsets of each frame, then the same plus
    // each frame's source symbols (answers kept per module after the first).
    for depth in [10, 100] {
        var caught: Trap?
        do { _ = try withLines.call([.i32(Int32(depth - 1))]) } catch let trap as Trap { caught = trap } catch {}
        guard let backtrace = caught?.backtrace, let symbols = backtrace.sourceSymbols, symbols.count == backtrace.frames.count else {
            notes.append("symbolication at depth \(depth): no trap with source lines")
            continue
        }
        notes.append("symbolication at depth \(depth): \(backtrace.frames.count) frames, \(symbols.reduce(0) { $0 + $1.count }) source symbols")
        let group = "symbolication of a trap's \(depth) frames (-g -O2 C)"
        harness.measure(group, "ours: names and offsets", items: depth) {
            var total = 0
            for frame in backtrace.frames { total &+= Int(frame.symbol?.moduleOffset ?? 0) &+ (frame.symbol?.functionName?.utf8.count ?? 0) }
            consume(UInt(bitPattern: total))
        }
        harness.measure(group, "ours: names, offsets and source lines", items: depth) {
            var total = 0
            for frame in backtrace.frames { total &+= Int(frame.symbol?.moduleOffset ?? 0) &+ (frame.symbol?.functionName?.utf8.count ?? 0) }
            total &+= backtrace.sourceSymbols?.reduce(0) { $0 &+ $1.count } ?? 0
            // The module must outlive the measurement (a filtered run
            // measures after this function returns): its lines go with it.
            withExtendedLifetime(withLines) { consume(UInt(bitPattern: total)) }
        }
    }
    // Symbolication alone: a frame's module offset to its functions and lines.
    let info = try ModuleDebugInfo(module: binary)
    let module = try Module(engine: Engine(), binary: binary)
    let offsets = module.codeModule.functions.flatMap { $0.addressMap.compactMap(\.moduleOffset) }
    _ = info.symbols(atModuleOffset: offsets[0])
    var next = 0
    harness.measure("source lines of one frame (lookup in parsed DWARF)", "ours: ModuleDebugInfo.symbols(atModuleOffset:)") {
        next = next &+ 1
        consume(UInt(info.symbols(atModuleOffset: offsets[next % offsets.count]).count))
    }
    notes.append("source lines: a \(binary.count)-byte -g -O2 module, \(offsets.count) instruction offsets")
    notes.append(dwarfMemory(binary, name: "the -g -O2 C program"))
    if let rust = compileRustFixture() { notes.append(dwarfMemory(rust, name: "fixtures/rust/panics.rs (-g -O1, with std)")) }
}

/// What the parsed DWARF of a module costs in memory: heap bytes in use
/// (glibc's mallinfo2) after `ModuleDebugInfo` is made — nothing parsed
/// yet — and after a lookup at every instruction offset has parsed every
/// unit's functions and lines, per MiB of debug sections.
func dwarfMemory(_ binary: [UInt8], name: String) -> String {
    guard let sections = try? WasmSections(parsing: binary), let module = try? Module(engine: Engine(), binary: binary) else {
        return "memory (\(name)): not a module"
    }
    let dwarfBytes = sections.custom.filter { $0.key.hasPrefix(".debug_") }.reduce(0) { $0 + $1.value.count }
    let offsets = module.codeModule.functions.flatMap { $0.addressMap.compactMap(\.moduleOffset) }
    let before = wu_heap_bytes_in_use()
    guard let info = try? ModuleDebugInfo(module: binary) else { return "memory (\(name)): no DWARF" }
    let made = wu_heap_bytes_in_use()
    for offset in offsets { _ = info.symbols(atModuleOffset: offset) }
    let parsed = wu_heap_bytes_in_use()
    let megabytes = Double(dwarfBytes) / 1_048_576
    let tables = Double(Int(parsed) - Int(made)) / 1024
    return String(format: "memory (%@): %.2f MiB of DWARF; ModuleDebugInfo made: %d bytes; after lookups at all %d offsets "
                  + "(every unit parsed, %d answers kept): %.0f KiB, %.0f KiB per MiB of DWARF",
                  name, megabytes, Int(made) - Int(before), offsets.count, min(offsets.count, 4096), tables, tables / megabytes)
}

/// fixtures/rust/panics.rs built by Debian's rustc (nil without it).
func compileRustFixture() -> [UInt8]? {
    let rustc = "/usr/bin/rustc"
    guard FileManager.default.isExecutableFile(atPath: rustc) else { return nil }
    let root = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("wasm-unwind-bench-rust-\(getpid()).wasm")
    defer { try? FileManager.default.removeItem(at: output) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: rustc)
    process.arguments = ["--target", "wasm32-unknown-unknown", "--crate-type", "cdylib", "--edition", "2021", "-g", "-C", "opt-level=1",
                         "-o", output.path, root.appendingPathComponent("fixtures/rust/panics.rs").path]
    guard (try? process.run()) != nil else { return nil }
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { return nil }
    return try? [UInt8](Data(contentsOf: output))
}
