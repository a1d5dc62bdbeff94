import WasmUnwind

/// The limits every engine agrees to enforce on a module (the WebAssembly
/// JS API's "Implementation-defined limits", which browsers enforce, and
/// wasmparser's `limits.rs`, which Wasmtime and `wasm-tools validate`
/// enforce; where they differ, the stricter). A module past one is
/// refused with an error naming the limit, the count and where; within
/// them, compiling it is bounded work: no count in the binary makes the
/// compiler allocate more than a small multiple of the binary's size.
enum ImplementationLimits {
    static let types = 1_000_000
    static let functions = 1_000_000
    static let imports = 100_000
    static let exports = 100_000
    static let globals = 1_000_000
    static let tags = 1_000_000
    static let dataSegments = 100_000
    static let elementSegments = 100_000
    static let tables = 100
    /// The items of one element segment. (A table's size is checked when it
    /// is made: a module may declare a larger one, as the spec tests do.)
    static let tableEntries = 10_000_000
    static let parameters = 1_000
    static let results = 1_000
    /// A function body's bytes, its locals declarations included.
    static let functionBodyBytes = 7_654_321
    /// A function's locals, its parameters included.
    static let locals = 50_000
    /// An import or export name.
    static let nameBytes = 100_000

    /// Scans the code section before the binary parser sees it — a locals
    /// declaration is the one run-length encoding in a module (`(count,
    /// type)`), which the parser would expand — and checks each body's
    /// size and declared locals. Returns where each body's locals
    /// declaration starts. Every size is checked against the bytes that
    /// remain before it is used.
    static func scanCodeSection(_ bytes: [UInt8]) throws(CompileError) -> [(body: Int, lastLocals: Int?)] {
        var reader = LEBReader(bytes: bytes, position: 8)
        while reader.position < bytes.count {
            let id = bytes[reader.position]
            reader.position += 1
            let sectionStart = reader.position
            let size = try reader.length(what: "section \(id)")
            guard id == 10 else {
                reader.position += size
                continue
            }
            let end = reader.position + size
            let entries = try reader.count(what: "function bodies", limit: functions, offset: sectionStart)
            var offsets: [(body: Int, lastLocals: Int?)] = []
            offsets.reserveCapacity(entries)
            for index in 0..<entries {
                let sizeOffset = reader.position
                let bodySize = try reader.length(what: "function body \(index)")
                guard bodySize <= functionBodyBytes else {
                    throw .invalid("function body \(index) is \(bodySize) bytes; the limit is \(functionBodyBytes)",
                                   offset: sizeOffset)
                }
                let bodyEnd = reader.position + bodySize
                let bodyStart = reader.position
                let groups = try reader.unsigned()
                var declared: UInt64 = 0
                var lastGroup: Int?
                for _ in 0..<min(groups, UInt64(bodySize)) {
                    let countOffset = reader.position
                    lastGroup = countOffset
                    declared += try reader.unsigned()
                    guard declared <= UInt64(locals) else {
                        throw .invalid("too many locals: function body \(index) declares more than \(locals) "
                                       + "(the limit, parameters included)", offset: countOffset)
                    }
                    // The type (the parser checks it): one byte, or a
                    // reference type's 0x63/0x64 and its heap type.
                    guard reader.position < bytes.count else { break }
                    let type = bytes[reader.position]
                    reader.position += 1
                    if type == 0x63 || type == 0x64 { _ = try reader.unsigned() }
                }
                guard reader.position <= bodyEnd else {
                    throw .malformed("function body \(index)'s locals run past its end", offset: sizeOffset)
                }
                offsets.append((bodyStart, lastGroup))
                reader.position = bodyEnd
            }
            guard reader.position == end else {
                throw .malformed("the code section's size does not match its bodies", offset: sectionStart)
            }
            return offsets
        }
        return []
    }
}

extension ModuleDescription {
    /// The limits that concern what the parser built (each part is in
    /// proportion to the binary's size, so checking after parsing costs
    /// nothing extra).
    func checkImplementationLimits() throws(CompileError) {
        typealias Limits = ImplementationLimits
        func check(_ count: Int, _ limit: Int, _ what: String) throws(CompileError) {
            guard count <= limit else { throw .invalid("too many \(what): \(count); the limit is \(limit)", offset: nil) }
        }
        try check(signatures.count, Limits.types, "types")
        try check(functionSignatureIndices.count, Limits.functions, "functions")
        try check(imports.count + tableImports.count + globalImports.count + tagImports.count
                  + (memoryImport == nil ? 0 : 1), Limits.imports, "imports")
        try check(exports.count, Limits.exports, "exports")
        try check(globalImports.count + globals.count, Limits.globals, "globals")
        try check(tagImports.count + definedTags.count, Limits.tags, "tags")
        try check(dataSegments.count, Limits.dataSegments, "data segments")
        try check(elementSegments.count, Limits.elementSegments, "element segments")
        try check(tableImports.count + tables.count, Limits.tables, "tables")
        for (index, segment) in elementSegments.enumerated() {
            try check(segment.items.count, Limits.tableEntries, "items in element segment \(index)")
        }
        for (index, signature) in signatures.enumerated() {
            guard let signature else { continue }
            try check(signature.parameters.count, Limits.parameters, "parameters in type \(index)")
            try check(signature.results.count, Limits.results, "results in type \(index)")
        }
        let names = imports.flatMap { [$0.module, $0.name] } + tableImports.flatMap { [$0.module, $0.name] }
            + globalImports.flatMap { [$0.module, $0.name] } + tagImports.flatMap { [$0.module, $0.name] } + exportOrder
        if let long = names.first(where: { $0.utf8.count > Limits.nameBytes }) {
            throw .invalid("an import or export name of \(long.utf8.count) bytes; the limit is \(Limits.nameBytes)", offset: nil)
        }
        for (index, body) in bodies.enumerated() {
            let parameters = try signature(ofFunction: UInt32(imports.count + index), offset: nil).parameters.count
            guard parameters + body.code.locals.count <= Limits.locals else {
                throw .invalid("too many locals: function \(imports.count + index) has \(parameters + body.code.locals.count) "
                               + "(\(parameters) parameters, \(body.code.locals.count) declared); the limit is \(Limits.locals)",
                               offset: body.bodyOffset)
            }
        }
    }
}

extension LEBReader {
    /// A LEB128 size of something that follows, checked against the bytes
    /// that remain.
    mutating func length(what: String) throws(CompileError) -> Int {
        let at = position
        let value = try unsigned()
        guard value <= UInt64(bytes.count - position) else {
            throw .malformed("\(what) is \(value) bytes, but only \(bytes.count - position) remain", offset: at)
        }
        return Int(value)
    }

    /// A LEB128 count of entries, checked against a limit.
    mutating func count(what: String, limit: Int, offset: Int) throws(CompileError) -> Int {
        let value = try unsigned()
        guard value <= UInt64(limit) else { throw .invalid("too many \(what): \(value); the limit is \(limit)", offset: offset) }
        return Int(value)
    }
}
