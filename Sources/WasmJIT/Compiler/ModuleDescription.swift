import WasmParser
import WasmTypes

/// The value types the compiler handles. Every value occupies one 64-bit
/// slot: i32 and f32 values kept zero-extended, floats as their bit
/// patterns.
public enum ValueKind: Hashable, Sendable, CustomStringConvertible {
    case i32, i64, f32, f64, externref

    init(_ type: ValueType, offset: Int?) throws(CompileError) {
        switch type {
        case .i32: self = .i32
        case .i64: self = .i64
        case .f32: self = .f32
        case .f64: self = .f64
        case .ref(let reference) where reference.heapType == .externRef: self = .externref
        case .v128: throw .unsupportedFeature("value type v128", offset: offset)
        case .ref(let reference): throw .unsupportedFeature("reference type \(reference.heapType)", offset: offset)
        }
    }

    public var description: String {
        switch self {
        case .i32: return "i32"
        case .i64: return "i64"
        case .f32: return "f32"
        case .f64: return "f64"
        case .externref: return "externref"
        }
    }

    /// Whether values of this kind are floats (compiled with SSE).
    var isFloat: Bool { self == .f32 || self == .f64 }
}

/// A function signature in the compiler's value kinds.
public struct Signature: Hashable, Sendable, CustomStringConvertible {
    public var parameters: [ValueKind]
    public var results: [ValueKind]

    public init(parameters: [ValueKind], results: [ValueKind]) {
        self.parameters = parameters
        self.results = results
    }

    public var description: String {
        "(" + parameters.map(\.description).joined(separator: ", ") + ") -> ("
            + results.map(\.description).joined(separator: ", ") + ")"
    }
}

/// Everything the compiler and the runtime need from a module binary,
/// checked against the supported subset.
struct ModuleDescription {
    struct FunctionImport {
        var module: String
        var name: String
        var signature: Signature
    }

    struct GlobalDefinition {
        var kind: ValueKind
        var mutable: Bool
        var initialValue: UInt64
    }

    struct DataSegment {
        var offset: UInt32
        var bytes: [UInt8]
        var moduleOffset: Int
    }

    struct FunctionBody {
        var code: Code
        /// Offset of the body's locals declaration in the binary.
        var bodyOffset: Int
    }

    var bytes: [UInt8]
    var signatures: [Signature?] = []  // nil: a type this compiler does not handle
    var imports: [FunctionImport] = []
    var functionSignatureIndices: [UInt32] = []
    var globals: [GlobalDefinition] = []
    var memoryPages: UInt64?
    var memoryMaximumPages: UInt64?
    var exports: [String: UInt32] = [:]
    var exportOrder: [String] = []
    var start: UInt32?
    var dataSegments: [DataSegment] = []
    var bodies: [FunctionBody] = []
    var moduleName: String?
    var functionNames: [UInt32: String] = [:]

    var functionCount: Int { imports.count + functionSignatureIndices.count }

    /// What the parsers accept: more than the compiler implements, so that
    /// an instruction outside the subset is rejected by the compiler with
    /// its name and offset rather than by the parser as a syntax error.
    static let parsedFeatures: WasmFeatureSet = [.referenceTypes, .tailCall, .exceptionHandling, .simd, .threads]

    /// The signature of function `index` (imports first).
    func signature(ofFunction index: UInt32, offset: Int?) throws(CompileError) -> Signature {
        if Int(index) < imports.count { return imports[Int(index)].signature }
        let defined = Int(index) - imports.count
        guard defined < functionSignatureIndices.count else {
            throw .invalid("function index \(index) out of range", offset: offset)
        }
        return try signature(atTypeIndex: functionSignatureIndices[defined], offset: offset)
    }

    func signature(atTypeIndex index: UInt32, offset: Int?) throws(CompileError) -> Signature {
        guard Int(index) < signatures.count else { throw .invalid("type index \(index) out of range", offset: offset) }
        guard let signature = signatures[Int(index)] else {
            throw .unsupportedFeature("type \(index) is not a function type of i32, i64 and externref", offset: offset)
        }
        return signature
    }

    init(parsing bytes: [UInt8]) throws(CompileError) {
        try Self.checkHeader(bytes)
        self.bytes = bytes
        var parser = Parser(bytes: bytes, features: Self.parsedFeatures)
        var codes: [Code] = []
        var typeErrors: [Int: CompileError] = [:]
        do {
            while let payload = try parser.parseNext() {
                let offset = parser.offset
                switch payload {
                case .header:
                    break
                case .typeSection(let groups):
                    for group in groups {
                        for subType in group.types {
                            guard case .function(let type) = subType.body else {
                                signatures.append(nil)
                                continue
                            }
                            do {
                                signatures.append(Signature(
                                    parameters: try type.parameters.map { (t) throws(CompileError) in try ValueKind(t, offset: nil) },
                                    results: try type.results.map { (t) throws(CompileError) in try ValueKind(t, offset: nil) }))
                            } catch {
                                typeErrors[signatures.count] = error
                                signatures.append(nil)
                            }
                        }
                    }
                case .importSection(let entries):
                    for entry in entries {
                        guard case .function(let typeIndex) = entry.descriptor else {
                            throw CompileError.unsupportedFeature(
                                "import \(entry.module).\(entry.name) is not a function (only function imports are supported)",
                                offset: offset)
                        }
                        if let error = typeErrors[Int(typeIndex)] { throw error }
                        imports.append(FunctionImport(module: entry.module, name: entry.name,
                                                      signature: try signature(atTypeIndex: typeIndex, offset: offset)))
                    }
                case .functionSection(let indices):
                    for index in indices {
                        if let error = typeErrors[Int(index)] { throw error }
                        _ = try signature(atTypeIndex: index, offset: offset)
                    }
                    functionSignatureIndices = indices
                case .tableSection(let tables):
                    if !tables.isEmpty { throw CompileError.unsupportedFeature("tables", offset: offset) }
                case .memorySection(let memories):
                    guard memories.count <= 1 else { throw CompileError.unsupportedFeature("more than one memory", offset: offset) }
                    if let memory = memories.first {
                        guard !memory.type.isMemory64, !memory.type.shared else {
                            throw CompileError.unsupportedFeature("64-bit or shared memory", offset: offset)
                        }
                        guard memory.type.min <= 16384 else {
                            throw CompileError.unsupportedFeature("an initial memory above 1 GiB (16384 pages)", offset: offset)
                        }
                        memoryPages = memory.type.min
                        memoryMaximumPages = memory.type.max
                    }
                case .globalSection(let entries):
                    for entry in entries {
                        let kind = try ValueKind(entry.type.valueType, offset: offset)
                        guard kind != .externref else {
                            // A global would be a root the stack maps do not cover.
                            throw CompileError.unsupportedFeature("externref globals", offset: offset)
                        }
                        globals.append(GlobalDefinition(
                            kind: kind, mutable: entry.type.mutability == .variable,
                            initialValue: try Self.constant(entry.initializer, kind: kind, offset: offset)))
                    }
                case .exportSection(let entries):
                    for entry in entries {
                        if case .function(let index) = entry.descriptor {
                            exports[entry.name] = index
                            exportOrder.append(entry.name)
                        }
                    }
                case .startSection(let index):
                    start = index
                case .elementSection(let segments):
                    if !segments.isEmpty { throw CompileError.unsupportedFeature("element segments", offset: offset) }
                case .codeSection(let entries):
                    codes = entries
                case .dataSection(let segments):
                    for segment in segments {
                        guard case .active(let active) = segment else {
                            throw CompileError.unsupportedFeature("passive data segments", offset: offset)
                        }
                        guard active.index == 0 else { throw CompileError.invalid("data segment for memory \(active.index)", offset: offset) }
                        let start = try Self.constant(active.offset, kind: .i32, offset: offset)
                        dataSegments.append(DataSegment(offset: UInt32(start), bytes: Array(active.initializer),
                                                        moduleOffset: active.initializer.startIndex))
                    }
                case .dataCount:
                    break
                case .customSection(let section):
                    if section.name == "name" { parseNames(section.bytes) }
                case .tagSection:
                    throw CompileError.unsupportedFeature("exception tags", offset: offset)
                }
            }
        } catch let error as CompileError {
            throw error
        } catch {
            throw .malformed(parserError: error)
        }
        guard codes.count == functionSignatureIndices.count else {
            throw .invalid("\(functionSignatureIndices.count) functions declared but \(codes.count) bodies", offset: nil)
        }
        let bodyOffsets = try Self.bodyOffsets(in: bytes, count: codes.count)
        bodies = zip(codes, bodyOffsets).map { FunctionBody(code: $0, bodyOffset: $1) }
        for (name, index) in exports where Int(index) >= functionCount {
            throw .invalid("export \"\(name)\" names function \(index), which does not exist", offset: nil)
        }
        if let start, Int(start) >= functionCount {
            throw .invalid("start function \(start) does not exist", offset: nil)
        }
    }

    /// The 8-byte header every binary starts with: the magic `\0asm` and
    /// version 1. (WasmKit's parser takes an empty file for an empty module.)
    static func checkHeader(_ bytes: [UInt8]) throws(CompileError) {
        let magic: [UInt8] = [0x00, 0x61, 0x73, 0x6D]
        guard bytes.count >= 4 else {
            throw .malformed("expected the magic \\0asm, but the binary is \(bytes.count) bytes long", offset: 0)
        }
        guard Array(bytes.prefix(4)) == magic else {
            throw .malformed("expected the magic \\0asm, found \(bytes.prefix(4).map { hex($0) }.joined(separator: " "))", offset: 0)
        }
        guard bytes.count >= 8 else {
            throw .malformed("expected the 4-byte version, but the binary ends after \(bytes.count) bytes", offset: 4)
        }
        let version = bytes[4..<8].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard version == 1 else { throw .malformed("expected version 1, found \(version)", offset: 4) }
    }

    /// The value of a constant expression (`i32.const`, `i64.const`,
    /// `ref.null`), as a 64-bit slot.
    static func constant(_ expression: ConstExpression, kind: ValueKind, offset: Int) throws(CompileError) -> UInt64 {
        let instructions = expression.last == .end ? Array(expression.dropLast()) : expression
        guard instructions.count == 1 else {
            throw .unsupportedFeature("constant expression of \(instructions.count) instructions", offset: offset)
        }
        switch (instructions[0], kind) {
        case (.i32Const(let value), .i32): return UInt64(UInt32(bitPattern: value))
        case (.i64Const(let value), .i64): return UInt64(bitPattern: value)
        case (.f32Const(let value), .f32): return UInt64(value.bitPattern)
        case (.f64Const(let value), .f64): return value.bitPattern
        case (.refNull, .externref): return 0
        default:
            throw .unsupportedFeature("constant expression \(instructions[0]) for \(kind)", offset: offset)
        }
    }

    /// Where each function body's locals declaration starts: the code
    /// section is a vector of (size, body) entries.
    static func bodyOffsets(in bytes: [UInt8], count: Int) throws(CompileError) -> [Int] {
        var reader = LEBReader(bytes: bytes, position: 8)
        while reader.position < bytes.count {
            let id = bytes[reader.position]
            reader.position += 1
            let size = try reader.unsigned()
            if id == 10 {
                let entries = try reader.unsigned()
                var offsets: [Int] = []
                for _ in 0..<entries {
                    let bodySize = try reader.unsigned()
                    offsets.append(reader.position)
                    reader.position += Int(bodySize)
                }
                guard offsets.count == count else { throw .malformed("code section has \(offsets.count) entries, expected \(count)", offset: nil) }
                return offsets
            }
            reader.position += Int(size)
        }
        guard count == 0 else { throw .malformed("no code section", offset: nil) }
        return []
    }

    mutating func parseNames(_ section: ArraySlice<UInt8>) {
        var parser = NameSectionParser(stream: StaticByteStreamSource(bytes: section))
        // A broken name section is ignored, as engines do: names are debug info.
        guard let names = try? parser.parseAll() else { return }
        for entry in names {
            switch entry {
            case .moduleName(let name): moduleName = name
            case .functions(let map): functionNames = map
            default: break
            }
        }
    }
}

/// Unsigned LEB128 reading over a byte array.
struct LEBReader {
    let bytes: [UInt8]
    var position: Int

    mutating func unsigned() throws(CompileError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < bytes.count else { throw .malformed("LEB128 runs past the end", offset: position) }
            guard shift < 64 else { throw .malformed("LEB128 too long", offset: position) }
            let byte = bytes[position]
            position += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }
}
