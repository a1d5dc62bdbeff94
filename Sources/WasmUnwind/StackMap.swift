/// Which slots of a frame hold live GC references while a call is in
/// progress.
///
/// Slots are 8-byte words below the frame pointer: bit `k` of `bitmap` set
/// means the word at `fp - 8 * (k + 1)` holds a reference (offsets are
/// relative to the frame's fp, which the walk knows, not to sp).
/// `frameSize` is the bytes the frame reserves below its saved fp; every
/// slot lies inside it.
public struct StackMap: Hashable, Sendable {
    public var frameSize: UInt32
    /// Bit k: the word at fp - 8(k+1).
    public var bitmap: [UInt64]
    /// The innermost `try_table` in force while the call is in progress:
    /// an index into the table's `handlerScopes`, whose parents lead out
    /// to the enclosing ones (nil: none). The handlers of the call site are
    /// the scopes' clauses innermost first, each scope's in order; the first
    /// that matches a thrown exception is where it resumes
    /// (`StackMapTable.handlers(of:)`). Sharing the enclosing scopes keeps
    /// the handlers of deeply nested `try_table`s linear in the nesting.
    public var handlerScope: Int?

    /// A map with the given fp-relative slot offsets; each must be a
    /// negative multiple of 8 within the frame.
    public init(frameSize: UInt32, slotOffsets: [Int32]) throws(StackMapError) {
        self.frameSize = frameSize
        var bitmap: [UInt64] = []
        for offset in slotOffsets {
            guard offset < 0, offset % 8 == 0, -Int(offset) <= Int(frameSize) else {
                throw .slotOutsideFrame(offset: offset, frameSize: frameSize)
            }
            let bit = Int(-offset / 8) - 1
            while bitmap.count <= bit / 64 { bitmap.append(0) }
            bitmap[bit / 64] |= 1 << UInt64(bit % 64)
        }
        while bitmap.last == 0 { bitmap.removeLast() }
        self.bitmap = bitmap
    }

    /// A map from its bitmap, as read from a file that was checked against
    /// the frame size (StackCapture's reader).
    @_spi(Tools) public init(frameSize: UInt32, bitmap: [UInt64]) {
        self.frameSize = frameSize
        self.bitmap = bitmap
    }

    /// The fp-relative offsets of the reference slots, nearest the fp first.
    public var slotOffsets: [Int32] {
        var offsets: [Int32] = []
        for (word, bits) in bitmap.enumerated() {
            var remaining = bits
            while remaining != 0 {
                let bit = remaining.trailingZeroBitCount
                remaining &= remaining - 1
                offsets.append(-8 * Int32(word * 64 + bit + 1))
            }
        }
        return offsets
    }

    /// No slot holds a reference.
    public var isEmpty: Bool { bitmap.isEmpty }
}

/// One `try_table`'s catch clauses, and the scope of the `try_table` around
/// it: the handlers of a call site are its scope's clauses, then its
/// parent's, and so on out.
public struct HandlerScope: Hashable, Sendable {
    public var clauses: [ExceptionHandler]
    /// The enclosing scope's index in the same table, always lower than
    /// this one's (so a chain ends); nil at the outermost `try_table`.
    public var parent: Int?

    public init(clauses: [ExceptionHandler], parent: Int?) {
        self.clauses = clauses
        self.parent = parent
    }
}

/// One catch clause of a `try_table` around a call site: which exceptions
/// it takes, and where and how it resumes them.
///
/// The handler resumes in the frame of the call site: the unwinder writes
/// the exception's payload (then, for the `_ref` kinds, its `exnref`) into
/// the frame's operand-stack slots at `payloadSlot`, `payloadSlot - 8`, ...
/// (fp-relative, where the branch to the catch label expects its values),
/// restores the frame's fp and sp (`fp - frameSize`) and jumps to
/// `landingPad`, which restores the instance context and branches to the
/// label.
public struct ExceptionHandler: Hashable, Sendable, CustomStringConvertible {
    /// The clause: `catch`, `catch_ref`, `catch_all`, `catch_all_ref`.
    public enum Kind: UInt8, Hashable, Sendable {
        case `catch` = 0, catchRef = 1, catchAll = 2, catchAllRef = 3

        /// Whether the clause takes exceptions of one tag only.
        public var hasTag: Bool { self == .catch || self == .catchRef }
        /// Whether the clause passes the `exnref` after the payload.
        public var passesReference: Bool { self == .catchRef || self == .catchAllRef }

        public var name: String {
            switch self {
            case .catch: return "catch"
            case .catchRef: return "catch_ref"
            case .catchAll: return "catch_all"
            case .catchAllRef: return "catch_all_ref"
            }
        }
    }

    public var kind: Kind
    /// The tag index in the module's tag index space (0 for `catch_all`).
    public var tag: UInt32
    /// Code offset (from the module's code base) of the landing pad.
    public var landingPad: UInt32
    /// Frame-pointer-relative offset of the slot for the first value the
    /// catch label takes; value `i` goes to `payloadSlot - 8 i`.
    public var payloadSlot: Int32

    public init(kind: Kind, tag: UInt32, landingPad: UInt32, payloadSlot: Int32) {
        self.kind = kind
        self.tag = kind.hasTag ? tag : 0
        self.landingPad = landingPad
        self.payloadSlot = payloadSlot
    }

    /// `catch tag 3 -> +0x1a0 (values at fp-40)`.
    public var description: String {
        (kind.hasTag ? "\(kind.name) tag \(tag)" : kind.name)
            + " -> +\(hex(UInt(landingPad))) (values at fp\(payloadSlot))"
    }
}

/// A module's stack maps: one entry per call site, keyed by the code offset
/// of the call's return address.
///
/// Entries are sorted by code offset and point into a pool of distinct
/// maps (most call sites share one). Lookup is exact — an offset that is
/// not a recorded return address finds nothing, never a neighbour — and
/// goes through a hash index built at load time: open addressing with
/// linear probing over at least twice as many slots as entries, each slot
/// one word holding the offset and the map index, so a lookup is usually a
/// single memory access. (A page directory over the sorted entries, tried
/// first, needed two dependent accesses and was twice as slow at a million
/// call sites; docs/stack-maps.md has the measurements.)
public struct StackMapTable: Hashable, Sendable {
    /// Each entry as one word: return-address code offset in the high 32
    /// bits (strictly increasing), map index in the low 32, so a lookup
    /// touches one cache line for both.
    @usableFromInline let entries: [UInt64]
    /// The distinct maps.
    public let maps: [StackMap]
    /// The `try_table` scopes maps refer to (`StackMap.handlerScope`).
    public let handlerScopes: [HandlerScope]
    /// The hash index: a power-of-two number of slots, each `emptySlot` or
    /// `offset << 32 | map index`. (A map index is below `UInt32.max`, so
    /// no entry is all ones, even at offset `UInt32.max`.)
    @usableFromInline let slots: [UInt64]
    /// 64 minus log2 of the slot count, for Fibonacci hashing.
    @usableFromInline let hashShift: UInt64
    @usableFromInline static var emptySlot: UInt64 { .max }

    /// Return-address code offsets, strictly increasing.
    public var offsets: [UInt32] { entries.map { UInt32($0 >> 32) } }
    /// For each entry, its map's index in `maps`.
    public var mapIndices: [UInt32] { entries.map { UInt32(truncatingIfNeeded: $0) } }

    public static let empty = StackMapTable(validatedOffsets: [], mapIndices: [], maps: [], handlerScopes: [])

    /// A table from (return-address offset, map) pairs, in any order, and
    /// the handler scopes the maps name. Offsets must be distinct, each
    /// scope's parent must come before it, and each map's scope must exist.
    public init(entries: [(offset: UInt32, map: StackMap)], handlerScopes: [HandlerScope] = []) throws(StackMapError) {
        for (index, scope) in handlerScopes.enumerated() {
            if let parent = scope.parent, !(0..<index).contains(parent) { throw .badScope(index) }
        }
        for entry in entries {
            if let scope = entry.map.handlerScope, !handlerScopes.indices.contains(scope) { throw .badScope(scope) }
        }
        let sorted = entries.sorted { $0.offset < $1.offset }
        var pool: [StackMap: UInt32] = [:]
        var maps: [StackMap] = []
        var offsets: [UInt32] = []
        var indices: [UInt32] = []
        offsets.reserveCapacity(sorted.count)
        indices.reserveCapacity(sorted.count)
        for entry in sorted {
            if let last = offsets.last, last == entry.offset { throw .duplicateOffset(entry.offset) }
            let index: UInt32
            if let existing = pool[entry.map] {
                index = existing
            } else {
                index = UInt32(maps.count)
                pool[entry.map] = index
                maps.append(entry.map)
            }
            offsets.append(entry.offset)
            indices.append(index)
        }
        self.init(validatedOffsets: offsets, mapIndices: indices, maps: maps, handlerScopes: handlerScopes)
    }

    /// A table from sorted, distinct offsets and map indices in range, as
    /// `init(entries:handlerScopes:)` makes them or a reader that checked
    /// them (StackCapture's).
    @_spi(Tools) public init(validatedOffsets offsets: [UInt32], mapIndices: [UInt32], maps: [StackMap],
                             handlerScopes: [HandlerScope]) {
        self.entries = zip(offsets, mapIndices).map { UInt64($0) << 32 | UInt64($1) }
        self.maps = maps
        self.handlerScopes = handlerScopes
        var bits: UInt64 = 4
        while (1 << bits) < 2 * offsets.count { bits += 1 }
        let mask = (1 << bits) - 1
        var slots = [UInt64](repeating: Self.emptySlot, count: 1 << bits)
        for (offset, index) in zip(offsets, mapIndices) {
            precondition(index < UInt32.max, "map index \(index) out of range")
            var slot = Int(Self.hash(offset) >> (64 - bits))
            while slots[slot] != Self.emptySlot { slot = (slot + 1) & Int(mask) }
            slots[slot] = UInt64(offset) << 32 | UInt64(index)
        }
        self.slots = slots
        self.hashShift = 64 - bits
    }

    @inlinable
    static func hash(_ offset: UInt32) -> UInt64 { UInt64(offset) &* 0x9E37_79B9_7F4A_7C15 }

    public var count: Int { entries.count }

    /// Bytes of the hash index (at least 16 per call site; a power of two).
    public var indexByteCount: Int { slots.count * MemoryLayout<UInt64>.size }

    /// The map of the call site whose return address is at `offset`, or nil
    /// if no call returns there.
    @inlinable
    public func map(atReturnOffset offset: UInt32) -> StackMap? {
        mapIndex(atReturnOffset: offset).map { maps[$0] }
    }

    /// The index in `maps` of the call site's map (no copy of the map: the
    /// form for hot paths), through the hash index.
    @inlinable @inline(__always)
    public func mapIndex(atReturnOffset offset: UInt32) -> Int? {
        let wanted = UInt64(offset)
        let start = Int(truncatingIfNeeded: Self.hash(offset) >> hashShift)
        return slots.withUnsafeBufferPointer { slots in
            // The mask keeps every probe inside the table, whose size is a
            // power of two, so the reads need no bounds checks.
            let mask = slots.count &- 1
            var slot = start
            while true {
                let value = slots[slot & mask]
                if value == Self.emptySlot { return nil }
                if value >> 32 == wanted { return Int(truncatingIfNeeded: value & 0xFFFF_FFFF) }
                slot &+= 1
            }
        }
    }

    /// The same lookup by plain binary search over all entries (the
    /// baseline the hash index is measured against).
    public func entryIndexByBinarySearch(of offset: UInt32) -> Int? {
        var low = 0, high = entries.count
        let target = UInt64(offset)
        while low < high {
            let mid = (low + high) >> 1
            let key = entries[mid] >> 32
            if key == target { return mid }
            if key < target { low = mid + 1 } else { high = mid }
        }
        return nil
    }


    /// The handlers in force at a call site with `map`: its scope's
    /// clauses, then each enclosing scope's, innermost first.
    public func handlers(of map: StackMap) -> [ExceptionHandler] {
        var result: [ExceptionHandler] = []
        var scope = map.handlerScope
        while let index = scope {
            result += handlerScopes[index].clauses
            scope = handlerScopes[index].parent
        }
        return result
    }

    /// Whether any call site has handlers.
    public var hasHandlers: Bool { maps.contains { $0.handlerScope != nil } }

    public static func == (a: StackMapTable, b: StackMapTable) -> Bool {
        a.entries == b.entries && a.maps == b.maps && a.handlerScopes == b.handlerScopes
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(entries)
        hasher.combine(maps)
    }
}

/// Why stack maps could not be built.
public enum StackMapError: Error, Hashable, Sendable, CustomStringConvertible {
    case duplicateOffset(UInt32)
    /// A reference slot that is not a negative multiple of 8 inside the
    /// frame.
    case slotOutsideFrame(offset: Int32, frameSize: UInt32)
    /// A handler scope whose parent does not come before it, or a map
    /// naming a scope that does not exist.
    case badScope(Int)

    public var description: String {
        switch self {
        case .duplicateOffset(let offset): return "two call sites return to code offset \(hex(UInt(offset)))"
        case .slotOutsideFrame(let offset, let frameSize):
            return "stack map slot fp\(offset) is not a word inside the \(frameSize)-byte frame"
        case .badScope(let index): return "handler scope \(index) does not exist or its parent does not come before it"
        }
    }
}
