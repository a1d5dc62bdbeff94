import StackCapture
import Testing
import WasmUnwind

/// The stack-map table's binary form (a section of captures).
@Suite("Stack map table: binary form")
struct StackMapSerializationTests {
    static let mapA = try! StackMap(frameSize: 64, slotOffsets: [-16, -24, -48])
    static let mapB = try! StackMap(frameSize: 32, slotOffsets: [])

    func sample() throws -> StackMapTable {
        try StackMapTable(entries: [(0x8A, Self.mapA), (0x30, Self.mapB), (0xB3, Self.mapA), (0x1000, Self.mapB)])
    }

    @Test("the binary form round-trips and is a few bytes per call site")
    func serialization() throws {
        let table = try sample()
        let bytes = table.serialized()
        // maps: count 2; {4 frame words, 0 bitmap words}; {8, 1 word, 8 bytes};
        // entries: count 4; (0x30, 0) (0x5a, 1) (0x29, 1) (0xf4d as LEB, 0)
        #expect(bytes == [2, 4, 0, 8, 1, 0x26, 0, 0, 0, 0, 0, 0, 0,
                          4, 0x30, 0, 0x5A, 1, 0x29, 1, 0xCD, 0x1E, 0])
        var reader = ByteReader(bytes)
        #expect(try StackMapTable(reading: &reader) == table)
        #expect(reader.isAtEnd)
    }

    @Test("every truncation of the binary form is an error with an offset, never a crash")
    func truncations() throws {
        let bytes = try sample().serialized()
        for length in 0..<bytes.count {
            var reader = ByteReader(Array(bytes.prefix(length)))
            #expect(throws: ByteFormatError.self, "length \(length)") { try StackMapTable(reading: &reader) }
        }
    }

    @Test("inconsistent tables are rejected with what was wrong")
    func corruptions() {
        func read(_ bytes: [UInt8], codeSize: UInt32 = .max) throws(ByteFormatError) -> StackMapTable {
            var reader = ByteReader(bytes)
            return try StackMapTable(reading: &reader, codeSize: codeSize)
        }
        // A slot below the frame: bit 9 (fp-80) in a 64-byte frame.
        #expect(throws: ByteFormatError(offset: 1, expected: "stack map 0's slots to lie inside its 64-byte frame")) {
            try read([1, 8, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0])
        }
        // Offsets must increase.
        #expect(throws: ByteFormatError(offset: 6, expected: "stack map entry 1's offset to increase")) {
            try read([1, 2, 0, 2, 0x10, 0, 0, 0, 0])
        }
        // A map index past the pool (the map starts at 1, the index at 5).
        #expect(throws: ByteFormatError(offset: 5, expected: "map index of stack map entry 0 of at most 0, found 3")) {
            try read([1, 2, 0, 1, 0x10, 3])
        }
        // A billion entries claimed in six bytes.
        #expect(throws: ByteFormatError(offset: 3, expected: "stack map entry count of at most 2, found 1000000000")) {
            try read([1, 2, 0, 0x80, 0x94, 0xEB, 0xDC, 0x03])
        }
        // An offset outside the code.
        #expect(throws: ByteFormatError(offset: 4, expected: "stack map entry 0's offset 256 to lie inside 100 bytes of code")) {
            try read([1, 2, 0, 1, 0x80, 0x02, 0], codeSize: 100)
        }
    }
}
