import Foundation
import StackCapture
import UnwindReports
import WasmCoredumpFormat
import WasmDWARF
@_spi(Tools) import WasmUnwind

/// What an upload is, read: its kind, its crashing thread's frames
/// (newest first) and how it ended. Everything uploaded is hostile: a
/// reader's error names the problem and nothing is stored.
public struct CrashEvent: Hashable, Sendable {
    public enum Kind: String, Hashable, Sendable {
        /// A capture (`run --capture`, a crash capture, a capture at a trap).
        case capture
        /// A standard wasm coredump (tool-conventions Coredump.md).
        case coredump
        /// The JSON of a trap report: `run --format json` (schema
        /// `wasm-unwind.run`), or its `trap` object alone.
        case report
    }

    /// One frame as grouping and pages see it.
    public struct Frame: Hashable, Sendable, Codable {
        /// The module's name, when it has one.
        public var module: String?
        /// The function's name, or `<wasm function N>` without a name.
        public var function: String
        /// The function's index in its module, when known.
        public var functionIndex: UInt32?
        /// The module offset of the frame's instruction, when known.
        public var moduleOffset: UInt32?
        /// Whether the frame is the program's own code (not a trampoline
        /// or other runtime code).
        public var isProgram: Bool
        /// The source location, from the module's DWARF (carried in the
        /// capture, or uploaded): the innermost inlined function's.
        public var file: String?
        public var line: UInt32?
        public var column: UInt32?
        /// Functions inlined at this frame, innermost first (from DWARF).
        public var inlined: [String]?

        public init(module: String?, function: String, functionIndex: UInt32?, moduleOffset: UInt32?, isProgram: Bool) {
            self.module = module
            self.function = function
            self.functionIndex = functionIndex
            self.moduleOffset = moduleOffset
            self.isProgram = isProgram
        }
    }

    public var kind: Kind
    /// The crashing thread's frames, newest first.
    public var frames: [Frame]
    /// How it ended: the trap's message (`wasm trap: ...`), a crash's
    /// note, or "unknown".
    public var reason: String
    /// The ids (build id and SHA-256, in hex) of the modules in the
    /// crashing stack whose debug information was not found: a module
    /// uploaded under one of them later re-symbolicates the event.
    public var awaitingModules: [String] = []

    /// Reads an upload: a capture or a wasm coredump, recognised by their
    /// first bytes. A capture's frames get source lines from the DWARF it
    /// carries or `search` finds (the modules and debug files uploaded).
    public init(reading bytes: [UInt8], search: DebugFileSearch? = nil) throws(EventError) {
        if bytes.first(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }) == UInt8(ascii: "{") {
            self = try Self(report: bytes)
            return
        }
        if bytes.starts(with: [0x00, 0x61, 0x73, 0x6D]) {
            let coredump: WasmCoredump
            do { coredump = try WasmCoredump(parsing: bytes) } catch { throw EventError("not a valid wasm coredump: \(error)") }
            guard let thread = coredump.threads.first else { throw EventError("a wasm coredump with no thread") }
            kind = .coredump
            frames = thread.frames.map { frame in
                let module = Int(frame.instance) < coredump.instances.count
                    ? Int(coredump.instances[Int(frame.instance)].module) : nil
                return Frame(module: module.flatMap { $0 < coredump.modules.count ? coredump.modules[$0] : nil },
                             function: "<wasm function \(frame.function)>", functionIndex: frame.function, moduleOffset: nil,
                             isProgram: true)
            }
            reason = "coredump of \(coredump.processName)"
            return
        }
        let file: CaptureFile
        do { file = try CaptureFile(parsing: bytes) } catch { throw EventError("not a capture or a wasm coredump: \(error)") }
        let stack: CapturedStack
        do { stack = try CapturedStack(file) } catch { throw EventError("a capture that cannot be walked: \(error)") }
        kind = .capture
        let backtrace = stack.symbolicated()
        // Without uploaded modules, the DWARF a capture carries still gives lines.
        let search = search ?? (try? DebugFileSearch(files: [], directories: []))
        let sources = search.flatMap { stack.sourceSymbols(of: backtrace, search: $0, captureDirectory: nil).symbols }
        if let search {
            awaitingModules = file.modules.flatMap { module -> [String] in
                guard let identity = module.debug?.identity, search.debugInfo(for: module, captureDirectory: nil).found == nil else {
                    return []
                }
                return (identity.buildID.map { [ModuleIdentity.hex($0)] } ?? []) + [ModuleIdentity.hex(identity.contentHash)]
            }
        }
        frames = backtrace.frames.enumerated().map { index, frame in
            var made = Frame(module: frame.symbol?.moduleName,
                             function: frame.symbol?.functionName ?? frame.symbol?.functionIndex.map { "<wasm function \($0)>" }
                                 ?? frame.symbol?.printedName ?? "<unknown>",
                             functionIndex: frame.symbol?.functionIndex, moduleOffset: frame.symbol?.moduleOffset,
                             isProgram: frame.symbol?.kind == .wasmFunction)
            if let symbols = sources.flatMap({ index < $0.count ? $0[index] : nil }), let innermost = symbols.first {
                made.file = innermost.file
                made.line = innermost.line
                made.column = innermost.column
                // The outermost symbol is the wasm function itself: its
                // DWARF name where the name section has none.
                if made.function.hasPrefix("<wasm function"), let name = symbols.last?.name { made.function = Demangling.demangle(name) }
                if symbols.count > 1 { made.inlined = symbols.dropLast().map { $0.name.map(Demangling.demangle) ?? "<inlined function>" } }
            }
            return made
        }
        reason = file.trap.map { "wasm trap: \($0.message)" } ?? file.note ?? "unknown"
    }
}

extension CrashEvent {
    /// JSON nested deeper than this is refused before it is parsed (the
    /// parser recurses; a report is 5 levels deep).
    static let maximumJSONDepth = 32

    /// Reads the JSON of a trap report: its message and its backtrace's
    /// frames, names and source lines as the report gives them.
    init(report bytes: [UInt8]) throws(EventError) {
        var depth = 0, deepest = 0, inString = false, escaped = false
        for byte in bytes {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1; deepest = max(deepest, depth)
            case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
            default: break
            }
            if deepest > Self.maximumJSONDepth { throw EventError("a JSON report nested more than \(Self.maximumJSONDepth) deep") }
        }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: Data(bytes)) } catch {
            throw EventError("not valid JSON: \(error.localizedDescription)")
        }
        guard let top = object as? [String: Any] else { throw EventError("a JSON report is an object") }
        if let schema = top["schema"], schema as? String != "wasm-unwind.run" {
            throw EventError("a JSON report of schema \(schema), not wasm-unwind.run")
        }
        guard let trap = (top["trap"] as? [String: Any]) ?? (top["backtrace"] != nil ? top : nil) else {
            throw EventError("a JSON report without a trap (`trap`: null — the run did not trap)")
        }
        guard let message = trap["message"] as? String else { throw EventError("a trap without a message (`trap.message`)") }
        guard let frames = (trap["backtrace"] as? [String: Any])?["frames"] as? [[String: Any]] else {
            throw EventError("a trap without frames (`trap.backtrace.frames`)")
        }
        func number(_ value: Any?) -> UInt32? { (value as? NSNumber).flatMap { UInt32(exactly: $0.doubleValue) } }
        kind = .report
        reason = message
        self.frames = frames.map { frame in
            let index = number(frame["function_index"])
            let name = (frame["demangled_name"] as? String) ?? (frame["function_name"] as? String)
            var made = Frame(module: frame["module"] as? String,
                             function: name ?? index.map { "<wasm function \($0)>" } ?? "<unknown>",
                             functionIndex: index, moduleOffset: number(frame["module_offset"]),
                             isProgram: frame["code"] as? String == "wasm-function")
            // Source symbols, innermost first; the last is the function itself.
            if let symbols = frame["symbols"] as? [[String: Any]], let innermost = symbols.first {
                made.file = innermost["file"] as? String
                made.line = number(innermost["line"])
                made.column = number(innermost["column"])
                if symbols.count > 1 {
                    made.inlined = symbols.dropLast().map { ($0["demangled"] as? String) ?? ($0["function"] as? String) ?? "<inlined function>" }
                }
            }
            return made
        }
    }
}

/// Why an upload cannot be read.
public struct EventError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
