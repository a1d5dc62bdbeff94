import WasmUnwind
import UnwindReports

/// Every frame on the stack in stack order — host frames named by libunwind
/// (Swift names demangled), wasm frames from the frame-pointer walk with
/// module, function and offset, trampolines marked.
public enum HybridBacktrace {
    /// Why the merge failed: the walk's wasm frames do not line up with
    /// libunwind's.
    public struct MergeError: Error, CustomStringConvertible {
        public var comparison: FrameComparison
        public var description: String { "the walker's wasm frames do not match libunwind's (\(comparison.mismatches.count) mismatches)" }
    }

    /// Merges libunwind's frames (with names) and the walk. The result's pcs
    /// are exactly libunwind's pcs, in order; the wasm frames among them are
    /// the walk's, checked against libunwind's first.
    public static func merge(libunwind: [LibunwindFrame], walk: SymbolicatedBacktrace, exitTrampolines: Bool = true,
                             registry: CodeRegistry) throws -> [HybridFrame] {
        let comparison = FrameComparison(libunwind: libunwind, walk: walk.frames.map(\.frame), trapped: false,
                                         exitTrampolines: exitTrampolines, registry: registry)
        guard comparison.isMatch else { throw MergeError(comparison: comparison) }
        var wasm = walk.frames.makeIterator()
        return libunwind.map { frame in
            switch registry.kind(at: frame.ip &- 1) {
            case .wasmFunction?:
                return .wasm(wasm.next()!)
            case let kind?:
                return .stub(pc: frame.ip, kind: kind)
            case nil:
                let name = frame.procedureName.map { Libunwind.demangle($0) ?? $0 }
                return .host(pc: frame.ip, name: name, offset: frame.procedureOffset)
            }
        }
    }
}
