/// A backtrace whose frames have been looked up in a `CodeRegistry`.
public struct SymbolicatedBacktrace: Hashable, Sendable {
    public var frames: [SymbolicatedFrame]
    /// Why the walk stopped early, if it did (see `Backtrace.error`).
    public var error: UnwindError?
    /// Frames were left out on request (see `Backtrace.isTruncated`).
    public var isTruncated: Bool

    public init(frames: [SymbolicatedFrame], error: UnwindError? = nil, isTruncated: Bool = false) {
        self.frames = frames
        self.error = error
        self.isTruncated = isTruncated
    }
}

// MARK: - Text

extension SymbolicatedBacktrace {
    /// The frames as Wasmtime prints them, one per line:
    ///
    /// ```
    ///     0:     0x26 - hello_mod!hello
    ///     1:     0x2d - hello_mod!<wasm function 1>
    /// ```
    ///
    /// (`format!("  {i:>3}: {offset:#8x} - {module}!{name}")`, `<unknown>`
    /// for a module without a name, `<wasm function N>` for a function
    /// without one.) A frame outside any registered module prints its pc.
    /// A truncated trace ends with a line saying so; an incomplete one with
    /// the error that stopped the walk. With `activationBoundaries`, a line
    /// marks where the host frames between two activations were skipped.
    public func text(activationBoundaries: Bool = false) -> String {
        var lines: [String] = []
        var activation = frames.first?.frame.activation ?? 0
        for (index, frame) in frames.enumerated() {
            if activationBoundaries, frame.frame.activation != activation {
                activation = frame.frame.activation
                lines.append("       -- host frames; activation \(activation) --")
            }
            lines.append(SymbolicatedBacktrace.line(index: index, frame: frame))
        }
        if isTruncated {
            lines.append("       ... (backtrace truncated after \(frames.count) frames)")
        }
        if let error {
            lines.append("backtrace incomplete after \(frames.count) frames: \(error) [\(error.rule)]")
        }
        return lines.joined(separator: "\n")
    }

    /// One frame in Wasmtime's layout.
    public static func line(index: Int, frame: SymbolicatedFrame) -> String {
        let number = String(index)
        var line = "  " + String(repeating: " ", count: max(0, 3 - number.count)) + number + ": "
        guard let symbol = frame.symbol else {
            return line + "<unregistered code at \(hex(frame.frame.address.rawValue))>"
        }
        if let offset = symbol.moduleOffset {
            let text = hex(UInt(offset))
            line += String(repeating: " ", count: max(0, 8 - text.count)) + text + " - "
        }
        line += (symbol.moduleName ?? "<unknown>") + "!"
        if let function = symbol.function {
            line += function.name ?? "<wasm function \(function.index)>"
        } else {
            line += "<trampoline>"
        }
        return line
    }
}

// MARK: - JSON

extension SymbolicatedBacktrace {
    /// The version of the JSON layout below; bumped on any incompatible
    /// change (docs/output-format.md).
    public static let jsonSchemaVersion = 1

    /// The backtrace as a JSON document (schema in docs/output-format.md).
    public var json: JSONValue {
        .object([
            ("schema", .string("wasm-unwind.backtrace")),
            ("version", .integer(Int64(Self.jsonSchemaVersion))),
            ("complete", .bool(error == nil && !isTruncated)),
            ("truncated", .bool(isTruncated)),
            ("error", error.map { error in
                .object([("rule", .string(error.rule)), ("message", .string(error.description))])
            } ?? .null),
            ("frames", .array(frames.enumerated().map { index, frame in
                Self.json(index: index, frame: frame)
            })),
        ])
    }

    static func json(index: Int, frame: SymbolicatedFrame) -> JSONValue {
        let symbol = frame.symbol
        let kind: String
        switch frame.frame.address {
        case .programCounter: kind = "pc"
        case .returnAddress: kind = "return-address"
        }
        return .object([
            ("index", .integer(Int64(index))),
            ("activation", .integer(Int64(frame.frame.activation))),
            ("kind", .string(kind)),
            ("address", .address(frame.frame.address.rawValue)),
            ("fp", .address(frame.frame.framePointer)),
            ("registered", .bool(symbol != nil)),
            ("module", .string(symbol?.moduleName)),
            ("function_index", .integer(symbol?.functionIndex)),
            ("function_name", .string(symbol?.functionName)),
            ("module_offset", .integer(symbol?.moduleOffset)),
            ("function_offset", .integer(symbol?.functionOffset)),
        ])
    }
}
