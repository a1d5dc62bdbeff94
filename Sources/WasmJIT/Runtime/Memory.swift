import CWasmUnwindABI
#if canImport(Glibc)
import Glibc
import CWasmRuntime
#endif

/// A linear memory, laid out the way production runtimes lay it out on
/// 64-bit hosts: one reservation of address space covering every address a
/// 32-bit index plus a 32-bit offset can form (8 GiB), of which the first
/// `size` bytes are readable and writable and the rest inaccessible.
/// `grow` changes protections; the base never moves, so compiled code and
/// every instance that imports the memory keep their base address.
///
/// The corresponding C functions are `mmap` (`PROT_NONE`,
/// `MAP_NORESERVE`: reserving costs no memory) and `mprotect`.
public final class Memory {
    /// One wasm page.
    public static let pageSize = 65536
    /// Bytes reserved: any `index + offset + access size` a 32-bit
    /// memory can form — up to 2 * (2^32 - 1) + 8 — lies inside, so an
    /// access past the accessible bytes always faults inside the
    /// reservation (compiled code relies on it: no bounds checks).
    static let reservation = Int(WU_MEMORY_RESERVATION)

    public let minimumPages: UInt64
    public let maximumPages: UInt64?
    let base: UnsafeMutableRawPointer
    /// Bytes accessible now.
    public private(set) var size: Int
    /// The contexts that cache this memory's size (every instance using it).
    private var contexts: [UnsafeMutablePointer<wu_vmctx>] = []
    /// The store the memory belongs to.
    let binding = StoreBinding()

    /// A memory of `minimumPages`, growing to at most `maximumPages`.
    public init(minimumPages: UInt64, maximumPages: UInt64? = nil) throws {
        self.minimumPages = minimumPages
        self.maximumPages = maximumPages
        guard let mapping = mmap(nil, Self.reservation, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
              mapping != MAP_FAILED
        else { throw InstantiationError.memoryUnavailable(bytes: Self.reservation) }
        base = mapping
        size = 0
        guard grow(by: minimumPages) != nil else {
            munmap(mapping, Self.reservation)
            throw InstantiationError.memoryUnavailable(bytes: Int(minimumPages) * Self.pageSize)
        }
    }

    deinit { munmap(base, Self.reservation) }

    /// The size in pages.
    public var pages: UInt64 { UInt64(size / Self.pageSize) }

    /// Grows by `delta` pages; returns the old size in pages, or nil when
    /// the maximum (or 65,536 pages) would be passed or the system refuses.
    @discardableResult
    public func grow(by delta: UInt64) -> UInt64? {
        let old = pages
        let (new, overflow) = old.addingReportingOverflow(delta)
        guard !overflow, new <= (maximumPages ?? 65536), new <= 65536 else { return nil }
        if delta > 0 {
            guard mprotect(base + size, Int(delta) * Self.pageSize, PROT_READ | PROT_WRITE) == 0 else { return nil }
        }
        size = Int(new) * Self.pageSize
        for context in contexts { context.pointee.memory_size = UInt64(size) }
        return old
    }

    /// The accessible bytes.
    public func withBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeMutableRawBufferPointer(start: base, count: size))
    }

    /// The address the reservation starts at.
    var baseAddress: UInt { UInt(bitPattern: base) }

    func attach(_ context: UnsafeMutablePointer<wu_vmctx>) {
        contexts.append(context)
        context.pointee.memory_base = base.assumingMemoryBound(to: UInt8.self)
        context.pointee.memory_size = UInt64(size)
    }

    func detach(_ context: UnsafeMutablePointer<wu_vmctx>) {
        contexts.removeAll { $0 == context }
    }
}
