#if canImport(Glibc)
import Glibc
#endif

/// Maps code addresses to wasm modules, functions and module offsets, and
/// says what every piece of JIT code is.
///
/// A module registers its code range; per function, the function's native
/// range and a sorted map from native offset to wasm module offset (one
/// entry where the native code of each wasm instruction starts, plus one for
/// each out-of-line trap stub); and its trampolines and stubs with their
/// `CodeKind`. Lookups are binary searches: module by address, function (or
/// stub) by offset, map entry by offset. This is the one answer to "what
/// code is at this address" (`kind(at:)`, `symbol(for:)`), as the Swift
/// runtime's unwinder asks one image map.
public struct CodeRegistry: Sendable {
    /// The registered modules, sorted by code base, each in a record that
    /// symbols share instead of copying its tables.
    public private(set) var records: [CodeModuleRecord] = []
    /// `records[i].module.codeRange`, for the binary searches.
    private var ranges: [Range<UInt>] = []
    /// `records`, unretained (`records` keeps them alive): the hot lookups
    /// use the record without counting a reference.
    private var unretained: [Unmanaged<CodeModuleRecord>] = []

    public init() {}

    /// Modules sorted by code base; their ranges never overlap.
    public var modules: [CodeModule] { records.map(\.module) }

    /// Adds a module. Fails if its code overlaps a registered module's or its
    /// own tables are inconsistent.
    public mutating func register(_ module: CodeModule) throws(CodeRegistryError) {
        try module.validate()
        let index = insertionIndex(for: module.codeRange.lowerBound)
        if index > 0, ranges[index - 1].overlaps(module.codeRange) {
            throw .overlappingModules(new: module.codeRange, existing: ranges[index - 1])
        }
        if index < ranges.count, ranges[index].overlaps(module.codeRange) {
            throw .overlappingModules(new: module.codeRange, existing: ranges[index])
        }
        let record = CodeModuleRecord(module)
        records.insert(record, at: index)
        ranges.insert(module.codeRange, at: index)
        unretained.insert(Unmanaged.passUnretained(record), at: index)
    }

    /// Removes the module whose code starts at `codeBase`; returns whether
    /// there was one.
    @discardableResult
    public mutating func unregister(codeBase: UInt) -> Bool {
        let index = insertionIndex(for: codeBase)
        guard index < ranges.count, ranges[index].lowerBound == codeBase else { return false }
        records.remove(at: index)
        ranges.remove(at: index)
        unretained.remove(at: index)
        return true
    }

    /// Module `index`'s record, unretained (for hot loops).
    @inline(__always)
    func unretainedRecord(_ index: Int) -> Unmanaged<CodeModuleRecord> { unretained[index] }

    /// The index in `modules` of the module whose code contains `address`.
    @inline(__always)
    public func moduleIndex(containing address: UInt) -> Int? {
        ranges.withUnsafeBufferPointer { ranges in
            var low = 0, high = ranges.count
            while low < high {
                let mid = (low &+ high) >> 1
                if ranges[mid].lowerBound <= address { low = mid &+ 1 } else { high = mid }
            }
            return low > 0 && address < ranges[low &- 1].upperBound ? low &- 1 : nil
        }
    }

    /// The module whose code contains `address`.
    public func module(containing address: UInt) -> CodeModule? {
        moduleIndex(containing: address).map { records[$0].module }
    }

    /// What the code at `address` is, or nil outside every registered
    /// module (and in a module's padding between functions and stubs).
    /// Looks the address up as is: pass `ra - 1` for a return address.
    public func kind(at address: UInt) -> CodeKind? {
        guard let index = moduleIndex(containing: address) else { return nil }
        return records[index].module.kind(atCodeOffset: address - ranges[index].lowerBound)
    }

    /// The absolute address range of the function or stub that contains
    /// `address` (an unwinder's "procedure"), if any.
    public func codeRange(containing address: UInt) -> Range<UInt>? {
        guard let index = moduleIndex(containing: address) else { return nil }
        let module = records[index].module
        let base = module.codeRange.lowerBound
        let offset = address - base
        if let function = module.functionIndex(containing: offset) {
            let range = module.functions[function].codeRange
            return (base + range.lowerBound)..<(base + range.upperBound)
        }
        if let stub = module.stubIndex(containing: offset) {
            let range = module.stubs[stub].codeRange
            return (base + range.lowerBound)..<(base + range.upperBound)
        }
        return nil
    }

    /// What the frame's code is: module, function and offsets. A return
    /// address is looked up at `ra - 1`, a trap pc as is. The symbol shares
    /// the module's record: nothing is copied per frame.
    public func symbol(for address: FrameAddress) -> FrameSymbol? {
        let pc = address.adjustedProgramCounter
        guard let index = moduleIndex(containing: pc) else { return nil }
        return records[index].symbol(atCodeOffset: pc - ranges[index].lowerBound)
    }

    /// Where an address's code is, as positions in the registry's tables:
    /// the form for hot paths that need no names (profilers).
    public struct Resolution: Hashable, Sendable {
        /// Index in `modules`.
        public var module: Int
        /// Index in that module's `functions`, if the address is in one.
        public var function: Int?
        /// The wasm module offset, if the function's address map has one.
        public var moduleOffset: UInt32?
    }

    /// `address` looked up (a return address at `ra - 1`) without copies.
    public func resolve(_ address: FrameAddress) -> Resolution? {
        let pc = address.adjustedProgramCounter
        guard let moduleIndex = moduleIndex(containing: pc) else { return nil }
        let offset = pc - ranges[moduleIndex].lowerBound
        let (function, moduleOffset) = unretained[moduleIndex]._withUnsafeGuaranteedRef { $0.locate(offset) }
        return Resolution(module: moduleIndex, function: function, moduleOffset: moduleOffset)
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

    /// `frames`, symbolicated: one array, a record reference per frame.
    public func symbolicate(_ frames: UnsafeBufferPointer<Frame>, error: UnwindError? = nil,
                            truncation: Truncation? = nil) -> SymbolicatedBacktrace
    {
        var symbolicated: [SymbolicatedFrame] = []
        symbolicated.reserveCapacity(frames.count)
        // Deep stacks repeat functions (recursion, loops of calls): when a
        // pc lies in the function the previous frame was in, only that
        // function's address map is searched.
        var lastModule = -1, lastFunction = -1
        for frame in frames {
            let pc = frame.address.adjustedProgramCounter
            if lastFunction >= 0 {
                let record = records[lastModule]
                let offset = pc &- ranges[lastModule].lowerBound
                if record.contains(offset, inFunction: lastFunction) {
                    symbolicated.append(SymbolicatedFrame(frame: frame, symbol: FrameSymbol(
                        record: record, function: Int32(lastFunction), stub: -1,
                        moduleOffset: record.moduleOffset(offset, inFunction: lastFunction))))
                    continue
                }
            }
            lastFunction = -1
            guard let index = moduleIndex(containing: pc) else {
                symbolicated.append(SymbolicatedFrame(frame: frame, symbol: nil))
                continue
            }
            let symbol = records[index].symbol(atCodeOffset: pc - ranges[index].lowerBound)
            if symbol.functionSlot >= 0 {
                lastModule = index
                lastFunction = Int(symbol.functionSlot)
            }
            symbolicated.append(SymbolicatedFrame(frame: frame, symbol: symbol))
        }
        return SymbolicatedBacktrace(frames: symbolicated, error: error, truncation: truncation)
    }

    /// First index whose module starts at or above `address`.
    private func insertionIndex(for address: UInt) -> Int {
        ranges.prefixCount { $0.lowerBound < address }
    }
}

/// A registered module, shared by every symbol that refers to its code,
/// with its functions' ranges and address maps laid out flat for lookups
/// that touch no reference counts.
public final class CodeModuleRecord: @unchecked Sendable {
    public let module: CodeModule
    /// Per function: its code range start and end (offsets from the code
    /// base), and where its address map starts in `native`/`wasm` (one more
    /// entry for the end). Plain memory, immutable after init: lookups
    /// read it with no reference counting and no bounds checks.
    private let functionCount: Int
    private let starts: UnsafeMutablePointer<UInt>
    private let ends: UnsafeMutablePointer<UInt>
    private let mapStarts: UnsafeMutablePointer<Int>
    private let native: UnsafeMutablePointer<UInt32>
    private let wasm: UnsafeMutablePointer<UInt32>
    /// Names, interned when the module is registered: the module's name, and
    /// per function its index and name, read by a frame with no copy of the
    /// function's record.
    let moduleName: String?
    private let functionIndices: UnsafeMutablePointer<UInt32>
    private let functionNames: UnsafeMutablePointer<String?>
    /// What a frame prints after its offset, as UTF-8, per function then
    /// per stub (`module!function`, demangled; `module!<entry trampoline>`):
    /// bytes `displayStarts[i]..<displayStarts[i + 1]` of `displayBytes`.
    private let displayStarts: UnsafeMutablePointer<Int>
    private let displayBytes: UnsafeMutableBufferPointer<UInt8>
    /// Per stack map: its frame size and its innermost handler scope (-1:
    /// none); per scope: where its clauses start in `handlers` (one more
    /// entry for the end) and its parent (-1: none; always a lower index)
    /// — the handler search's tables, in plain memory like the ones above.
    private let mapCount: Int
    private let frameSizes: UnsafeMutablePointer<UInt32>
    private let mapScopes: UnsafeMutablePointer<Int32>
    private let scopeCount: Int
    private let scopeStarts: UnsafeMutablePointer<Int>
    private let scopeParents: UnsafeMutablePointer<Int32>
    private let handlers: UnsafeMutablePointer<ExceptionHandler>

    init(_ module: CodeModule) {
        self.module = module
        moduleName = module.name
        functionCount = module.functions.count
        functionIndices = .allocate(capacity: max(1, functionCount))
        functionNames = .allocate(capacity: max(1, functionCount))
        for (slot, function) in module.functions.enumerated() {
            functionIndices[slot] = function.index
            (functionNames + slot).initialize(to: function.name)
        }
        let names = module.functions.map { Self.displayName(module: module.name, function: $0) }
            + module.stubs.map { Self.displayName(module: module.name, stub: $0) }
        displayStarts = .allocate(capacity: names.count + 1)
        displayBytes = .allocate(capacity: max(1, names.reduce(0) { $0 + $1.utf8.count }))
        var byte = 0
        for (slot, name) in names.enumerated() {
            displayStarts[slot] = byte
            for unit in name.utf8 {
                displayBytes[byte] = unit
                byte += 1
            }
        }
        displayStarts[names.count] = byte
        let entries = module.functions.reduce(0) { $0 + $1.addressMap.count }
        starts = .allocate(capacity: max(1, functionCount))
        ends = .allocate(capacity: max(1, functionCount))
        mapStarts = .allocate(capacity: functionCount + 1)
        native = .allocate(capacity: max(1, entries))
        wasm = .allocate(capacity: max(1, entries))
        var position = 0
        for (index, function) in module.functions.enumerated() {
            starts[index] = function.codeRange.lowerBound
            ends[index] = function.codeRange.upperBound
            mapStarts[index] = position
            for entry in function.addressMap {
                native[position] = entry.nativeOffset
                wasm[position] = entry.wasmOffset
                position += 1
            }
        }
        mapStarts[functionCount] = position
        let maps = module.stackMaps.maps
        mapCount = maps.count
        frameSizes = .allocate(capacity: max(1, mapCount))
        mapScopes = .allocate(capacity: max(1, mapCount))
        for (index, map) in maps.enumerated() {
            frameSizes[index] = map.frameSize
            mapScopes[index] = map.handlerScope.map { Int32($0) } ?? -1
        }
        let scopes = module.stackMaps.handlerScopes
        scopeCount = scopes.count
        scopeStarts = .allocate(capacity: scopeCount + 1)
        scopeParents = .allocate(capacity: max(1, scopeCount))
        handlers = .allocate(capacity: max(1, scopes.reduce(0) { $0 + $1.clauses.count }))
        var handler = 0
        for (index, scope) in scopes.enumerated() {
            scopeStarts[index] = handler
            scopeParents[index] = scope.parent.map { Int32($0) } ?? -1
            for clause in scope.clauses {
                (handlers + handler).initialize(to: clause)
                handler += 1
            }
        }
        scopeStarts[scopeCount] = handler
    }

    deinit {
        displayStarts.deallocate()
        displayBytes.deallocate()
        functionIndices.deallocate()
        functionNames.deinitialize(count: functionCount)
        functionNames.deallocate()
        starts.deallocate()
        ends.deallocate()
        mapStarts.deallocate()
        native.deallocate()
        wasm.deallocate()
        frameSizes.deallocate()
        mapScopes.deallocate()
        scopeStarts.deallocate()
        scopeParents.deallocate()
        handlers.deallocate()
    }

    /// What a call site's handlers say of an exception.
    enum HandlerLookup {
        /// No call site returns there.
        case noCallSite
        /// None of its handlers takes it.
        case notTaken
        /// This handler takes it; the function's frame size.
        case taken(ExceptionHandler, frameSize: UInt32)
    }

    /// The first handler of the call site returning to code offset
    /// `returnOffset` that `takes` accepts: the clauses of its scope, then
    /// of each enclosing one (parents have lower indices, so the chain
    /// ends).
    @inline(__always)
    func firstHandler(returnOffset: UInt32, takes: (ExceptionHandler) -> Bool) -> HandlerLookup {
        guard let map = module.stackMaps.mapIndex(atReturnOffset: returnOffset) else { return .noCallSite }
        var scope = Int(mapScopes[map])
        while scope >= 0 {
            var index = scopeStarts[scope]
            let end = scopeStarts[scope &+ 1]
            while index < end {
                if takes(handlers[index]) { return .taken(handlers[index], frameSize: frameSizes[map]) }
                index &+= 1
            }
            scope = Int(scopeParents[scope])
        }
        return .notTaken
    }

    /// The function containing `offset` (from the code base), or -1.
    @inline(__always)
    func functionSlot(containing offset: UInt) -> Int {
        var low = 0, high = functionCount
        while low < high {
            let mid = (low &+ high) >> 1
            if starts[mid] <= offset { low = mid &+ 1 } else { high = mid }
        }
        let index = low &- 1
        return index >= 0 && offset < ends[index] ? index : -1
    }

    @inline(__always)
    func contains(_ offset: UInt, inFunction slot: Int) -> Bool {
        offset >= starts[slot] && offset < ends[slot]
    }

    /// The wasm offset of the code at `offset` in function `slot`.
    @inline(__always)
    func moduleOffset(_ offset: UInt, inFunction slot: Int) -> UInt32? {
        let nativeOffset = offset &- starts[slot]
        var low = mapStarts[slot], high = mapStarts[slot &+ 1]
        let first = low
        while low < high {
            let mid = (low &+ high) >> 1
            if UInt(native[mid]) <= nativeOffset { low = mid &+ 1 } else { high = mid }
        }
        guard low > first else { return nil }
        let value = wasm[low &- 1]
        return value == AddressMapEntry.noWasmOffset ? nil : value
    }

    /// A function's printed name: `module!function`, `<unknown>` for a
    /// module without a name, `<wasm function N>` for a function without
    /// one, a Rust or C++ name demangled.
    static func displayName(module: String?, function: CodeFunction) -> String {
        (module ?? "<unknown>") + "!" + (function.name.map(Demangling.demangle) ?? "<wasm function \(function.index)>")
    }

    /// A stub's printed name: `module!<entry trampoline>`.
    static func displayName(module: String?, stub: CodeStub) -> String {
        (module ?? "<unknown>") + "!<" + (stub.name ?? stub.kind.description) + ">"
    }

    /// The printed name of function `function` or else stub `stub` (slots),
    /// UTF-8, valid while the record lives.
    @inline(__always)
    func displayName(function: Int32, stub: Int32) -> UnsafeBufferPointer<UInt8> {
        let slot = function >= 0 ? Int(function) : functionCount + Int(stub)
        let start = displayStarts[slot]
        return UnsafeBufferPointer(rebasing: displayBytes[start..<displayStarts[slot + 1]])
    }

    @inline(__always)
    func functionIndex(slot: Int32) -> UInt32 { functionIndices[Int(slot)] }

    @inline(__always)
    func functionName(slot: Int32) -> String? { functionNames[Int(slot)] }

    /// The function containing `offset` and the wasm offset of that code.
    func locate(_ offset: UInt) -> (function: Int?, moduleOffset: UInt32?) {
        let slot = functionSlot(containing: offset)
        return slot < 0 ? (nil, nil) : (slot, moduleOffset(offset, inFunction: slot))
    }

    func symbol(atCodeOffset offset: UInt) -> FrameSymbol {
        let slot = functionSlot(containing: offset)
        if slot >= 0 {
            return FrameSymbol(record: self, function: Int32(slot), stub: -1,
                               moduleOffset: moduleOffset(offset, inFunction: slot))
        }
        let stub = module.stubIndex(containing: offset).map(Int32.init) ?? -1
        return FrameSymbol(record: self, function: -1, stub: stub, moduleOffset: nil)
    }
}

/// One module's code as the registry sees it.
public struct CodeModule: Hashable, Sendable {
    /// The module's name (the name section's module name), if it has one.
    public var name: String?
    /// Absolute addresses of the module's code.
    public var codeRange: Range<UInt>
    /// The wasm functions compiled into that code, sorted by start offset.
    public var functions: [CodeFunction]
    /// The module's other code — trampolines and stubs — sorted by start
    /// offset, overlapping no function.
    public var stubs: [CodeStub]
    /// The stack maps of the module's call sites.
    public var stackMaps: StackMapTable

    public init(name: String?, codeRange: Range<UInt>, functions: [CodeFunction], stubs: [CodeStub] = [],
                stackMaps: StackMapTable = .empty) {
        self.name = name
        self.codeRange = codeRange
        self.functions = functions
        self.stubs = stubs
        self.stackMaps = stackMaps
    }

    /// The index in `functions` of the function containing `offset`.
    public func functionIndex(containing offset: UInt) -> Int? {
        let index = functions.prefixCount { $0.codeRange.lowerBound <= offset } - 1
        return index >= 0 && functions[index].codeRange.contains(offset) ? index : nil
    }

    /// The index in `stubs` of the stub containing `offset`.
    public func stubIndex(containing offset: UInt) -> Int? {
        let index = stubs.prefixCount { $0.codeRange.lowerBound <= offset } - 1
        return index >= 0 && stubs[index].codeRange.contains(offset) ? index : nil
    }

    /// What the code at `offset` (from the code base) is.
    public func kind(atCodeOffset offset: UInt) -> CodeKind? {
        if functionIndex(containing: offset) != nil { return .wasmFunction }
        return stubIndex(containing: offset).map { stubs[$0].kind }
    }

    /// The function or stub containing `offset` (from the code base) and,
    /// in a function, where in the wasm module that code came from.
    public func symbol(atCodeOffset offset: UInt) -> FrameSymbol? {
        CodeModuleRecord(self).symbol(atCodeOffset: offset)
    }

    func validate() throws(CodeRegistryError) {
        let size = UInt(codeRange.count)
        var previousEnd: UInt = 0
        for function in functions {
            guard function.codeRange.upperBound <= size else {
                throw .functionOutsideModule(functionIndex: function.index, range: function.codeRange, moduleSize: size)
            }
            guard function.codeRange.lowerBound >= previousEnd else {
                throw .overlappingFunctions(functionIndex: function.index, range: function.codeRange)
            }
            previousEnd = function.codeRange.upperBound
            var previousOffset: UInt32? = nil
            for entry in function.addressMap {
                if let previousOffset, entry.nativeOffset <= previousOffset {
                    throw .unsortedAddressMap(functionIndex: function.index, nativeOffset: entry.nativeOffset)
                }
                previousOffset = entry.nativeOffset
            }
        }
        // Stubs are sorted and disjoint, and no stub overlaps a function:
        // walk both sorted lists together.
        previousEnd = 0
        var nextFunction = 0
        for stub in stubs {
            guard stub.codeRange.upperBound <= size, stub.codeRange.lowerBound >= previousEnd else {
                throw .misplacedStub(kind: stub.kind, range: stub.codeRange, moduleSize: size)
            }
            while nextFunction < functions.count, functions[nextFunction].codeRange.upperBound <= stub.codeRange.lowerBound {
                nextFunction += 1
            }
            if nextFunction < functions.count, functions[nextFunction].codeRange.overlaps(stub.codeRange) {
                throw .misplacedStub(kind: stub.kind, range: stub.codeRange, moduleSize: size)
            }
            previousEnd = stub.codeRange.upperBound
        }
    }
}

/// One compiled wasm function.
public struct CodeFunction: Hashable, Sendable {
    /// The function's index in the module's function index space (imports
    /// first).
    public var index: UInt32
    /// The function's name from the name section, if any.
    public var name: String?
    /// The function's native code, as offsets from the module's code base.
    public var codeRange: Range<UInt>
    /// Module offset of the function's body (its entry in the code
    /// section); function offsets are relative to it.
    public var bodyOffset: UInt32
    /// Native offset (from the function start) -> wasm module offset,
    /// sorted by native offset.
    public var addressMap: [AddressMapEntry]

    public init(index: UInt32, name: String?, codeRange: Range<UInt>, bodyOffset: UInt32,
                addressMap: [AddressMapEntry]) {
        self.index = index
        self.name = name
        self.codeRange = codeRange
        self.bodyOffset = bodyOffset
        self.addressMap = addressMap
    }

    /// The wasm offset of the last map entry at or before `offset`.
    public func moduleOffset(atFunctionOffset offset: UInt) -> UInt32? {
        let index = addressMap.prefixCount { UInt($0.nativeOffset) <= offset } - 1
        return index >= 0 ? addressMap[index].moduleOffset : nil
    }
}

/// Where a run of native code came from in the wasm module.
public struct AddressMapEntry: Hashable, Sendable {
    /// Offset from the function's native start.
    public var nativeOffset: UInt32
    /// Offset of the wasm instruction in the module binary, or
    /// `noWasmOffset` for code that runs no wasm instruction (a prologue).
    public var wasmOffset: UInt32

    public init(nativeOffset: UInt32, wasmOffset: UInt32) {
        self.nativeOffset = nativeOffset
        self.wasmOffset = wasmOffset
    }

    /// The `wasmOffset` of code that belongs to no wasm instruction: a
    /// function's prologue, where a stack-exhaustion trap happens. Such a
    /// frame is printed without an offset, as Wasmtime prints it.
    public static let noWasmOffset = UInt32.max

    /// The module offset, or nil for code of no wasm instruction.
    @inlinable
    public var moduleOffset: UInt32? { wasmOffset == Self.noWasmOffset ? nil : wasmOffset }
}

/// Why a module could not be registered.
public enum CodeRegistryError: Error, Hashable, Sendable, CustomStringConvertible {
    case overlappingModules(new: Range<UInt>, existing: Range<UInt>)
    case functionOutsideModule(functionIndex: UInt32, range: Range<UInt>, moduleSize: UInt)
    case overlappingFunctions(functionIndex: UInt32, range: Range<UInt>)
    case unsortedAddressMap(functionIndex: UInt32, nativeOffset: UInt32)
    case misplacedStub(kind: CodeKind, range: Range<UInt>, moduleSize: UInt)

    public var description: String {
        switch self {
        case .overlappingModules(let new, let existing):
            return "code \(hex(new.lowerBound))..<\(hex(new.upperBound)) overlaps a registered module at \(hex(existing.lowerBound))..<\(hex(existing.upperBound))"
        case .functionOutsideModule(let index, let range, let size):
            return "function \(index) at offsets \(hex(range.lowerBound))..<\(hex(range.upperBound)) lies outside the module's \(size) bytes of code"
        case .overlappingFunctions(let index, let range):
            return "function \(index) at offsets \(hex(range.lowerBound))..<\(hex(range.upperBound)) overlaps the previous function (functions must be sorted and disjoint)"
        case .unsortedAddressMap(let index, let offset):
            return "function \(index)'s address map is not strictly increasing at native offset \(hex(UInt(offset)))"
        case .misplacedStub(let kind, let range, let size):
            return "\(kind) at offsets \(hex(range)) lies outside the module's \(size) bytes of code, overlaps a function or is out of order (stubs must be sorted and disjoint)"
        }
    }
}

/// What a frame's code is: a module's function or stub, and the wasm
/// offset. It refers to the registry's record of the module rather than
/// copying its tables, so symbolicating a frame costs a lookup and a
/// reference; names are read when asked for.
public struct FrameSymbol: Hashable, Sendable {
    let record: CodeModuleRecord
    /// Index in the module's functions, or -1.
    let functionSlot: Int32
    /// Index in the module's stubs, or -1.
    let stubSlot: Int32
    /// `moduleOffset`, or `AddressMapEntry.noWasmOffset` for none: a plain
    /// word, so a symbol is a reference and three words with no padding
    /// between them (see `isSameCode(at:_:)`).
    fileprivate(set) var wasmOffset: UInt32

    /// Offset of the wasm instruction in the module binary.
    public var moduleOffset: UInt32? {
        get { wasmOffset == AddressMapEntry.noWasmOffset ? nil : wasmOffset }
        set { wasmOffset = newValue ?? AddressMapEntry.noWasmOffset }
    }

    init(record: CodeModuleRecord, function: Int32, stub: Int32, moduleOffset: UInt32?) {
        self.record = record
        self.functionSlot = function
        self.stubSlot = stub
        self.wasmOffset = moduleOffset ?? AddressMapEntry.noWasmOffset
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

    /// The code's name as a backtrace prints it: `module!function` or
    /// `module!<entry trampoline ...>`.
    public var printedName: String {
        if let function { return CodeModuleRecord.displayName(module: moduleName, function: function) }
        if let stub { return CodeModuleRecord.displayName(module: moduleName, stub: stub) }
        return "\(moduleName ?? "<unknown>")!<no code>"
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

    /// Whether both name the same code of the same registered module (one
    /// identity comparison, no names compared).
    @inline(__always)
    func isSameCode(as other: FrameSymbol) -> Bool {
        record === other.record && functionSlot == other.functionSlot && stubSlot == other.stubSlot
            && moduleOffset == other.moduleOffset
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

    /// Whether both frames' code is the same code of the same registered
    /// module, in the same activation, and not unknown: the symbols' bytes
    /// compared in place — the record's address, the slots and the offset,
    /// which make up a `FrameSymbol` with no padding — so no reference is
    /// counted (folding the runs of a deep trace).
    static func isSameCode(_ a: UnsafePointer<SymbolicatedFrame>, _ b: UnsafePointer<SymbolicatedFrame>) -> Bool {
        guard a.pointee.frame.activation == b.pointee.frame.activation else { return false }
        let offset = MemoryLayout<SymbolicatedFrame>.offset(of: \SymbolicatedFrame.symbol)!
        let size = MemoryLayout<FrameSymbol>.size
        let first = UnsafeRawPointer(a) + offset, second = UnsafeRawPointer(b) + offset
        // A nil symbol is a null record pointer.
        guard first.load(as: UInt.self) != 0 else { return false }
        return memcmp(first, second, size) == 0
    }
}

/// A frame's symbol read in place: the record is not retained, so a
/// borrowed symbol is valid only while the frame it was read from is (the
/// frame holds the reference). For loops over a backtrace's frames that
/// must not count a reference per frame (rendering).
struct BorrowedSymbol {
    let record: Unmanaged<CodeModuleRecord>
    let functionSlot: Int32
    let stubSlot: Int32
    let wasmOffset: UInt32

    /// The symbol of `frame`, or nil when it has none.
    @inline(__always)
    init?(_ frame: UnsafePointer<SymbolicatedFrame>) {
        let symbol = UnsafeRawPointer(frame) + Self.symbolOffset
        guard let record = symbol.load(as: UnsafeRawPointer?.self) else { return nil }
        self.record = Unmanaged.fromOpaque(record)
        functionSlot = symbol.load(fromByteOffset: Self.functionOffset, as: Int32.self)
        stubSlot = symbol.load(fromByteOffset: Self.stubOffset, as: Int32.self)
        wasmOffset = symbol.load(fromByteOffset: Self.wasmOffsetOffset, as: UInt32.self)
    }

    private static let symbolOffset = MemoryLayout<SymbolicatedFrame>.offset(of: \SymbolicatedFrame.symbol)!
    private static let functionOffset = MemoryLayout<FrameSymbol>.offset(of: \FrameSymbol.functionSlot)!
    private static let stubOffset = MemoryLayout<FrameSymbol>.offset(of: \FrameSymbol.stubSlot)!
    private static let wasmOffsetOffset = MemoryLayout<FrameSymbol>.offset(of: \FrameSymbol.wasmOffset)!

    var moduleOffset: UInt32? { wasmOffset == AddressMapEntry.noWasmOffset ? nil : wasmOffset }
    var hasCode: Bool { functionSlot >= 0 || stubSlot >= 0 }

    /// `module!function` as printed (see `CodeModuleRecord.displayName`).
    @inline(__always)
    func withDisplayName<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        record._withUnsafeGuaranteedRef { body($0.displayName(function: functionSlot, stub: stubSlot)) }
    }
}

extension RandomAccessCollection where Index == Int {
    /// How many leading elements satisfy `isBefore`, in a collection where
    /// every element that does comes before every element that does not
    /// (sorted tables): a binary search.
    @inlinable
    func prefixCount(while isBefore: (Element) -> Bool) -> Int {
        var low = startIndex, high = endIndex
        while low < high {
            let mid = (low &+ high) >> 1
            if isBefore(self[mid]) { low = mid + 1 } else { high = mid }
        }
        return low - startIndex
    }
}


extension CodeModule {
    /// `function` as a backtrace prints it: `module!function`, `<unknown>`
    /// for a module without a name, `<wasm function N>` for a function
    /// without one, a Rust or C++ name demangled. Debuggers and profilers
    /// are given the same names (JITTools).
    public func printedName(of function: CodeFunction) -> String {
        CodeModuleRecord.displayName(module: name, function: function)
    }

    /// `stub` as a backtrace prints it: `module!<entry trampoline (i32) -> ()>`.
    public func printedName(of stub: CodeStub) -> String {
        CodeModuleRecord.displayName(module: name, stub: stub)
    }
}
