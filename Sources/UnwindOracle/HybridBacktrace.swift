import WasmUnwind

/// Every frame on the stack in stack order — host frames named by libunwind
/// (Swift names demangled), wasm frames from the frame-pointer walk with
/// module, function and offset, trampolines marked.
public struct HybridBacktrace: Sendable {
    public enum Entry: Sendable {
        case host(pc: UInt, name: String?, offset: UInt)
        case trampoline(pc: UInt, JITCodeKind)
        case wasm(SymbolicatedFrame)
    }

    public var entries: [Entry]

    /// Why the merge failed: the walk's wasm frames do not line up with
    /// libunwind's.
    public struct MergeError: Error, CustomStringConvertible {
        public var comparison: OracleComparison
        public var description: String { "the walker's wasm frames do not match libunwind's (\(comparison.mismatches.count) mismatches)" }
    }

    /// Merges libunwind's frames (with names) and the walk. The result's pcs
    /// are exactly libunwind's pcs, in order; the wasm frames among them are
    /// the walk's, checked against libunwind's first.
    public init(libunwind: [LibunwindFrame], walk: SymbolicatedBacktrace, exitTrampolines: Bool = true,
                kind: (UInt) -> JITCodeKind?) throws {
        let comparison = OracleComparison(libunwind: libunwind, walk: walk.frames.map(\.frame), trapped: false,
                                          exitTrampolines: exitTrampolines, kind: kind)
        guard comparison.isMatch else { throw MergeError(comparison: comparison) }
        var wasm = walk.frames.makeIterator()
        entries = libunwind.map { frame in
            switch kind(frame.ip &- 1) {
            case .wasmFunction?:
                return .wasm(wasm.next()!)
            case let trampoline?:
                return .trampoline(pc: frame.ip, trampoline)
            case nil:
                let name = frame.procedureName.map { Libunwind.demangle($0) ?? $0 }
                return .host(pc: frame.ip, name: name, offset: frame.procedureOffset)
            }
        }
    }

    /// The pcs, in stack order.
    public var pcs: [UInt] {
        entries.map { entry in
            switch entry {
            case .host(let pc, _, _), .trampoline(let pc, _): return pc
            case .wasm(let frame): return frame.frame.address.rawValue
            }
        }
    }

    /// One line per frame: index, pc, and what the frame is.
    ///
    /// ```
    ///     6: 0x7f976092e19a  [exit trampoline]
    ///     7: 0x7f976092e092  wasm   0x5d - nest!step
    ///     8: 0x7f976092e030  wasm   0x53 - nest!descend
    ///     9: 0x7f976092e10b  [entry trampoline]
    ///    10: 0x5592d1a2b201  host   wu_invoke + 113
    /// ```
    public func text() -> String {
        entries.enumerated().map { index, entry in
            let number = String(index)
            let prefix = "  " + String(repeating: " ", count: max(0, 3 - number.count)) + number + ": "
            switch entry {
            case .host(let pc, let name, let offset):
                return prefix + hex(pc) + "  host   " + (name.map { "\($0) + \(offset)" } ?? "<unknown>")
            case .trampoline(let pc, let kind):
                return prefix + hex(pc) + "  [" + (kind == .entryTrampoline ? "entry trampoline" : "exit trampoline") + "]"
            case .wasm(let frame):
                // Wasmtime's "offset - module!function", without its padding.
                let line = SymbolicatedBacktrace.line(index: 0, frame: frame)
                let description = line.dropFirst("    0:".count).drop { $0 == " " }
                return prefix + hex(frame.frame.address.rawValue) + "  wasm   " + description
            }
        }.joined(separator: "\n")
    }
}
