/// A registered module laid out for lookups: its functions' and stubs'
/// ranges, its address maps, its printed names and its handler scopes, in
/// plain memory made once at registration and never written again. Every
/// lookup is `SortedOffsets`' one search; nothing here counts a reference.
public final class CodeModuleRecord: @unchecked Sendable {
    public let module: CodeModule
    let moduleName: String?
    // SAFETY: the ranges point into FlatTables that `tables` keeps for the
    // record's life; the other tables are FlatTables of the record itself.
    // Indices come from the searches over those same tables (or from
    // address-map starts written with them), so every read is in bounds.
    let functions: SortedRanges
    let stubs: SortedRanges
    /// Per function, where its address-map entries start in `native` and
    /// `wasm` (one more entry for the end).
    private let mapStarts: FlatTable<Int>
    private let native: FlatTable<UInt32>
    private let wasm: FlatTable<UInt32>
    private let functionIndices: FlatTable<UInt32>
    private let functionNames: [String?]
    /// What a frame prints after its offset, as UTF-8, per function then per
    /// stub (`module!function`, demangled; `module!<entry trampoline>`):
    /// bytes `displayStarts[i]..<displayStarts[i + 1]` of `displayBytes`.
    private let displayStarts: FlatTable<Int>
    private let displayBytes: FlatTable<UInt8>
    /// Per stack map: its frame size and its innermost handler scope (-1:
    /// none); per scope: where its clauses start in `handlers` (one more
    /// entry for the end) and its parent (-1: none; always a lower index).
    private let frameSizes: FlatTable<UInt32>
    private let mapScopes: FlatTable<Int32>
    private let scopeStarts: FlatTable<Int>
    private let scopeParents: FlatTable<Int32>
    private let handlers: FlatTable<ExceptionHandler>
    private let tables: [AnyObject]

    init(_ module: CodeModule) {
        self.module = module
        moduleName = module.name
        let functionStarts = FlatTable(module.functions.map(\.codeRange.lowerBound))
        let functionEnds = FlatTable(module.functions.map(\.codeRange.upperBound))
        functions = SortedRanges(starts: functionStarts.base, ends: functionEnds.base, count: functionStarts.count)
        let stubStarts = FlatTable(module.stubs.map(\.codeRange.lowerBound))
        let stubEnds = FlatTable(module.stubs.map(\.codeRange.upperBound))
        stubs = SortedRanges(starts: stubStarts.base, ends: stubEnds.base, count: stubStarts.count)
        var starts: [Int] = [], natives: [UInt32] = [], wasms: [UInt32] = []
        for function in module.functions {
            starts.append(natives.count)
            for entry in function.addressMap {
                natives.append(entry.nativeOffset)
                wasms.append(entry.wasmOffset)
            }
        }
        starts.append(natives.count)
        mapStarts = FlatTable(starts)
        native = FlatTable(natives)
        wasm = FlatTable(wasms)
        functionIndices = FlatTable(module.functions.map(\.index))
        functionNames = module.functions.map(\.name)
        let names = module.functions.map { module.printedName(of: $0) } + module.stubs.map { module.printedName(of: $0) }
        var byteStarts: [Int] = [], bytes: [UInt8] = []
        for name in names {
            byteStarts.append(bytes.count)
            bytes += name.utf8
        }
        byteStarts.append(bytes.count)
        displayStarts = FlatTable(byteStarts)
        displayBytes = FlatTable(bytes)
        let maps = module.stackMaps.maps
        frameSizes = FlatTable(maps.map(\.frameSize))
        mapScopes = FlatTable(maps.map { $0.handlerScope.map(Int32.init) ?? -1 })
        let scopes = module.stackMaps.handlerScopes
        var clauseStarts: [Int] = [], clauses: [ExceptionHandler] = []
        for scope in scopes {
            clauseStarts.append(clauses.count)
            clauses += scope.clauses
        }
        clauseStarts.append(clauses.count)
        scopeStarts = FlatTable(clauseStarts)
        scopeParents = FlatTable(scopes.map { $0.parent.map(Int32.init) ?? -1 })
        handlers = FlatTable(clauses)
        // The runs' memory lives as long as the record.
        tables = [functionStarts, functionEnds, stubStarts, stubEnds]
    }

    var functionCount: Int { functions.count }

    /// Where the code at `offset` (from the code base) is: its function slot
    /// or else its stub slot (-1 for neither), and in a function the wasm
    /// offset (`AddressMapEntry.noWasmOffset` for none).
    @inline(__always)
    func locate(_ offset: UInt) -> (function: Int32, stub: Int32, wasmOffset: UInt32) {
        let function = functions.index(containing: offset)
        if function >= 0 { return (Int32(function), -1, wasmOffset(offset, inFunction: function)) }
        return (-1, Int32(stubs.index(containing: offset)), AddressMapEntry.noWasmOffset)
    }

    @inline(__always)
    func contains(_ offset: UInt, inFunction slot: Int) -> Bool { functions.contains(offset, at: slot) }

    /// The wasm offset of the code at `offset` in function `slot`, or
    /// `noWasmOffset`: the last address-map entry at or before it.
    @inline(__always)
    func wasmOffset(_ offset: UInt, inFunction slot: Int) -> UInt32 {
        let first = mapStarts.pointer[slot], end = mapStarts.pointer[slot &+ 1]
        let map = SortedOffsets(base: native.base + first, count: end &- first)
        let entry = map.lastIndex(atOrBefore: UInt32(truncatingIfNeeded: offset &- functions.starts[slot]))
        return entry < 0 ? AddressMapEntry.noWasmOffset : wasm.pointer[first &+ entry]
    }

    /// What the code at `offset` is.
    func kind(atCodeOffset offset: UInt) -> CodeKind? {
        let (function, stub, _) = locate(offset)
        if function >= 0 { return .wasmFunction }
        return stub >= 0 ? module.stubs[Int(stub)].kind : nil
    }

    /// The printed name of function `function` or else stub `stub` (slots),
    /// UTF-8, valid while the record lives.
    @inline(__always)
    func displayName(function: Int32, stub: Int32) -> UnsafeBufferPointer<UInt8> {
        let slot = function >= 0 ? Int(function) : functionCount + Int(stub)
        let start = displayStarts.pointer[slot]
        return UnsafeBufferPointer(start: displayBytes.base + start, count: displayStarts.pointer[slot + 1] - start)
    }

    func functionIndex(slot: Int32) -> UInt32 { functionIndices.pointer[Int(slot)] }
    func functionName(slot: Int32) -> String? { functionNames[Int(slot)] }

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
        var scope = Int(mapScopes.pointer[map])
        while scope >= 0 {
            var index = scopeStarts.pointer[scope]
            let end = scopeStarts.pointer[scope &+ 1]
            while index < end {
                if takes(handlers.pointer[index]) { return .taken(handlers.pointer[index], frameSize: frameSizes.pointer[map]) }
                index &+= 1
            }
            scope = Int(scopeParents.pointer[scope])
        }
        return .notTaken
    }
}
