@_spi(Tools) import WasmUnwind

/// Reads a little-endian binary format from a byte buffer. Every read
/// checks the bounds and fails with an error that says what was being read
/// and at which offset — never a trap, never a read past the end.
public struct ByteReader: Sendable {
    public let bytes: [UInt8]
    /// The next byte to read.
    public private(set) var offset: Int
    /// Reads stop here (a section's end).
    public let end: Int
    /// Offsets in errors are reported relative to this origin (the
    /// section's position in its file).
    public let origin: Int

    public init(_ bytes: [UInt8], offset: Int = 0, end: Int? = nil, origin: Int = 0) {
        self.bytes = bytes
        self.offset = offset
        self.end = min(end ?? bytes.count, bytes.count)
        self.origin = origin
    }

    /// Bytes left before `end`.
    public var remaining: Int { max(0, end - offset) }
    public var isAtEnd: Bool { offset >= end }

    public func error(_ expected: String) -> ByteFormatError {
        ByteFormatError(offset: origin + offset, expected: expected)
    }

    /// An error about the item that started at `start` (an offset from
    /// this reader's `bytes`).
    public func error(at start: Int, _ expected: String) -> ByteFormatError {
        ByteFormatError(offset: origin + start, expected: expected)
    }

    public mutating func readUInt8(_ what: String) throws(ByteFormatError) -> UInt8 {
        guard offset < end else { throw error("\(what) (1 byte), but the data ends") }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func readInteger<T: FixedWidthInteger>(_ what: String, as: T.Type = T.self) throws(ByteFormatError) -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else {
            throw error("\(what) (\(size) bytes), but only \(remaining) remain")
        }
        var value: T = 0
        for index in 0..<size { value |= T(truncatingIfNeeded: bytes[offset + index]) << (8 * index) }
        offset += size
        return value
    }

    /// An unsigned LEB128 that must fit in 64 bits.
    public mutating func readULEB(_ what: String) throws(ByteFormatError) -> UInt64 {
        let start = offset
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < end else { throw ByteFormatError(offset: origin + start, expected: "\(what) (LEB128), but the data ends") }
            let byte = bytes[offset]
            offset += 1
            if shift == 63 && byte > 1 || shift > 63 {
                throw ByteFormatError(offset: origin + start, expected: "\(what) (LEB128) to fit in 64 bits")
            }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    /// An unsigned LEB128 no larger than `limit` (a count or a size that
    /// must be plausible before anything is allocated for it).
    public mutating func readULEB(_ what: String, atMost limit: Int) throws(ByteFormatError) -> Int {
        let start = offset
        let value = try readULEB(what)
        guard value <= UInt64(limit) else {
            throw ByteFormatError(offset: origin + start, expected: "\(what) of at most \(limit), found \(value)")
        }
        return Int(value)
    }

    public mutating func readBytes(_ count: Int, _ what: String) throws(ByteFormatError) -> ArraySlice<UInt8> {
        guard count >= 0, remaining >= count else {
            throw error("\(what) (\(count) bytes), but only \(remaining) remain")
        }
        defer { offset += count }
        return bytes[offset..<(offset + count)]
    }

    /// A LEB128 length followed by that many bytes of UTF-8.
    public mutating func readString(_ what: String, atMost limit: Int = 1 << 16) throws(ByteFormatError) -> String {
        let length = try readULEB("length of \(what)", atMost: limit)
        let start = offset
        let slice = try readBytes(length, what)
        guard let text = String(validating: slice, as: UTF8.self) else {
            throw ByteFormatError(offset: origin + start, expected: "\(what) to be UTF-8")
        }
        return text
    }
}

/// Where a binary format was not what it should be.
public struct ByteFormatError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Byte offset of the problem.
    public var offset: Int
    /// What was expected there.
    public var expected: String

    public init(offset: Int, expected: String) {
        self.offset = offset
        self.expected = expected
    }

    public var description: String { "at offset \(offset): expected \(expected)" }
}

/// Writes a little-endian binary format.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public mutating func write(_ byte: UInt8) { bytes.append(byte) }

    public mutating func write<T: FixedWidthInteger>(_ value: T) { bytes.appendLittleEndian(value) }

    public mutating func writeULEB(_ value: UInt64) { bytes.appendULEB(value) }

    public mutating func write(_ some: some Sequence<UInt8>) { bytes.append(contentsOf: some) }

    public mutating func writeString(_ text: String) {
        writeULEB(UInt64(text.utf8.count))
        bytes.append(contentsOf: text.utf8)
    }

    /// Overwrites a 32-bit little-endian value at `position`.
    public mutating func patch(_ value: UInt32, at position: Int) {
        for index in 0..<4 { bytes[position + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
    }

    public var count: Int { bytes.count }
}

/// The encodings every binary format here shares (captures, stack maps,
/// DWARF CFI): one implementation each.
