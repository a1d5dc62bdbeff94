import Testing
@testable import WasmUnwind
#if canImport(Glibc)
import Glibc
#endif

@Suite("Frame-pointer walker on synthetic stacks")
struct FramePointerWalkerTests {
    @Test("one activation yields its frames newest first, exit pc first")
    func oneActivation() {
        let stack = SyntheticStack()
        stack.hostGap(256)
        let (bounds, fps) = stack.activation(pcs: [0x1111, 0x2222, 0x3333])
        let trace = walk(stack, [bounds])
        #expect(trace.error == nil)
        #expect(trace.frames == [
            Frame(address: .returnAddress(0x1111), framePointer: fps[0], activation: 0),
            Frame(address: .returnAddress(0x2222), framePointer: fps[1], activation: 0),
            Frame(address: .returnAddress(0x3333), framePointer: fps[2], activation: 0),
        ])
    }

    @Test("three nested activations are walked in order without reading the host frames between them")
    func threeActivationsSkipHostGaps() {
        let stack = SyntheticStack()
        stack.hostGap(512)
        let oldest = stack.activation(pcs: [0x3001, 0x3002])
        let gap1 = stack.hostGap(384)
        let middle = stack.activation(pcs: [0x2001])
        let gap2 = stack.hostGap(1024)
        let newest = stack.activation(pcs: [0x1001, 0x1002, 0x1003])
        let gap3 = stack.hostGap(128)

        let log = RecordingReader.ReadLog()
        let walker = FramePointerWalker(
            architecture: X86_64.self,
            reader: RecordingReader(bounds: stack.range, log: log),
            activations: [newest.bounds, middle.bounds, oldest.bounds].makeIterator())
        let trace = Backtrace(walking: walker)

        #expect(trace.error == nil)
        #expect(trace.frames.map(\.address.rawValue) == [0x1001, 0x1002, 0x1003, 0x2001, 0x3001, 0x3002])
        #expect(trace.frames.map(\.activation) == [0, 0, 0, 1, 2, 2])
        #expect(trace.frames.map(\.framePointer) == newest.fps + middle.fps + oldest.fps)
        // Only frame records were read: two words per frame, nothing else.
        #expect(log.addresses.count == 12)
        for address in log.addresses {
            #expect(!gap1.contains(address) && !gap2.contains(address) && !gap3.contains(address))
        }
        let recordWords = Set((newest.fps + middle.fps + oldest.fps).flatMap { [$0, $0 + 8] })
        #expect(Set(log.addresses) == recordWords)
    }

    @Test("host frames behind an unreadable page are never touched, even by the unchecked reader")
    func unreadableHostGap() {
        let stack = SyntheticStack(pages: 8)
        stack.hostGap(4096 * 2)
        let older = stack.activation(pcs: [0xA1, 0xA2])
        // Make a whole page of host frames between the activations unreadable.
        let gapTop = stack.top & ~UInt(4095)
        stack.hostGap(stack.top - gapTop + 4096 + 64)
        let pageStart = gapTop - 4096
        let newer = stack.activation(pcs: [0xB1])
        #expect(mprotect(UnsafeMutableRawPointer(bitPattern: pageStart), 4096, PROT_NONE) == 0)
        defer { mprotect(UnsafeMutableRawPointer(bitPattern: pageStart), 4096, PROT_READ | PROT_WRITE) }

        let trace = Backtrace(walking: FramePointerWalker(
            architecture: X86_64.self,
            reader: UncheckedMemoryReader(),
            activations: [newer.bounds, older.bounds].makeIterator()))
        #expect(trace.error == nil)
        #expect(trace.frames.map(\.address.rawValue) == [0xB1, 0xA1, 0xA2])
    }

    @Test("an activation whose exit fp equals its entry fp has no frames; the walk continues past it")
    func tailCallActivationHasNoFrames() {
        let stack = SyntheticStack()
        let older = stack.activation(pcs: [0x51, 0x52])
        stack.hostGap(96)
        let entryFP = (stack.top - 64) & ~15
        stack.hostGap(stack.top - entryFP + 16)
        let empty = ActivationBounds.exit(pc: 0x61, fp: entryFP, entryFP: entryFP)
        stack.hostGap(64)
        let newer = stack.activation(pcs: [0x71])

        let trace = walk(stack, [newer.bounds, empty, older.bounds])
        #expect(trace.error == nil)
        #expect(trace.frames.map(\.address.rawValue) == [0x71, 0x51, 0x52])
        #expect(trace.frames.map(\.activation) == [0, 2, 2])
    }

    @Test("a trap's pc is a program counter, the frames above it return addresses")
    func trapStartIsProgramCounter() {
        let stack = SyntheticStack()
        let (exit, fps) = stack.activation(pcs: [0x900, 0x901])
        let trap = ActivationBounds.trap(pc: 0x8FF, fp: fps[0], entryFP: exit.entryFramePointer)
        let trace = walk(stack, [trap])
        #expect(trace.frames.map(\.address) == [.programCounter(0x8FF), .returnAddress(0x901)])
        #expect(trace.frames.map(\.address.adjustedProgramCounter) == [0x8FF, 0x900])
    }

    @Test("the allocation-free entry point fills a caller buffer and reports completion")
    func walkIntoBuffer() {
        let stack = SyntheticStack()
        let (bounds, _) = stack.activation(pcs: [1, 2, 3, 4])
        let buffer = UnsafeMutableBufferPointer<Frame>.allocate(capacity: 4)
        defer { buffer.deallocate() }
        var walker = FramePointerWalker(architecture: X86_64.self, reader: UncheckedMemoryReader(),
                                        activations: [bounds].makeIterator())
        let result = walker.walk(into: buffer)
        #expect(result.count == 4 && result.isComplete)
        #expect(buffer.map(\.address.rawValue) == [1, 2, 3, 4])

        let small = UnsafeMutableBufferPointer<Frame>.allocate(capacity: 2)
        defer { small.deallocate() }
        var second = FramePointerWalker(architecture: X86_64.self, reader: UncheckedMemoryReader(),
                                        activations: [bounds].makeIterator())
        let partial = second.walk(into: small)
        #expect(partial.count == 2 && !partial.isComplete)
        #expect(second.error == nil)
    }

    @Test("the walker is a sequence: a prefix stops early")
    func prefix() {
        let stack = SyntheticStack()
        let (bounds, _) = stack.activation(pcs: [10, 20, 30, 40, 50])
        let walker = FramePointerWalker(architecture: X86_64.self, reader: UncheckedMemoryReader(),
                                        activations: [bounds].makeIterator())
        #expect(walker.prefix(2).map(\.address.rawValue) == [10, 20])
    }

    @Test("aarch64 strips pointer-authentication bits from return addresses")
    func aarch64StripsPAC() {
        let stack = SyntheticStack()
        let (bounds, fps) = stack.activation(pcs: [0x4000, 0x4100])
        stack.write(0x002A_0000_0000_4100, at: fps[0] + 8)
        let trace = Backtrace(walking: FramePointerWalker(
            architecture: AArch64.self, reader: CheckedMemoryReader(bounds: stack.range),
            activations: [bounds].makeIterator()))
        #expect(trace.frames.map(\.address.rawValue) == [0x4000, 0x4100])
    }
}

@Suite("Walker rules: each corruption gives its error and the frames before it")
struct WalkerCorruptionTests {
    @Test("a frame linking to itself is a cycle: frame-pointer-did-not-advance")
    func selfCycle() {
        let stack = SyntheticStack()
        let (bounds, fps) = stack.activation(pcs: [1, 2, 3])
        stack.write(fps[1], at: fps[1])
        let trace = walk(stack, [bounds])
        #expect(trace.frames.map(\.address.rawValue) == [1, 2])
        #expect(trace.error == .framePointerDidNotAdvance(fp: fps[1]))
    }

    @Test("a two-frame cycle moves backwards")
    func twoFrameCycle() {
        let stack = SyntheticStack()
        let (bounds, fps) = stack.activation(pcs: [1, 2, 3])
        stack.write(fps[0], at: fps[1])
        let trace = walk(stack, [bounds])
        #expect(trace.frames.map(\.address.rawValue) == [1, 2])
        #expect(trace.error == .framePointerMovedBackwards(fp: fps[1], olderFP: fps[0]))
    }

    @Test("a decreasing frame pointer is rejected")
    func decreasing() {
        let stack = SyntheticStack()
        let (bounds, fps) = stack.activation(pcs: [1, 2, 3])
        stack.write(fps[0] - 64, at: fps[0])
        let trace = walk(stack, [bounds])
        #expect(trace.frames.map(\.address.rawValue) == [1])
        #expect(trace.error == .framePointerMovedBackwards(fp: fps[0], olderFP: fps[0] - 64))
    }

    @Test("a misaligned frame pointer is rejected before it is read")
    func misaligned() {
        let stack = SyntheticStack()
        let (bounds, fps) = stack.activation(pcs: [1, 2, 3])
        stack.write(fps[1] + 8, at: fps[0])
        let trace = walk(stack, [bounds])
        #expect(trace.frames.map(\.address.rawValue) == [1])
        #expect(trace.error == .misalignedFramePointer(fp: fps[1] + 8, alignment: 16))
    }

    @Test("a frame pointer outside the stack is rejected before it is read")
    func outsideStack() {
        let stack = SyntheticStack()
        let (bounds, fps) = stack.activation(pcs: [1, 2, 3])
        // A corrupt record: the chain leaves the stack, and the activation's
        // entry fp claims to be beyond it too.
        let outside = stack.range.upperBound + 0x100
        stack.write(outside, at: fps[1])
        var corrupt = bounds
        corrupt.entryFramePointer = stack.range.upperBound + 0x1000
        let trace = walk(stack, [corrupt])
        #expect(trace.frames.map(\.address.rawValue) == [1, 2])
        #expect(trace.error == .framePointerOutsideStack(fp: outside, stack: stack.range))
    }

    @Test("a chain that climbs past the entry frame pointer is rejected")
    func passesEntry() {
        let stack = SyntheticStack()
        let (bounds, fps) = stack.activation(pcs: [1, 2, 3])
        stack.write(bounds.entryFramePointer + 32, at: fps[2])
        let trace = walk(stack, [bounds])
        #expect(trace.frames.map(\.address.rawValue) == [1, 2, 3])
        #expect(trace.error == .framePointerPassedEntry(fp: bounds.entryFramePointer + 32,
                                                        entryFP: bounds.entryFramePointer))
    }

    @Test("more frames than the limit stops with frame-limit-exceeded")
    func frameLimit() {
        let stack = SyntheticStack()
        let (bounds, _) = stack.activation(pcs: [1, 2, 3, 4, 5])
        let trace = walk(stack, [bounds], limits: WalkLimits(maximumFrames: 3, maximumActivations: 10))
        #expect(trace.frames.map(\.address.rawValue) == [1, 2, 3])
        #expect(trace.error == .frameLimitExceeded(limit: 3))
    }

    @Test("an older activation starting below a newer one's entry frame is rejected")
    func activationsOutOfOrder() {
        let stack = SyntheticStack()
        let older = stack.activation(pcs: [1])
        stack.hostGap(64)
        let newer = stack.activation(pcs: [2])
        let trace = walk(stack, [older.bounds, newer.bounds])
        #expect(trace.frames.map(\.address.rawValue) == [1])
        #expect(trace.error == .activationsOutOfOrder(activation: 1, startFP: newer.bounds.startFramePointer,
                                                      newerEntryFP: older.bounds.entryFramePointer))
    }

    @Test("an activation starting at fp 0 is rejected")
    func nullStart() {
        let trace = walk(SyntheticStack(), [.exit(pc: 1, fp: 0, entryFP: 0x1000)])
        #expect(trace.frames.isEmpty)
        #expect(trace.error == .nullFramePointer(activation: 0))
    }

    @Test("an unreadable record word stops the walk after the frame that owns it")
    func unreadable() {
        struct HoleReader: MemoryReader {
            let inner: CheckedMemoryReader
            let hole: UInt
            var readableRange: Range<UInt>? { inner.readableRange }
            func loadWord(at address: UInt) -> UInt? { address == hole ? nil : inner.loadWord(at: address) }
        }
        let stack = SyntheticStack()
        let (bounds, fps) = stack.activation(pcs: [1, 2, 3])
        let trace = Backtrace(walking: FramePointerWalker(
            architecture: X86_64.self,
            reader: HoleReader(inner: CheckedMemoryReader(bounds: stack.range), hole: fps[1] + 8),
            activations: [bounds].makeIterator()))
        #expect(trace.frames.map(\.address.rawValue) == [1, 2])
        #expect(trace.error == .unreadableMemory(address: fps[1] + 8))
    }

    @Test("a captured-memory reader reads little-endian words and nothing outside its bytes")
    func capturedReader() {
        let reader = CapturedMemoryReader(baseAddress: 0x1000, bytes: [1, 0, 0, 0, 0, 0, 0, 0x80, 2])
        #expect(reader.loadWord(at: 0x1000) == 0x8000_0000_0000_0001)
        #expect(reader.loadWord(at: 0x1001) == 0x0280_0000_0000_0000)
        #expect(reader.loadWord(at: 0x1002) == nil)
        #expect(reader.loadWord(at: 0xFFF) == nil)
        #expect(reader.readableRange == 0x1000..<0x1009)
    }
}
