import Synchronization

/// One function of a source-level frame: a wasm frame is one or more of
/// them, the innermost inlined function first.
public struct SourceSymbol: Hashable, Sendable {
    /// The function's name as the DWARF gives it: its linkage (mangled)
    /// name when it has one, else its name; nil when it has neither.
    public var name: String?
    /// The source file's path, joined to its directory and the unit's
    /// compilation directory.
    public var file: String?
    public var line: UInt32?
    public var column: UInt32?

    /// A line or column of 0 means none (DWARF's "unknown"); without a
    /// line there is no column either, as addr2line reports them.
    public init(name: String?, file: String?, line: UInt32?, column: UInt32?) {
        self.name = name
        self.file = file
        self.line = line == 0 ? nil : line
        self.column = self.line == nil || column == 0 ? nil : column
    }
}

/// A module's DWARF, read when a lookup first needs it: for a module
/// offset, the chain of functions inlined at it with their source lines.
///
/// Addresses in a wasm module's DWARF are offsets from the code section's
/// contents; lookups take module offsets, as backtraces print them, of the
/// instruction itself (a call's offset for a return address, the trapping
/// instruction's for a trap — the rule `CodeRegistry` applies). A module
/// whose debug information cannot be read has no source lines, and
/// ``diagnostic`` says why; nothing is ever read outside a section.
public final class ModuleDebugInfo: Sendable {
    private let sections: DebugSections
    /// The module offset DWARF addresses are relative to.
    public let codeStart: Int?
    /// The module's `build_id` section, if any.
    public let buildID: [UInt8]?
    /// The module's `external_debug_info` section, if any.
    public let externalDebugInfo: String?
    private let state = Mutex(State())

    private struct State: ~Copyable {
        var units: [ParsedUnit]?
        var failure: DWARFError?
        var names: [Int: String?] = [:]
        /// Answers already given, by address (a deep recursion asks the
        /// same few again and again); emptied when it grows past
        /// `answerCacheLimit`.
        var answers: [UInt64: [SourceSymbol]] = [:]
    }

    /// How many answers are kept.
    static let answerCacheLimit = 4096

    /// The debug information of the module `bytes`; `debugFile`, when
    /// given, is a separate file (a wasm module of custom sections) whose
    /// debug sections are used instead of the module's own.
    public convenience init(module bytes: [UInt8], debugFile: [UInt8]? = nil) throws(DWARFError) {
        let wasm = try WasmSections(parsing: bytes)
        let sections = if let debugFile {
            DebugSections(bytes: debugFile, sections: try WasmSections(parsing: debugFile))
        } else {
            DebugSections(bytes: bytes, sections: wasm)
        }
        self.init(codeStart: wasm.codeStart, buildID: wasm.buildID, externalDebugInfo: wasm.externalDebugInfo,
                  sections: sections)
    }

    /// The debug information in `debugFile` (a wasm binary holding the
    /// `.debug_*` custom sections: the module itself, a separate debug
    /// file, or the sections a capture carries) of a module whose code
    /// section's contents start at module offset `codeStart` — when the
    /// module itself is not at hand, as offline.
    public convenience init(codeStart: Int, debugFile: [UInt8]) throws(DWARFError) {
        let wasm = try WasmSections(parsing: debugFile)
        self.init(codeStart: codeStart, buildID: wasm.buildID, externalDebugInfo: wasm.externalDebugInfo,
                  sections: DebugSections(bytes: debugFile, sections: wasm))
    }

    private init(codeStart: Int?, buildID: [UInt8]?, externalDebugInfo: String?, sections: DebugSections) {
        self.codeStart = codeStart
        self.buildID = buildID
        self.externalDebugInfo = externalDebugInfo
        self.sections = sections
    }

    /// Whether the module has a `.debug_info` section at all.
    public var hasDebugInfo: Bool { !sections.info.isEmpty }

    /// Why the module's debug information could not be read (then no
    /// lookup finds lines), once a lookup tried.
    public var diagnostic: DWARFError? { state.withLock { $0.failure } }

    /// The functions at the instruction at module offset `offset`, the
    /// innermost inlined one first, each with its source location; empty
    /// when the DWARF says nothing about it.
    public func symbols(atModuleOffset offset: UInt32) -> [SourceSymbol] {
        guard hasDebugInfo, let codeStart, Int(offset) >= codeStart else { return [] }
        let address = UInt64(Int(offset) - codeStart)
        return state.withLock { state -> [SourceSymbol] in
            if state.failure != nil { return [] }
            if let known = state.answers[address] { return known }
            do throws(DWARFError) {
                if state.units == nil { state.units = try readUnits() }
                let answer = try lookup(address, in: &state)
                if state.answers.count >= Self.answerCacheLimit { state.answers.removeAll(keepingCapacity: true) }
                state.answers[address] = answer
                return answer
            } catch {
                state.failure = error
                return []
            }
        }
    }

    /// The source variables in the wasm locals and operands of the frame
    /// at the instruction at module offset `offset`: each parameter or
    /// variable of the functions there whose DWARF location at that
    /// instruction is exactly a wasm local or operand — several when one
    /// place holds several variables (a value passed to an inlined
    /// function), the innermost function's first. Variables kept in linear
    /// memory or as constants are in no place; a variable whose location
    /// cannot be read is left out, and does not stop source lines.
    public func variables(atModuleOffset offset: UInt32) -> [WasmPlace: [String]] {
        guard hasDebugInfo, let codeStart, Int(offset) >= codeStart else { return [:] }
        let address = UInt64(Int(offset) - codeStart)
        return state.withLock { state -> [WasmPlace: [String]] in
            if state.failure != nil { return [:] }
            do throws(DWARFError) {
                if state.units == nil { state.units = try readUnits() }
                guard var units = state.units,
                      let index = units.firstIndex(where: { unit in unit.root.ranges.contains { $0.contains(address) } }) else { return [:] }
                if units[index].functions == nil {
                    try units[index].readFunctions(sections)
                    state.units = units
                }
                let unit = units[index]
                var names: [WasmPlace: [String]] = [:]
                for node in unit.chain(at: address).reversed() {
                    for variable in unit.functions![node].variables {
                        guard let place = try? sections.place(of: variable, at: address, unit: unit.header, root: unit.root),
                              let name = try? self.name(ofEntry: variable.entryOffset, units, &state.names, depth: 0) else { continue }
                        if names[place]?.contains(name) != true { names[place, default: []].append(name) }
                    }
                }
                return names
            } catch {
                state.failure = error
                return [:]
            }
        }
    }

    // MARK: Units

    private func readUnits() throws(DWARFError) -> [ParsedUnit] {
        var cursor = DWARFCursor(sections.info, section: ".debug_info")
        var units: [ParsedUnit] = []
        while !cursor.isAtEnd {
            let header = try UnitHeader.read(&cursor)
            let abbreviations = try AbbreviationTable(sections.abbrev, at: header.abbreviationOffset)
            var entries = DWARFCursor(sections.info, section: ".debug_info", offset: header.firstEntry, end: header.end)
            guard let root = try entries.entry(unit: header, abbreviations: abbreviations, wanted: ParsedUnit.rootAttributes) else {
                continue
            }
            units.append(try ParsedUnit(header: header, abbreviations: abbreviations, rootEntry: root, sections: sections))
        }
        return units
    }

    private func unitIndex(containingEntry offset: Int, _ units: [ParsedUnit]) -> Int? {
        var low = 0, high = units.count
        while low < high {
            let middle = (low + high) / 2
            if units[middle].header.offset <= offset { low = middle + 1 } else { high = middle }
        }
        guard low > 0, offset < units[low - 1].header.end else { return nil }
        return low - 1
    }

    private func lookup(_ address: UInt64, in state: inout State) throws(DWARFError) -> [SourceSymbol] {
        guard var units = state.units,
              let index = units.firstIndex(where: { unit in unit.root.ranges.contains { $0.contains(address) } }) else { return [] }
        if units[index].functions == nil {
            try units[index].readFunctions(sections)
            state.units = units
        }
        let unit = units[index]
        let chain = unit.chain(at: address)
        let row = unit.lines?.row(at: address)
        func path(_ file: UInt64) -> String? { unit.filePaths[file] }
        var symbols: [SourceSymbol] = []
        var file = row.flatMap { path($0.file) }
        var line = row.map(\.line), column = row.map(\.column)
        for node in chain.reversed() {
            let function = unit.functions![node]
            symbols.append(SourceSymbol(name: try name(ofEntry: function.entryOffset, units, &state.names, depth: 0),
                                        file: file, line: line, column: column))
            file = path(function.callFile)
            line = function.callLine
            column = function.callColumn
        }
        if chain.isEmpty, row != nil {
            symbols.append(SourceSymbol(name: nil, file: file, line: line, column: column))
        }
        return symbols
    }

    /// A function's name: its linkage name, else its name, else its
    /// abstract origin's or specification's (at most 16 links followed).
    private func name(ofEntry offset: Int, _ units: [ParsedUnit], _ names: inout [Int: String?], depth: Int) throws(DWARFError) -> String? {
        if let known = names[offset] { return known }
        guard depth < 16, let index = unitIndex(containingEntry: offset, units) else { return nil }
        let unit = units[index]
        var cursor = DWARFCursor(sections.info, section: ".debug_info", offset: offset, end: unit.header.end)
        guard let entry = try cursor.entry(unit: unit.header, abbreviations: unit.abbreviations, wanted: ParsedUnit.nameAttributes) else {
            return nil
        }
        var result: String?
        if let value = entry.value(DW.AT.linkageName) ?? entry.value(DW.AT.mipsLinkageName) {
            result = try sections.string(value, unit: unit.header, root: unit.root)
        }
        if result == nil, let value = entry.value(DW.AT.name) {
            result = try sections.string(value, unit: unit.header, root: unit.root)
        }
        if result == nil, case .reference(let target)? = entry.value(DW.AT.abstractOrigin) ?? entry.value(DW.AT.specification),
           target < UInt64(sections.info.count) {
            result = try name(ofEntry: Int(target), units, &names, depth: depth + 1)
        }
        names[offset] = result
        return result
    }
}
