import StackCapture
import WasmUnwind
import UnwindReports

extension CapturedStack {
    /// The capture unwound offline by libunwind and compared with the walk
    /// of the same capture, one comparison per activation, newest first.
    ///
    /// For each activation libunwind starts at the activation's recorded
    /// registers (the capture's registers for the newest), reads memory
    /// from the captured bytes and CFI from the captured tables, and steps
    /// until it leaves JIT code; its frames must be the walk's wasm frames
    /// of that activation, pc for pc, then the entry trampoline — each
    /// unwound by the captured CFI of the function it is in.
    public func verify(backtrace walk: Backtrace) -> [FrameComparison] {
        var segments = capture.stack.map { RemoteUnwinder.Segment(baseAddress: $0.baseAddress, bytes: $0.bytes) }
        var tables: [RemoteUnwinder.CodeTable] = []
        for module in capture.modules {
            segments.append(.init(baseAddress: module.ehFrame.baseAddress, bytes: module.ehFrame.bytes))
            segments.append(.init(baseAddress: module.searchTable.baseAddress, bytes: module.searchTable.bytes))
            tables.append(RemoteUnwinder.CodeTable(
                codeRange: module.machineCodeRange, segmentBase: module.codeBase,
                searchTable: module.searchTable.baseAddress, entries: module.searchTable.bytes.count / 8))
        }
        return capture.activations.enumerated().map { index, activation in
            var registers = capture.architecture.startRegisters(
                pc: activation.start.rawValue, fp: activation.startFramePointer, sp: activation.startStackPointer)
            if index == 0, !capture.registers.isEmpty { registers = capture.registers }
            let ours = walk.frames.filter { $0.activation == index }.map { frame in
                Frame(address: frame.address, framePointer: frame.framePointer, activation: 0)
            }
            // The comparison needs libunwind's frames in JIT code: the walk's
            // and the entry trampoline, and a few more to show a mismatch.
            let frames = RemoteUnwinder.unwind(registers: registers, segments: segments, tables: tables,
                                               capacity: ours.count + 8)
            // Past the entry trampoline lies host code with no CFI here;
            // whatever libunwind guesses there is not compared.
            let inJIT = Array(frames.enumerated().prefix { position, frame in
                let trapped = position == 0 && !activation.start.isReturnAddress
                return registry.kind(at: trapped ? frame.ip : frame.ip &- 1) != nil
            }.map(\.element))
            // libunwind starts inside the newest wasm frame: no exit
            // trampoline below it, whatever the exit recording was.
            return FrameComparison(libunwind: inJIT, walk: ours, trapped: !activation.start.isReturnAddress,
                                   exitTrampolines: false, registry: registry)
        }
    }
}

extension CapturedStack {
    /// Everything `wasm-unwind dump` reports of this capture: the dump,
    /// with `roots` its GC roots, with `hybrid` every captured frame of the
    /// stack, with `verify` the comparison with libunwind's offline unwind;
    /// and whether it was sound (the walk complete, the roots found, the
    /// hybrid frames and the comparison matching).
    public func dump(file: String, roots: Bool, hybrid: Bool, verify: Bool,
                     warnings: [String] = [], limits: WalkLimits = .default) -> (dump: CaptureDump, isSound: Bool) {
        let backtrace = self.backtrace(limits: limits)
        var dump = self.dump(file: file, backtrace: backtrace, roots: roots, warnings: warnings)
        var sound = backtrace.error == nil && dump.rootsError == nil
        if hybrid {
            if let frames = hybridFrames(backtrace: backtrace) {
                dump.hybrid = frames
                if frames.contains(where: { if case .unmatchedWasm = $0 { return true } else { return false } }) { sound = false }
            } else {
                dump.hybridError = "no host frames in this capture (capture at host.backtrace_all to keep them)"
            }
        }
        if verify {
            let comparisons = self.verify(backtrace: backtrace)
            dump.verification = comparisons
            if !comparisons.allSatisfy(\.isMatch) { sound = false }
        }
        return (dump, sound)
    }
}
