import WasmParser
import WasmTypes

/// Which integer instructions the compiler implements, how, and the text
/// names of all instructions for error messages.
enum InstructionNames {
    enum BinaryLowering: Equatable {
        case arithmetic(ArithmeticOperation)
        case multiply
        case shift(ShiftOperation)
        case divideSigned, divideUnsigned, remainderSigned, remainderUnsigned
    }

    static func integerBinary(_ operation: Instruction.Binary) -> (Width, BinaryLowering)? {
        switch operation {
        case .i32Add: return (.d, .arithmetic(.add))
        case .i32Sub: return (.d, .arithmetic(.sub))
        case .i32And: return (.d, .arithmetic(.and))
        case .i32Or: return (.d, .arithmetic(.or))
        case .i32Xor: return (.d, .arithmetic(.xor))
        case .i32Mul: return (.d, .multiply)
        case .i32Shl: return (.d, .shift(.shl))
        case .i32ShrS: return (.d, .shift(.sar))
        case .i32ShrU: return (.d, .shift(.shr))
        case .i32Rotl: return (.d, .shift(.rol))
        case .i32Rotr: return (.d, .shift(.ror))
        case .i32DivS: return (.d, .divideSigned)
        case .i32DivU: return (.d, .divideUnsigned)
        case .i32RemS: return (.d, .remainderSigned)
        case .i32RemU: return (.d, .remainderUnsigned)
        case .i64Add: return (.q, .arithmetic(.add))
        case .i64Sub: return (.q, .arithmetic(.sub))
        case .i64And: return (.q, .arithmetic(.and))
        case .i64Or: return (.q, .arithmetic(.or))
        case .i64Xor: return (.q, .arithmetic(.xor))
        case .i64Mul: return (.q, .multiply)
        case .i64Shl: return (.q, .shift(.shl))
        case .i64ShrS: return (.q, .shift(.sar))
        case .i64ShrU: return (.q, .shift(.shr))
        case .i64Rotl: return (.q, .shift(.rol))
        case .i64Rotr: return (.q, .shift(.ror))
        case .i64DivS: return (.q, .divideSigned)
        case .i64DivU: return (.q, .divideUnsigned)
        case .i64RemS: return (.q, .remainderSigned)
        case .i64RemU: return (.q, .remainderUnsigned)
        default: return nil
        }
    }

    static func integerComparison(_ comparison: Instruction.Cmp) -> (Width, Condition)? {
        switch comparison {
        case .i32Eq: return (.d, .equal)
        case .i32Ne: return (.d, .notEqual)
        case .i32LtS: return (.d, .less)
        case .i32LtU: return (.d, .below)
        case .i32GtS: return (.d, .greater)
        case .i32GtU: return (.d, .above)
        case .i32LeS: return (.d, .lessOrEqual)
        case .i32LeU: return (.d, .belowOrEqual)
        case .i32GeS: return (.d, .greaterOrEqual)
        case .i32GeU: return (.d, .aboveOrEqual)
        case .i64Eq: return (.q, .equal)
        case .i64Ne: return (.q, .notEqual)
        case .i64LtS: return (.q, .less)
        case .i64LtU: return (.q, .below)
        case .i64GtS: return (.q, .greater)
        case .i64GtU: return (.q, .above)
        case .i64LeS: return (.q, .lessOrEqual)
        case .i64LeU: return (.q, .belowOrEqual)
        case .i64GeS: return (.q, .greaterOrEqual)
        case .i64GeU: return (.q, .aboveOrEqual)
        default: return nil
        }
    }

    static func integerUnary(_ operation: Instruction.Unary) -> Width? {
        switch operation {
        case .i32Clz, .i32Ctz, .i32Popcnt, .i32Extend8S, .i32Extend16S: return .d
        case .i64Clz, .i64Ctz, .i64Popcnt, .i64Extend8S, .i64Extend16S, .i64Extend32S: return .q
        default: return nil
        }
    }

    /// Result kind and access size in bytes.
    static func integerLoad(_ load: Instruction.Load) -> (ValueKind, Int)? {
        switch load {
        case .i32Load: return (.i32, 4)
        case .i64Load: return (.i64, 8)
        case .i32Load8S, .i32Load8U: return (.i32, 1)
        case .i32Load16S, .i32Load16U: return (.i32, 2)
        case .i64Load8S, .i64Load8U: return (.i64, 1)
        case .i64Load16S, .i64Load16U: return (.i64, 2)
        case .i64Load32S, .i64Load32U: return (.i64, 4)
        default: return nil
        }
    }

    /// Value kind and access size in bytes.
    static func integerStore(_ store: Instruction.Store) -> (ValueKind, Int)? {
        switch store {
        case .i32Store: return (.i32, 4)
        case .i64Store: return (.i64, 8)
        case .i32Store8: return (.i32, 1)
        case .i32Store16: return (.i32, 2)
        case .i64Store8: return (.i64, 1)
        case .i64Store16: return (.i64, 2)
        case .i64Store32: return (.i64, 4)
        default: return nil
        }
    }

    /// The instruction's name in the text format (`f32.add`,
    /// `call_indirect`), derived from WasmKit's case name.
    static func name(of instruction: Instruction) -> String {
        // `Instruction` cases print as `binary(WasmParser.Instruction.Binary.f32Add)`
        // or `callIndirect(typeIndex: 0, tableIndex: 0)`: take the innermost
        // case name and turn camel case into the text format's spelling.
        var text = String(describing: instruction)
        if let open = text.firstIndex(of: "(") {
            let inner = text[text.index(after: open)...]
            let category = text[..<open]
            if ["binary", "unary", "cmp", "conversion", "load", "store", "simd"].contains(category) {
                let name = inner.split(whereSeparator: { $0 == "," || $0 == ")" }).first.map(String.init) ?? ""
                text = String(name.split(separator: ".").last ?? "")
            } else {
                text = String(category)
            }
        }
        return textName(camelCase: text)
    }

    /// `i32TruncSatF32S` -> `i32.trunc_sat_f32_s`, `callIndirect` ->
    /// `call_indirect`, `memoryGrow` -> `memory.grow`.
    static func textName(camelCase: String) -> String {
        var words: [String] = []
        var current = ""
        for character in camelCase {
            if character.isUppercase {
                if !current.isEmpty { words.append(current) }
                current = String(character).lowercased()
            } else {
                current.append(character)
            }
        }
        if !current.isEmpty { words.append(current) }
        guard let first = words.first else { return camelCase }
        let typed = ["i32", "i64", "f32", "f64", "v128", "i8x16", "i16x8", "i32x4", "i64x2", "f32x4", "f64x2"]
        let namespaced = ["memory", "table", "ref", "local", "global", "data", "elem", "atomic", "struct", "array", "any", "extern", "i31"]
        if typed.contains(first) || namespaced.contains(first), words.count > 1 {
            return first + "." + words.dropFirst().joined(separator: "_")
        }
        return words.joined(separator: "_")
    }
}

/// The text-name conversion, for tests of the error messages.
public enum InstructionNamesProbe {
    public static func textName(_ camelCase: String) -> String { InstructionNames.textName(camelCase: camelCase) }
}
