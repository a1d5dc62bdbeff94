@_spi(Tools) import WasmUnwind

/// Why `.eh_frame` bytes could not be read.
public struct EhFrameError: Error, CustomStringConvertible {
    /// Offset in the `.eh_frame` of the record or field at fault.
    public var offset: Int
    public var problem: String
    public var description: String { ".eh_frame offset \(offset): \(problem)" }
}

/// The CIEs and FDEs of an `.eh_frame`, read where it lies in memory (its
/// pc-relative pointers are relative to that address), and what a
/// profiler needs from it: the CFI of one routine as a self-contained
/// `.eh_frame` and `.eh_frame_hdr` for wherever the profiler places it.
struct EhFrame {
    struct FDE {
        /// Offset of the record (its length field) and its size with it.
        var offset: Int
        var size: Int
        var cieOffset: Int
        var cieSize: Int
        /// Offset of the pc_begin field and its encoding (from the CIE).
        var pcBeginField: Int
        var encoding: UInt8
        var pcRange: Range<UInt64>
    }

    let bytes: [UInt8]
    let address: UInt64
    private(set) var fdes: [FDE] = []

    init(bytes: [UInt8], address: UInt64) throws(EhFrameError) {
        self.bytes = bytes
        self.address = address
        var cies: [Int: (size: Int, encoding: UInt8)] = [:]
        var offset = 0
        while offset + 4 <= bytes.count {
            let length = Int(read32(offset))
            if length == 0 { break }  // the terminator
            guard length != 0xFFFF_FFFF else { throw EhFrameError(offset: offset, problem: "64-bit DWARF records are not supported") }
            let size = 4 + length
            guard offset + size <= bytes.count, length >= 4 else {
                throw EhFrameError(offset: offset, problem: "a record of \(length) bytes runs past the end (\(bytes.count) bytes)")
            }
            let id = read32(offset + 4)
            if id == 0 {
                cies[offset] = (size, try Self.pointerEncoding(ofCIEAt: offset, size: size, in: bytes))
            } else {
                let cieOffset = offset + 4 - Int(id)
                guard let cie = cies[cieOffset] else {
                    throw EhFrameError(offset: offset, problem: "FDE points to no CIE before it (at \(cieOffset))")
                }
                let field = offset + 8
                let begin = try readPointer(at: field, encoding: cie.encoding, recordEnd: offset + size)
                let range = try readPointer(at: field + Self.width(cie.encoding, at: field), encoding: cie.encoding & 0x0F,
                                            recordEnd: offset + size)
                fdes.append(FDE(offset: offset, size: size, cieOffset: cieOffset, cieSize: cie.size, pcBeginField: field,
                                encoding: cie.encoding, pcRange: begin..<(begin &+ range)))
            }
            offset += size
        }
    }

    /// The FDE whose code contains `address`.
    func fde(covering address: UInt64) -> FDE? {
        fdes.first { $0.pcRange.contains(address) }
    }

    /// `fde` and its CIE as a `.eh_frame` of their own placed at
    /// `ehFrameAddress`, describing code at `codeAddress`, followed by the
    /// `.eh_frame_hdr` that indexes it (returned apart, to be placed right
    /// after). Only the FDE's pc_begin and CIE pointer change.
    func standalone(_ fde: FDE, codeAddress: UInt64, ehFrameAddress: UInt64) throws(EhFrameError)
        -> (ehFrame: [UInt8], header: [UInt8])
    {
        var out = Array(bytes[fde.cieOffset..<(fde.cieOffset + fde.cieSize)])
        let fdeStart = out.count
        out += bytes[fde.offset..<(fde.offset + fde.size)]
        // CIE pointer: from the field back to the CIE at 0.
        patch32(&out, at: fdeStart + 4, UInt32(fdeStart + 4))
        let field = fdeStart + (fde.pcBeginField - fde.offset)
        switch (fde.encoding & 0x70, Self.widthOfFormat(fde.encoding)) {
        case (0x00, 8):
            patch64(&out, at: field, codeAddress)
        case (0x10, 4):
            let delta = Int64(bitPattern: codeAddress &- (ehFrameAddress + UInt64(field)))
            guard let value = Int32(exactly: delta) else {
                throw EhFrameError(offset: fde.pcBeginField, problem: "code \(delta) bytes away does not fit the FDE's 4-byte pointer")
            }
            patch32(&out, at: field, UInt32(bitPattern: value))
        case (0x10, 8):
            patch64(&out, at: field, codeAddress &- (ehFrameAddress + UInt64(field)))
        default:
            throw EhFrameError(offset: fde.pcBeginField,
                               problem: "pointer encoding \(hex(UInt(fde.encoding))) cannot be relocated (absolute 8-byte or pc-relative only)")
        }
        out.appendLittleEndian(UInt32(0))  // terminator

        let headerAddress = ehFrameAddress + UInt64(out.count)
        var header: [UInt8] = [1, 0x1B, 0x03, 0x3B]  // version; pcrel sdata4; udata4; datarel sdata4
        header.appendLittleEndian(Int32(truncatingIfNeeded: Int64(bitPattern: ehFrameAddress &- (headerAddress + 4))))
        header.appendLittleEndian(UInt32(1))
        header.appendLittleEndian(Int32(truncatingIfNeeded: Int64(bitPattern: codeAddress &- headerAddress)))
        header.appendLittleEndian(Int32(truncatingIfNeeded: Int64(bitPattern: ehFrameAddress + UInt64(fdeStart) &- headerAddress)))
        return (out, header)
    }

    // MARK: Reading

    private func read32(_ offset: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << (8 * $1) }
    }

    private func readPointer(at offset: Int, encoding: UInt8, recordEnd: Int) throws(EhFrameError) -> UInt64 {
        let width = Self.widthOfFormat(encoding)
        guard width > 0, offset + width <= recordEnd else {
            throw EhFrameError(offset: offset, problem: "pointer encoding \(hex(UInt(encoding))) is not a fixed-size one this reader knows")
        }
        var raw = (0..<width).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << (8 * $1) }
        if encoding & 0x08 != 0, width < 8, raw & (1 << (8 * width - 1)) != 0 { raw |= ~0 << (8 * width) }  // signed
        switch encoding & 0x70 {
        case 0x00: return raw
        case 0x10: return address &+ UInt64(offset) &+ raw
        default:
            throw EhFrameError(offset: offset, problem: "pointer application \(hex(UInt(encoding & 0x70))) is not supported")
        }
    }

    private static func width(_ encoding: UInt8, at offset: Int) throws(EhFrameError) -> Int {
        let width = widthOfFormat(encoding)
        guard width > 0 else { throw EhFrameError(offset: offset, problem: "pointer encoding \(hex(UInt(encoding))) unsupported") }
        return width
    }

    /// Bytes of a fixed-size pointer format; 0 for LEB128 and unknown ones.
    static func widthOfFormat(_ encoding: UInt8) -> Int {
        switch encoding & 0x0F {
        case 0x00, 0x04, 0x0C: return 8
        case 0x02, 0x0A: return 2
        case 0x03, 0x0B: return 4
        default: return 0
        }
    }

    /// The FDE pointer encoding a CIE declares (its `R` augmentation;
    /// absolute 8-byte pointers without one).
    static func pointerEncoding(ofCIEAt offset: Int, size: Int, in bytes: [UInt8]) throws(EhFrameError) -> UInt8 {
        var cursor = offset + 8
        let end = offset + size
        let version = bytes[cursor]
        cursor += 1
        var augmentation: [UInt8] = []
        while cursor < end, bytes[cursor] != 0 {
            augmentation.append(bytes[cursor])
            cursor += 1
        }
        cursor += 1
        guard augmentation.first == UInt8(ascii: "z") else {
            if augmentation.isEmpty { return 0x00 }
            throw EhFrameError(offset: offset, problem: "CIE augmentation \"\(String(decoding: augmentation, as: UTF8.self))\" has no length ('z')")
        }
        if version >= 4 { cursor += 2 }  // address_size, segment_selector_size
        func skipLEB() {
            while cursor < end, bytes[cursor] & 0x80 != 0 { cursor += 1 }
            cursor += 1
        }
        skipLEB()                               // code alignment
        skipLEB()                               // data alignment
        if version == 1 { cursor += 1 } else { skipLEB() }  // return address register
        skipLEB()                               // augmentation data length
        for character in augmentation.dropFirst() {
            guard cursor < end else { break }
            switch character {
            case UInt8(ascii: "R"): return bytes[cursor]
            case UInt8(ascii: "L"): cursor += 1
            case UInt8(ascii: "P"):
                let encoding = bytes[cursor]
                cursor += 1 + max(1, widthOfFormat(encoding))
            case UInt8(ascii: "S"), UInt8(ascii: "B"): break
            default:
                throw EhFrameError(offset: offset, problem: "CIE augmentation character '\(Character(UnicodeScalar(character)))' is unknown")
            }
        }
        return 0x00
    }
}

private func patch32(_ bytes: inout [UInt8], at offset: Int, _ value: UInt32) {
    for index in 0..<4 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
}

private func patch64(_ bytes: inout [UInt8], at offset: Int, _ value: UInt64) {
    for index in 0..<8 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
}
