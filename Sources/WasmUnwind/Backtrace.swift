/// The wasm frames of a stack, newest first, and whether the walk that found
/// them completed.
public struct Backtrace: Hashable, Sendable {
    /// The frames found, newest first.
    public var frames: [Frame]
    /// Why the walk stopped before the oldest activation's entry, if it did.
    /// `frames` then holds every frame found before the problem.
    public var error: UnwindError?
    /// Older frames were left out (the walk itself was sound): why.
    public var truncation: Truncation?

    public init(frames: [Frame], error: UnwindError? = nil, truncation: Truncation? = nil) {
        self.frames = frames
        self.error = error
        self.truncation = truncation
    }

    /// Whether older frames were left out.
    public var isTruncated: Bool { truncation != nil }

    /// Runs `walker` to its end, keeping at most `maximumFrames` frames.
    @inlinable
    public init<Architecture, Reader, Activations>(
        walking walker: FramePointerWalker<Architecture, Reader, Activations>,
        maximumFrames: Int = .max
    ) {
        var walker = walker
        var frames: [Frame] = []
        var truncated = false
        while let frame = walker.next() {
            if frames.count == maximumFrames { truncated = true; break }
            frames.append(frame)
        }
        self.init(frames: frames, error: truncated ? nil : walker.error,
                  truncation: truncated ? .requested(limit: maximumFrames, omitted: nil) : nil)
    }

    /// The wasm frames of `limits`' activations on the calling thread.
    /// Pass the trap's registers when capturing at a trap. Live memory is
    /// read without checks (the fast path), or, `checked`, every word
    /// against the calling thread's stack bounds, so that a corrupt record
    /// gives an error rather than a fault.
    ///
    /// Every entry point that allocates is a `capture` returning a
    /// `Backtrace`; every one that writes into the caller's buffer, for
    /// signal handlers, is a `walk(…into:)` returning a `WalkResult`.
    @inlinable
    public static func capture(
        _ limits: RuntimeLimits,
        trap: TrapRegisters? = nil,
        checked: Bool = false,
        walkLimits: WalkLimits = .default
    ) -> Backtrace {
        let activations = LiveActivations(limits: limits, trap: trap)
        if checked {
            return Backtrace(walking: FramePointerWalker(architecture: NativeArchitecture.self, reader: CheckedMemoryReader(),
                                                         activations: activations, limits: walkLimits))
        }
        return Backtrace(walking: FramePointerWalker(architecture: NativeArchitecture.self, reader: UncheckedMemoryReader(),
                                                     activations: activations, limits: walkLimits))
    }
}

/// Why a backtrace holds fewer frames than the stack: its oldest frames were
/// left out on purpose, not lost to a broken chain.
public enum Truncation: Hashable, Sendable {
    /// The caller asked for at most `limit` frames; `omitted` says how many
    /// more there were, when known.
    case requested(limit: Int, omitted: Int?)
    /// The buffer the walk wrote into (a trap handler's, preallocated) held
    /// only the newest `capacity` frames; the older ones were not recorded.
    case bufferFull(capacity: Int)
}

/// The result of an allocation-free walk into a caller's buffer.
public struct WalkResult: Hashable, Sendable {
    /// Frames written to the buffer.
    public var count: Int
    /// Whether the walk reached the oldest activation's entry.
    public var isComplete: Bool
    /// Why it stopped early, if a rule was broken (nil when the buffer was
    /// merely too small).
    public var error: UnwindError?

    public init(count: Int, isComplete: Bool, error: UnwindError? = nil) {
        self.count = count
        self.isComplete = isComplete
        self.error = error
    }
}

extension Backtrace {
    /// Walks `limits`' activations on the calling thread into `buffer`,
    /// reading live memory without checks. Allocates nothing, takes no
    /// locks and calls nothing that is not async-signal-safe, so a trap
    /// handler may call it (once the walker's generic metadata exists: call
    /// it once outside the handler first).
    public static func walk(
        _ limits: RuntimeLimits,
        trap: TrapRegisters? = nil,
        into buffer: UnsafeMutableBufferPointer<Frame>,
        walkLimits: WalkLimits = .default
    ) -> WalkResult {
        walk(limitsAddress: limits.address, trap: trap, into: buffer, walkLimits: walkLimits)
    }

    /// `walk(_:trap:into:walkLimits:)` for the limits record at
    /// `limitsAddress`: touches no Swift object at all, for signal handlers.
    public static func walk(
        limitsAddress: UInt,
        trap: TrapRegisters? = nil,
        into buffer: UnsafeMutableBufferPointer<Frame>,
        walkLimits: WalkLimits = .default
    ) -> WalkResult {
        walkLiveMemory(LiveActivations(limitsAddress: limitsAddress, trap: trap), into: buffer, walkLimits: walkLimits)
    }

    /// Walks this thread's memory without checks from `activations` into
    /// `buffer`: what the signal-safe captures share.
    static func walkLiveMemory<Activations: ActivationSource>(
        _ activations: Activations, into buffer: UnsafeMutableBufferPointer<Frame>, walkLimits: WalkLimits
    ) -> WalkResult {
        var walker = FramePointerWalker(architecture: NativeArchitecture.self, reader: UncheckedMemoryReader(),
                                        activations: activations, limits: walkLimits)
        let (count, isComplete) = walker.walk(into: buffer)
        return WalkResult(count: count, isComplete: isComplete, error: walker.error)
    }
}
