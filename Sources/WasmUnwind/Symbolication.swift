/// A frame resolved against a registry snapshot: the frame and where its
/// code is, as indices (no reference per frame). `module` is -1 for an
/// address in no registered module.
@usableFromInline
struct ResolvedFrame: Sendable {
    var frame: Frame
    var module: Int32
    var function: Int32
    var stub: Int32
    var wasmOffset: UInt32
}

/// What a frame's code is: a module's function or stub, and the wasm
/// offset. It refers to the registry's record of the module rather than
/// copying its tables; names are read when asked for.
public struct FrameSymbol: Hashable, Sendable {
    let record: CodeModuleRecord
    /// Index in the module's functions, or -1.
    let functionSlot: Int32
    /// Index in the module's stubs, or -1.
    let stubSlot: Int32
    /// `moduleOffset`, or `AddressMapEntry.noWasmOffset` for none.
    var wasmOffset: UInt32

    /// Offset of the wasm instruction in the module binary.
    public var moduleOffset: UInt32? {
        get { wasmOffset == AddressMapEntry.noWasmOffset ? nil : wasmOffset }
        set { wasmOffset = newValue ?? AddressMapEntry.noWasmOffset }
    }

    init(record: CodeModuleRecord, function: Int32, stub: Int32, wasmOffset: UInt32) {
        self.record = record
        self.functionSlot = function
        self.stubSlot = stub
        self.wasmOffset = wasmOffset
    }

    /// A symbol outside any registry (for tests and synthetic traces).
    public init(moduleName: String?, function: CodeFunction?, stub: CodeStub? = nil, moduleOffset: UInt32?) {
        let range = function?.codeRange ?? stub?.codeRange ?? 0..<0
        record = CodeModuleRecord(CodeModule(name: moduleName, codeRange: range,
                                             functions: function.map { [$0] } ?? [], stubs: stub.map { [$0] } ?? []))
        functionSlot = function == nil ? -1 : 0
        stubSlot = stub == nil ? -1 : 0
        wasmOffset = moduleOffset ?? AddressMapEntry.noWasmOffset
    }

    /// The module's name, if it has one.
    public var moduleName: String? { record.moduleName }
    /// The function, if the address lies in one.
    public var function: CodeFunction? { functionSlot >= 0 ? record.module.functions[Int(functionSlot)] : nil }
    /// The trampoline or stub, if the address lies in one.
    public var stub: CodeStub? { stubSlot >= 0 ? record.module.stubs[Int(stubSlot)] : nil }

    /// The code's name as a backtrace prints it: `module!function` (a Rust
    /// or C++ name demangled, `<unknown>` for a module without a name,
    /// `<wasm function N>` for a function without one),
    /// `module!<entry trampoline ...>`, or `module!<no code>` for padding.
    public var printedName: String {
        hasCode ? String(decoding: record.displayName(function: functionSlot, stub: stubSlot), as: UTF8.self)
            : "\(moduleName ?? "<unknown>")!<no code>"
    }

    /// Whether the address lies in a function or a stub (not padding).
    var hasCode: Bool { functionSlot >= 0 || stubSlot >= 0 }

    /// What the code is: nil for an address in the module that is in no
    /// function or stub (padding).
    public var kind: CodeKind? { functionSlot >= 0 ? .wasmFunction : stub?.kind }

    /// The function's index, if the address lies in one.
    public var functionIndex: UInt32? { functionSlot >= 0 ? record.functionIndex(slot: functionSlot) : nil }
    /// The function's name, if it has one.
    public var functionName: String? { functionSlot >= 0 ? record.functionName(slot: functionSlot) : nil }
    /// Offset of the instruction from the function's body start.
    public var functionOffset: UInt32? {
        guard functionSlot >= 0, let moduleOffset else { return nil }
        let bodyOffset = record.module.functions[Int(functionSlot)].bodyOffset
        return moduleOffset >= bodyOffset ? moduleOffset - bodyOffset : nil
    }

    /// Symbols are equal when they name the same code: module name,
    /// function, stub and offset.
    public static func == (a: FrameSymbol, b: FrameSymbol) -> Bool {
        a.moduleOffset == b.moduleOffset && a.functionIndex == b.functionIndex && a.moduleName == b.moduleName
            && a.function == b.function && a.stub == b.stub
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(moduleName)
        hasher.combine(functionIndex)
        hasher.combine(moduleOffset)
        hasher.combine(stub)
    }
}

/// A frame and what its code is (nil when the address is in no registered
/// module).
public struct SymbolicatedFrame: Hashable, Sendable {
    public var frame: Frame
    public var symbol: FrameSymbol?

    public init(frame: Frame, symbol: FrameSymbol?) {
        self.frame = frame
        self.symbol = symbol
    }
}

/// A backtrace whose frames have been looked up in a `CodeRegistry`.
///
/// It keeps the registry snapshot it was resolved against (one reference)
/// and each frame as indices into it; `frames` gives each as a
/// `SymbolicatedFrame` when it is read.
public struct SymbolicatedBacktrace: Hashable, Sendable {
    let snapshot: RegistrySnapshot
    var resolved: [ResolvedFrame]
    /// Why the walk stopped early, if it did (see `Backtrace.error`).
    public var error: UnwindError?
    /// Why older frames were left out, if they were (see `Backtrace.truncation`).
    public var truncation: Truncation?

    init(snapshot: RegistrySnapshot, resolved: [ResolvedFrame], error: UnwindError?, truncation: Truncation?) {
        self.snapshot = snapshot
        self.resolved = resolved
        self.error = error
        self.truncation = truncation
    }

    /// A backtrace of frames symbolicated elsewhere (tests, synthetic
    /// traces, frames read from a capture).
    public init(frames: [SymbolicatedFrame], error: UnwindError? = nil, truncation: Truncation? = nil) {
        var records: [CodeModuleRecord] = []
        var indices: [ObjectIdentifier: Int] = [:]
        var resolved: [ResolvedFrame] = []
        for frame in frames {
            guard let symbol = frame.symbol else {
                resolved.append(ResolvedFrame(frame: frame.frame, module: -1, function: -1, stub: -1,
                                              wasmOffset: AddressMapEntry.noWasmOffset))
                continue
            }
            let index = indices[ObjectIdentifier(symbol.record)] ?? {
                records.append(symbol.record)
                indices[ObjectIdentifier(symbol.record)] = records.count - 1
                return records.count - 1
            }()
            resolved.append(ResolvedFrame(frame: frame.frame, module: Int32(index), function: symbol.functionSlot,
                                          stub: symbol.stubSlot, wasmOffset: symbol.wasmOffset))
        }
        // The records in order of appearance, not of address: this
        // snapshot is only ever read by index.
        self.init(snapshot: RegistrySnapshot(unsorted: records), resolved: resolved, error: error, truncation: truncation)
    }

    /// The frames, newest first.
    public var frames: Frames { Frames(snapshot: snapshot, resolved: resolved) }

    /// The frames as `SymbolicatedFrame`s, made as they are read.
    public struct Frames: RandomAccessCollection, Sendable {
        let snapshot: RegistrySnapshot
        let resolved: [ResolvedFrame]

        public var startIndex: Int { 0 }
        public var endIndex: Int { resolved.count }

        public subscript(index: Int) -> SymbolicatedFrame {
            let entry = resolved[index]
            guard entry.module >= 0 else { return SymbolicatedFrame(frame: entry.frame, symbol: nil) }
            return SymbolicatedFrame(frame: entry.frame, symbol: FrameSymbol(
                record: snapshot.records[Int(entry.module)], function: entry.function, stub: entry.stub,
                wasmOffset: entry.wasmOffset))
        }
    }

    /// Whether older frames were left out.
    public var isTruncated: Bool { truncation != nil }

    /// Keeps the newest `limit` frames and records how many were left out.
    public func prefix(_ limit: Int) -> SymbolicatedBacktrace {
        guard resolved.count > limit else { return self }
        return SymbolicatedBacktrace(snapshot: snapshot, resolved: Array(resolved.prefix(limit)), error: nil,
                                     truncation: .requested(limit: limit, omitted: resolved.count - limit))
    }

    public static func == (a: SymbolicatedBacktrace, b: SymbolicatedBacktrace) -> Bool {
        a.error == b.error && a.truncation == b.truncation && a.frames.elementsEqual(b.frames)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(resolved.count)
        for frame in frames { hasher.combine(frame) }
    }
}

extension RegistrySnapshot {
    /// Records read only by index (a backtrace built from symbols).
    convenience init(unsorted records: [CodeModuleRecord]) {
        self.init(records: records, sorted: false)
    }
}
