/// Reads machine words for the walker.
///
/// One protocol, three readers: live memory without checks (the fast path,
/// for stacks this thread is standing on), live memory checked against the
/// thread's stack bounds, and captured bytes at the address they were copied
/// from. The walker is generic over the reader, so each is specialised and
/// the unchecked one compiles to bare loads.
public protocol MemoryReader {
    /// The addresses this reader can answer for, or `nil` when it does not
    /// know (unchecked live memory). The walker requires every frame record
    /// to lie inside it.
    var readableRange: Range<UInt>? { get }

    /// The 64-bit little-endian word at `address`, or `nil` if it cannot be
    /// read.
    func loadWord(at address: UInt) -> UInt?
}

/// Reads live memory of this process with no checks at all.
///
/// Only correct for addresses the walker has already proven to lie inside
/// an activation's frames (aligned, between the start and entry frame
/// pointers); that is the contract of `FramePointerWalker`.
public struct UncheckedMemoryReader: MemoryReader {
    @inlinable public init() {}

    @inlinable public var readableRange: Range<UInt>? { nil }

    @inlinable
    public func loadWord(at address: UInt) -> UInt? {
        // SAFETY: the walker reads only aligned words between an
        // activation's start and entry frame pointers, on the calling
        // thread's own stack (the type's contract above).
        UnsafeRawPointer(bitPattern: address).unsafelyUnwrapped.load(as: UInt.self)
    }
}

/// Reads live memory, refusing any address outside a given range (normally
/// the current thread's stack, `ThreadStack.current()`).
public struct CheckedMemoryReader: MemoryReader {
    public let readableRange: Range<UInt>?
    @usableFromInline let bounds: Range<UInt>

    /// A reader limited to `bounds`.
    @inlinable
    public init(bounds: Range<UInt>) {
        self.bounds = bounds
        self.readableRange = bounds
    }

    /// A reader limited to the calling thread's stack.
    public init() {
        self.init(bounds: ThreadStack.current())
    }

    @inlinable
    public func loadWord(at address: UInt) -> UInt? {
        guard address >= bounds.lowerBound,
              address <= bounds.upperBound &- 8,
              address % 8 == 0
        else { return nil }
        // SAFETY: an aligned word inside `bounds`, which the caller says is
        // mapped and readable (the calling thread's stack by default).
        return UnsafeRawPointer(bitPattern: address).unsafelyUnwrapped.load(as: UInt.self)
    }
}

/// Reads words out of bytes copied from another process's memory (a
/// captured stack), at the addresses they were copied from. Nothing is read
/// from this process's own memory; an address in no segment is unreadable.
public struct CapturedMemoryReader: MemoryReader, Sendable {
    /// Bytes that were at `baseAddress` .. `baseAddress + bytes.count`.
    public struct Segment: Hashable, Sendable {
        public var baseAddress: UInt
        public var bytes: [UInt8]

        public init(baseAddress: UInt, bytes: [UInt8]) {
            self.baseAddress = baseAddress
            self.bytes = bytes
        }

        public var range: Range<UInt> { baseAddress..<(baseAddress &+ UInt(bytes.count)) }
    }

    /// Sorted by address, not overlapping.
    public let segments: [Segment]

    /// A reader over `segments` (sorted here; they must not overlap).
    public init(segments: [Segment]) {
        self.segments = segments.sorted { $0.baseAddress < $1.baseAddress }
    }

    /// A reader over one segment.
    public init(baseAddress: UInt, bytes: [UInt8]) {
        self.init(segments: [Segment(baseAddress: baseAddress, bytes: bytes)])
    }

    /// From the lowest captured byte to one past the highest (gaps between
    /// segments are inside it but unreadable).
    public var readableRange: Range<UInt>? {
        guard let first = segments.first, let last = segments.last else { return 0..<0 }
        return first.baseAddress..<last.range.upperBound
    }

    public func loadWord(at address: UInt) -> UInt? {
        // The last segment starting at or below the address.
        let index = segments.prefixCount { $0.baseAddress <= address } - 1
        guard index >= 0 else { return nil }
        let segment = segments[index]
        let offset = address - segment.baseAddress
        guard offset <= UInt(segment.bytes.count), UInt(segment.bytes.count) - offset >= 8 else { return nil }
        return segment.bytes.withUnsafeBytes { raw in
            UInt(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: Int(offset), as: UInt64.self)))
        }
    }
}
