/// Sorted values in plain memory, and the one search every lookup of the
/// registry makes: the last entry at or before a value. Modules by code
/// base, functions and stubs by start offset, address-map entries by
/// native offset — each is a run of `SortedOffsets` and this search.
///
/// The memory belongs to whoever made the run (a module record, a registry
/// snapshot) and outlives it.
@usableFromInline
struct SortedOffsets<Element: FixedWidthInteger>: @unchecked Sendable {
    // SAFETY: `base` points to `count` initialized values owned by the
    // record or snapshot that made this run, which keeps them for its own
    // lifetime and never writes them after init.
    @usableFromInline let base: UnsafePointer<Element>?
    @usableFromInline let count: Int

    @inlinable
    init(base: UnsafePointer<Element>?, count: Int) {
        self.base = base
        self.count = count
    }

    /// The index of the last value at or before `value`, or -1 if every
    /// value is after it.
    @inlinable @inline(__always)
    func lastIndex(atOrBefore value: Element) -> Int {
        guard let base else { return -1 }
        var low = 0, high = count
        while low < high {
            let middle = (low &+ high) >> 1
            if base[middle] <= value { low = middle &+ 1 } else { high = middle }
        }
        return low &- 1
    }

    @inlinable @inline(__always)
    subscript(index: Int) -> Element { base![index] }
}

/// Sorted, disjoint ranges (starts and ends in plain memory) and which one
/// holds a value: `SortedOffsets`' search on the starts, then the end.
@usableFromInline
struct SortedRanges: @unchecked Sendable {
    @usableFromInline let starts: SortedOffsets<UInt>
    // SAFETY: as `starts`: owned by the maker, `starts.count` values.
    @usableFromInline let ends: UnsafePointer<UInt>?

    @inlinable
    init(starts: UnsafePointer<UInt>?, ends: UnsafePointer<UInt>?, count: Int) {
        self.starts = SortedOffsets(base: starts, count: count)
        self.ends = ends
    }

    @inlinable var count: Int { starts.count }

    /// The index of the range that holds `value`, or -1.
    @inlinable @inline(__always)
    func index(containing value: UInt) -> Int {
        let index = starts.lastIndex(atOrBefore: value)
        return index >= 0 && value < ends![index] ? index : -1
    }

    /// Range `index`.
    @inlinable @inline(__always)
    func range(at index: Int) -> Range<UInt> { starts[index]..<ends![index] }

    @inlinable @inline(__always)
    func contains(_ value: UInt, at index: Int) -> Bool {
        value >= starts[index] && value < ends![index]
    }
}

/// Memory for `SortedRanges` and `SortedOffsets` runs, freed with its owner.
final class FlatTable<Element>: @unchecked Sendable {
    // SAFETY: allocated here for `count` elements, all initialized by
    // `init`, deallocated in deinit; never resized.
    let pointer: UnsafeMutablePointer<Element>
    let count: Int

    init(_ values: some Collection<Element>) {
        count = values.count
        pointer = .allocate(capacity: max(1, count))
        _ = UnsafeMutableBufferPointer(start: pointer, count: count).initialize(from: values)
    }

    deinit {
        pointer.deinitialize(count: count)
        pointer.deallocate()
    }

    var base: UnsafePointer<Element> { UnsafePointer(pointer) }
}

extension RandomAccessCollection where Index == Int {
    /// How many leading elements satisfy `isBefore`, in a collection where
    /// every element that does comes before every element that does not:
    /// the same search as `SortedOffsets.lastIndex(atOrBefore:)`, for
    /// sorted tables that are not runs of integers (captured segments).
    @inlinable
    func prefixCount(while isBefore: (Element) -> Bool) -> Int {
        var low = startIndex, high = endIndex
        while low < high {
            let middle = (low &+ high) >> 1
            if isBefore(self[middle]) { low = middle &+ 1 } else { high = middle }
        }
        return low &- startIndex
    }
}
