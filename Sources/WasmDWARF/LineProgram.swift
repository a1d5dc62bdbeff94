/// A unit's line table from `.debug_line` (versions 2 to 5): its files,
/// and its rows as sequences sorted by address.
struct LineTable {
    struct File {
        var name: String
        var directoryIndex: UInt64
    }

    struct Row {
        var address: UInt64
        var file: UInt64
        var line: UInt32
        var column: UInt32
    }

    struct Sequence {
        var start: UInt64
        var end: UInt64
        /// Sorted by address; one row per address (the last the program
        /// emitted for it).
        var rows: [Row]
    }

    var version: UInt16
    var directories: [String]
    var files: [File]
    var sequences: [Sequence]

    /// The row in force at `address`, if a sequence covers it.
    func row(at address: UInt64) -> Row? {
        // The last sequence starting at or before the address.
        var low = 0, high = sequences.count
        while low < high {
            let middle = (low + high) / 2
            if sequences[middle].start <= address { low = middle + 1 } else { high = middle }
        }
        guard low > 0 else { return nil }
        let sequence = sequences[low - 1]
        guard address < sequence.end else { return nil }
        var first = 0, last = sequence.rows.count
        while first < last {
            let middle = (first + last) / 2
            if sequence.rows[middle].address <= address { first = middle + 1 } else { last = middle }
        }
        return first > 0 ? sequence.rows[first - 1] : nil
    }

    /// File `index` as the line program numbers them (from 1 before
    /// DWARF 5, from 0 since), joined to its directory and the unit's
    /// compilation directory as addr2line does.
    func path(ofFile index: UInt64, compilationDirectory: String?) -> String? {
        let position = version >= 5 ? index : index &- 1
        guard position < UInt64(files.count) else { return nil }
        let file = files[Int(position)]
        var path = compilationDirectory ?? ""
        if file.directoryIndex != 0 || version >= 5 {
            let directory = version >= 5 ? file.directoryIndex : file.directoryIndex - 1
            if directory < UInt64(directories.count) { push(&path, directories[Int(directory)]) }
        }
        push(&path, file.name)
        return path
    }

    private func push(_ path: inout String, _ component: String) {
        if component.hasPrefix("/") || path.isEmpty {
            path = component
        } else {
            if !path.hasSuffix("/") { path += "/" }
            path += component
        }
    }
}

extension LineTable {
    /// The header fields the program's opcodes need.
    struct Parameters {
        var minimumInstructionLength: UInt64
        var lineBase: Int64
        var lineRange: UInt64
        var opcodeBase: UInt8
        var standardLengths: [UInt8]
        var tombstone: UInt64
    }

    /// Reads the line program at `offset` of `.debug_line`: its header,
    /// its directories and files, then its rows.
    init(_ section: ArraySlice<UInt8>, at offset: UInt64, unit: UnitHeader,
         strings: ArraySlice<UInt8>, lineStrings: ArraySlice<UInt8>) throws(DWARFError) {
        guard offset < UInt64(section.count) else {
            throw DWARFError(section: ".debug_line", offset: Int(clamping: offset), expected: "a line program inside the section")
        }
        var outer = DWARFCursor(section, section: ".debug_line", offset: Int(offset))
        let (length, offsetSize) = try outer.initialLength("the line program's length")
        var cursor = try outer.sub(length, "the line program")
        let version = try cursor.u16("the line table version")
        guard (2...5).contains(version) else { throw cursor.error("line table version 2 to 5, found \(version)") }
        self.version = version
        var addressSize = unit.addressSize
        if version >= 5 {
            addressSize = Int(try cursor.u8("the address size"))
            _ = try cursor.u8("the segment selector size")
        }
        let headerLength = try cursor.sectionOffset(size: offsetSize, "the header length")
        var header = try cursor.sub(headerLength, "the line program header")
        let minimumInstructionLength = UInt64(try header.u8("the minimum instruction length"))
        if version >= 4 { _ = try header.u8("the maximum operations per instruction") }
        _ = try header.u8("default_is_stmt")
        let lineBase = Int64(Int8(bitPattern: try header.u8("line_base")))
        let lineRange = UInt64(try header.u8("line_range"))
        guard lineRange != 0 else { throw header.error("a line range other than 0") }
        let opcodeBase = try header.u8("opcode_base")
        var standardLengths: [UInt8] = []
        if opcodeBase > 0 {
            for _ in 1..<opcodeBase { standardLengths.append(try header.u8("a standard opcode length")) }
        }
        if version >= 5 {
            let format = UnitHeader(offset: 0, end: 0, version: version, offsetSize: offsetSize, addressSize: addressSize,
                                    abbreviationOffset: 0, firstEntry: 0)
            directories = try Self.entries(&header, "directory", format: format, strings: strings, lineStrings: lineStrings)
                .map(\.path)
            files = try Self.entries(&header, "file name", format: format, strings: strings, lineStrings: lineStrings)
                .map { File(name: $0.path, directoryIndex: $0.directory) }
        } else {
            (directories, files) = try Self.lists(&header)
        }
        let parameters = Parameters(minimumInstructionLength: minimumInstructionLength, lineBase: lineBase, lineRange: lineRange,
                                    opcodeBase: opcodeBase, standardLengths: standardLengths, tombstone: unit.tombstone)
        sequences = try Self.run(&cursor, parameters)
    }

    /// DWARF 5's directory or file name entries: described by a list of
    /// (content type, form) pairs, then that many entries.
    static func entries(_ header: inout DWARFCursor, _ what: String, format: UnitHeader,
                        strings: ArraySlice<UInt8>, lineStrings: ArraySlice<UInt8>) throws(DWARFError) -> [(path: String, directory: UInt64)] {
        let formatCount = try header.u8("the \(what) entry format count")
        var formats: [(UInt64, UInt64)] = []
        for _ in 0..<formatCount { formats.append((try header.uleb("a content type"), try header.uleb("a form"))) }
        let count = try header.uleb("the \(what) count")
        guard count <= UInt64(header.remaining) else { throw header.error("at most \(header.remaining) \(what) entries, found \(count)") }
        var result: [(path: String, directory: UInt64)] = []
        for _ in 0..<count {
            var path = "", directory: UInt64 = 0
            for (type, form) in formats {
                let value = try header.attribute(form: form, implicitConstant: 0, unit: format)
                switch (type, value) {
                case (1, .string(let text)): path = text
                case (1, .lineStringOffset(let at)): path = try string(in: lineStrings, at: at, name: ".debug_line_str")
                case (1, .stringOffset(let at)): path = try string(in: strings, at: at, name: ".debug_str")
                case (2, let value): directory = value.integer ?? 0
                default: break
                }
            }
            result.append((path, directory))
        }
        return result
    }

    /// Before DWARF 5: include directories, then file names, each list
    /// ended by an empty string.
    static func lists(_ header: inout DWARFCursor) throws(DWARFError) -> ([String], [File]) {
        var directories: [String] = [], files: [File] = []
        while true {
            let directory = try header.cString("an include directory")
            if directory.isEmpty { break }
            directories.append(directory)
        }
        while true {
            let name = try header.cString("a file name")
            if name.isEmpty { break }
            let directory = try header.uleb("a file's directory index")
            _ = try header.uleb("a file's modification time")
            _ = try header.uleb("a file's length")
            files.append(File(name: name, directoryIndex: directory))
        }
        return (directories, files)
    }

    /// Runs the line program's state machine (DWARF 5, 6.2.2): its
    /// sequences, sorted by start, dead ones (tombstones) left out.
    static func run(_ cursor: inout DWARFCursor, _ parameters: Parameters) throws(DWARFError) -> [Sequence] {
        var sequences: [Sequence] = []
        var state = Machine()
        while !cursor.isAtEnd {
            let opcode = try cursor.u8("an opcode")
            if opcode >= parameters.opcodeBase {
                let adjusted = UInt64(opcode - parameters.opcodeBase)
                state.address &+= (adjusted / parameters.lineRange) &* parameters.minimumInstructionLength
                state.line &+= parameters.lineBase + Int64(adjusted % parameters.lineRange)
                state.emit()
                continue
            }
            switch opcode {
            case 0:
                let length = try cursor.uleb("an extended opcode's length")
                var extended = try cursor.sub(length, "an extended opcode")
                guard length > 0 else { continue }
                switch try extended.u8("an extended opcode") {
                case 1:  // end_sequence
                    if let sequence = state.endSequence(tombstone: parameters.tombstone) { sequences.append(sequence) }
                case 2:  // set_address
                    state.address = try extended.unsigned(size: min(extended.remaining, 8), "an address")
                default:
                    break  // define_file, set_discriminator, vendor: nothing a lookup uses
                }
            case 1: state.emit()
            case 2: state.address &+= (try cursor.uleb("advance_pc")) &* parameters.minimumInstructionLength
            case 3: state.line &+= try cursor.sleb("advance_line")
            case 4: state.file = try cursor.uleb("set_file")
            case 5: state.column = try cursor.uleb("set_column")
            case 8:
                state.address &+= ((255 - UInt64(parameters.opcodeBase)) / parameters.lineRange) &* parameters.minimumInstructionLength
            case 9: state.address &+= UInt64(try cursor.u16("fixed_advance_pc"))
            case 6, 7, 10, 11: break
            default:
                // A standard opcode this reader does not use: its operands
                // are ULEB128s, as many as the header says.
                let count = Int(opcode) - 1 < parameters.standardLengths.count ? parameters.standardLengths[Int(opcode) - 1] : 0
                for _ in 0..<count { _ = try cursor.uleb("an opcode operand") }
            }
        }
        sequences.sort { $0.start < $1.start }
        return sequences
    }

    /// The state machine's registers and the rows of the sequence so far.
    struct Machine {
        var address: UInt64 = 0, file: UInt64 = 1, line: Int64 = 1, column: UInt64 = 0
        var rows: [Row] = []
        var sorted = true

        /// A row: one per address, the last the program emitted for it.
        mutating func emit() {
            let row = Row(address: address, file: file, line: UInt32(clamping: line), column: UInt32(clamping: column))
            if let last = rows.last, last.address == address {
                rows[rows.count - 1] = row
            } else {
                if let last = rows.last, address < last.address { sorted = false }
                rows.append(row)
            }
        }

        /// Ends the sequence at the current address (nil for an empty or
        /// dead one) and resets the registers.
        mutating func endSequence(tombstone: UInt64) -> Sequence? {
            let ordered = sorted ? rows : Self.ordered(rows)
            let end = address
            self = Machine()
            guard let first = ordered.first, first.address < end, first.address < tombstone else { return nil }
            return Sequence(start: first.address, end: end, rows: ordered)
        }

        /// Rows a program emitted out of order: sorted, the last emitted
        /// for an address kept (n log n, whatever the input).
        static func ordered(_ rows: [Row]) -> [Row] {
            let order = rows.indices.sorted { (rows[$0].address, $0) < (rows[$1].address, $1) }
            var result: [Row] = []
            result.reserveCapacity(rows.count)
            for index in order {
                if let last = result.last, last.address == rows[index].address { result[result.count - 1] = rows[index] }
                else { result.append(rows[index]) }
            }
            return result
        }
    }
}
