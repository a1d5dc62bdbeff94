/// Why a module's debug information could not be read: which section,
/// which byte of it, and what was expected there.
public struct DWARFError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The section (`.debug_info`, ...), or `module` for the wasm binary.
    public var section: String
    /// The byte offset in that section.
    public var offset: Int
    public var expected: String

    public init(section: String, offset: Int, expected: String) {
        self.section = section
        self.offset = offset
        self.expected = expected
    }

    public var description: String { "\(section) at byte \(offset): expected \(expected)" }
}

/// A bounds-checked reader over one section's bytes: every read checks
/// that its bytes are there, every LEB128 is at most 10 bytes, every
/// string ends inside the section. Offsets are the section's.
struct DWARFCursor {
    let bytes: ArraySlice<UInt8>
    let section: String
    /// The next byte to read, relative to the section's start.
    private(set) var offset: Int
    /// Where this cursor stops (a unit's end, or the section's).
    private(set) var end: Int

    init(_ bytes: ArraySlice<UInt8>, section: String, offset: Int = 0, end: Int? = nil) {
        self.bytes = bytes
        self.section = section
        self.offset = offset
        self.end = min(end ?? bytes.count, bytes.count)
    }

    var isAtEnd: Bool { offset >= end }
    var remaining: Int { max(0, end - offset) }

    func error(_ expected: String, at position: Int? = nil) -> DWARFError {
        DWARFError(section: section, offset: position ?? offset, expected: expected)
    }

    /// A cursor over the next `length` bytes, which this one skips.
    mutating func sub(_ length: UInt64, _ what: String) throws(DWARFError) -> DWARFCursor {
        guard length <= UInt64(remaining) else { throw error("\(what) of \(length) bytes inside the section (\(remaining) left)") }
        let sub = DWARFCursor(bytes, section: section, offset: offset, end: offset + Int(length))
        offset += Int(length)
        return sub
    }

    mutating func seek(_ position: Int) throws(DWARFError) {
        guard position >= 0, position <= end else { throw error("an offset inside the section, found \(position)") }
        offset = position
    }

    mutating func skip(_ count: UInt64, _ what: String) throws(DWARFError) {
        guard count <= UInt64(remaining) else { throw error("\(what): \(count) bytes, \(remaining) left") }
        offset += Int(count)
    }

    mutating func u8(_ what: String) throws(DWARFError) -> UInt8 {
        guard offset < end else { throw error("\(what), found the end") }
        let value = bytes[bytes.startIndex + offset]
        offset += 1
        return value
    }

    /// A little-endian unsigned integer of `size` bytes (1 to 8).
    mutating func unsigned(size: Int, _ what: String) throws(DWARFError) -> UInt64 {
        guard size >= 1, size <= 8, size <= remaining else { throw error("\(what) (\(size) bytes), \(remaining) left") }
        var value: UInt64 = 0
        let base = bytes.startIndex + offset
        for index in 0..<size { value |= UInt64(bytes[base + index]) << (8 * UInt64(index)) }
        offset += size
        return value
    }

    mutating func u16(_ what: String) throws(DWARFError) -> UInt16 { UInt16(try unsigned(size: 2, what)) }
    mutating func u32(_ what: String) throws(DWARFError) -> UInt32 { UInt32(try unsigned(size: 4, what)) }
    mutating func u64(_ what: String) throws(DWARFError) -> UInt64 { try unsigned(size: 8, what) }

    mutating func uleb(_ what: String) throws(DWARFError) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        let start = offset
        while true {
            let byte = try u8(what)
            if shift < 64 { value |= UInt64(byte & 0x7f) << shift }
            if byte & 0x80 == 0 { return value }
            shift += 7
            guard shift < 70 else { throw error("\(what) as a LEB128 of at most 10 bytes", at: start) }
        }
    }

    mutating func sleb(_ what: String) throws(DWARFError) -> Int64 {
        var value: Int64 = 0
        var shift: Int64 = 0
        let start = offset
        while true {
            let byte = try u8(what)
            if shift < 64 { value |= Int64(byte & 0x7f) << shift }
            shift += 7
            if byte & 0x80 == 0 {
                // Sign-extend: every bit from `shift` up (shift 63 included,
                // where -(1 << 63) would overflow).
                if shift < 64, byte & 0x40 != 0 { value |= Int64(bitPattern: UInt64.max << UInt64(shift)) }
                return value
            }
            guard shift < 70 else { throw error("\(what) as a LEB128 of at most 10 bytes", at: start) }
        }
    }

    /// A NUL-terminated string's bytes (the NUL skipped).
    mutating func cString(_ what: String) throws(DWARFError) -> String {
        let start = offset
        let base = bytes.startIndex
        var index = offset
        while index < end, bytes[base + index] != 0 { index += 1 }
        guard index < end else { throw error("\(what) to end with a NUL inside the section", at: start) }
        offset = index + 1
        return String(decoding: bytes[(base + start)..<(base + index)], as: UTF8.self)
    }

    /// An initial length: 32-bit DWARF, or 0xffffffff then a 64-bit length.
    mutating func initialLength(_ what: String) throws(DWARFError) -> (length: UInt64, offsetSize: Int) {
        let first = try u32(what)
        if first == 0xffff_ffff { return (try u64(what), 8) }
        guard first < 0xffff_fff0 else { throw error("\(what): a length, found the reserved value \(first)") }
        return (UInt64(first), 4)
    }

    /// A section offset of the unit's format (4 or 8 bytes).
    mutating func sectionOffset(size: Int, _ what: String) throws(DWARFError) -> UInt64 {
        try unsigned(size: size, what)
    }
}

/// The string at `offset` in a string section (`.debug_str`,
/// `.debug_line_str`), or nil when it is not there.
func string(in section: ArraySlice<UInt8>, at offset: UInt64, name: String) throws(DWARFError) -> String {
    guard offset < UInt64(section.count) else {
        throw DWARFError(section: name, offset: Int(clamping: offset), expected: "a string offset inside the section (\(section.count) bytes)")
    }
    var cursor = DWARFCursor(section, section: name, offset: Int(offset))
    return try cursor.cString("a string")
}
