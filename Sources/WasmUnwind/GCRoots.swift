/// A stack slot that holds a live, non-null reference.
public struct GCRoot: Hashable, Sendable {
    /// Where the reference is stored: a collector that moves objects
    /// updates this word.
    public var slotAddress: UInt
    /// The reference (an embedder handle or pointer).
    public var value: UInt
    /// The frame the slot belongs to, and its position in the walk.
    public var frame: Frame
    public var frameIndex: Int
}

/// Why roots could not be enumerated.
public enum RootEnumerationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The walk itself broke a rule.
    case walk(UnwindError)
    /// A frame's return address is in no registered module.
    case unregisteredCode(pc: UInt, frameIndex: Int)
    /// A frame's return address is not a recorded call site: without its
    /// stack map the frame's references cannot be found, and guessing would
    /// free live objects.
    case missingStackMap(pc: UInt, frameIndex: Int)
    /// A slot named by a stack map could not be read.
    case unreadableSlot(address: UInt, frameIndex: Int)

    public var description: String {
        switch self {
        case .walk(let error):
            return "the stack walk failed: \(error)"
        case .unregisteredCode(let pc, let index):
            return "frame \(index): return address \(hex(pc)) is in no registered module"
        case .missingStackMap(let pc, let index):
            return "frame \(index): no stack map for return address \(hex(pc)) (not a recorded call site)"
        case .unreadableSlot(let address, let index):
            return "frame \(index): cannot read the reference slot at \(hex(address))"
        }
    }
}

extension CodeRegistry {
    /// The stack map of the call site that returns to `returnAddress`
    /// (exact: a pc that is not a recorded return address has none).
    public func stackMap(forReturnAddress returnAddress: UInt) -> StackMap? {
        guard let moduleIndex = moduleIndex(containing: returnAddress &- 1),
              let mapIndex = mapIndex(forReturnAddress: returnAddress, inModule: moduleIndex)
        else { return nil }
        return snapshot.records[moduleIndex].module.stackMaps.maps[mapIndex]
    }

    /// The index in module `moduleIndex`'s `stackMaps.maps` of the call site
    /// returning to `returnAddress`, if it is one.
    func mapIndex(forReturnAddress returnAddress: UInt, inModule moduleIndex: Int) -> Int? {
        let offset = returnAddress - snapshot.records[moduleIndex].module.codeRange.lowerBound
        guard offset <= UInt(UInt32.max) else { return nil }
        return snapshot.records[moduleIndex].module.stackMaps.mapIndex(atReturnOffset: UInt32(offset))
    }

    /// Every live reference in `frames` (a walk, newest first), read through
    /// `reader`. Each frame suspended at a call is looked up by its exact
    /// return address; a trapping frame (a `.programCounter`) is at no call
    /// site and has no roots. Null references are not roots.
    @_specialize(exported: true, where Reader == UncheckedMemoryReader)
    @_specialize(exported: true, where Reader == CheckedMemoryReader)
    @_specialize(exported: true, where Reader == CapturedMemoryReader)
    public func roots<Reader: MemoryReader>(
        of frames: [Frame], reader: Reader
    ) throws(RootEnumerationError) -> [GCRoot] {
        var roots: [GCRoot] = []
        roots.reserveCapacity(frames.count)
        for index in frames.indices {
            let frame = frames[index]
            guard frame.isReturnAddress else { continue }
            let returnAddress = frame.rawAddress
            guard let moduleIndex = moduleIndex(containing: returnAddress &- 1) else {
                throw .unregisteredCode(pc: returnAddress, frameIndex: index)
            }
            guard let mapIndex = mapIndex(forReturnAddress: returnAddress, inModule: moduleIndex) else {
                throw .missingStackMap(pc: returnAddress, frameIndex: index)
            }
            // Walk the bitmap in place: bit k is the word at fp - 8(k + 1).
            let bitmap = snapshot.records[moduleIndex].module.stackMaps.maps[mapIndex].bitmap
            for word in bitmap.indices {
                var bits = bitmap[word]
                while bits != 0 {
                    let bit = word * 64 + bits.trailingZeroBitCount
                    bits &= bits &- 1
                    let address = frame.framePointer &- UInt(8 * (bit + 1))
                    guard let value = reader.loadWord(at: address) else {
                        throw .unreadableSlot(address: address, frameIndex: index)
                    }
                    if value != 0 {
                        roots.append(GCRoot(slotAddress: address, value: value, frame: frame, frameIndex: index))
                    }
                }
            }
        }
        return roots
    }

    /// The live references of `limits`' activations on the calling thread
    /// (from a host call), read from the live stack.
    public func roots(of limits: RuntimeLimits) throws(RootEnumerationError) -> [GCRoot] {
        let walk = Backtrace.capture(limits, checked: true)
        if let error = walk.error { throw .walk(error) }
        return try roots(of: walk.frames, reader: CheckedMemoryReader())
    }
}
