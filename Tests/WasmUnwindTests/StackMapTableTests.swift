import Testing
import WasmUnwind

@Suite("Stack map table")
struct StackMapTableTests {
    static let mapA = try! StackMap(frameSize: 64, slotOffsets: [-16, -24, -48])
    static let mapB = try! StackMap(frameSize: 32, slotOffsets: [])

    func sample() throws -> StackMapTable {
        try StackMapTable(entries: [(0x8A, Self.mapA), (0x30, Self.mapB), (0xB3, Self.mapA), (0x1000, Self.mapB)])
    }

    @Test("slot offsets become a bitmap of fp-relative words and back")
    func bitmap() throws {
        #expect(Self.mapA.bitmap == [0b10_0110])  // bits 1, 2, 5: fp-16, fp-24, fp-48
        #expect(Self.mapA.slotOffsets == [-16, -24, -48])
        let wide = try StackMap(frameSize: 1024, slotOffsets: [-8, -520, -1024])
        #expect(wide.bitmap.count == 2)
        #expect(wide.slotOffsets == [-8, -520, -1024])
        #expect(Self.mapB.isEmpty)
    }

    @Test("lookup is exact: only recorded return addresses have maps")
    func exactLookup() throws {
        let table = try sample()
        #expect(table.map(atReturnOffset: 0x8A) == Self.mapA)
        #expect(table.map(atReturnOffset: 0x30) == Self.mapB)
        #expect(table.map(atReturnOffset: 0x1000) == Self.mapB)
        for missing: UInt32 in [0, 0x2F, 0x31, 0x89, 0x8B, 0xB4, 0xFFF, 0x1001, 0x10_0000, .max] {
            #expect(table.map(atReturnOffset: missing) == nil, "\(missing)")
            #expect(table.entryIndexByBinarySearch(of: missing) == nil)
        }
        #expect(StackMapTable.empty.map(atReturnOffset: 0) == nil)
    }

    @Test("the extreme offsets 0 and UInt32.max are keys like any other")
    func extremeOffsets() throws {
        let table = try StackMapTable(entries: [(0, Self.mapA), (.max, Self.mapB)])
        #expect(table.map(atReturnOffset: 0) == Self.mapA)
        #expect(table.map(atReturnOffset: .max) == Self.mapB)
        #expect(table.map(atReturnOffset: 1) == nil)
        #expect(table.map(atReturnOffset: .max - 1) == nil)
    }

    @Test("the hash index agrees with binary search on 20,000 random call sites, present and absent")
    func hashAgreesWithBinarySearch() throws {
        var generator = SystemRandomNumberGenerator()
        let maps = try (0..<7).map { try StackMap(frameSize: 64, slotOffsets: $0 == 0 ? [] : [-8 * Int32($0)]) }
        var offsets = Set<UInt32>()
        // Clustered like real code (call sites a few bytes apart) plus
        // scattered ones, so probe chains get long somewhere.
        var next: UInt32 = 0
        while offsets.count < 15_000 { next += UInt32.random(in: 5...60, using: &generator); offsets.insert(next) }
        while offsets.count < 20_000 { offsets.insert(UInt32.random(in: 0...UInt32.max, using: &generator)) }
        let entries = offsets.map { (offset: $0, map: maps[Int($0 % 7)]) }
        let table = try StackMapTable(entries: entries)
        // Collected, then checked once: a #expect per lookup is slow in
        // debug builds.
        var wrong: [String] = []
        let mapIndices = table.mapIndices
        for offset in offsets {
            let index = table.mapIndex(atReturnOffset: offset)
            let expected = table.entryIndexByBinarySearch(of: offset).map { Int(mapIndices[$0]) }
            if index == nil || index != expected || table.maps[index!] != maps[Int(offset % 7)] {
                wrong.append("present \(offset): \(String(describing: index)) vs \(String(describing: expected))")
            }
        }
        var absent = 0
        while absent < 20_000 {
            let probe = UInt32.random(in: 0...UInt32.max, using: &generator)
            if offsets.contains(probe) { continue }
            absent += 1
            if let index = table.mapIndex(atReturnOffset: probe) { wrong.append("absent \(probe) found map \(index)") }
        }
        #expect(wrong.isEmpty, "\(wrong.prefix(5))")
    }

    @Test("identical maps are stored once")
    func deduplicated() throws {
        let table = try sample()
        #expect(table.count == 4)
        #expect(table.maps == [Self.mapB, Self.mapA])
        #expect(table.mapIndices == [0, 1, 1, 0])
    }

    @Test("two call sites cannot share a return address")
    func duplicates() {
        #expect(throws: StackMapError.duplicateOffset(0x30)) {
            try StackMapTable(entries: [(0x30, Self.mapA), (0x30, Self.mapB)])
        }
    }

    @Test("a slot outside its frame, or not a word, is an error")
    func slotsOutsideTheFrame() {
        #expect(throws: StackMapError.slotOutsideFrame(offset: -72, frameSize: 64)) {
            try StackMap(frameSize: 64, slotOffsets: [-8, -72])
        }
        #expect(throws: StackMapError.slotOutsideFrame(offset: -12, frameSize: 64)) {
            try StackMap(frameSize: 64, slotOffsets: [-12])
        }
        #expect(throws: StackMapError.slotOutsideFrame(offset: 8, frameSize: 64)) {
            try StackMap(frameSize: 64, slotOffsets: [8])
        }
    }
}
