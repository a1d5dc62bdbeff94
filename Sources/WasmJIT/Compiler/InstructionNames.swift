import WasmParser
import WasmTypes

/// The text names of instructions, for error messages.
enum InstructionNames {
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
            var rest = Array(words.dropFirst())
            var prefix = first + "."
            // Atomics have a second namespace: i32.atomic.load,
            // i32.atomic.rmw8.add_u, memory.atomic.notify.
            if rest.first == "atomic", rest.count > 1 {
                prefix += "atomic."
                rest.removeFirst()
                if rest[0].hasPrefix("rmw"), rest.count > 1 {
                    prefix += rest.removeFirst() + "."
                }
            }
            return prefix + rest.joined(separator: "_")
        }
        return words.joined(separator: "_")
    }
}

/// The text-name conversion, for tests of the error messages.
public enum InstructionNamesProbe {
    public static func textName(_ camelCase: String) -> String { InstructionNames.textName(camelCase: camelCase) }
}
