import ArgumentParser
import CWasmUnwindABI
import Foundation
import WasmDWARF
import WasmJIT
import WasmJITTools
import WasmUnwind
import UnwindReports
#if canImport(Glibc)
import Glibc
#endif

/// An error the command reports as one line, `error: ...`, on standard
/// error, exiting with status 1.
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The bytes of a file, or an error naming the file and the system's reason.
func readFile(_ path: String) throws -> [UInt8] {
    guard let handle = FileHandle(forReadingAtPath: path) else {
        throw CommandError("cannot read \(path): \(String(cString: strerror(errno)))")
    }
    defer { try? handle.close() }
    do {
        return [UInt8](try handle.readToEnd() ?? Data())
    } catch {
        throw CommandError("cannot read \(path): \(error.localizedDescription)")
    }
}

/// Writes `bytes` to `path` (creating or replacing it); every failure of
/// the system calls is an error with the system's reason.
func writeFile(_ path: String, _ bytes: [UInt8], what: String) throws {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else { throw CommandError("cannot write \(what) to \(path): \(String(cString: strerror(errno)))") }
    var written = 0
    var failure: Int32 = 0
    bytes.withUnsafeBytes { raw in
        while written < raw.count {
            let count = write(descriptor, raw.baseAddress! + written, raw.count - written)
            if count < 0 {
                if errno == EINTR { continue }
                failure = errno
                return
            }
            written += count
        }
    }
    if close(descriptor) != 0 && failure == 0 { failure = errno }
    if failure != 0 { throw CommandError("cannot write \(what) to \(path): \(String(cString: strerror(failure)))") }
}

/// Writes to standard error.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Standard output, written with `write(2)` as each line is produced, so
/// that a failure (a full disk, a closed pipe, /dev/full) is seen — and
/// reported — rather than lost in a buffer at exit.
enum StandardOutput {
    /// The first `errno` a write failed with, or 0.
    // SAFETY: written and read only by the main thread (the command runs
    // there; output is written from it).
    nonisolated(unsafe) static var failure: Int32 = 0

    static func write(_ text: String) {
        guard failure == 0 else { return }
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { raw in
            var written = 0
            while written < raw.count {
                let count = Glibc.write(1, raw.baseAddress! + written, raw.count - written)
                if count < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                written += count
            }
        }
    }
}

/// Writes a line to standard output.
func output(_ line: String = "") {
    StandardOutput.write(line + "\n")
}

/// Fails if anything written to standard output could not be written.
func flushStandardOutput() throws {
    if StandardOutput.failure != 0 {
        throw CommandError("cannot write to standard output: \(String(cString: strerror(StandardOutput.failure)))")
    }
}

/// Reads and compiles a module. `.wat` files are text and `.wasm` files
/// binary, whatever they hold; any other name is read as a binary if it
/// starts with the magic `\0asm` and as text otherwise. Errors name the
/// file and the place: `file.wat:4:10: unknown function $nope`,
/// `file.wasm: malformed WebAssembly binary at offset 0x0: ...`.
func loadModule(engine: Engine, path: String) throws -> Module {
    let bytes = try readFile(path)
    let isBinary: Bool
    switch URL(fileURLWithPath: path).pathExtension {
    case "wat": isBinary = false
    case "wasm": isBinary = true
    default: isBinary = bytes.starts(with: [0x00, 0x61, 0x73, 0x6D])
    }
    do {
        if isBinary {
            let debugFile = engine.configuration.backtraceDetails ? externalDebugFile(of: bytes, path: path) : nil
            return try Module(engine: engine, binary: bytes, debugFile: debugFile)
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw CommandError("\(path): not UTF-8 text (and not a wasm binary: it does not start with \\0asm)")
        }
        return try Module(engine: engine, text: text)
    } catch let error as CompileError {
        if case .invalidText(_, let line?, _) = error, line > 0 { throw CommandError("\(path):\(error)") }
        throw CommandError("\(path): \(error)")
    }
}

/// Parses an integer argument for a parameter of `kind`.
func parseArgument(_ text: String, as kind: ValueKind) throws -> Value {
    switch kind {
    case .i32:
        if let value = Int32(text) { return .i32(value) }
        if let value = UInt32(text) { return .i32(Int32(bitPattern: value)) }
    case .i64:
        if let value = Int64(text) { return .i64(value) }
        if let value = UInt64(text) { return .i64(Int64(bitPattern: value)) }
    case .f32:
        // A number past the type's range is refused, as an integer is: it
        // would become an infinity without a word (`inf` itself is fine).
        if let value = Float(text), value.isFinite || Double(text)?.isInfinite == true || text.lowercased().contains("nan") {
            return .f32(value)
        }
        if Float(text) != nil { throw CommandError("argument `\(text)` is out of the range of f32 (at most \(Float.greatestFiniteMagnitude))") }
    case .f64:
        if let value = Double(text), value.isFinite || text.lowercased().contains("inf") || text.lowercased().contains("nan") {
            return .f64(value)
        }
        if Double(text) != nil { throw CommandError("argument `\(text)` is out of the range of f64 (at most \(Double.greatestFiniteMagnitude))") }
    case .externref:
        if text == "null" { return .externref(nil) }
    case .funcref:
        if text == "null" { return .funcref(nil) }
    case .exnref:
        if text == "null" { return .exnref(nil) }
    }
    throw CommandError("argument `\(text)` is not a valid \(kind)")
}

/// A value as reports show it.
func typedValue(_ value: Value) -> TypedValue {
    TypedValue(type: value.kind.description, value: value.description)
}

/// "1 argument", "2 arguments".
func counted(_ count: Int, _ noun: String) -> String {
    "\(count) \(noun)\(count == 1 ? "" : "s")"
}

extension OutputFormat: ExpressibleByArgument {}

extension ExitRecording: ExpressibleByArgument {
    /// The modes a user picks from (the imprecise one exists for a test).
    public static var allValueStrings: [String] { ["trampoline", "inline"] }
}

/// `run --profile`: what compiled code tells perf (perfmap, jitdump), or a
/// profile of the call taken by the sampling profiler, in one of
/// `profile`'s formats (folded, svg, firefox).
enum ProfileOutput: String, ExpressibleByArgument, CaseIterable {
    case perfmap, jitdump, folded, svg, firefox

    func profiling(directory: String) -> Profiling {
        switch self {
        case .perfmap: return .perfMap
        case .jitdump: return .jitDump(directory: directory)
        case .folded, .svg, .firefox: return .none
        }
    }

    /// The sampling profiler's format, for the values that ask for one.
    var sampledFormat: ProfileFormat? { ProfileFormat(rawValue: rawValue) }
}

/// A sampled profile rendered in `format`.
func render(_ profile: Profile, as format: ProfileFormat, title: String) -> String {
    switch format {
    case .folded: return profile.folded
    case .svg: return FlameGraph(title: title).render(profile)
    case .firefox: return FirefoxProfile().render(profile, pid: Int(getpid()), tid: Int(wu_gettid()))
    }
}

/// Files of the package this tool was built in (the Wasmtime oracle script,
/// the virtual environment), found from the executable's own path —
/// `.build/<triple>/<configuration>/wasm-unwind` — not from the working
/// directory.
enum PackageFiles {
    /// `relative` in the first directory above the executable that has it.
    static func find(_ relative: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return nil }
        var directory = URL(fileURLWithPath: String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self))
            .deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent(relative).path
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return nil
    }
}

/// The separate debug file a module without DWARF names in its
/// `external_debug_info` section, when it is there (the path as given
/// when absolute, else beside the module) and belongs to the module
/// (`DebugFile.matches`); a warning when it is not.
func externalDebugFile(of bytes: [UInt8], path: String) -> DebugFile? {
    guard let sections = try? WasmSections(parsing: bytes), sections.custom[".debug_info"] == nil,
          let external = sections.externalDebugInfo, let identity = ModuleIdentity(module: bytes, sections: sections) else { return nil }
    let candidate = external.hasPrefix("/") ? external
        : URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent(external).path
    guard let data = FileManager.default.contents(atPath: candidate) else {
        printError("warning: \(path) names its debug information \"\(external)\" (external_debug_info), which is not at \(candidate)")
        return nil
    }
    guard let file = try? DebugFile(bytes: [UInt8](data)), file.matches(identity), file.hasDebugInfo else {
        printError("warning: \(candidate), named by \(path)'s external_debug_info, is not its debug information (\(identity.description))")
        return nil
    }
    return file
}
