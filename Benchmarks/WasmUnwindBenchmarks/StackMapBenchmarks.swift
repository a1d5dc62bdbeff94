import WasmUnwind

/// Stack-map lookup at 1K, 100K and 1M call sites: the hash index against
/// plain binary search over the same sorted offsets.
func stackMapBenchmarks(_ harness: inout Harness) {
    for count in [1_000, 100_000, 1_000_000] {
        var random = SystemRandomNumberGenerator()
        var offset: UInt32 = 0
        let maps = (0..<64).map { StackMap(frameSize: 256, slotOffsets: [-16 - 8 * Int32($0 % 20)]) }
        var entries: [(offset: UInt32, map: StackMap)] = []
        entries.reserveCapacity(count)
        for index in 0..<count {
            // Call sites 5 to 60 bytes apart, as in compiled code.
            offset += UInt32.random(in: 5...60, using: &random)
            entries.append((offset, maps[index % maps.count]))
        }
        let table = try! StackMapTable(entries: entries)
        // Queries: a random permutation of real return addresses (the
        // frames of a walk hit call sites all over the code).
        var queries = entries.map(\.offset)
        queries.shuffle(using: &random)
        var next = 0
        let label = count >= 1_000_000 ? "1M" : count >= 1_000 && count < 1_000_000 && count % 1_000 == 0 ? "\(count / 1000)K" : "\(count)"
        harness.measure("stack-map lookup, \(label) call sites", "hash index (ours): map index") {
            let query = queries[next]
            next = next + 1 == queries.count ? 0 : next + 1
            consume(UInt(table.mapIndex(atReturnOffset: query)!))
        }
        harness.measure("stack-map lookup, \(label) call sites", "plain binary search") {
            let query = queries[next]
            next = next + 1 == queries.count ? 0 : next + 1
            consume(UInt(table.entryIndexByBinarySearch(of: query)!))
        }
        harness.measure("stack-map lookup, \(label) call sites", "map(atReturnOffset:) (lookup + map)") {
            let query = queries[next]
            next = next + 1 == queries.count ? 0 : next + 1
            consume(UInt(table.map(atReturnOffset: query)!.frameSize))
        }
        // The memory floor: one random 8-byte read from an array the size
        // of the hash index, indices precomputed (no hashing, no compare).
        // Any exact lookup structure that does not fit the cache pays at
        // least this.
        let words = table.indexByteCount / 8
        let floorArray = [UInt64](repeating: 1, count: words)
        let floorIndices = (0..<queries.count).map { _ in Int.random(in: 0..<words, using: &random) }
        harness.measure("stack-map lookup, \(label) call sites",
                        "memory floor: a random read of \(table.indexByteCount >> 10) KiB (the index's size)") {
            let index = floorIndices[next]
            next = next + 1 == floorIndices.count ? 0 : next + 1
            consume(UInt(floorArray[index]))
        }
    }
}
