/// A function (a subprogram, or an inlined subroutine in one) with code:
/// where its code is, where it was inlined from, what is inlined in it.
struct FunctionNode {
    var ranges: [Range<UInt64>]
    /// The DIE, for its name.
    var entryOffset: Int
    /// Where an inlined subroutine was called, in its caller.
    var callFile: UInt64
    var callLine: UInt32
    var callColumn: UInt32
    var children: [Int]
    /// Its parameters and variables with a location, in its lexical blocks too.
    var variables: [VariableNode] = []
}

/// A compilation unit: its header and root, and once a lookup needs
/// them, its functions and line table.
struct ParsedUnit {
    static let rootAttributes: Set<UInt64> = [DW.AT.name, DW.AT.compDir, DW.AT.stmtList, DW.AT.lowPC, DW.AT.highPC,
                                              DW.AT.ranges, DW.AT.strOffsetsBase, DW.AT.addrBase, DW.AT.rnglistsBase, DW.AT.loclistsBase]
    static let functionAttributes: Set<UInt64> = [DW.AT.lowPC, DW.AT.highPC, DW.AT.ranges, DW.AT.callFile, DW.AT.callLine,
                                                  DW.AT.callColumn, DW.AT.location]
    static let nameAttributes: Set<UInt64> = [DW.AT.name, DW.AT.linkageName, DW.AT.mipsLinkageName, DW.AT.abstractOrigin,
                                              DW.AT.specification]
    /// Deeper DIE nesting than this is refused.
    static let maximumDepth = 1024

    var header: UnitHeader
    var abbreviations: AbbreviationTable
    var root: UnitRoot
    var functions: [FunctionNode]?
    /// Top-level functions' ranges, sorted by start.
    var roots: [(range: Range<UInt64>, node: Int)] = []
    var lines: LineTable?
    /// Each line-table file's full path, by the index the line program
    /// and `DW_AT_call_file` use (made once, not per lookup).
    var filePaths: [UInt64: String] = [:]

    init(header: UnitHeader, abbreviations: AbbreviationTable, rootEntry: Entry, sections: DebugSections) throws(DWARFError) {
        self.header = header
        self.abbreviations = abbreviations
        var root = UnitRoot()
        // The bases first: other attributes are read through them.
        root.strOffsetsBase = rootEntry.value(DW.AT.strOffsetsBase)?.integer ?? 0
        root.addrBase = rootEntry.value(DW.AT.addrBase)?.integer ?? 0
        root.rnglistsBase = rootEntry.value(DW.AT.rnglistsBase)?.integer ?? 0
        root.loclistsBase = rootEntry.value(DW.AT.loclistsBase)?.integer ?? 0
        if let value = rootEntry.value(DW.AT.lowPC) { root.lowPC = try sections.address(value, unit: header, root: root) ?? 0 }
        root.name = try rootEntry.value(DW.AT.name).flatMap { value throws(DWARFError) in try sections.string(value, unit: header, root: root) }
        root.compilationDirectory = try rootEntry.value(DW.AT.compDir).flatMap { value throws(DWARFError) in
            try sections.string(value, unit: header, root: root)
        }
        root.lineProgram = rootEntry.value(DW.AT.stmtList)?.integer
        root.ranges = try sections.ranges(of: rootEntry, unit: header, root: root)
        self.root = root
    }

    /// Reads the unit's DIEs for its functions, and its line program.
    mutating func readFunctions(_ sections: DebugSections) throws(DWARFError) {
        var cursor = DWARFCursor(sections.info, section: ".debug_info", offset: header.firstEntry, end: header.end)
        var functions: [FunctionNode] = []
        var roots: [(range: Range<UInt64>, node: Int)] = []
        // Per open DIE with children: the nearest enclosing function (-1:
        // none), and the innermost lexical block's ranges in it (empty: the
        // whole function).
        var enclosing: [(function: Int, scope: [Range<UInt64>])] = []
        while !cursor.isAtEnd {
            guard let entry = try cursor.entry(unit: header, abbreviations: abbreviations, wanted: Self.functionAttributes) else {
                if enclosing.isEmpty { continue }  // padding after the root's children
                enclosing.removeLast()
                continue
            }
            var node = -1
            var scope = enclosing.last?.scope ?? []
            switch entry.tag {
            case DW.TAG.subprogram, DW.TAG.inlinedSubroutine:
                let ranges = try sections.ranges(of: entry, unit: header, root: root)
                if !ranges.isEmpty {
                    node = functions.count
                    scope = []
                    func number(_ name: UInt64) -> UInt64 { entry.value(name)?.integer ?? 0 }
                    functions.append(FunctionNode(ranges: ranges, entryOffset: entry.offset, callFile: number(DW.AT.callFile),
                                                  callLine: UInt32(clamping: number(DW.AT.callLine)),
                                                  callColumn: UInt32(clamping: number(DW.AT.callColumn)), children: []))
                    if entry.tag == DW.TAG.inlinedSubroutine, let parent = enclosing.last?.function, parent >= 0 {
                        functions[parent].children.append(node)
                    } else {
                        roots += ranges.map { ($0, node) }
                    }
                }
            case DW.TAG.lexicalBlock:
                let ranges = try sections.ranges(of: entry, unit: header, root: root)
                if !ranges.isEmpty { scope = ranges }
            case DW.TAG.formalParameter, DW.TAG.variable:
                if let function = enclosing.last?.function, function >= 0, let location = entry.value(DW.AT.location) {
                    functions[function].variables.append(VariableNode(entryOffset: entry.offset, location: location, scope: scope))
                }
            default:
                break
            }
            if entry.hasChildren {
                enclosing.append((node >= 0 ? node : (enclosing.last?.function ?? -1), scope))
                guard enclosing.count <= Self.maximumDepth else {
                    throw cursor.error("DIEs nested at most \(Self.maximumDepth) deep", at: entry.offset)
                }
            }
        }
        roots.sort { $0.range.lowerBound < $1.range.lowerBound }
        self.functions = functions
        self.roots = roots
        if let offset = root.lineProgram {
            let table = try LineTable(sections.line, at: offset, unit: header, strings: sections.str, lineStrings: sections.lineStr)
            lines = table
            let first: UInt64 = table.version >= 5 ? 0 : 1
            for index in first..<(first + UInt64(table.files.count)) {
                filePaths[index] = table.path(ofFile: index, compilationDirectory: root.compilationDirectory)
            }
        }
    }

    /// The functions at `address`, outermost first: a top-level function,
    /// then each inlined subroutine containing it.
    func chain(at address: UInt64) -> [Int] {
        guard let functions else { return [] }
        var low = 0, high = roots.count
        while low < high {
            let middle = (low + high) / 2
            if roots[middle].range.lowerBound <= address { low = middle + 1 } else { high = middle }
        }
        // Overlapping top-level ranges are unusual: look back a little.
        var candidate: Int?
        var index = low - 1
        while index >= 0, index >= low - 16 {
            if roots[index].range.contains(address) { candidate = roots[index].node; break }
            index -= 1
        }
        guard var node = candidate else { return [] }
        var chain = [node]
        // Each step goes to a node created later than its parent: no cycle.
        while let child = functions[node].children.first(where: { child in functions[child].ranges.contains { $0.contains(address) } }) {
            chain.append(child)
            node = child
        }
        return chain
    }
}
