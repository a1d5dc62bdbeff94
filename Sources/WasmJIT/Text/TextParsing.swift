#if canImport(Glibc)
import Glibc
#endif
import WAT

/// WebAssembly text to binary, with WasmKit's `wat2wasm`, made safe for any
/// input and explained in the user's words.
///
/// WasmKit's parser recurses once per level of folded (parenthesised)
/// nesting, so deep enough text would exhaust any stack. Text is therefore
/// parsed on a thread of its own with a large stack
/// (`parserStackSize`), and text nested deeper than `maximumNesting`
/// parentheses is refused with a positioned error before parsing starts —
/// a limit that stack holds with room to spare. (Binary modules have no
/// such limit: their parser does not recurse.)
enum TextParsing {
    /// Parentheses may nest at most this deep.
    static let maximumNesting = 10_000
    /// The parser's stack: debug builds need about 3.3 KiB per level.
    static let parserStackSize = 64 << 20

    /// The binary of `text`, with the name section.
    static func binary(of text: String) throws(CompileError) -> [UInt8] {
        if let (line, column) = positionPastNestingLimit(in: text) {
            throw .invalidText(message: "parentheses nest deeper than \(maximumNesting) levels (the text parser's limit)",
                               line: line, column: column)
        }
        let result = onLargeStack {
            Result { () throws -> [UInt8] in
                try wat2wasm(text, features: ModuleDescription.parsedFeatures, options: EncodeOptions(nameSection: true))
            }
        }
        switch result {
        case .success(let binary):
            return binary
        case .failure(let error as WatParserError):
            let position = error.location?.computeLineAndColumn()
            throw .invalidText(message: describe(error), line: position?.line, column: position.map { $0.column + 1 })
        case .failure(let error):
            throw .invalidText(message: describe(String(describing: error)), line: nil, column: nil)
        }
    }

    /// Where the text first nests past `maximumNesting` (line and column,
    /// 1-based), skipping strings and comments; nil if it never does.
    static func positionPastNestingLimit(in text: String) -> (Int, Int)? {
        var depth = 0, line = 1, column = 0
        var inString = false, escaped = false, lineComment = false, blockComment = 0
        var previous: Unicode.Scalar = " "
        for scalar in text.unicodeScalars {
            column += 1
            if scalar == "\n" { line += 1; column = 0; lineComment = false }
            defer { previous = scalar }
            if lineComment { continue }
            if inString {
                if escaped { escaped = false } else if scalar == "\\" { escaped = true } else if scalar == "\"" { inString = false }
                continue
            }
            if blockComment > 0 {
                if previous == "(" && scalar == ";" { blockComment += 1 }
                if previous == ";" && scalar == ")" { blockComment -= 1 }
                continue
            }
            switch scalar {
            case "\"": inString = true
            case ";" where previous == ";": lineComment = true
            case ";" where previous == "(": blockComment = 1; depth -= 1  // `(;` opened a comment, not a list
            case "(":
                depth += 1
                if depth > maximumNesting { return (line, column) }
            case ")": depth -= 1
            default: break
            }
        }
        return nil
    }

    /// Runs `body` on a new thread with `parserStackSize` bytes of stack
    /// and waits for it.
    static func onLargeStack<T>(_ body: @escaping () -> T) -> T {
        var result: T?
        let run = ThreadBody { result = body() }
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, parserStackSize)
        var thread = pthread_t()
        // SAFETY: retained here, released by the defer after the join, so
        // the thread's body outlives the thread.
        let context = Unmanaged.passRetained(run).toOpaque()
        let created = pthread_create(&thread, &attributes, { context in
            Unmanaged<ThreadBody>.fromOpaque(context!).takeUnretainedValue().run()
            return nil
        }, context)
        defer { Unmanaged<ThreadBody>.fromOpaque(context).release() }
        guard created == 0 else {
            // No thread to be had: parse here (the nesting limit still
            // holds for release builds' smaller frames).
            return body()
        }
        pthread_join(thread, nil)
        return result!
    }

    /// WasmKit's message in the user's words: no Swift debug descriptions
    /// (`Name(value: "$f", location: Location(line: 4, column: 10))` is
    /// `$f`, `FunctionDecl` is `function`), no trailing location.
    static func describe(_ error: WatParserError) -> String {
        var message = String(describing: error)
        if let location = error.location, message.hasSuffix(" at \(location)") {
            message.removeLast(" at \(location)".count)
        }
        return describe(message)
    }

    static func describe(_ message: String) -> String {
        var text = message
        // Name(value: "$nope", location: Location(line: 4, column: 10)) -> $nope
        while let start = text.range(of: "Name(value: \""),
              let quote = text[start.upperBound...].firstIndex(of: "\""),
              let close = text[quote...].range(of: "))") {
            text.replaceSubrange(start.lowerBound..<close.upperBound, with: text[start.upperBound..<quote])
        }
        // Location(line: 4, column: 9) -> 4:10 (columns are 0-based there)
        while let start = text.range(of: "Location(line: "),
              let comma = text[start.upperBound...].firstIndex(of: ","),
              let columnStart = text[comma...].range(of: "column: "),
              let close = text[columnStart.upperBound...].firstIndex(of: ")") {
            let line = text[start.upperBound..<comma]
            let column = (Int(text[columnStart.upperBound..<close]) ?? 0) + 1
            text.replaceSubrange(start.lowerBound...close, with: "\(line):\(column)")
        }
        let declarations = [("ResolvedLocalDecl", "local"), ("LocalDecl", "local"), ("FunctionDecl", "function"),
                            ("GlobalDecl", "global"), ("MemoryDecl", "memory"), ("TableDecl", "table"),
                            ("SubTypeDecl", "type"), ("TypeDecl", "type"), ("ElementDecl", "element segment"),
                            ("DataSegmentDecl", "data segment"), ("TagDecl", "tag"), ("ExportDecl", "export"),
                            ("ImportDecl", "import")]
        for (token, spelling) in [("leftParen", "`(`"), ("rightParen", "`)`")] {
            while let range = text.range(of: token) { text.replaceSubrange(range, with: spelling) }
        }
        for (name, words) in declarations {
            while let range = text.range(of: name) { text.replaceSubrange(range, with: words) }
        }
        if let first = text.first, first.isUppercase, text.dropFirst().first?.isLowercase == true {
            text = first.lowercased() + text.dropFirst()
        }
        return text
    }
}

/// A closure a new thread runs.
private final class ThreadBody {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

private extension String {
    func range(of target: String) -> Range<String.Index>? {
        guard !target.isEmpty else { return nil }
        var index = startIndex
        while index < endIndex {
            if self[index...].hasPrefix(target) { return index..<self.index(index, offsetBy: target.count) }
            index = self.index(after: index)
        }
        return nil
    }
}

private extension Substring {
    func range(of target: String) -> Range<String.Index>? {
        var index = startIndex
        while index < endIndex {
            if self[index...].hasPrefix(target) { return index..<self.index(index, offsetBy: target.count) }
            index = self.index(after: index)
        }
        return nil
    }
}

extension CompileError {
    /// A WasmKit text-parser error in the user's words, with its line and
    /// column.
    public init(textError error: WatParserError) {
        let position = error.location?.computeLineAndColumn()
        self = .invalidText(message: TextParsing.describe(error), line: position?.line,
                            column: position.map { $0.column + 1 })
    }
}

/// Runs `body` on a new thread with a 64 MiB stack and waits for it: for
/// work that parses WebAssembly text (whose parser recurses once per level
/// of nesting), such as a script of many modules.
public func runOnLargeStack<T>(_ body: @escaping () -> T) -> T {
    TextParsing.onLargeStack(body)
}
