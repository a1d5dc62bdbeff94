/// The wasm frames of a stack, newest first, and whether the walk that found
/// them completed.
public struct Backtrace: Hashable, Sendable {
    /// The frames found, newest first.
    public var frames: [Frame]
    /// Why the walk stopped before the oldest activation's entry, if it did.
    /// `frames` then holds every frame found before the problem.
    public var error: UnwindError?
    /// Frames were left out because the caller asked for at most
    /// `maximumFrames` (the walk itself was sound).
    public var isTruncated: Bool

    public init(frames: [Frame], error: UnwindError? = nil, isTruncated: Bool = false) {
        self.frames = frames
        self.error = error
        self.isTruncated = isTruncated
    }

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
        self.init(frames: frames, error: truncated ? nil : walker.error, isTruncated: truncated)
    }

    /// The wasm frames of `limits`' activations on the calling thread, read
    /// from live memory without checks (the fast path). Pass the trap's
    /// registers when capturing at a trap.
    @inlinable
    public static func capture(
        _ limits: RuntimeLimits,
        trap: TrapRegisters? = nil,
        walkLimits: WalkLimits = .default
    ) -> Backtrace {
        Backtrace(walking: FramePointerWalker(
            architecture: NativeArchitecture.self,
            reader: UncheckedMemoryReader(),
            activations: LiveActivations(limits: limits, trap: trap),
            limits: walkLimits))
    }

    /// Like `capture`, but every word read is checked against the calling
    /// thread's stack bounds: a corrupt record gives an error, not a fault.
    public static func captureChecked(
        _ limits: RuntimeLimits,
        trap: TrapRegisters? = nil,
        walkLimits: WalkLimits = .default
    ) -> Backtrace {
        Backtrace(walking: FramePointerWalker(
            architecture: NativeArchitecture.self,
            reader: CheckedMemoryReader(),
            activations: LiveActivations(limits: limits, trap: trap),
            limits: walkLimits))
    }
}
