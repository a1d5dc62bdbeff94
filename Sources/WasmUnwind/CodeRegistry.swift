/// Maps code addresses to wasm modules, functions and module offsets, and
/// says what every piece of JIT code is.
///
/// A module registers its code range; per function, the function's native
/// range and a sorted map from native offset to wasm module offset (one
/// entry where the native code of each wasm instruction starts, plus one for
/// each out-of-line trap stub); and its trampolines and stubs with their
/// `CodeKind`. This is the one answer to "what code is at this address"
/// (`kind(at:)`, `symbol(for:)`), as the Swift runtime's unwinder asks one
/// image map.
///
/// The registered modules are an immutable `RegistrySnapshot`; registering
/// or unregistering makes a new one. A symbolicated backtrace holds the
/// snapshot it was resolved against — one reference — and its frames hold
/// indices into it, so symbolicating a frame counts no reference and the
/// names stay valid after the module is unregistered.
public struct CodeRegistry: Sendable {
    /// The modules registered now.
    public private(set) var snapshot = RegistrySnapshot(records: []) {
        didSet { signalSafeMap?.publish(snapshot) }
    }
    /// Where every registration is published for signal handlers, if
    /// anywhere.
    public let signalSafeMap: SignalSafeCodeMap?

    public init() { signalSafeMap = nil }

    /// A registry that publishes what it holds to `map` after every
    /// registration and unregistration, for lookups in signal handlers.
    public init(publishingTo map: SignalSafeCodeMap) {
        signalSafeMap = map
        map.publish(snapshot)
    }

    /// Modules sorted by code base; their ranges never overlap.
    public var modules: [CodeModule] { snapshot.records.map(\.module) }

    /// Adds a module. Fails if its code overlaps a registered module's or its
    /// own tables are inconsistent.
    public mutating func register(_ module: CodeModule) throws(CodeRegistryError) {
        try module.validate()
        var records = snapshot.records
        let index = records.firstIndex { $0.module.codeRange.lowerBound > module.codeRange.lowerBound } ?? records.count
        if index > 0, records[index - 1].module.codeRange.overlaps(module.codeRange) {
            throw .overlappingModules(new: module.codeRange, existing: records[index - 1].module.codeRange)
        }
        if index < records.count, records[index].module.codeRange.overlaps(module.codeRange) {
            throw .overlappingModules(new: module.codeRange, existing: records[index].module.codeRange)
        }
        records.insert(CodeModuleRecord(module), at: index)
        snapshot = RegistrySnapshot(records: records)
    }

    /// Removes the module whose code starts at `codeBase`; returns whether
    /// there was one.
    @discardableResult
    public mutating func unregister(codeBase: UInt) -> Bool {
        guard let index = snapshot.records.firstIndex(where: { $0.module.codeRange.lowerBound == codeBase }) else { return false }
        var records = snapshot.records
        records.remove(at: index)
        snapshot = RegistrySnapshot(records: records)
        return true
    }

    /// The index in `modules` of the module whose code contains `address`.
    @inline(__always)
    public func moduleIndex(containing address: UInt) -> Int? {
        let index = snapshot.ranges.index(containing: address)
        return index >= 0 ? index : nil
    }

    /// The module whose code contains `address`.
    public func module(containing address: UInt) -> CodeModule? {
        moduleIndex(containing: address).map { snapshot.records[$0].module }
    }

    /// What the code at `address` is, or nil outside every registered
    /// module (and in a module's padding between functions and stubs).
    /// Looks the address up as is: pass `ra - 1` for a return address.
    public func kind(at address: UInt) -> CodeKind? {
        guard let index = moduleIndex(containing: address) else { return nil }
        return snapshot.records[index].kind(atCodeOffset: address - snapshot.ranges.starts[index])
    }

    /// The absolute address range of the function or stub that contains
    /// `address` (an unwinder's "procedure"), if any.
    public func codeRange(containing address: UInt) -> Range<UInt>? {
        guard let index = moduleIndex(containing: address) else { return nil }
        let record = snapshot.records[index]
        let base = snapshot.ranges.starts[index]
        let (function, stub, _) = record.locate(address - base)
        let range = function >= 0 ? record.module.functions[Int(function)].codeRange
            : stub >= 0 ? record.module.stubs[Int(stub)].codeRange : nil
        return range.map { (base + $0.lowerBound)..<(base + $0.upperBound) }
    }

    /// What the frame's code is: module, function and offsets. A return
    /// address is looked up at `ra - 1`, a trap pc as is.
    public func symbol(for address: FrameAddress) -> FrameSymbol? {
        let pc = address.adjustedProgramCounter
        guard let index = moduleIndex(containing: pc) else { return nil }
        let located = snapshot.records[index].locate(pc - snapshot.ranges.starts[index])
        return FrameSymbol(record: snapshot.records[index], function: located.function, stub: located.stub,
                           wasmOffset: located.wasmOffset)
    }

    /// `frame` with what the registry knows of its code.
    public func symbolicate(_ frame: Frame) -> SymbolicatedFrame {
        SymbolicatedFrame(frame: frame, symbol: symbol(for: frame.address))
    }

    /// Every frame of `backtrace`, symbolicated.
    public func symbolicate(_ backtrace: Backtrace) -> SymbolicatedBacktrace {
        backtrace.frames.withUnsafeBufferPointer {
            symbolicate($0, error: backtrace.error, truncation: backtrace.truncation)
        }
    }

    /// `frames`, symbolicated: each frame resolved to indices in the
    /// current snapshot, which the backtrace keeps (one reference).
    public func symbolicate(_ frames: UnsafeBufferPointer<Frame>, error: UnwindError? = nil,
                            truncation: Truncation? = nil) -> SymbolicatedBacktrace
    {
        let snapshot = self.snapshot
        var resolved: [ResolvedFrame] = []
        resolved.reserveCapacity(frames.count)
        // Deep stacks repeat functions (recursion, loops of calls): when a
        // pc lies in the function the previous frame was in, only that
        // function's address map is searched.
        var lastModule = -1, lastFunction = -1
        var lastRecord: Unmanaged<CodeModuleRecord>?
        for frame in frames {
            let pc = frame.address.adjustedProgramCounter
            if let record = lastRecord, lastFunction >= 0 {
                let offset = pc &- snapshot.ranges.starts[lastModule]
                // SAFETY: `snapshot` (held here) keeps the record.
                let hit = record._withUnsafeGuaranteedRef { record -> UInt32? in
                    record.contains(offset, inFunction: lastFunction) ? record.wasmOffset(offset, inFunction: lastFunction) : nil
                }
                if let wasmOffset = hit {
                    resolved.append(ResolvedFrame(frame: frame, module: Int32(lastModule), function: Int32(lastFunction),
                                                  stub: -1, wasmOffset: wasmOffset))
                    continue
                }
            }
            lastFunction = -1
            let index = snapshot.ranges.index(containing: pc)
            guard index >= 0 else {
                resolved.append(ResolvedFrame(frame: frame, module: -1, function: -1, stub: -1, wasmOffset: AddressMapEntry.noWasmOffset))
                continue
            }
            let record = snapshot.unretained[index]
            // SAFETY: `snapshot` (held here) keeps the record.
            let located = record._withUnsafeGuaranteedRef { $0.locate(pc &- snapshot.ranges.starts[index]) }
            if located.function >= 0 {
                lastModule = index
                lastFunction = Int(located.function)
                lastRecord = record
            }
            resolved.append(ResolvedFrame(frame: frame, module: Int32(index), function: located.function,
                                          stub: located.stub, wasmOffset: located.wasmOffset))
        }
        return SymbolicatedBacktrace(snapshot: snapshot, resolved: resolved, error: error, truncation: truncation)
    }
}

/// The modules of a registry at one moment: immutable, so a backtrace
/// resolved against it can keep it (one reference) and read names from it
/// later, however the registry changes.
public final class RegistrySnapshot: @unchecked Sendable {
    /// The module records, sorted by code base.
    public let records: [CodeModuleRecord]
    /// `records`, unretained (`records` keeps them alive): the hot lookups
    /// use a record without counting a reference.
    // SAFETY: each entry is a record of `records`, which this immutable
    // snapshot holds for its whole life; whoever reads an entry holds the
    // snapshot (a registry or a backtrace), so the record outlives the use.
    let unretained: [Unmanaged<CodeModuleRecord>]
    /// The records' code ranges, for the one search.
    let ranges: SortedRanges
    private let starts: FlatTable<UInt>
    private let ends: FlatTable<UInt>

    /// `records` must be sorted by code base for address lookups; unsorted
    /// records (a backtrace built from symbols) are only read by index, and
    /// no address is found in them.
    init(records: [CodeModuleRecord], sorted: Bool = true) {
        self.records = records
        unretained = records.map { Unmanaged.passUnretained($0) }
        starts = FlatTable(records.map(\.module.codeRange.lowerBound))
        ends = FlatTable(records.map(\.module.codeRange.upperBound))
        ranges = SortedRanges(starts: starts.base, ends: ends.base, count: sorted ? records.count : 0)
    }
}
