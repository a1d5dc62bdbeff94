/// What a coredump's reader needs of a module beside it: where each
/// function's body starts (a frame's code offset is from there), and the
/// names of its functions and locals from the name section.
public struct ModuleSymbols: Hashable, Sendable {
    /// The name section's module name.
    public var moduleName: String?
    /// Per function index (imports first): the body's start — its locals
    /// declaration — as a module offset; nil for an import.
    public var bodyStarts: [Int?] = []
    public var functionNames: [UInt32: String] = [:]
    /// Per function index: local index -> name.
    public var localNames: [UInt32: [UInt32: String]] = [:]

    /// Reads a module binary's import, code and name sections (bounded:
    /// a malformed module is an error naming the offset).
    public init(parsing bytes: [UInt8]) throws(CoredumpError) {
        guard bytes.count >= 8, bytes[0..<4] == [0x00, 0x61, 0x73, 0x6D] else {
            throw CoredumpError(offset: 0, problem: "not a wasm module (no \\0asm magic)")
        }
        var reader = BinaryReader(bytes, position: 8)
        var importedFunctions = 0
        while !reader.atEnd {
            let id = try reader.byte("a section id")
            let size = Int(try reader.uleb("a section's size"))
            let start = reader.position
            guard size <= bytes.count - start else {
                throw reader.error("section \(id) of \(size) bytes runs past the end of the module", at: start)
            }
            var section = BinaryReader(bytes, position: start, end: start + size)
            reader.position = start + size
            switch id {
            case 2:
                for _ in 0..<(try section.count("imports", minimumSize: 4)) {
                    _ = try section.name("an import's module")
                    _ = try section.name("an import's name")
                    let kind = try section.byte("an import's kind")
                    switch kind {
                    case 0:
                        _ = try section.u32("an imported function's type")
                        importedFunctions += 1
                    case 1:
                        _ = try section.byte("a table's element type")
                        try Self.skipLimits(&section)
                    case 2: try Self.skipLimits(&section)
                    case 3:
                        _ = try section.byte("a global's type")
                        _ = try section.byte("a global's mutability")
                    case 4:
                        _ = try section.byte("a tag's attribute")
                        _ = try section.u32("a tag's type")
                    default: throw section.error("an import of kind \(kind)", at: section.position - 1)
                    }
                }
            case 10:
                bodyStarts = Array(repeating: nil, count: importedFunctions)
                for _ in 0..<(try section.count("function bodies", minimumSize: 2)) {
                    let length = Int(try section.uleb("a body's size"))
                    bodyStarts.append(section.position)
                    _ = try section.bytes(length, "a function body")
                }
            case 0:
                guard try section.name("a custom section's name") == "name" else { continue }
                // Names are an aid: a malformed name section leaves the
                // names read before the problem.
                try? readNames(&section)
            default:
                continue
            }
        }
    }

    static func skipLimits(_ section: inout BinaryReader) throws(CoredumpError) {
        let flags = try section.byte("limits")
        _ = try section.uleb("a minimum", bits: 64)
        if flags & 1 != 0 { _ = try section.uleb("a maximum", bits: 64) }
    }

    mutating func readNames(_ section: inout BinaryReader) throws(CoredumpError) {
        while !section.atEnd {
            let id = try section.byte("a name subsection's id")
            let size = Int(try section.uleb("a name subsection's size"))
            let start = section.position
            guard size <= section.end - start else { throw section.error("a name subsection runs past its section") }
            var subsection = BinaryReader(section.bytes, position: start, end: start + size)
            section.position = start + size
            switch id {
            case 0: moduleName = try subsection.name("the module's name")
            case 1:
                for _ in 0..<(try subsection.count("function names", minimumSize: 2)) {
                    let index = try subsection.u32("a function index")
                    functionNames[index] = try subsection.name("a function's name")
                }
            case 2:
                for _ in 0..<(try subsection.count("functions' local names", minimumSize: 2)) {
                    let function = try subsection.u32("a function index")
                    var names: [UInt32: String] = [:]
                    for _ in 0..<(try subsection.count("local names", minimumSize: 2)) {
                        let local = try subsection.u32("a local index")
                        names[local] = try subsection.name("a local's name")
                    }
                    localNames[function] = names
                }
            default: continue
            }
        }
    }

    /// The module offset of a frame's code offset in function `index`.
    public func moduleOffset(function index: UInt32, codeOffset: UInt32) -> Int? {
        guard Int(index) < bodyStarts.count, let start = bodyStarts[Int(index)] else { return nil }
        return start + Int(codeOffset)
    }
}
