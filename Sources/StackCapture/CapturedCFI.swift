@_spi(Tools) import WasmUnwind

/// The checks a captured `.eh_frame` passes before libunwind reads it
/// (`dump --verify`). libunwind trusts CFI: a register number past its
/// tables in a CFA instruction is an out-of-bounds write in libunwind
/// (found by `make fuzz`: `DW_CFA_register` naming register 16,348). So the
/// reader walks every CIE and FDE record and every CFA instruction and
/// refuses what libunwind could misread: a record running past the
/// segment, an FDE whose CIE is not a CIE of the segment, an augmentation
/// or pointer encoding it does not know, a register outside the
/// architecture's, a DWARF expression (this JIT never emits one), an
/// unknown opcode.
enum CapturedCFI {
    /// Registers libunwind keeps per frame (`FrameArchitecture.cfiRegisterCount`).
    static func registerCount(_ architecture: CaptureFile.Architecture) -> UInt64 {
        architecture.frame.cfiRegisterCount
    }

    /// Checks `bytes` (the segment's contents); an error names the byte,
    /// counted from the segment's first byte.
    static func validate(_ bytes: [UInt8], registers: UInt64) throws(Problem) {
        var cies: [Int: CIE] = [:]
        var position = 0
        while position < bytes.count {
            var cursor = Cursor(bytes: bytes, position: position, end: bytes.count)
            let length = try cursor.u32("a record length")
            if length == 0 { return }  // the terminator
            guard length != 0xFFFF_FFFF else { throw Problem(offset: position, "a 32-bit record length, found a 64-bit record") }
            guard UInt64(length) <= UInt64(bytes.count - cursor.position) else {
                throw Problem(offset: position, "record length \(length) to fit in the \(bytes.count - cursor.position) bytes left")
            }
            let end = cursor.position + Int(length)
            cursor.end = end
            let idPosition = cursor.position
            let id = try cursor.u32("a CIE id or CIE pointer")
            if id == 0 {
                let cie = try CIE(&cursor, registers: registers)
                cies[position] = cie
                try instructions(&cursor, cie: cie, registers: registers)
            } else {
                let ciePosition = idPosition - Int(id)
                guard let cie = cies[ciePosition] else {
                    throw Problem(offset: idPosition, "an FDE's CIE pointer to name an earlier CIE, found \(ciePosition)")
                }
                _ = try cursor.pointer(cie.pointerEncoding, "the FDE's first address")
                _ = try cursor.pointer(cie.pointerEncoding & 0x0F, "the FDE's address range")
                if cie.hasAugmentationData {
                    let size = try cursor.uleb("the FDE's augmentation length")
                    try cursor.skip(size, "the FDE's augmentation data")
                }
                try instructions(&cursor, cie: cie, registers: registers)
            }
            position = end
        }
    }

    struct CIE {
        var pointerEncoding: UInt8 = 0x00
        var hasAugmentationData = false

        init(_ cursor: inout Cursor, registers: UInt64) throws(Problem) {
            let versionAt = cursor.position
            let version = try cursor.u8("the CIE version")
            guard version == 1 || version == 3 else { throw Problem(offset: versionAt, "CIE version 1 or 3, found \(version)") }
            let augmentationAt = cursor.position
            var augmentation: [UInt8] = []
            while true {
                let byte = try cursor.u8("the CIE augmentation string")
                if byte == 0 { break }
                augmentation.append(byte)
            }
            _ = try cursor.uleb("the code alignment factor")
            _ = try cursor.sleb("the data alignment factor")
            let returnAt = cursor.position
            let returnRegister = version == 1 ? UInt64(try cursor.u8("the return-address register"))
                : try cursor.uleb("the return-address register")
            guard returnRegister < registers else {
                throw Problem(offset: returnAt, "a return-address register below \(registers), found \(returnRegister)")
            }
            guard let first = augmentation.first else { return }
            guard first == UInt8(ascii: "z") else {
                throw Problem(offset: augmentationAt, "an augmentation string starting with \"z\", found \"\(String(decoding: augmentation, as: UTF8.self))\"")
            }
            hasAugmentationData = true
            let size = try cursor.uleb("the CIE's augmentation length")
            let dataEnd = cursor.position + Int(min(size, UInt64(Int.max / 2)))
            for letter in augmentation.dropFirst() {
                switch letter {
                case UInt8(ascii: "R"): pointerEncoding = try cursor.encoding("the FDE pointer encoding")
                case UInt8(ascii: "L"): _ = try cursor.encoding("the LSDA encoding")
                case UInt8(ascii: "P"):
                    let encoding = try cursor.encoding("the personality encoding")
                    _ = try cursor.pointer(encoding, "the personality routine")
                case UInt8(ascii: "S"): break
                default:
                    throw Problem(offset: augmentationAt, "augmentation letters z, R, L, P, S, found \"\(String(decoding: augmentation, as: UTF8.self))\"")
                }
            }
            guard cursor.position <= dataEnd else {
                throw Problem(offset: augmentationAt, "the augmentation data to fit its length \(size)")
            }
            try cursor.skip(UInt64(dataEnd - cursor.position), "the CIE's augmentation data")
        }
    }

    /// The CFA instructions up to the record's end.
    static func instructions(_ cursor: inout Cursor, cie: CIE, registers: UInt64) throws(Problem) {
        func register(_ value: UInt64, at offset: Int) throws(Problem) {
            guard value < registers else {
                throw Problem(offset: offset, "a CFA instruction's register below \(registers), found \(value)")
            }
        }
        while cursor.position < cursor.end {
            let at = cursor.position
            let opcode = try cursor.u8("a CFA opcode")
            switch opcode >> 6 {
            case 1: continue  // DW_CFA_advance_loc
            case 2:  // DW_CFA_offset
                try register(UInt64(opcode & 0x3F), at: at)
                _ = try cursor.uleb("DW_CFA_offset's offset")
                continue
            case 3:  // DW_CFA_restore
                try register(UInt64(opcode & 0x3F), at: at)
                continue
            default: break
            }
            switch opcode {
            case 0x00, 0x0A, 0x0B: break  // nop, remember_state, restore_state
            case 0x01: _ = try cursor.pointer(cie.pointerEncoding, "DW_CFA_set_loc's address")
            case 0x02: try cursor.skip(1, "DW_CFA_advance_loc1's delta")
            case 0x03: try cursor.skip(2, "DW_CFA_advance_loc2's delta")
            case 0x04: try cursor.skip(4, "DW_CFA_advance_loc4's delta")
            case 0x05, 0x0C, 0x14, 0x2F:  // offset_extended, def_cfa, val_offset, GNU_negative_offset_extended
                try register(try cursor.uleb("a register"), at: at)
                _ = try cursor.uleb("an offset")
            case 0x06, 0x07, 0x08, 0x0D:  // restore_extended, undefined, same_value, def_cfa_register
                try register(try cursor.uleb("a register"), at: at)
            case 0x09:  // register
                try register(try cursor.uleb("a register"), at: at)
                try register(try cursor.uleb("a register"), at: at)
            case 0x0E, 0x2E: _ = try cursor.uleb("an offset")  // def_cfa_offset, GNU_args_size
            case 0x11, 0x12, 0x15:  // offset_extended_sf, def_cfa_sf, val_offset_sf
                try register(try cursor.uleb("a register"), at: at)
                _ = try cursor.sleb("a factored offset")
            case 0x13: _ = try cursor.sleb("a factored offset")  // def_cfa_offset_sf
            case 0x0F, 0x10, 0x16:
                throw Problem(offset: at, "no DWARF expression (DW_CFA opcode \(hex(opcode)))")
            default:
                throw Problem(offset: at, "a DW_CFA opcode, found \(hex(opcode))")
            }
        }
    }

    /// What is wrong, at which byte of the segment.
    struct Problem: Error {
        var offset: Int
        var expected: String
        init(offset: Int, _ expected: String) {
            self.offset = offset
            self.expected = expected
        }
    }

    /// Bounded reads over one record.
    struct Cursor {
        let bytes: [UInt8]
        var position: Int
        var end: Int

        mutating func u8(_ what: String) throws(Problem) -> UInt8 {
            guard position < end else { throw Problem(offset: position, "\(what) before the record's end") }
            defer { position += 1 }
            return bytes[position]
        }

        mutating func u32(_ what: String) throws(Problem) -> UInt32 {
            guard end - position >= 4 else { throw Problem(offset: position, "\(what) (4 bytes) before the end") }
            defer { position += 4 }
            return (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[position + $1]) << (8 * $1) }
        }

        mutating func skip(_ count: UInt64, _ what: String) throws(Problem) {
            guard count <= UInt64(end - position) else { throw Problem(offset: position, "\(what) (\(count) bytes) before the record's end") }
            position += Int(count)
        }

        mutating func uleb(_ what: String) throws(Problem) -> UInt64 {
            let start = position
            var result: UInt64 = 0, shift: UInt64 = 0
            while true {
                let byte = try u8(what)
                guard shift < 64 else { throw Problem(offset: start, "\(what) as a LEB128 of at most 10 bytes") }
                result |= UInt64(byte & 0x7F) << shift
                shift += 7
                if byte & 0x80 == 0 { return result }
            }
        }

        mutating func sleb(_ what: String) throws(Problem) -> Int64 {
            let start = position
            var result: Int64 = 0, shift: Int64 = 0, byte: UInt8 = 0
            repeat {
                byte = try u8(what)
                guard shift < 64 else { throw Problem(offset: start, "\(what) as a LEB128 of at most 10 bytes") }
                result |= Int64(byte & 0x7F) << shift
                shift += 7
            } while byte & 0x80 != 0
            if shift < 64 && byte & 0x40 != 0 { result |= -1 << shift }
            return result
        }

        /// A pointer encoding libunwind decodes: absptr, udata2/4/8 or
        /// sdata2/4/8, absolute, pc-relative or data-relative, maybe
        /// indirect.
        mutating func encoding(_ what: String) throws(Problem) -> UInt8 {
            let at = position
            let encoding = try u8(what)
            guard encoding == 0xFF || ([0x00, 0x02, 0x03, 0x04, 0x0A, 0x0B, 0x0C].contains(encoding & 0x0F)
                && [0x00, 0x10, 0x30].contains(encoding & 0x70)) else {
                throw Problem(offset: at, "\(what) to be a pointer encoding libunwind reads, found \(hex(encoding))")
            }
            return encoding
        }

        mutating func pointer(_ encoding: UInt8, _ what: String) throws(Problem) -> UInt64 {
            if encoding == 0xFF { return 0 }  // omitted
            switch encoding & 0x0F {
            case 0x02, 0x0A: try skip(2, what)
            case 0x03, 0x0B: try skip(4, what)
            default: try skip(8, what)
            }
            return 0
        }
    }
}
