@_spi(Tools) import WasmUnwind

/// DWARF 4 line and subprogram information for JIT code: one compile unit
/// named after the module's file, a `DW_TAG_subprogram` per function and
/// stub (so a debugger names frames and knows where each routine ends), and
/// a line program mapping each native instruction to its wasm offset as the
/// "line". Addresses are absolute (the object file is never relocated).
enum DWARFWriter {
    struct Sections {
        var abbrev: [UInt8]
        var info: [UInt8]
        var line: [UInt8]
    }

    // Tags, attributes and forms (DWARF 4, section 7).
    private static let compileUnit: UInt8 = 0x11, subprogram: UInt8 = 0x2E
    private static let atName: UInt8 = 0x03, atStmtList: UInt8 = 0x10, atLowPC: UInt8 = 0x11, atHighPC: UInt8 = 0x12,
                       atLanguage: UInt8 = 0x13, atCompDir: UInt8 = 0x1B, atProducer: UInt8 = 0x25,
                       atExternal: UInt8 = 0x3F, atArtificial: UInt8 = 0x34
    private static let formAddr: UInt8 = 0x01, formData2: UInt8 = 0x05, formData8: UInt8 = 0x07,
                       formString: UInt8 = 0x08, formSecOffset: UInt8 = 0x17, formFlagPresent: UInt8 = 0x19
    /// C99: a language every debugger knows, with no runtime of its own to
    /// look for (there is no DWARF language code for WebAssembly).
    private static let languageC99: UInt16 = 0x0C

    static func sections(for routines: [JITCodeDescription.Routine], fileName: String, sourceFiles: [String] = [],
                         compilationDirectory: String = "", producer: String) -> Sections {
        // Abbreviations: 1 the compile unit, 2 a function, 3 a stub.
        var abbrev: [UInt8] = []
        func declare(_ code: UInt8, _ tag: UInt8, children: Bool, _ attributes: [(UInt8, UInt8)]) {
            abbrev += [code, tag, children ? 1 : 0]
            for (attribute, form) in attributes { abbrev += [attribute, form] }
            abbrev += [0, 0]
        }
        declare(1, compileUnit, children: true, [(atProducer, formString), (atLanguage, formData2), (atName, formString),
                                                 (atCompDir, formString), (atLowPC, formAddr), (atHighPC, formData8),
                                                 (atStmtList, formSecOffset)])
        declare(2, subprogram, children: false, [(atName, formString), (atLowPC, formAddr), (atHighPC, formData8),
                                                 (atExternal, formFlagPresent)])
        declare(3, subprogram, children: false, [(atName, formString), (atLowPC, formAddr), (atHighPC, formData8),
                                                 (atArtificial, formFlagPresent)])
        abbrev.append(0)

        let low = routines.map(\.range.lowerBound).min() ?? 0
        let high = routines.map(\.range.upperBound).max() ?? 0
        var body: [UInt8] = []
        body.appendLittleEndian(UInt16(4))        // version
        body.appendLittleEndian(UInt32(0))        // abbreviations at offset 0
        body.append(8)                            // address size
        body.append(1)
        appendString(producer, to: &body)
        body.appendLittleEndian(languageC99)
        appendString(fileName, to: &body)
        appendString(compilationDirectory, to: &body)
        body.appendLittleEndian(low)
        body.appendLittleEndian(high - low)
        body.appendLittleEndian(UInt32(0))        // the line program at offset 0
        for routine in routines {
            body.append(routine.isStub ? 3 : 2)
            appendString(routine.name, to: &body)
            body.appendLittleEndian(routine.range.lowerBound)
            body.appendLittleEndian(UInt64(routine.range.count))
        }
        body.append(0)                            // end of the unit's children
        var info: [UInt8] = []
        info.appendLittleEndian(UInt32(body.count))
        info += body

        return Sections(abbrev: abbrev, info: info, line: lineProgram(for: routines, fileName: fileName, sourceFiles: sourceFiles))
    }

    /// A version 4 line program: one sequence per function, a row per
    /// address-map entry. File 1 is the module (wasm offsets as lines);
    /// files 2... the source files of a module with DWARF (their paths as
    /// its line table joins them).
    static func lineProgram(for routines: [JITCodeDescription.Routine], fileName: String, sourceFiles: [String] = []) -> [UInt8] {
        var header: [UInt8] = []
        header.append(1)                          // minimum_instruction_length
        header.append(1)                          // maximum_operations_per_instruction
        header.append(1)                          // default_is_stmt
        header.append(UInt8(bitPattern: -5))      // line_base
        header.append(14)                         // line_range
        header.append(13)                         // opcode_base
        header += [0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1]  // standard_opcode_lengths
        header.append(0)                          // no include directories
        for file in [fileName] + sourceFiles {
            appendString(file, to: &header)
            header += [0, 0, 0]                   // directory, mtime, length
        }
        header.append(0)                          // end of file names

        var program: [UInt8] = []
        for routine in routines where !routine.lines.isEmpty {
            // Rows sorted by address, the last of equal addresses kept.
            var rows: [(address: UInt64, file: Int, line: UInt32)] = []
            for row in routine.lines.sorted(by: { $0.address < $1.address }) where routine.range.contains(row.address) {
                if rows.last?.address == row.address { rows[rows.count - 1] = row } else { rows.append(row) }
            }
            guard let first = rows.first else { continue }
            // The routine's first bytes belong to its first row.
            if first.address > routine.range.lowerBound { rows.insert((routine.range.lowerBound, first.file, first.line), at: 0) }
            program += [0, 9, 2]                  // DW_LNE_set_address
            program.appendLittleEndian(rows[0].address)
            var address = rows[0].address, line: Int64 = 1, file = 0
            for row in rows {
                if row.address != address {
                    program.append(2)             // DW_LNS_advance_pc
                    program.appendULEB(row.address - address)
                    address = row.address
                }
                if row.file != file {
                    program.append(4)             // DW_LNS_set_file
                    program.appendULEB(UInt64(row.file + 1))
                    file = row.file
                }
                if Int64(row.line) != line {
                    program.append(3)             // DW_LNS_advance_line
                    program.appendSLEB(Int64(row.line) - line)
                    line = Int64(row.line)
                }
                program.append(1)                 // DW_LNS_copy
            }
            program.append(2)
            program.appendULEB(routine.range.upperBound - address)
            program += [0, 1, 1]                  // DW_LNE_end_sequence
        }

        var unit: [UInt8] = []
        unit.appendLittleEndian(UInt16(4))        // version
        unit.appendLittleEndian(UInt32(header.count))
        unit += header
        unit += program
        var out: [UInt8] = []
        out.appendLittleEndian(UInt32(unit.count))
        out += unit
        return out
    }

    static func appendString(_ text: String, to bytes: inout [UInt8]) {
        bytes.append(contentsOf: text.utf8.map { $0 == 0 ? UInt8(ascii: "?") : $0 })
        bytes.append(0)
    }
}
