/// Why a walk stopped before it reached the oldest activation. One case per
/// rule the walker keeps (docs/design.md, "Rules"), each with the addresses
/// that broke it.
public enum UnwindError: Error, Hashable, Sendable {
    /// An activation starts at frame pointer 0.
    case nullFramePointer(activation: Int)
    /// A frame pointer is not a multiple of the architecture's alignment.
    case misalignedFramePointer(fp: UInt, alignment: UInt)
    /// A frame pointer lies outside the memory the reader may read (the
    /// thread's stack, or the captured bytes).
    case framePointerOutsideStack(fp: UInt, stack: Range<UInt>)
    /// A frame's saved frame pointer equals its own: a one-frame cycle.
    case framePointerDidNotAdvance(fp: UInt)
    /// A frame's saved frame pointer is lower than its own. The stack grows
    /// down, so callers live at higher addresses; a longer cycle always ends
    /// up here.
    case framePointerMovedBackwards(fp: UInt, olderFP: UInt)
    /// The chain went above the activation's entry frame pointer without
    /// meeting it.
    case framePointerPassedEntry(fp: UInt, entryFP: UInt)
    /// A word the walk needed could not be read.
    case unreadableMemory(address: UInt)
    /// An older activation starts at or below the entry frame of a newer one.
    case activationsOutOfOrder(activation: Int, startFP: UInt, newerEntryFP: UInt)
    /// More frames than the walk allows (a corrupt chain, or a limit the
    /// caller chose).
    case frameLimitExceeded(limit: Int)
    /// More activations than the walk allows (or, for live activation
    /// records, more records than a chain may hold: a corrupt chain).
    case activationLimitExceeded(limit: Int)
    /// A live activation record links to an older record at a lower (or
    /// the same) address: the records live in host frames and the stack
    /// grows down, so the chain is corrupt (a cycle, or a stray pointer).
    case activationRecordsOutOfOrder(record: UInt, older: UInt)
    /// An activation starts below the lowest address its frames may have:
    /// the trap's stack pointer, or the stack limit wasm ran with.
    case framePointerBelowStack(fp: UInt, lowest: UInt)

    /// A stable, machine-readable name for the rule that failed.
    public var rule: String {
        switch self {
        case .nullFramePointer: return "null-frame-pointer"
        case .misalignedFramePointer: return "misaligned-frame-pointer"
        case .framePointerOutsideStack: return "frame-pointer-outside-stack"
        case .framePointerDidNotAdvance: return "frame-pointer-did-not-advance"
        case .framePointerMovedBackwards: return "frame-pointer-moved-backwards"
        case .framePointerPassedEntry: return "frame-pointer-passed-entry"
        case .unreadableMemory: return "unreadable-memory"
        case .activationsOutOfOrder: return "activations-out-of-order"
        case .frameLimitExceeded: return "frame-limit-exceeded"
        case .activationLimitExceeded: return "activation-limit-exceeded"
        case .activationRecordsOutOfOrder: return "activation-records-out-of-order"
        case .framePointerBelowStack: return "frame-pointer-below-stack"
        }
    }
}

extension UnwindError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .nullFramePointer(let activation):
            return "activation \(activation) starts at frame pointer 0"
        case .misalignedFramePointer(let fp, let alignment):
            return "frame pointer \(hex(fp)) is not \(alignment)-byte aligned"
        case .framePointerOutsideStack(let fp, let stack):
            return "frame pointer \(hex(fp)) is outside the stack \(hex(stack.lowerBound))..<\(hex(stack.upperBound))"
        case .framePointerDidNotAdvance(let fp):
            return "frame at \(hex(fp)) links to itself (cycle)"
        case .framePointerMovedBackwards(let fp, let olderFP):
            return "frame at \(hex(fp)) links to a lower address \(hex(olderFP)); older frames must be higher"
        case .framePointerPassedEntry(let fp, let entryFP):
            return "frame pointer \(hex(fp)) is above the activation's entry frame pointer \(hex(entryFP))"
        case .unreadableMemory(let address):
            return "cannot read the word at \(hex(address))"
        case .activationsOutOfOrder(let activation, let startFP, let newerEntryFP):
            return "activation \(activation) starts at \(hex(startFP)), not above the newer activation's entry frame pointer \(hex(newerEntryFP))"
        case .frameLimitExceeded(let limit):
            return "more than \(limit) frames"
        case .activationLimitExceeded(let limit):
            return "more than \(limit) activations"
        case .activationRecordsOutOfOrder(let record, let older):
            return "activation record at \(hex(record)) links to an older record at \(hex(older)), not above it (corrupt chain)"
        case .framePointerBelowStack(let fp, let lowest):
            return "activation starts at frame pointer \(hex(fp)), below its lowest possible frame \(hex(lowest))"
        }
    }
}

/// `0x`-prefixed lowercase hexadecimal, as every message and rendering of
/// this package prints addresses and offsets.
@_spi(Tools) public func hex<Value: BinaryInteger>(_ value: Value) -> String {
    "0x" + String(value, radix: 16)
}

/// A range of addresses or offsets as `0x10..<0x20`.
@_spi(Tools) public func hex<Value: BinaryInteger>(_ range: Range<Value>) -> String {
    hex(range.lowerBound) + "..<" + hex(range.upperBound)
}
