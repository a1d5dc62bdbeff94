import StackCapture
import UnwindOracle
import WasmJIT
import WasmUnwind

/// Captures of the reference runtime's stacks.
public enum LiveCapture {
    /// Captures the calling host function's wasm stack: every activation
    /// of the caller's store, the stack bytes from the newest wasm frame up
    /// to above the outermost entry frame, and the store's modules. With
    /// `hostFrames`, also libunwind's view of the whole stack (for
    /// `dump --hybrid`).
    public static func atHostCall(_ caller: Caller, hostFrames: Bool = false, note: String? = nil) -> CaptureFile {
        let store = caller.store
        var activations: [CaptureFile.Activation] = []
        for bounds in LiveActivations(limits: store.limits) {
            activations.append(CaptureFile.Activation(
                start: bounds.start, startFramePointer: bounds.startFramePointer,
                startStackPointer: stackPointer(at: bounds.start, fp: bounds.startFramePointer, registry: store.registry),
                entryFramePointer: bounds.entryFramePointer))
        }
        var registers: [UInt8: UInt] = [:]
        var stack: [CapturedMemoryReader.Segment] = []
        if let newest = activations.first, let outermost = activations.last {
            registers = [16: newest.start.rawValue, 6: newest.startFramePointer, 7: newest.startStackPointer]
            stack = [copyStack(from: newest.startStackPointer, to: outermost.entryFramePointer + 16)]
        }
        var frames: [CaptureFile.HostFrame]?
        if hostFrames, let hybrid = try? HybridBacktrace.merge(
            libunwind: Libunwind.unwindHere(names: true), walk: caller.backtrace(),
            exitTrampolines: store.engine.configuration.exitRecording == .trampoline, registry: store.registry) {
            frames = hybrid.map(hostFrame)
        }
        return CaptureFile(registers: registers, activations: activations, stack: stack,
                           modules: store.modules.map(module), hostFrames: frames, note: note)
    }

    /// A capture of a wasm trap, from the snapshot the signal handler took
    /// (the store must have `enableTrapSnapshots()` on). Nil if the trap
    /// has no snapshot (a host failure, or snapshots off).
    public static func atTrap(_ trap: Trap, store: Store, note: String? = nil) -> CaptureFile? {
        guard let snapshot = trap.snapshot, let code = trap.code else { return nil }
        let activations = snapshot.activations.enumerated().map { index, row in
            CaptureFile.Activation(
                start: index == 0 ? .programCounter(row.pc) : .returnAddress(row.pc), startFramePointer: row.fp,
                startStackPointer: row.sp ?? stackPointer(at: .returnAddress(row.pc), fp: row.fp, registry: store.registry),
                entryFramePointer: row.entryFP)
        }
        let stack = CapturedMemoryReader.Segment(baseAddress: snapshot.stackBase, bytes: snapshot.stack)
        return CaptureFile(registers: snapshot.registers, activations: activations, stack: [stack],
                           modules: store.modules.map(module),
                           trap: CapturedTrap(code: code.rawValue, message: code.message),
                           note: note ?? (snapshot.isTruncated ? "stack truncated to \(snapshot.stack.count) bytes" : nil))
    }

    /// A wasm frame's stack pointer: its frame pointer minus the frame size
    /// its call site's stack map records (the frame pointer if unknown).
    static func stackPointer(at address: FrameAddress, fp: UInt, registry: CodeRegistry) -> UInt {
        guard case .returnAddress(let pc) = address, let map = registry.stackMap(forReturnAddress: pc) else { return fp }
        return fp - UInt(map.frameSize)
    }

    /// The live stack bytes in [low, high), clamped to this thread's stack.
    static func copyStack(from low: UInt, to high: UInt) -> CapturedMemoryReader.Segment {
        let bounds = ThreadStack.current()
        let start = max(low, bounds.lowerBound)
        let end = min(high, bounds.upperBound)
        guard start < end else { return CapturedMemoryReader.Segment(baseAddress: start, bytes: []) }
        let bytes = Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: start), count: Int(end - start)))
        return CapturedMemoryReader.Segment(baseAddress: start, bytes: bytes)
    }

    /// What a capture keeps of a compiled module.
    public static func module(_ module: Module) -> CaptureFile.Module { module.captureModule }

    static func hostFrame(_ frame: HybridFrame) -> CaptureFile.HostFrame {
        switch frame {
        case .host(let pc, let name, let offset):
            return .init(pc: pc, kind: nil, name: name ?? "", offset: offset)
        case .stub(let pc, let kind):
            return .init(pc: pc, kind: kind, name: "", offset: 0)
        case .wasm(let frame):
            return .init(pc: frame.frame.address.rawValue, kind: .wasmFunction, name: "", offset: 0)
        case .unmatchedWasm(let pc):
            return .init(pc: pc, kind: .wasmFunction, name: "", offset: 0)
        }
    }
}
