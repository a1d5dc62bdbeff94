@_spi(Tools) import WasmUnwind
import UnwindReports

extension FrameComparison {
    /// libunwind's frames against the frame-pointer walk, frame for frame.
    ///
    /// The rule: libunwind's frames that lie in JIT code must be, in order,
    /// for each activation of the walk (newest first) — the exit trampoline
    /// (unless the activation is the trapping one, or wasm calls the host
    /// directly), the activation's wasm frames with exactly the walk's pcs,
    /// then the entry trampoline. So every wasm frame matches pc for pc and
    /// the trampolines sit exactly at the activation boundaries.
    ///
    /// And libunwind must have unwound each of those frames by our CFI: its
    /// procedure (`unw_get_proc_info`) must start where the registry's
    /// function or trampoline starts. Without registered CFI libunwind falls
    /// back to guessing from frame pointers, which happens to give the same
    /// pcs on shallow stacks; that must not count as agreement.
    ///
    /// `trapped` says the newest activation starts at a trapping pc (no
    /// exit trampoline below it, and its first frame is looked up at the pc
    /// itself rather than `pc - 1`); `exitTrampolines` false says wasm
    /// calls host imports directly (inline exit recording), so an exit
    /// trampoline is expected at an activation boundary only where libunwind
    /// finds one there (a host function called through a table).
    public init(libunwind: [LibunwindFrame], walk: [Frame], trapped: Bool, exitTrampolines: Bool = true,
                registry: CodeRegistry) {
        func entry(_ kind: CodeKind, _ pc: UInt?) -> Entry {
            Entry(kind: kind, pc: pc, symbol: pc.flatMap { registry.symbol(for: .returnAddress($0)) })
        }
        // libunwind's frames in JIT code. A return address is classified by
        // the call instruction it follows; an interrupted frame (the first,
        // at a trap) by its pc.
        var seen: [(entry: Entry, registryStart: UInt?)] = []
        for (index, frame) in libunwind.enumerated() {
            let lookup = trapped && index == 0 ? frame.ip : frame.ip &- 1
            guard let kind = registry.kind(at: lookup) else { continue }
            seen.append((Entry(kind: kind, pc: frame.ip, procedureStart: frame.procedureStart,
                               symbol: registry.symbol(for: trapped && index == 0 ? .programCounter(frame.ip) : .returnAddress(frame.ip))),
                         registry.codeRange(containing: lookup)?.lowerBound))
        }
        var expected: [Entry] = []
        var activation = -1
        for frame in walk {
            if frame.activation != activation {
                if activation >= 0 { expected.append(entry(.entryTrampoline, nil)) }
                activation = frame.activation
                // Inline exit recording calls host imports directly, but a
                // host function reached through a table (or another
                // module's import of it) still goes through its exit
                // trampoline: there, libunwind must show it exactly here.
                let throughTrampoline = exitTrampolines
                    || (expected.count < seen.count && seen[expected.count].entry.kind == .exitTrampoline)
                if throughTrampoline && !(trapped && activation == 0) { expected.append(entry(.exitTrampoline, nil)) }
            }
            expected.append(Entry(kind: .wasmFunction, pc: frame.address.rawValue,
                                  symbol: registry.symbol(for: frame.address)))
        }
        if activation >= 0 { expected.append(entry(.entryTrampoline, nil)) }

        var rows: [Row] = []
        for index in 0..<max(expected.count, seen.count) {
            let want = index < expected.count ? expected[index] : nil
            let got = index < seen.count ? seen[index] : nil
            var problem: String?
            if want?.kind != got?.entry.kind {
                problem = "different code"
            } else if let pc = want?.pc, pc != got?.entry.pc {
                problem = "different pc"
            } else if let got, got.entry.procedureStart != got.registryStart {
                problem = got.entry.procedureStart.map { "libunwind's procedure starts at \(hex($0)), not at \(got.registryStart.map(hex) ?? "?")" }
                    ?? "libunwind has no unwind information here: it guessed from the frame pointer"
            }
            rows.append(Row(index: index, expected: want, found: got?.entry, matches: problem == nil, problem: problem))
        }
        self.init(rows: rows, framesCompared: walk.count)
    }
}
