/// What a piece of JIT code is. One answer for the whole package: the
/// registry gives it for any address (`CodeRegistry.kind(at:)`), captures
/// store its raw value, and the oracle, the hybrid backtrace and the
/// debugger objects all ask the registry rather than keeping their own
/// tables.
public enum CodeKind: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// A compiled wasm function: its frames are the wasm frames of a walk.
    case wasmFunction = 1
    /// Host -> wasm: records the entry frame pointer and calls wasm.
    case entryTrampoline = 2
    /// Wasm -> host: records the exit frame pointer and pc and calls the host.
    case exitTrampoline = 3

    /// How text output names the code: `wasm function`, `entry trampoline`.
    public var description: String {
        switch self {
        case .wasmFunction: return "wasm function"
        case .entryTrampoline: return "entry trampoline"
        case .exitTrampoline: return "exit trampoline"
        }
    }

    /// A stable identifier for JSON output: `wasm-function`, `entry-trampoline`.
    public var identifier: String {
        switch self {
        case .wasmFunction: return "wasm-function"
        case .entryTrampoline: return "entry-trampoline"
        case .exitTrampoline: return "exit-trampoline"
        }
    }
}

/// JIT code of a module that is not a wasm function: a trampoline or a
/// stub, with its code range (offsets from the module's code base).
public struct CodeStub: Hashable, Sendable {
    public var kind: CodeKind
    public var codeRange: Range<UInt>
    /// A name for debuggers and profilers, such as `exit trampoline for
    /// host::print_i32`; nil when the kind says enough.
    public var name: String?

    public init(kind: CodeKind, codeRange: Range<UInt>, name: String? = nil) {
        self.kind = kind
        self.codeRange = codeRange
        self.name = name
    }
}
