import Foundation
@_spi(Tools) import WasmUnwind

/// Why a module could not be compiled. Every case that concerns a place in
/// the module carries its byte offset in the binary.
public enum CompileError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The `.wat` input is not valid text: what is wrong, and where (line
    /// and column, 1-based) when the parser says.
    case invalidText(message: String, line: Int?, column: Int?)
    /// The binary is malformed: what is wrong, and at which byte offset
    /// when that is known.
    case malformed(String, offset: Int?)
    /// An instruction outside the subset this compiler implements.
    case unsupportedInstruction(name: String, offset: Int)
    /// A module feature outside the subset (an import kind, a value type ...).
    case unsupportedFeature(String, offset: Int?)
    /// The module is not valid wasm (a type mismatch, an index out of range).
    case invalid(String, offset: Int?)
    /// The code was compiled but the engine's `didCompile` hook could not
    /// publish it (to a debugger, a profiler, the post-mortem descriptor):
    /// which, and why.
    case toolInterface(String)

    public var description: String {
        switch self {
        case .invalidText(let message, let line?, let column?):
            return "\(line):\(column): \(message)"
        case .invalidText(let message, _, _):
            return message
        case .malformed(let message, let offset?):
            return "malformed WebAssembly binary at offset \(hex(offset)): \(message)"
        case .malformed(let message, nil):
            return "malformed WebAssembly binary: \(message)"
        case .unsupportedInstruction(let name, let offset):
            return "unsupported instruction `\(name)` at module offset \(hex(offset))"
        case .unsupportedFeature(let what, let offset):
            return "unsupported: \(what)" + (offset.map { " at module offset \(hex($0))" } ?? "")
        case .invalid(let what, let offset):
            return "invalid module: \(what)" + (offset.map { " at module offset \(hex($0))" } ?? "")
        case .toolInterface(let what):
            return "compiled, but \(what)"
        }
    }
}

extension CompileError {
    /// A WasmKit binary-parser error in the user's words: its message
    /// without Swift debug descriptions (`Message(text: ...)`), its offset
    /// apart.
    static func malformed(parserError error: any Error) -> CompileError {
        var text = String(describing: error)
        var offset: Int?
        if let range = text.range(of: " at offset 0x", options: .backwards) {
            let digits = text[range.upperBound...].prefix { $0.isHexDigit }
            offset = Int(digits, radix: 16)
            text.removeSubrange(range.lowerBound..<text.index(range.upperBound, offsetBy: digits.count))
        }
        for wrapper in [("\"Message(text: \"", "\")\""), ("Message(text: \"", "\")")] {
            if text.hasPrefix(wrapper.0) && text.hasSuffix(wrapper.1) {
                text = String(text.dropFirst(wrapper.0.count).dropLast(wrapper.1.count))
            }
        }
        if text.hasSuffix(".") { text.removeLast() }
        text = text.replacingOccurrences(of: "Unexpected end of byte sequence", with: "the binary ends too early")
        if let first = text.first, first.isUppercase, text.dropFirst().first?.isLowercase == true {
            text = first.lowercased() + text.dropFirst()
        }
        return .malformed(text, offset: offset)
    }
}
