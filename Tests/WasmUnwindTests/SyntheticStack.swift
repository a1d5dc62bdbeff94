import Testing
@testable import WasmUnwind
#if canImport(Glibc)
import Glibc
#endif

/// A stack laid out by hand in real memory, for walking without a JIT.
///
/// Memory comes from `mmap`, so a test can make a page unreadable. Every
/// byte starts as garbage that looks like plausible pointers into the stack,
/// so a walker that strays into bytes it should not read goes visibly wrong.
final class SyntheticStack {
    let base: UnsafeMutableRawPointer
    let size: Int
    /// The next activation is laid out below this address.
    private(set) var top: UInt

    init(pages: Int = 16) {
        size = pages * 4096
        let mapping = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        precondition(mapping != MAP_FAILED)
        base = mapping!
        top = UInt(bitPattern: base) + UInt(size)
        // Garbage: words pointing a little higher up the stack, 8-aligned
        // but not 16-aligned, and a few that look like frame records.
        for index in 0..<(size / 8) {
            let address = UInt(bitPattern: base) + UInt(index * 8)
            let garbage = index % 3 == 0 ? address + 0x48 : 0xDEAD_BEEF_0000 + UInt(index)
            write(garbage, at: address)
        }
    }

    deinit { munmap(base, size) }

    var range: Range<UInt> { UInt(bitPattern: base)..<(UInt(bitPattern: base) + UInt(size)) }

    func write(_ value: UInt, at address: UInt) {
        precondition(range.contains(address))
        UnsafeMutableRawPointer(bitPattern: address)!.storeBytes(of: value, as: UInt.self)
    }

    func read(at address: UInt) -> UInt {
        UnsafeRawPointer(bitPattern: address)!.load(as: UInt.self)
    }

    /// Skips `bytes` of host frames (garbage the walker must never read),
    /// returning their range.
    @discardableResult
    func hostGap(_ bytes: UInt) -> Range<UInt> {
        let gap = (top - bytes)..<top
        top -= bytes
        return gap
    }

    /// Lays out one activation below the current top: an entry trampoline
    /// frame, then one wasm frame per element of `pcs`, oldest last.
    ///
    /// `pcs[0]` is the exit pc (return address into the newest frame);
    /// `pcs[i]` is the return address stored in frame `i - 1`'s record, into
    /// frame `i`. Frames get different sizes (16, 32, 48 ... bytes).
    /// Returns the activation's bounds and the frame pointers, newest first.
    func activation(pcs: [UInt]) -> (bounds: ActivationBounds, fps: [UInt]) {
        // Entry trampoline frame: 16-byte aligned, 64 bytes of saved registers.
        let entryFP = (top - 64) & ~15
        var fps: [UInt] = []
        var fp = entryFP
        for index in pcs.indices.reversed() {
            // Frame index `index` (0 newest) sits below the previous one.
            let frameSize = UInt(16 * (1 + index % 4))
            fp -= 16 + frameSize
            fps.insert(fp, at: 0)
        }
        for (index, fp) in fps.enumerated() {
            let olderFP = index + 1 < fps.count ? fps[index + 1] : entryFP
            let returnAddress = index + 1 < pcs.count ? pcs[index + 1] : 0x7000_0000 + UInt(index)
            write(olderFP, at: fp)
            write(returnAddress, at: fp + 8)
        }
        top = (fps.first ?? entryFP) - 16
        let bounds = ActivationBounds.exit(pc: pcs.first ?? 0, fp: fps.first ?? entryFP, entryFP: entryFP)
        return (bounds, fps)
    }
}

/// A reader that refuses and remembers every read outside `allowed`.
struct RecordingReader: MemoryReader {
    let inner: CheckedMemoryReader
    let log: ReadLog

    final class ReadLog { var addresses: [UInt] = [] }

    init(bounds: Range<UInt>, log: ReadLog) {
        inner = CheckedMemoryReader(bounds: bounds)
        self.log = log
    }

    var readableRange: Range<UInt>? { inner.readableRange }

    func loadWord(at address: UInt) -> UInt? {
        log.addresses.append(address)
        return inner.loadWord(at: address)
    }
}

/// Walks `activations` over `stack` with the checked reader.
func walk(_ stack: SyntheticStack, _ activations: [ActivationBounds],
          limits: WalkLimits = .default) -> Backtrace {
    func walker() -> FramePointerWalker<X86_64, CheckedMemoryReader, IndexingIterator<[ActivationBounds]>> {
        FramePointerWalker(architecture: X86_64.self, reader: CheckedMemoryReader(bounds: stack.range),
                           activations: activations.makeIterator(), limits: limits)
    }
    let trace = Backtrace(walking: walker())
    // The allocation-free entry point (its tight loop hands anything unusual
    // to next()) must find exactly the same frames and the same error.
    let buffer = UnsafeMutableBufferPointer<Frame>.allocate(capacity: 256)
    defer { buffer.deallocate() }
    var intoBuffer = walker()
    let result = intoBuffer.walk(into: buffer)
    #expect(Array(buffer.prefix(result.count)) == trace.frames, "walk(into:) found other frames")
    #expect(intoBuffer.error == trace.error, "walk(into:) stopped for another reason")
    #expect(result.isComplete == (trace.error == nil && !trace.isTruncated))
    return trace
}
