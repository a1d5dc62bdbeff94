/// Walks the wasm frames of a stack, newest first, by following frame
/// pointers inside each activation.
///
/// ```
///    higher addresses
///    | host frames (Swift/C, fp untrusted)  |   never read
///    |--------------------------------------|
///    | entry trampoline frame               | <- entryFramePointer: stop here
///    |--------------------------------------|
///    | return address | saved fp            | <- fp of the outermost wasm frame
///    | wasm frames ...                      |
///    | return address | saved fp            | <- startFramePointer (exit fp / trap fp)
///    |--------------------------------------|
///    | exit trampoline frame                |    start = exit pc (its return address)
///    | host frames ...                      |
///    v stack grows down
/// ```
///
/// Within one activation every frame between the start and the entry
/// trampoline is a wasm frame, and wasm code keeps its frame pointer
/// register as a frame pointer, so `[fp]` is the caller's fp and
/// `[fp + 8]` the return address into the caller. Host frames between
/// activations are never dereferenced: optimised Swift and C may use the
/// frame pointer register for anything. The walk jumps over them using the
/// next activation's recorded start.
///
/// Every step checks the rules of docs/design.md and turns a violation into
/// an `UnwindError` (see `error`) instead of trusting the chain:
///
/// 1. the frame pointer is aligned and inside the reader's range;
/// 2. the saved frame pointer is strictly greater (the stack grows down, so
///    a chain that does not climb is corrupt, and a cycle cannot climb
///    forever);
/// 3. it does not pass the activation's entry frame pointer;
/// 4. each older activation starts above the newer one's entry frame, and
///    no activation starts below the lowest address its frames may have
///    (the trap's stack pointer or the stack limit);
/// 5. the number of frames and activations stays under the limits, and the
///    activation source itself is sound (a corrupt chain of live records
///    ends the walk with the source's error).
///
/// Rules 1 to 3 for one frame are the two predicates `canRead(frameAt:)`
/// and `isLink(from:to:entry:)`, which both `next()` and the fast loop of
/// `walk(into:)` use; `next()` then names the rule that failed.
///
/// The walker is a `Sequence` of `Frame`s: take a prefix, stop early, or
/// collect. After it returns `nil`, `error` says whether the walk completed.
/// It never allocates; with the unchecked reader each frame costs two loads
/// and a few compares.
public struct FramePointerWalker<
    Architecture: FrameArchitecture,
    Reader: MemoryReader,
    Activations: ActivationSource
>: IteratorProtocol, Sequence {
    public typealias Element = Frame

    @usableFromInline var reader: Reader
    @usableFromInline var activations: Activations
    @usableFromInline let limits: WalkLimits

    // The walk's position: the next frame to yield is (address, fp) in
    // activation `activationIndex`, unless `needsActivation`.
    @usableFromInline var address: FrameAddress = .programCounter(0)
    @usableFromInline var fp: UInt = 0
    @usableFromInline var entryFP: UInt = 0
    @usableFromInline var activationIndex: Int = -1
    @usableFromInline var needsActivation = true
    @usableFromInline var frameCount = 0
    @usableFromInline var pendingError: UnwindError?
    @usableFromInline var finished = false

    /// Why the walk stopped early, or `nil` if it reached the end of the
    /// oldest activation (or has not stopped yet).
    @inlinable public var error: UnwindError? { stopError }
    @usableFromInline var stopError: UnwindError?

    /// A walk over `activations` (newest first), reading memory through
    /// `reader`.
    @inlinable
    public init(
        architecture: Architecture.Type = Architecture.self,
        reader: Reader,
        activations: Activations,
        limits: WalkLimits = .default
    ) {
        self.reader = reader
        self.activations = activations
        self.limits = limits
    }

    @inlinable
    mutating func fail(_ error: UnwindError) -> Frame? {
        stopError = error
        finished = true
        return nil
    }

    /// Rules 1 and 2 for a frame about to be read: its frame pointer is
    /// aligned and its frame record lies inside the reader's range.
    @inline(__always) @usableFromInline
    static func canRead(frameAt fp: UInt, range: Range<UInt>?) -> Bool {
        guard fp % Architecture.framePointerAlignment == 0 else { return false }
        if let range, fp < range.lowerBound || fp > range.upperBound &- Architecture.frameRecordSize { return false }
        return true
    }

    /// Rule 3 for a frame's link to its caller: the saved frame pointer
    /// climbs (the stack grows down), and stays within the activation.
    @inline(__always) @usableFromInline
    static func isLink(from fp: UInt, to olderFP: UInt, entry: UInt) -> Bool {
        olderFP > fp && olderFP <= entry
    }

    @inlinable
    public mutating func next() -> Frame? {
        if finished { return nil }
        if let pendingError { return fail(pendingError) }

        // Move to the next activation that has frames left.
        while needsActivation || fp == entryFP {
            guard let bounds = activations.next() else {
                if let failure = activations.failure { return fail(failure) }
                finished = true
                return nil
            }
            activationIndex += 1
            if activationIndex >= limits.maximumActivations {
                return fail(.activationLimitExceeded(limit: limits.maximumActivations))
            }
            let start = bounds.startFramePointer
            if start == 0 { return fail(.nullFramePointer(activation: activationIndex)) }
            // Rule 4: an older activation's frames lie above everything of
            // the newer one, including its entry trampoline frame.
            if activationIndex > 0, start <= entryFP {
                return fail(.activationsOutOfOrder(activation: activationIndex, startFP: start,
                                                   newerEntryFP: entryFP))
            }
            if start > bounds.entryFramePointer {
                return fail(.framePointerPassedEntry(fp: start, entryFP: bounds.entryFramePointer))
            }
            if start < bounds.lowestFramePointer {
                return fail(.framePointerBelowStack(fp: start, lowest: bounds.lowestFramePointer))
            }
            address = bounds.start
            fp = start
            entryFP = bounds.entryFramePointer
            needsActivation = false
        }

        // `fp` belongs to a wasm frame of the current activation: check it
        // before reading through it.
        if !Self.canRead(frameAt: fp, range: reader.readableRange) {
            if fp % Architecture.framePointerAlignment != 0 {
                return fail(.misalignedFramePointer(fp: fp, alignment: Architecture.framePointerAlignment))
            }
            return fail(.framePointerOutsideStack(fp: fp, stack: reader.readableRange ?? 0..<0))
        }
        if frameCount >= limits.maximumFrames {
            return fail(.frameLimitExceeded(limit: limits.maximumFrames))
        }
        frameCount += 1
        let frame = Frame(address: address, framePointer: fp, activation: activationIndex)

        // Step to the caller. A broken link is reported on the next call, so
        // this frame (which is sound) is still yielded.
        guard let returnAddress = reader.loadWord(at: fp &+ Architecture.returnAddressOffset) else {
            pendingError = .unreadableMemory(address: fp &+ Architecture.returnAddressOffset)
            return frame
        }
        guard let olderFP = reader.loadWord(at: fp &+ Architecture.olderFramePointerOffset) else {
            pendingError = .unreadableMemory(address: fp &+ Architecture.olderFramePointerOffset)
            return frame
        }
        if !Self.isLink(from: fp, to: olderFP, entry: entryFP) {
            if olderFP == fp {
                pendingError = .framePointerDidNotAdvance(fp: fp)
            } else if olderFP < fp {
                pendingError = .framePointerMovedBackwards(fp: fp, olderFP: olderFP)
            } else {
                pendingError = .framePointerPassedEntry(fp: olderFP, entryFP: entryFP)
            }
        }
        address = .returnAddress(Architecture.strippingPointerAuthentication(returnAddress))
        fp = olderFP
        return frame
    }

    /// `next()` with its common case — another frame of the same
    /// activation, every rule holding — inline, for loops that do work per
    /// frame (the handler search of a throw). Anything else goes to
    /// `next()`, which decides exactly as always; the checks are the fast
    /// loop's of `walk(into:)`.
    @inlinable @inline(__always)
    public mutating func nextFrame() -> Frame? {
        if !finished, pendingError == nil, !needsActivation, fp != entryFP, frameCount < limits.maximumFrames,
           Self.canRead(frameAt: fp, range: reader.readableRange),
           let returnAddress = reader.loadWord(at: fp &+ Architecture.returnAddressOffset),
           let olderFP = reader.loadWord(at: fp &+ Architecture.olderFramePointerOffset),
           Self.isLink(from: fp, to: olderFP, entry: entryFP) {
            frameCount += 1
            let frame = Frame(address: address, framePointer: fp, activation: activationIndex)
            address = .returnAddress(Architecture.strippingPointerAuthentication(returnAddress))
            fp = olderFP
            return frame
        }
        return next()
    }

    /// Writes frames into `buffer` until the walk ends or the buffer is full,
    /// and returns how many it wrote. Allocation-free, for signal handlers.
    /// `isComplete` tells whether the walk reached its end (check `error`
    /// for why it did not).
    ///
    /// Consecutive frames of one activation go through a tight loop that
    /// keeps the walk's position in registers and makes the same checks as
    /// `next()`; anything it does not accept — an activation boundary, a
    /// broken rule — it leaves to `next()`, which decides exactly as a
    /// frame-by-frame walk would.
    @inlinable
    public mutating func walk(into buffer: UnsafeMutableBufferPointer<Frame>) -> (count: Int, isComplete: Bool) {
        guard let base = buffer.baseAddress else {
            return (0, next() == nil && error == nil)
        }
        let capacity = buffer.count
        var count = 0
        while count < capacity {
            if !finished && pendingError == nil && !needsActivation {
                var fp = self.fp
                var pc = address.rawValue
                var isReturnAddress: Bool
                if case .returnAddress = address { isReturnAddress = true } else { isReturnAddress = false }
                var frames = frameCount
                let entry = entryFP
                let activation = UInt32(truncatingIfNeeded: activationIndex)
                let range = reader.readableRange
                let limit = limits.maximumFrames
                while count < capacity, fp != entry, frames < limit, Self.canRead(frameAt: fp, range: range) {
                    guard let returnAddress = reader.loadWord(at: fp &+ Architecture.returnAddressOffset),
                          let olderFP = reader.loadWord(at: fp &+ Architecture.olderFramePointerOffset),
                          Self.isLink(from: fp, to: olderFP, entry: entry)
                    else { break }
                    base[count] = Frame(rawAddress: pc, isReturnAddress: isReturnAddress, framePointer: fp, activation: activation)
                    count += 1
                    frames += 1
                    pc = Architecture.strippingPointerAuthentication(returnAddress)
                    isReturnAddress = true
                    fp = olderFP
                }
                self.fp = fp
                address = isReturnAddress ? .returnAddress(pc) : .programCounter(pc)
                frameCount = frames
                if count == capacity { break }
            }
            guard let frame = next() else { return (count, error == nil) }
            base[count] = frame
            count += 1
        }
        // The buffer is full; the walk is complete only if nothing follows.
        if next() == nil, error == nil { return (count, true) }
        return (count, false)
    }
}

/// Upper bounds that keep a walk over a corrupt chain finite.
public struct WalkLimits: Hashable, Sendable {
    /// At most this many frames are yielded.
    public var maximumFrames: Int
    /// At most this many activations are entered.
    public var maximumActivations: Int

    @inlinable
    public init(maximumFrames: Int, maximumActivations: Int) {
        self.maximumFrames = maximumFrames
        self.maximumActivations = maximumActivations
    }

    /// A million frames (deeper than any default thread stack holds with
    /// 16-byte frames of 8 MiB) and 100,000 activations.
    public static let `default` = WalkLimits(maximumFrames: 1 << 20, maximumActivations: 100_000)
}
