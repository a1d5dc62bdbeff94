import CWasmUnwindABI
#if canImport(Glibc)
import Glibc
#endif

/// Function names as Wasmtime prints them: a Rust symbol (legacy mangling,
/// `_ZN...17h<hash>E`) or a C++ symbol (Itanium ABI, `_Z...`) in a module's
/// name section is demangled; any other name is shown as it is. Like
/// Wasmtime's `demangle_function_name`, Rust is tried first and the Rust
/// hash is kept (`foo::bar::h0123456789abcdef`).
///
/// Rust's v0 mangling (`_R...`) is left as it is. C++ names go through the
/// C++ runtime's `__cxa_demangle` (the one `c++filt` uses), at most
/// `maximumLength` bytes of them.
public enum Demangling {
    /// Names longer than this are shown as they are.
    public static let maximumLength = 4096

    /// The demangled form of `name`, or `name`.
    public static func demangle(_ name: String) -> String {
        // Most names are not mangled: decide on the first bytes.
        var bytes = name.utf8.makeIterator()
        let first = bytes.next(), second = bytes.next()
        guard first == UInt8(ascii: "_") || (first == UInt8(ascii: "Z") && second == UInt8(ascii: "N")) else { return name }
        guard name.utf8.count <= maximumLength, name.hasPrefix("_Z") || name.hasPrefix("ZN") || name.hasPrefix("__Z")
        else { return name }
        if let rust = rustLegacy(name) { return rust }
        if let cpp = itanium(name) { return cpp }
        return name
    }

    /// A C++ name through `__cxa_demangle`.
    static func itanium(_ name: String) -> String? {
        guard name.hasPrefix("_Z"), let demangled = wu_demangle_itanium(name) else { return nil }
        defer { free(demangled) }
        return String(cString: demangled)
    }

    /// Rust's legacy mangling: `_ZN`, then length-prefixed path elements,
    /// then `E` (optionally followed by a `.suffix`, as LLVM adds). Each
    /// element's `$..$` escapes and `..` separators are decoded.
    static func rustLegacy(_ name: String) -> String? {
        var bytes = Substring(name).utf8[...]
        for prefix in ["__ZN", "_ZN", "ZN"] where name.hasPrefix(prefix) {
            bytes = bytes.dropFirst(prefix.utf8.count)
            break
        }
        var elements: [String] = []
        while let first = bytes.first, first != UInt8(ascii: "E") {
            var length = 0
            while let digit = bytes.first, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(digit) {
                length = length * 10 + Int(digit - UInt8(ascii: "0"))
                guard length <= maximumLength else { return nil }
                bytes = bytes.dropFirst()
            }
            guard length > 0, bytes.count >= length else { return nil }
            let element = bytes.prefix(length)
            guard element.allSatisfy({ $0 < 0x80 }), let decoded = decodeRustElement(String(decoding: element, as: UTF8.self))
            else { return nil }
            elements.append(decoded)
            bytes = bytes.dropFirst(length)
        }
        guard bytes.first == UInt8(ascii: "E"), !elements.isEmpty else { return nil }
        var suffix = Array(bytes.dropFirst())
        guard suffix.isEmpty || suffix.first == UInt8(ascii: ".") else { return nil }
        // LLVM's `.llvm.1234ABCD` (ThinLTO's promoted locals) goes, as
        // rustc-demangle drops it: when all after it is 0-9, A-F or @.
        let marker = Array(".llvm.".utf8)
        if let start = suffix.indices.first(where: { suffix[$0...].starts(with: marker) }),
           suffix[(start + marker.count)...].allSatisfy({ (0x30...0x39).contains($0) || (0x41...0x46).contains($0) || $0 == 0x40 }) {
            suffix.removeSubrange(start...)
        }
        return elements.joined(separator: "::") + String(decoding: suffix, as: UTF8.self)
    }

    static let rustEscapes: [String: String] = [
        "SP": "@", "BP": "*", "RF": "&", "LT": "<", "GT": ">", "LP": "(", "RP": ")", "C": ",",
    ]

    /// One path element: `_$` starts an element that would otherwise start
    /// with `$`; `..` is `::`; `$LT$` and the like are punctuation; `$u7e$`
    /// is the character U+007E. nil for an unknown escape.
    static func decodeRustElement(_ element: String) -> String? {
        var rest = Substring(element)
        if rest.hasPrefix("_$") { rest = rest.dropFirst() }
        var out = ""
        while let character = rest.first {
            if rest.hasPrefix("..") {
                out += "::"
                rest = rest.dropFirst(2)
            } else if character == "$" {
                guard let end = rest.dropFirst().firstIndex(of: "$") else { return nil }
                let escape = String(rest[rest.index(after: rest.startIndex)..<end])
                if let text = rustEscapes[escape] {
                    out += text
                } else if escape.hasPrefix("u"), let code = UInt32(escape.dropFirst(), radix: 16),
                          let scalar = Unicode.Scalar(code) {
                    out.unicodeScalars.append(scalar)
                } else {
                    return nil
                }
                rest = rest[rest.index(after: end)...]
            } else {
                out.append(character)
                rest = rest.dropFirst()
            }
        }
        return out
    }
}
