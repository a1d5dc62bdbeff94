import WasmUnwind

/// Why a module could not be compiled. Every case that concerns a place in
/// the module carries its byte offset in the binary.
public enum CompileError: Error, Hashable, Sendable, CustomStringConvertible {
    /// WasmKit's text parser rejected the `.wat` input.
    case invalidText(String)
    /// The binary is malformed (WasmKit's parser message).
    case malformed(String)
    /// An instruction outside the subset this compiler implements.
    case unsupportedInstruction(name: String, offset: Int)
    /// A module feature outside the subset (an import kind, a value type ...).
    case unsupportedFeature(String, offset: Int?)
    /// The module is not valid wasm (a type mismatch, an index out of range).
    case invalid(String, offset: Int?)

    public var description: String {
        switch self {
        case .invalidText(let message):
            return "invalid WebAssembly text: \(message)"
        case .malformed(let message):
            return "malformed WebAssembly binary: \(message)"
        case .unsupportedInstruction(let name, let offset):
            return "unsupported instruction `\(name)` at module offset \(hex(offset))"
        case .unsupportedFeature(let what, let offset):
            return "unsupported: \(what)" + (offset.map { " at module offset \(hex($0))" } ?? "")
        case .invalid(let what, let offset):
            return "invalid module: \(what)" + (offset.map { " at module offset \(hex($0))" } ?? "")
        }
    }
}

