import Testing
import WasmUnwind

@Suite("Runtime limits and the activation chain")
struct ActivationTests {
    struct Failure: Error {}

    @Test("entering saves the unwinding fields, clears them, and restores them on return")
    func saveClearRestore() {
        let limits = RuntimeLimits()
        limits.stackLimit = 0x1000
        limits.lastWasmExitFP = 0x7F00
        limits.lastWasmExitPC = 0xAAAA
        limits.lastWasmEntryFP = 0x7F80
        Activation.enter(limits, stackLimit: 0x2000) { record in
            #expect(limits.lastWasmExitFP == 0)
            #expect(limits.lastWasmExitPC == 0)
            #expect(limits.lastWasmEntryFP == 0)
            #expect(limits.stackLimit == 0x2000)
            #expect(record.saved.exitFP == 0x7F00)
            #expect(record.saved.exitPC == 0xAAAA)
            #expect(record.saved.entryFP == 0x7F80)
            #expect(record.saved.stackLimit == 0x1000)
            #expect(Activation.current?.address == record.address)
            limits.lastWasmExitPC = 0xBBBB
            limits.lastWasmEntryFP = 0x5000
        }
        #expect(limits.lastWasmExitFP == 0x7F00)
        #expect(limits.lastWasmExitPC == 0xAAAA)
        #expect(limits.lastWasmEntryFP == 0x7F80)
        #expect(limits.stackLimit == 0x1000)
        #expect(Activation.current == nil)
    }

    @Test("a thrown error restores the record and unlinks the activation too")
    func restoreOnThrow() {
        let limits = RuntimeLimits()
        limits.lastWasmExitPC = 0x1234
        #expect(throws: Failure.self) {
            try Activation.enter(limits) { _ throws(Failure) in
                limits.lastWasmExitPC = 0x9999
                limits.lastWasmEntryFP = 0x8888
                throw Failure()
            }
        }
        #expect(limits.lastWasmExitPC == 0x1234)
        #expect(limits.lastWasmEntryFP == 0)
        #expect(Activation.current == nil)
    }

    @Test("activations iterate newest first: the live record, then each saved one, stopping at zero exit pc")
    func iteration() {
        let limits = RuntimeLimits()
        Activation.enter(limits) { _ in
            // Oldest activation: wasm entered at 0x9000, called out from 0x8800.
            limits.lastWasmEntryFP = 0x9000
            limits.lastWasmExitFP = 0x8800
            limits.lastWasmExitPC = 0x111
            Activation.enter(limits) { _ in
                limits.lastWasmEntryFP = 0x7000
                limits.lastWasmExitFP = 0x6800
                limits.lastWasmExitPC = 0x222
                Activation.enter(limits) { _ in
                    limits.lastWasmEntryFP = 0x5000
                    limits.lastWasmExitFP = 0x4800
                    limits.lastWasmExitPC = 0x333
                    #expect(Activation.depth(of: limits) == 3)
                    #expect(Array(LiveActivations(limits: limits)) == [
                        .exit(pc: 0x333, fp: 0x4800, entryFP: 0x5000),
                        .exit(pc: 0x222, fp: 0x6800, entryFP: 0x7000),
                        .exit(pc: 0x111, fp: 0x8800, entryFP: 0x9000),
                    ])
                    // At a trap the registers replace the live exit pc and fp.
                    #expect(Array(LiveActivations(limits: limits, trap: TrapRegisters(pc: 0x444, fp: 0x4000))) == [
                        .trap(pc: 0x444, fp: 0x4000, entryFP: 0x5000),
                        .exit(pc: 0x222, fp: 0x6800, entryFP: 0x7000),
                        .exit(pc: 0x111, fp: 0x8800, entryFP: 0x9000),
                    ])
                }
            }
        }
    }

    @Test("a zero exit pc means no wasm: the live record yields nothing")
    func zeroExitPC() {
        let limits = RuntimeLimits()
        Activation.enter(limits) { _ in
            limits.lastWasmEntryFP = 0x9000
            #expect(Array(LiveActivations(limits: limits)).isEmpty)
        }
    }

    @Test("another store's activations are skipped")
    func otherStoresSkipped() {
        let mine = RuntimeLimits()
        let other = RuntimeLimits()
        Activation.enter(mine) { _ in
            mine.lastWasmEntryFP = 0x9000
            mine.lastWasmExitFP = 0x8800
            mine.lastWasmExitPC = 0x111
            Activation.enter(other) { _ in
                other.lastWasmEntryFP = 0x8000
                other.lastWasmExitFP = 0x7800
                other.lastWasmExitPC = 0x999
                Activation.enter(mine) { _ in
                    mine.lastWasmEntryFP = 0x7000
                    mine.lastWasmExitFP = 0x6800
                    mine.lastWasmExitPC = 0x222
                    #expect(Array(LiveActivations(limits: mine)) == [
                        .exit(pc: 0x222, fp: 0x6800, entryFP: 0x7000),
                        .exit(pc: 0x111, fp: 0x8800, entryFP: 0x9000),
                    ])
                    #expect(Array(LiveActivations(limits: other)) == [
                        .exit(pc: 0x999, fp: 0x7800, entryFP: 0x8000),
                    ])
                }
            }
        }
    }

    @Test("the field offsets are the C layout's")
    func offsets() {
        #expect(RuntimeLimits.Offsets.stackLimit == 0)
        #expect(RuntimeLimits.Offsets.lastWasmExitFP == 8)
        #expect(RuntimeLimits.Offsets.lastWasmExitPC == 16)
        #expect(RuntimeLimits.Offsets.lastWasmEntryFP == 24)
        let limits = RuntimeLimits()
        limits.lastWasmExitPC = 0xABCDEF
        let stored = UnsafeRawPointer(bitPattern: limits.address)!
            .load(fromByteOffset: RuntimeLimits.Offsets.lastWasmExitPC, as: UInt.self)
        #expect(stored == 0xABCDEF)
    }

    @Test("a live walk over the real activation chain crosses nested activations")
    func liveChainOverSyntheticStack() {
        let stack = SyntheticStack()
        let oldest = stack.activation(pcs: [0x301, 0x302])
        stack.hostGap(200)
        let middle = stack.activation(pcs: [0x201])
        stack.hostGap(300)
        let newest = stack.activation(pcs: [0x101, 0x102])
        let limits = RuntimeLimits()
        func set(_ bounds: ActivationBounds) {
            limits.lastWasmEntryFP = bounds.entryFramePointer
            limits.lastWasmExitFP = bounds.startFramePointer
            limits.lastWasmExitPC = bounds.start.rawValue
        }
        Activation.enter(limits) { _ in
            set(oldest.bounds)
            Activation.enter(limits) { _ in
                set(middle.bounds)
                Activation.enter(limits) { _ in
                    set(newest.bounds)
                    let trace = Backtrace.capture(limits)
                    #expect(trace.error == nil)
                    #expect(trace.frames.map(\.address.rawValue) == [0x101, 0x102, 0x201, 0x301, 0x302])
                    #expect(trace.frames.map(\.activation) == [0, 0, 1, 2, 2])
                }
            }
        }
    }

    @Test("the checked live reader refuses addresses outside the thread's stack")
    func checkedReaderBounds() {
        let stack = ThreadStack.current()
        var local = 42
        let address = withUnsafeMutablePointer(to: &local) { UInt(bitPattern: $0) }
        #expect(stack.contains(address))
        let reader = CheckedMemoryReader()
        #expect(reader.loadWord(at: address & ~7) != nil)
        #expect(reader.loadWord(at: stack.upperBound) == nil)
        #expect(reader.loadWord(at: stack.lowerBound - 8) == nil)
    }
}
