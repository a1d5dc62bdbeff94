import WasmUnwind

/// Stack-map lookup at 1K, 100K and 1M call sites: the hash index against
/// plain binary search over the same sorted offsets, and against the memory
/// floor (one random read from an array the size of the index).
func stackMapBenchmarks(_ harness: inout Harness) {
    // Each operation answers a batch of queries, so the cost of calling the
    // measured closure is spread over many lookups.
    let batch = 1000
    for count in [1_000, 100_000, 1_000_000] {
        // Building a table of a million entries takes seconds: only when
        // its group is measured.
        if let filter = harness.groupFilter, !"stack-map lookup, \(count >= 1_000_000 ? "1M" : "\(count / 1000)K") call sites".contains(filter),
           !filter.hasPrefix("stack-map") { continue }
        var random = SystemRandomNumberGenerator()
        var offset: UInt32 = 0
        let maps = (0..<64).map { try! StackMap(frameSize: 256, slotOffsets: [-16 - 8 * Int32($0 % 20)]) }
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
        let queries = entries.map(\.offset).shuffled(using: &random)
        let words = table.indexByteCount / 8
        let floorArray = [UInt64](repeating: 1, count: words)
        let floorIndices = (0..<queries.count).map { _ in Int.random(in: 0..<words, using: &random) }
        let label = count >= 1_000_000 ? "1M" : "\(count / 1000)K"
        let group = "stack-map lookup, \(label) call sites (an op is \(batch) lookups)"

        measureBatches(&harness, group, "hash index (ours): map index", batch: batch,
                       HashLookup(table: table, queries: queries))
        measureBatches(&harness, group, "plain binary search", batch: batch,
                       BinarySearchLookup(table: table, queries: queries))
        measureBatches(&harness, group, "map(atReturnOffset:) (lookup + map)", batch: batch,
                       MapLookup(table: table, queries: queries))
        measureBatches(&harness, group, "memory floor: a random read of \(table.indexByteCount >> 10) KiB (the index's size)",
                       batch: batch, RandomRead(array: floorArray, indices: floorIndices))
        harness.run()
    }
}

/// One lookup per query index. The lookups are types, not closures, so
/// that `measureBatches` is specialised for each and its loop calls nothing.
protocol BatchedLookup {
    var count: Int { get }
    func lookup(_ index: Int) -> UInt
}

struct HashLookup: BatchedLookup {
    let table: StackMapTable, queries: [UInt32]
    var count: Int { queries.count }
    func lookup(_ index: Int) -> UInt { UInt(table.mapIndex(atReturnOffset: queries[index])!) }
}

struct BinarySearchLookup: BatchedLookup {
    let table: StackMapTable, queries: [UInt32]
    var count: Int { queries.count }
    func lookup(_ index: Int) -> UInt { UInt(table.entryIndexByBinarySearch(of: queries[index])!) }
}

struct MapLookup: BatchedLookup {
    let table: StackMapTable, queries: [UInt32]
    var count: Int { queries.count }
    func lookup(_ index: Int) -> UInt { UInt(table.map(atReturnOffset: queries[index])!.frameSize) }
}

struct RandomRead: BatchedLookup {
    let array: [UInt64], indices: [Int]
    var count: Int { indices.count }
    func lookup(_ index: Int) -> UInt { UInt(array[indices[index]]) }
}

/// Measures `lookup` over successive batches of `batch` query indices,
/// wrapping around.
func measureBatches<Lookup: BatchedLookup>(_ harness: inout Harness, _ group: String, _ name: String, batch: Int,
                                           _ lookup: Lookup) {
    var next = 0
    let count = lookup.count
    harness.measure(group, name, items: batch) {
        var position = next
        var sum: UInt = 0
        for _ in 0..<batch {
            sum &+= lookup.lookup(position)
            position += 1
            if position == count { position = 0 }
        }
        next = position
        consume(sum)
    }
}
