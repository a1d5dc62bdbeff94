/// The top-level forms of a `.wast` script, found by one pass over its
/// text: where each starts (its line), and the first thing at the top
/// level that is not a form. The spec-script parser stops quietly at such
/// a thing — a stray `)` after the first assertion, or a file of plain
/// text — so every later directive would go unrun; the runner reports it
/// instead. The lines also stand for the parser's locations, which cost a
/// scan from the start of the file each.
struct WastForms {
    /// The 1-based line each top-level form starts on, in order.
    var lines: [Int] = []
    /// The first top-level text that is not a form: its line and what it is.
    var stray: (line: Int, text: String)?

    init(_ text: String) {
        let bytes = Array(text.utf8)
        var index = 0, line = 1, depth = 0
        func at(_ offset: Int) -> UInt8? { index + offset < bytes.count ? bytes[index + offset] : nil }
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\n"):
                line += 1
                index += 1
            case UInt8(ascii: ";") where at(1) == UInt8(ascii: ";"):
                while index < bytes.count && bytes[index] != UInt8(ascii: "\n") { index += 1 }
            case UInt8(ascii: "(") where at(1) == UInt8(ascii: ";"):
                // A block comment, which nests.
                var nesting = 0
                repeat {
                    if bytes[index] == UInt8(ascii: "\n") { line += 1 }
                    if bytes[index] == UInt8(ascii: "("), at(1) == UInt8(ascii: ";") {
                        nesting += 1
                        index += 2
                    } else if bytes[index] == UInt8(ascii: ";"), at(1) == UInt8(ascii: ")") {
                        nesting -= 1
                        index += 2
                    } else {
                        index += 1
                    }
                } while nesting > 0 && index < bytes.count
            case UInt8(ascii: "\""):
                index += 1
                while index < bytes.count && bytes[index] != UInt8(ascii: "\"") {
                    if bytes[index] == UInt8(ascii: "\\") { index += 1 }
                    if index < bytes.count && bytes[index] == UInt8(ascii: "\n") { line += 1 }
                    index += 1
                }
                index += 1
            case UInt8(ascii: "("):
                if depth == 0 { lines.append(line) }
                depth += 1
                index += 1
            case UInt8(ascii: ")") where depth > 0:
                depth -= 1
                index += 1
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                index += 1
            default:
                if depth == 0 {
                    var end = index
                    while end < bytes.count && end < index + 20 && bytes[end] != UInt8(ascii: "\n") { end += 1 }
                    stray = (line, String(decoding: bytes[index..<end], as: UTF8.self))
                    return
                }
                index += 1
            }
        }
    }
}
