import StackCapture
import UnwindOracle
import WasmJIT
import WasmUnwind
import UnwindReports

/// Captures of the reference runtime's stacks.
public enum LiveCapture {
    /// Captures the calling host function's wasm stack: every activation
    /// of the caller's store, the stack bytes from the newest wasm frame up
    /// to above the outermost entry frame, and the store's modules. With
    /// `hostFrames`, also libunwind's view of the whole stack (for
    /// `dump --hybrid`).
    public static func atHostCall(_ caller: Caller, hostFrames: Bool = false, note: String? = nil) -> CaptureFile {
        let store = caller.store
        var file = atStore(store, note: note)
        if hostFrames, let hybrid = try? HybridBacktrace.merge(
            libunwind: Libunwind.unwindHere(names: true), walk: caller.backtrace(),
            exitTrampolines: store.engine.configuration.exitRecording == .trampoline, registry: store.registry) {
            file.hostFrames = hybrid.map(hostFrame)
        }
        return file
    }

    /// The wasm stack of `store`'s activations on this thread, from the
    /// newest one's recorded exit, and the store's modules.
    static func atStore(_ store: Store, note: String?) -> CaptureFile {
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
            registers = CaptureFile.Architecture(NativeArchitecture.self).startRegisters(
                pc: newest.start.rawValue, fp: newest.startFramePointer, sp: newest.startStackPointer)
            stack = [copyStack(from: newest.startStackPointer, to: outermost.entryFramePointer + 16)]
        }
        return CaptureFile(registers: registers, activations: activations, stack: stack,
                           modules: store.modules.map(module), note: note)
    }

    /// Captures the stack at a throw (from `Store.onThrow`): the wasm
    /// frames from the throwing call, the modules with their call sites'
    /// handlers, and the exception — which tags of each module are its tag
    /// and its payload — so `dump` can run the handler search again.
    public static func atThrow(_ site: ThrowSite, store: Store, note: String? = nil) -> CaptureFile {
        var file = atStore(store, note: note)
        let modules = store.modules.sorted { $0.code.range.lowerBound < $1.code.range.lowerBound }
        let instances = store.liveInstances
        file.modules = modules.map(module)
        file.thrown = CaptureFile.Thrown(
            tags: modules.map { module in
                // The tag indices, in any instance of the module, that are the thrown tag.
                let indices = instances.filter { $0.module === module }.flatMap { instance in
                    instance.tags.indices.filter { instance.tags[$0] === site.tag }.map(UInt32.init)
                }
                return Array(Set(indices)).sorted()
            },
            payload: site.payload.map { "\($0.kind) \($0)" })
        return file
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
        // SAFETY: clamped to the calling thread's stack bounds, which are
        // mapped for as long as the thread runs.
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
