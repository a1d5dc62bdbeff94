/// Where a thrown exception resumes: a frame of the throwing activation
/// whose call site has a handler that takes the exception.
public struct HandlerMatch: Sendable {
    /// The frame's position in the walk (0: the frame that threw).
    public var frameIndex: Int
    /// The frame: its return address into the function, its fp.
    public var frame: Frame
    /// The clause that takes the exception.
    public var handler: ExceptionHandler
    /// The frame's stack pointer while it runs: `fp - frameSize`.
    public var stackPointer: UInt
    /// The landing pad's address.
    public var landingPad: UInt
}

extension CodeRegistry {
    /// The handler search of a throw: walks the frames of the newest
    /// activation in `walker` (the frame that threw first, suspended at the
    /// call that threw), looks each return address up in its module's
    /// call-site table, and asks `takes` about each handler in order; the
    /// first it accepts is where the exception resumes. The search stops at
    /// the activation's entry: an exception leaves an activation as an
    /// error of the call that entered it (a host frame is never unwound).
    ///
    /// Returns nil when no frame of the activation takes the exception, and
    /// throws the walk's error when the chain is broken before a handler is
    /// found (with `framesSearched` frames searched).
    public func findHandler<Architecture, Reader, Activations>(
        walking walker: inout FramePointerWalker<Architecture, Reader, Activations>,
        takes: (ExceptionHandler, Frame) -> Bool
    ) throws(HandlerSearchError) -> HandlerMatch? {
        try search(&walker, takes)
    }

    /// The search of a throw on this thread's live stack, from the newest
    /// activation of `limits` (its recorded exit is the throwing call): the
    /// same walk and lookups as `findHandler(walking:takes:)`, specialised
    /// for live memory — what a wasm throw runs.
    public func findLiveHandler(limits: RuntimeLimits, takes: (ExceptionHandler, Frame) -> Bool)
        throws(HandlerSearchError) -> HandlerMatch?
    {
        var walker = FramePointerWalker(architecture: NativeArchitecture.self, reader: UncheckedMemoryReader(),
                                        activations: LiveActivations(limits: limits))
        return try search(&walker, takes)
    }

    @inline(__always)
    func search<Architecture, Reader, Activations>(
        _ walker: inout FramePointerWalker<Architecture, Reader, Activations>,
        _ takes: (ExceptionHandler, Frame) -> Bool
    ) throws(HandlerSearchError) -> HandlerMatch? {
        var index = 0
        let snapshot = self.snapshot
        // Consecutive frames are mostly of one module: remember it.
        var moduleIndex = -1
        var range: Range<UInt> = 0..<0
        while let frame = walker.nextFrame() {
            if frame.activation != 0 { return nil }
            defer { index &+= 1 }
            guard frame.isReturnAddress else { continue }
            let pc = frame.address.rawValue
            if !range.contains(pc &- 1) {
                moduleIndex = snapshot.ranges.index(containing: pc &- 1)
                guard moduleIndex >= 0 else { throw .noCallSite(pc: pc, frameIndex: index) }
                range = snapshot.ranges.range(at: moduleIndex)
            }
            // SAFETY: `snapshot` (held here) keeps the record.
            let result = snapshot.unretained[moduleIndex]._withUnsafeGuaranteedRef { record in
                record.firstHandler(returnOffset: UInt32(truncatingIfNeeded: pc &- range.lowerBound)) { takes($0, frame) }
            }
            switch result {
            case .noCallSite: throw .noCallSite(pc: pc, frameIndex: index)
            case .notTaken: continue
            case .taken(let handler, let frameSize):
                return HandlerMatch(frameIndex: index, frame: frame, handler: handler,
                                    stackPointer: frame.framePointer &- UInt(frameSize),
                                    landingPad: range.lowerBound &+ UInt(handler.landingPad))
            }
        }
        if let error = walker.error { throw .walk(error, framesSearched: index) }
        return nil
    }
}

/// Why a handler search could not finish.
public enum HandlerSearchError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A frame's return address is no recorded call site (the code is not
    /// registered, or the call site was not recorded).
    case noCallSite(pc: UInt, frameIndex: Int)
    /// The frame-pointer chain broke after `framesSearched` frames.
    case walk(UnwindError, framesSearched: Int)

    public var description: String {
        switch self {
        case .noCallSite(let pc, let frameIndex):
            return "frame \(frameIndex): return address \(hex(pc)) is no call site of registered code"
        case .walk(let error, let frames):
            return "the handler search stopped after \(frames) frames: \(error)"
        }
    }
}
