/// What the address of a frame is.
///
/// The newest frame of a trap is interrupted *at* an instruction; every other
/// frame is suspended at a call and records the address the call returns to.
/// The difference matters for lookup: a return address may be the first byte
/// of the next instruction (or even of the next function), so it is looked up
/// one byte earlier, inside the call. That rule lives here and nowhere else.
public enum FrameAddress: Hashable, Sendable {
    /// The address of the instruction that was executing (a trap).
    case programCounter(UInt)
    /// The address a `call` will return to.
    case returnAddress(UInt)

    /// The raw address as found on the stack or in a register.
    @inlinable
    public var rawValue: UInt {
        switch self {
        case .programCounter(let pc): return pc
        case .returnAddress(let ra): return ra
        }
    }

    /// Whether this is a return address (rather than an interrupted pc).
    @inlinable
    public var isReturnAddress: Bool {
        if case .returnAddress = self { return true }
        return false
    }

    /// The address to look up in code maps: the pc itself for an interrupted
    /// instruction, `ra - 1` (inside the call instruction) for a return address.
    @inlinable
    public var adjustedProgramCounter: UInt {
        switch self {
        case .programCounter(let pc): return pc
        case .returnAddress(let ra): return ra &- 1
        }
    }
}

/// One wasm frame found on the stack.
///
/// Laid out in 24 bytes (the walker writes one per frame into a caller's
/// buffer, so its size is part of the cost of a walk).
public struct Frame: Hashable, Sendable {
    /// The frame's frame pointer: the address of its saved caller frame pointer.
    public var framePointer: UInt
    @usableFromInline var rawAddress: UInt
    @usableFromInline var activationIndex: UInt32
    @usableFromInline var isReturnAddress: Bool

    @inlinable
    public init(address: FrameAddress, framePointer: UInt, activation: Int) {
        self.framePointer = framePointer
        self.activationIndex = UInt32(truncatingIfNeeded: activation)
        switch address {
        case .programCounter(let pc):
            rawAddress = pc
            isReturnAddress = false
        case .returnAddress(let ra):
            rawAddress = ra
            isReturnAddress = true
        }
    }

    @inlinable
    init(rawAddress: UInt, isReturnAddress: Bool, framePointer: UInt, activation: UInt32) {
        self.framePointer = framePointer
        self.rawAddress = rawAddress
        self.activationIndex = activation
        self.isReturnAddress = isReturnAddress
    }

    /// Where execution is (or will resume) in this frame.
    @inlinable
    public var address: FrameAddress {
        get { isReturnAddress ? .returnAddress(rawAddress) : .programCounter(rawAddress) }
        set { self = Frame(address: newValue, framePointer: framePointer, activation: activation) }
    }

    /// Which activation the frame belongs to, 0 being the newest.
    @inlinable
    public var activation: Int {
        get { Int(activationIndex) }
        set { activationIndex = UInt32(truncatingIfNeeded: newValue) }
    }
}
