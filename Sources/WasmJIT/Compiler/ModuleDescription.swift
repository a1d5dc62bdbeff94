@_spi(Tools) import WasmUnwind
import WasmParser
import WasmTypes

/// The value types the compiler handles. Every value occupies one 64-bit
/// slot: i32 and f32 values kept zero-extended, floats as their bit
/// patterns.
public enum ValueKind: Hashable, Sendable, CustomStringConvertible {
    case i32, i64, f32, f64, funcref, externref
    /// An exception reference (the exception-handling proposal): a handle
    /// of a caught exception in the store's object table, or null.
    case exnref

    init(_ type: ValueType, offset: Int?) throws(CompileError) {
        self = try Self.classify(type, offset: offset).kind
    }

    /// The kind of `type`, and whether it is a typed function reference
    /// — non-nullable (`(ref func)`), concrete (`(ref null $t)`) or a
    /// bottom type (`nullfuncref`) — which this runtime represents and
    /// runs as `funcref` (or `externref`), validating it as that: exact
    /// for every program that is valid, lax for the invalid programs the
    /// typed function references proposal rejects.
    static func classify(_ type: ValueType, offset: Int?) throws(CompileError) -> (kind: ValueKind, typed: Bool) {
        switch type {
        case .i32: return (.i32, false)
        case .i64: return (.i64, false)
        case .f32: return (.f32, false)
        case .f64: return (.f64, false)
        case .v128: throw .unsupportedFeature("value type v128", offset: offset)
        case .ref(let reference):
            switch reference.heapType {
            case .abstract(.funcRef): return (.funcref, !reference.isNullable)
            case .abstract(.externRef): return (.externref, !reference.isNullable)
            case .abstract(.noFunc), .concrete: return (.funcref, true)
            case .abstract(.noExtern): return (.externref, true)
            case .abstract(.exnRef): return (.exnref, !reference.isNullable)
            case .abstract(.noExn): return (.exnref, true)
            case .abstract(let other):
                throw .unsupportedFeature("reference type \(other) (the GC proposal)", offset: offset)
            }
        }
    }

    public var description: String {
        switch self {
        case .i32: return "i32"
        case .i64: return "i64"
        case .f32: return "f32"
        case .f64: return "f64"
        case .funcref: return "funcref"
        case .externref: return "externref"
        case .exnref: return "exnref"
        }
    }

    /// Whether values of this kind are references (null is 0).
    var isReference: Bool { self == .funcref || self == .externref || self == .exnref }

    /// Whether a slot of this kind holds a handle of the store's object
    /// table, which the collector must find (a GC root).
    var isCollected: Bool { self == .externref || self == .exnref }

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
/// checked against the supported subset: the types, every import and
/// export (functions, tables, memory, globals), tables, memory, globals,
/// element and data segments, the start function, the bodies and the
/// names.
struct ModuleDescription {
    struct FunctionImport {
        var module: String
        var name: String
        var signature: Signature
    }

    struct TableType: Equatable {
        /// `.funcref` or `.externref`.
        var kind: ValueKind
        var minimum: UInt64
        var maximum: UInt64?
        /// What every element starts as (null when absent).
        var initializer: ConstantExpression? = nil
    }

    struct MemoryType: Equatable {
        /// In 64 KiB pages.
        var minimum: UInt64
        var maximum: UInt64?
    }

    struct GlobalType: Equatable {
        var kind: ValueKind
        var mutable: Bool
    }

    struct TableImport { var module: String; var name: String; var type: TableType }
    struct MemoryImport { var module: String; var name: String; var type: MemoryType }
    struct GlobalImport { var module: String; var name: String; var type: GlobalType }
    /// An imported exception tag of type `typeIndex` (a function type with
    /// no results: the tag's parameters are the exception's payload).
    struct TagImport { var module: String; var name: String; var typeIndex: UInt32 }

    /// What makes two types the same type across modules: the function
    /// types of its recursion group and its position in it (iso-recursive
    /// equivalence, for groups whose types refer to no other type). A type
    /// outside a `rec` is a group of one.
    struct TypeIdentity: Hashable {
        var group: [Signature?]
        var position: Int
    }

    /// A constant expression, evaluated at instantiation.
    indirect enum ConstantExpression: Equatable {
        /// A number's 64-bit slot.
        case value(UInt64)
        /// The value of global `index` (an imported or an earlier global).
        case globalGet(UInt32)
        /// Function `index`'s reference.
        case refFunc(UInt32)
        case refNull
        /// `i32.add` ... `i64.mul` of two constant expressions (extended
        /// constant expressions, Wasm 3.0).
        case arithmetic(ConstantArithmetic, ConstantExpression, ConstantExpression)
    }

    enum ConstantArithmetic: Equatable {
        case add32, sub32, mul32, add64, sub64, mul64

        func apply(_ a: UInt64, _ b: UInt64) -> UInt64 {
            switch self {
            case .add32: return UInt64(UInt32(truncatingIfNeeded: a) &+ UInt32(truncatingIfNeeded: b))
            case .sub32: return UInt64(UInt32(truncatingIfNeeded: a) &- UInt32(truncatingIfNeeded: b))
            case .mul32: return UInt64(UInt32(truncatingIfNeeded: a) &* UInt32(truncatingIfNeeded: b))
            case .add64: return a &+ b
            case .sub64: return a &- b
            case .mul64: return a &* b
            }
        }
    }

    struct GlobalDefinition {
        var type: GlobalType
        var initializer: ConstantExpression
    }

    struct ElementSegment {
        enum Mode: Equatable {
            case active(table: UInt32, offset: ConstantExpression)
            case passive
            case declarative
        }
        var kind: ValueKind
        var mode: Mode
        var items: [ConstantExpression]
    }

    struct DataSegment {
        enum Mode: Equatable {
            case active(offset: ConstantExpression)
            case passive
        }
        var mode: Mode
        var bytes: [UInt8]
        var moduleOffset: Int
    }

    enum Export: Hashable {
        case function(UInt32)
        case table(UInt32)
        case memory(UInt32)
        case global(UInt32)
        case tag(UInt32)
    }

    struct FunctionBody {
        var code: Code
        /// Offset of the body's locals declaration in the binary.
        var bodyOffset: Int
        /// Offset of its last group of locals (`count type`), if it has
        /// any: where Wasmtime places a function entry's checks.
        var lastLocalsOffset: Int?
    }

    var bytes: [UInt8]
    var signatures: [Signature?] = []  // nil: a type this compiler does not handle
    /// Imported functions, in import order (the function index space starts
    /// with them).
    var imports: [FunctionImport] = []
    var tableImports: [TableImport] = []
    var memoryImport: MemoryImport?
    var globalImports: [GlobalImport] = []
    var functionSignatureIndices: [UInt32] = []
    /// Each function type as written (typed references and their
    /// nullability), by type index; nil for other types.
    var writtenTypes: [FunctionType?] = []
    /// Each type's identity for link-time matching, by type index.
    var typeIdentities: [TypeIdentity] = []
    var tagImports: [TagImport] = []
    /// The type index of each defined tag (after the imported ones in the
    /// tag index space).
    var definedTags: [UInt32] = []
    /// Defined tables and globals (after the imported ones in their index
    /// spaces), and the defined memory.
    var tables: [TableType] = []
    var definedMemory: MemoryType?
    var globals: [GlobalDefinition] = []
    var exports: [String: Export] = [:]
    var exportOrder: [String] = []
    var start: UInt32?
    var elementSegments: [ElementSegment] = []
    var dataSegments: [DataSegment] = []
    var bodies: [FunctionBody] = []
    var moduleName: String?
    var functionNames: [UInt32: String] = [:]
    /// The data count section's count, if the module has one
    /// (`memory.init` and `data.drop` need it).
    var dataCount: UInt32?
    var hasDataCount: Bool { dataCount != nil }
    /// Whether any type the module declares is a typed function reference
    /// (`ValueKind.classify`), validated here only as funcref or externref.
    var usesTypedReferences = false

    mutating func note(_ types: [ValueType]) {
        for type in types where (try? ValueKind.classify(type, offset: nil).typed) == true { usesTypedReferences = true }
    }

    var functionCount: Int { imports.count + functionSignatureIndices.count }
    var tableCount: Int { tableImports.count + tables.count }
    var globalCount: Int { globalImports.count + globals.count }
    var tagCount: Int { tagImports.count + definedTags.count }

    /// The type index of tag `index` (imports first).
    func tagTypeIndex(_ index: UInt32, offset: Int?) throws(CompileError) -> UInt32 {
        if Int(index) < tagImports.count { return tagImports[Int(index)].typeIndex }
        let defined = Int(index) - tagImports.count
        guard defined < definedTags.count else { throw .invalid("unknown tag \(index)", offset: offset) }
        return definedTags[defined]
    }

    /// The payload of tag `index`: its type's parameters.
    func tagPayload(_ index: UInt32, offset: Int?) throws(CompileError) -> [ValueKind] {
        try signature(atTypeIndex: try tagTypeIndex(index, offset: offset), offset: offset).parameters
    }

    /// A tag's type must be a function type without results.
    func checkTagType(_ typeIndex: UInt32, offset: Int?) throws(CompileError) {
        let signature = try signature(atTypeIndex: typeIndex, offset: offset)
        guard signature.results.isEmpty else {
            throw .invalid("non-empty tag result type: tags of type \(signature)", offset: offset)
        }
    }
    /// The memory, imported or defined.
    var memory: MemoryType? { memoryImport?.type ?? definedMemory }
    var hasMemory: Bool { memory != nil }

    /// What the parsers accept: more than the compiler implements, so that
    /// an instruction outside the subset is rejected by the compiler with
    /// its name and offset rather than by the parser as a syntax error.
    static let parsedFeatures: WasmFeatureSet = [.referenceTypes, .tailCall, .exceptionHandling, .simd, .threads,
                                                 .functionReferences, .gc]

    /// Functions whose references the module can take: exported ones and
    /// those in element segments or global initializers. (`ref.func` in a
    /// body must name one of these.)
    var referencedFunctions: Set<UInt32> {
        var set = Set<UInt32>()
        for case .function(let index) in exports.values { set.insert(index) }
        for segment in elementSegments {
            for case .refFunc(let index) in segment.items { set.insert(index) }
        }
        for case .refFunc(let index) in globals.map(\.initializer) { set.insert(index) }
        return set
    }

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
            throw .unsupportedFeature("type \(index) is not a function type of numbers, funcref and externref", offset: offset)
        }
        return signature
    }

    /// The type of table `index` (imports first).
    func tableType(_ index: UInt32, offset: Int?) throws(CompileError) -> TableType {
        if Int(index) < tableImports.count { return tableImports[Int(index)].type }
        let defined = Int(index) - tableImports.count
        guard defined < tables.count else { throw .invalid("table index \(index) out of range", offset: offset) }
        return tables[defined]
    }

    /// The type of global `index` (imports first).
    func globalType(_ index: UInt32, offset: Int?) throws(CompileError) -> GlobalType {
        if Int(index) < globalImports.count { return globalImports[Int(index)].type }
        let defined = Int(index) - globalImports.count
        guard defined < globals.count else { throw .invalid("global index \(index) out of range", offset: offset) }
        return globals[defined].type
    }

    init(parsing bytes: [UInt8]) throws(CompileError) {
        try Self.checkHeader(bytes)
        self.bytes = bytes
        let bodyOffsets = try ImplementationLimits.scanCodeSection(bytes)
        var parser = Parser(bytes: bytes, features: Self.parsedFeatures)
        var codes: [Code] = []
        // A type the compiler cannot run fails only the module that uses it.
        var typeErrors: [Int: CompileError] = [:]
        do {
            while let payload = try parser.parseNext() {
                let offset = parser.offset
                switch payload {
                case .header: break
                case .typeSection(let groups): readTypes(groups, errors: &typeErrors)
                case .importSection(let entries): try readImports(entries, typeErrors: typeErrors, offset: offset)
                case .functionSection(let indices):
                    for index in indices {
                        if let error = typeErrors[Int(index)] { throw error }
                        _ = try signature(atTypeIndex: index, offset: offset)
                    }
                    functionSignatureIndices = indices
                case .tableSection(let entries): try readTables(entries, offset: offset)
                case .memorySection(let memories):
                    guard memories.count + (memoryImport == nil ? 0 : 1) <= 1 else {
                        throw CompileError.unsupportedFeature("more than one memory", offset: offset)
                    }
                    if let memory = memories.first { definedMemory = try Self.memoryType(memory.type, offset: offset) }
                case .globalSection(let entries): try readGlobals(entries, offset: offset)
                case .exportSection(let entries): try readExports(entries, offset: offset)
                case .startSection(let index): start = index
                case .elementSection(let segments): try readElements(segments, offset: offset)
                case .codeSection(let entries):
                    codes = entries
                    for entry in entries { note(entry.locals) }
                case .dataSection(let segments): try readData(segments, offset: offset)
                case .dataCount(let count): dataCount = count
                case .customSection(let section):
                    if section.name == "name" { parseNames(section.bytes) }
                case .tagSection(let tags):
                    for tag in tags {
                        if let error = typeErrors[Int(tag.type)] { throw error }
                        try checkTagType(tag.type, offset: offset)
                        definedTags.append(tag.type)
                    }
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
        guard bodyOffsets.count == codes.count else {
            throw .malformed("code section has \(bodyOffsets.count) entries, expected \(codes.count)", offset: nil)
        }
        bodies = zip(codes, bodyOffsets).map { FunctionBody(code: $0, bodyOffset: $1.body, lastLocalsOffset: $1.lastLocals) }
        try validateIndices()
        try checkImplementationLimits()
    }
}
