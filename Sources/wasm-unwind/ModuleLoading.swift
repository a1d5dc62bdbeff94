import ArgumentParser
import Foundation
import WasmJIT

/// Reads a `.wat` or `.wasm` file and compiles it.
func loadModule(engine: Engine, path: String) throws -> Module {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw CommandError("cannot read \(path)")
    }
    let bytes = [UInt8](data)
    do {
        if bytes.starts(with: [0x00, 0x61, 0x73, 0x6D]) {
            return try Module(engine: engine, binary: bytes)
        }
        guard let text = String(bytes: bytes, encoding: .utf8) else {
            throw CommandError("\(path) is neither a wasm binary nor UTF-8 text")
        }
        return try Module(engine: engine, text: text)
    } catch let error as CompileError {
        throw CommandError("\(path): \(error)")
    }
}

/// An error the command reports as one line on standard error.
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
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
    case .externref:
        if text == "null" { return .externref(nil) }
    }
    throw CommandError("argument `\(text)` is not a valid \(kind)")
}

/// Writes to standard error.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// `--format text|json`.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

extension ExitRecording: ExpressibleByArgument {
    /// The modes a user picks from (the imprecise one exists for a test).
    public static var allValueStrings: [String] { ["trampoline", "inline"] }
}
