// Little-endian and LEB128 appends, for the tools that write binary formats
// (DWARF, ELF, jitdump, captures): SPI, not part of the embedder's API.

extension Array where Element == UInt8 {
    /// Appends `value`, least significant byte first.
    @_spi(Tools) public mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        for index in 0..<MemoryLayout<T>.size { append(UInt8(truncatingIfNeeded: value >> (8 * index))) }
    }

    /// Appends `value` as unsigned LEB128.
    @_spi(Tools) public mutating func appendULEB(_ value: UInt64) {
        var value = value
        repeat {
            var byte = UInt8(value & 0x7F)
            value >>= 7
            if value != 0 { byte |= 0x80 }
            append(byte)
        } while value != 0
    }

    /// Appends `value` as signed LEB128.
    @_spi(Tools) public mutating func appendSLEB(_ value: Int64) {
        var value = value
        while true {
            let byte = UInt8(value & 0x7F)
            value >>= 7
            if (value == 0 && byte & 0x40 == 0) || (value == -1 && byte & 0x40 != 0) {
                append(byte)
                return
            }
            append(byte | 0x80)
        }
    }
}
