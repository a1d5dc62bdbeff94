import CWasmUnwindABI
import Testing
import WasmUnwind

/// Live activation records that break their rules — a cycle, a cycle among
/// other stores' records (which are skipped), an endless chain, a start
/// frame pointer below the stack — end every walk with an error, never a
/// loop or a read outside the stack.
@Suite("A corrupt live activation chain")
struct CorruptActivationChainTests {
    /// `count` activation records in one buffer, at increasing addresses
    /// (as records in nested host frames are), linked newest (index 0) to
    /// oldest; `body` runs with record 0 as the thread's newest activation.
    static func withRecords<R>(_ count: Int, _ configure: (UnsafeMutableBufferPointer<wu_activation>) -> Void,
                               _ body: () throws -> R) rethrows -> R {
        let records = UnsafeMutableBufferPointer<wu_activation>.allocate(capacity: count)
        defer { records.deallocate() }
        _ = records.initialize(repeating: wu_activation())
        for index in 0..<count - 1 { records[index].older = records.baseAddress! + index + 1 }
        configure(records)
        let saved = wu_current_activation()
        wu_set_current_activation(records.baseAddress)
        defer { wu_set_current_activation(saved) }
        return try body()
    }

    @Test("a record that links back to a newer one (a cycle) ends the walk with an error", .timeLimit(.minutes(1)))
    func cycle() {
        let limits = RuntimeLimits()
        let trace = Self.withRecords(3, { records in
            for index in records.indices {
                records[index].limits = UnsafeMutablePointer(bitPattern: limits.address)
                records[index].saved_exit_pc = 0x1234
                records[index].saved_exit_fp = 0
            }
            records[2].older = records.baseAddress  // oldest -> newest
        }) {
            Backtrace.capture(limits, checked: true)
        }
        // The live limits record has no exit (pc 0), so no frame is read; the
        // chain is followed only as far as the walk needs it.
        #expect(trace.frames.isEmpty)
    }

    @Test("a cycle among other stores' records, all skipped, ends instead of looping", .timeLimit(.minutes(1)))
    func cycleOfSkippedRecords() {
        let limits = RuntimeLimits()
        let other = RuntimeLimits()
        limits.lastWasmExitPC = 0x1000
        limits.lastWasmExitFP = 0
        var failure: UnwindError?
        var depth = -1
        Self.withRecords(4, { records in
            for index in records.indices { records[index].limits = UnsafeMutablePointer(bitPattern: other.address) }
            records[3].older = records.baseAddress! + 1
        }) {
            var activations = LiveActivations(limits: limits)
            while activations.next() != nil {}
            failure = activations.failure
            depth = Activation.depth(of: limits)
        }
        let records = try? #require(failure)
        guard case .activationRecordsOutOfOrder = records else {
            Issue.record("expected activationRecordsOutOfOrder, got \(String(describing: failure))")
            return
        }
        #expect(depth == 0)
        #expect(failure?.rule == "activation-records-out-of-order")
    }

    @Test("a chain longer than any real one ends at the record limit", .timeLimit(.minutes(1)))
    func tooManyRecords() {
        let limits = RuntimeLimits()
        let other = RuntimeLimits()
        let count = WalkLimits.default.maximumActivations + 10
        var failure: UnwindError?
        Self.withRecords(count, { records in
            for index in records.indices { records[index].limits = UnsafeMutablePointer(bitPattern: other.address) }
        }) {
            var activations = LiveActivations(limits: limits, trap: TrapRegisters(pc: 1, fp: 0))
            _ = activations.next()
            while activations.next() != nil {}
            failure = activations.failure
        }
        #expect(failure == .activationLimitExceeded(limit: WalkLimits.default.maximumActivations))
    }

    @Test("the walk ends with the source's error and keeps the frames found before it")
    func walkEndsWithSourceError() throws {
        // Two real frames (the live activation), then a corrupt chain of
        // saved records.
        let stack = SyntheticStack()
        let (bounds, fps) = stack.activation(pcs: [0xA0, 0xA1])
        let limits = RuntimeLimits()
        limits.lastWasmExitPC = 0xA0
        limits.lastWasmExitFP = fps[0]
        limits.lastWasmEntryFP = bounds.entryFramePointer
        let other = RuntimeLimits()
        let trace = Self.withRecords(2, { records in
            // Another store's record (skipped) that links to itself.
            records[0].limits = UnsafeMutablePointer(bitPattern: other.address)
            records[0].older = records.baseAddress
        }) {
            Backtrace(walking: FramePointerWalker(
                architecture: X86_64.self, reader: CheckedMemoryReader(bounds: stack.range),
                activations: LiveActivations(limits: limits)))
        }
        #expect(trace.frames.map(\.address) == [.returnAddress(0xA0), .returnAddress(0xA1)])
        guard case .activationRecordsOutOfOrder? = trace.error else {
            Issue.record("expected activationRecordsOutOfOrder, got \(String(describing: trace.error))")
            return
        }
    }

    @Test("the unchecked live walk never reads a start frame pointer below the stack limit")
    func startBelowStackLimit() {
        let limits = RuntimeLimits()
        var here = 0
        let sp = withUnsafeMutablePointer(to: &here) { UInt(bitPattern: $0) }
        // An exit fp at 0x1000 (never mapped) with a stack limit far above it:
        // reading [fp + 8] would crash the test process.
        let trace = Activation.enter(limits, stackLimit: sp - (256 << 10)) { _ in
            limits.lastWasmExitPC = 0x5000
            limits.lastWasmExitFP = 0x1000
            limits.lastWasmEntryFP = sp &+ 0x100
            return Backtrace.capture(limits)
        }
        #expect(trace.frames.isEmpty)
        #expect(trace.error == .framePointerBelowStack(fp: 0x1000, lowest: sp - (256 << 10)))
    }

    @Test("nor a trap frame pointer below the trap's stack pointer")
    func trapStartBelowStackPointer() {
        let limits = RuntimeLimits()
        var here = 0
        let sp = withUnsafeMutablePointer(to: &here) { UInt(bitPattern: $0) }
        let trace = Activation.enter(limits) { _ in
            limits.lastWasmEntryFP = sp &+ 0x100
            return Backtrace.capture(limits, trap: TrapRegisters(pc: 0x5000, fp: 0x1000, sp: sp))
        }
        #expect(trace.frames.isEmpty)
        #expect(trace.error == .framePointerBelowStack(fp: 0x1000, lowest: sp))
    }
}
