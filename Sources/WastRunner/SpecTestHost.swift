import WAT
import WasmJIT
import WasmParser
import WasmTypes

/// The `spectest` module every script may import from, as the reference
/// interpreter defines it: `print*` functions that do nothing, four
/// immutable globals of 666, a table of 10 (at most 20) funcrefs and a
/// memory of 1 (at most 2) pages.
struct SpecTestHost {
    let table: WasmJIT.Table
    let memory: WasmJIT.Memory
    let globals: [(String, WasmJIT.Global)]

    init(store: Store) {
        // Sizes well inside the runtime's limits: these cannot fail.
        table = try! WasmJIT.Table(kind: .funcref, minimum: 10, maximum: 20)
        memory = try! WasmJIT.Memory(minimumPages: 1, maximumPages: 2)
        globals = [
            ("global_i32", WasmJIT.Global(kind: .i32, mutable: false, value: .i32(666))),
            ("global_i64", WasmJIT.Global(kind: .i64, mutable: false, value: .i64(666))),
            ("global_f32", WasmJIT.Global(kind: .f32, mutable: false, value: .f32(666.6))),
            ("global_f64", WasmJIT.Global(kind: .f64, mutable: false, value: .f64(666.6))),
        ]
    }

    func define(into imports: inout Imports) {
        let printers: [(String, [ValueKind])] = [
            ("print", []), ("print_i32", [.i32]), ("print_i64", [.i64]), ("print_f32", [.f32]),
            ("print_f64", [.f64]), ("print_i32_f32", [.i32, .f32]), ("print_f64_f64", [.f64, .f64]),
        ]
        for (name, parameters) in printers {
            let function = HostFunction.slots(signature: Signature(parameters: parameters, results: [])) { _, _ in }
            imports.define(module: "spectest", name: name, .host(function))
        }
        for (name, global) in globals { imports.define(module: "spectest", name: name, .global(global)) }
        imports.define(module: "spectest", name: "table", .table(table))
        imports.define(module: "spectest", name: "memory", .memory(memory))
    }
}

/// The proposals a script may need that the runtime does not implement:
/// the only reasons a directive is skipped.
enum Feature {
    static let simd = "SIMD (v128)"
    /// The legacy exception instructions (`try`, `catch`, `rethrow`,
    /// `delegate`), which the exnref proposal replaced.
    static let legacyExceptions = "legacy exception handling"
    static let functionReferences = "typed function references"
    static let gc = "garbage collection (GC proposal)"
    static let threads = "threads (shared memory, atomics)"
    static let multiMemory = "multiple memories"
    static let memory64 = "64-bit memory"

    /// The proposal a compile error says the module needs, if it is one
    /// outside the runtime (nil: the module is simply rejected).
    static func of(_ error: CompileError) -> String? {
        switch error {
        case .unsupportedInstruction(let name, _): return ofInstruction(name)
        case .unsupportedFeature(let what, _): return ofFeature(what)
        default: return nil
        }
    }

    static func ofInstruction(_ name: String) -> String {
        if name.hasPrefix("v128") || name.contains("x16") || name.contains("x8") || name.contains("x4")
            || name.contains("x2") { return simd }
        if ["try", "catch", "catch_all", "rethrow", "delegate"].contains(name) { return legacyExceptions }
        if ["call_ref", "return_call_ref", "ref.as_non_null", "br_on_null", "br_on_non_null"].contains(name) {
            return functionReferences
        }
        if name.contains("atomic") { return threads }
        if name.hasPrefix("struct.") || name.hasPrefix("array.") || name.hasPrefix("i31.") || name.hasPrefix("ref.")
            || name.hasPrefix("any.") || name.hasPrefix("extern.") || name.hasPrefix("br_on_cast") { return gc }
        return "the instruction `\(name)`"
    }

    static func ofFeature(_ what: String) -> String {
        if what.contains("v128") { return simd }
        if what.contains("shared") { return threads }
        if what.contains("more than one memory") { return multiMemory }
        if what.contains("64-bit") { return memory64 }
        if what.contains("GC proposal") || what.contains("is not a function type") { return gc }
        return what
    }
}

/// Parser errors in the user's words.
enum TextError {
    static func describe(_ error: any Error) -> String {
        if let error = error as? WatParserError { return CompileError(textError: error).description }
        return String(describing: error)
    }
}

extension WastSession {
    /// Why an argument cannot be passed: a value of a feature outside the
    /// runtime.
    struct Skip: Error { var reason: String }

    /// A script's argument as a runtime value.
    mutating func value(of argument: WASTConstValue) -> Result<WasmJIT.Value, Skip> {
        switch argument {
        case .i32(let bits): return .success(.i32(Int32(bitPattern: bits)))
        case .i64(let bits): return .success(.i64(Int64(bitPattern: bits)))
        case .f32(let bits): return .success(.f32(Float(bitPattern: bits)))
        case .f64(let bits): return .success(.f64(Double(bitPattern: bits)))
        case .v128: return .failure(Skip(reason: Feature.simd))
        case .refNull(let type):
            switch type {
            case .abstract(.funcRef), .abstract(.noFunc): return .success(.funcref(nil))
            case .abstract(.externRef), .abstract(.noExtern): return .success(.externref(nil))
            case .abstract(.exnRef), .abstract(.noExn): return .success(.exnref(nil))
            case .concrete: return .failure(Skip(reason: Feature.functionReferences))
            default: return .failure(Skip(reason: Feature.gc))
            }
        case .refExtern(let number): return .success(.externref(extern(number)))
        case .refFunc: return .failure(Skip(reason: Feature.functionReferences))
        case .refHost: return .failure(Skip(reason: Feature.gc))
        }
    }

    /// The host object `ref.extern number` stands for (one per number).
    mutating func extern(_ number: UInt32) -> ExternRef {
        if let reference = externs[number] { return reference }
        let reference = store.externref(for: ExternNumber(number))
        store.pin(reference)
        externs[number] = reference
        return reference
    }

    /// Whether `value` is what the script expects, NaN patterns included.
    func matches(_ value: WasmJIT.Value, _ expected: WASTExpectValue) -> Bool {
        switch (value, expected) {
        case (.i32(let actual), .i32(let bits)): return UInt32(bitPattern: actual) == bits
        case (.i64(let actual), .i64(let bits)): return UInt64(bitPattern: actual) == bits
        case (.f32(let actual), .f32(let bits)): return actual.bitPattern == bits
        case (.f64(let actual), .f64(let bits)): return actual.bitPattern == bits
        case (.f32(let actual), .f32CanonicalNaN): return actual.bitPattern & 0x7FFF_FFFF == 0x7FC0_0000
        case (.f32(let actual), .f32ArithmeticNaN): return actual.bitPattern & 0x7FC0_0000 == 0x7FC0_0000
        case (.f64(let actual), .f64CanonicalNaN):
            return actual.bitPattern & 0x7FFF_FFFF_FFFF_FFFF == 0x7FF8_0000_0000_0000
        case (.f64(let actual), .f64ArithmeticNaN):
            return actual.bitPattern & 0x7FF8_0000_0000_0000 == 0x7FF8_0000_0000_0000
        case (.funcref(nil), .refNull(let type)):
            return type == nil || type == .abstract(.funcRef) || type == .abstract(.noFunc)
        case (.externref(nil), .refNull(let type)):
            return type == nil || type == .abstract(.externRef) || type == .abstract(.noExtern)
        case (.funcref(let reference?), .refFunc):
            return reference.address != 0
        case (.externref(let reference?), .refExtern(let number)):
            guard let number else { return true }
            return (store.object(for: reference) as? ExternNumber)?.number == number
        case (_, .either(let candidates)):
            return candidates.contains { matches(value, $0) }
        default:
            return false
        }
    }

    func describe(_ expected: [WASTExpectValue]) -> String {
        "[" + expected.map { value in
            switch value {
            case .i32(let bits): return "i32 \(Int32(bitPattern: bits))"
            case .i64(let bits): return "i64 \(Int64(bitPattern: bits))"
            case .f32(let bits): return "f32 \(Float(bitPattern: bits)) (0x\(String(bits, radix: 16)))"
            case .f64(let bits): return "f64 \(Double(bitPattern: bits)) (0x\(String(bits, radix: 16)))"
            case .f32CanonicalNaN, .f64CanonicalNaN: return "nan:canonical"
            case .f32ArithmeticNaN, .f64ArithmeticNaN: return "nan:arithmetic"
            case .refNull: return "null"
            case .refFunc: return "a funcref"
            case .refExtern(let number): return "ref.extern \(number.map(String.init) ?? "")"
            default: return "\(value)"
            }
        }.joined(separator: ", ") + "]"
    }
}

/// The host object behind `ref.extern N`.
final class ExternNumber {
    let number: UInt32
    init(_ number: UInt32) { self.number = number }
}
