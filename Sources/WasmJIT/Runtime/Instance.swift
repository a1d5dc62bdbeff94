import CWasmUnwindABI
import WasmUnwind
#if canImport(Glibc)
import Glibc
import CWasmRuntime
#endif

/// A module instantiated in a store: its context record (what r15 points
/// to), its memory, tables and globals (its own or imported), its function
/// references, and its import table.
public final class Instance {
    public let module: Module
    /// The store the instance lives in (kept alive by the instance).
    public let store: Store

    // SAFETY: the context and the tables below are allocated in init, each
    // with at least one element, and freed in deinit. Generated code reads
    // them only while one of the instance's functions runs, which holds the
    // instance (a Func keeps it; a running activation is the caller's).
    let context: UnsafeMutablePointer<wu_vmctx>
    let importTable: UnsafeMutablePointer<wu_import>
    /// `uint64_t **`: each global's cell, by global index.
    let globalCells: UnsafeMutablePointer<UnsafeMutablePointer<UInt64>?>
    /// `wu_table **`: each table's record, by table index.
    let tableRecords: UnsafeMutablePointer<UnsafeMutablePointer<wu_table>?>
    /// `wu_func_ref **`: each function's reference, by function index.
    let functionReferences: UnsafeMutablePointer<UnsafeMutablePointer<wu_func_ref>?>
    /// The references this instance owns: its defined functions' and its
    /// host imports' (a wasm import's reference is the exporter's).
    let ownReferences: UnsafeMutablePointer<wu_func_ref>

    /// The instance's memory, its own or imported.
    public internal(set) var memory: Memory?
    /// The instance's tables and globals, by index (imports first).
    public internal(set) var tables: [Table] = []
    public internal(set) var globals: [Global] = []
    /// The instance's exception tags, by index (imports first).
    public internal(set) var tags: [Tag] = []
    /// `const void **`: each tag's identity, by tag index.
    let tagIdentities: UnsafeMutablePointer<UnsafeRawPointer?>
    /// Read on every host call; written only while instantiating, before
    /// any code of the instance can run (so no exclusivity check).
    // SAFETY (both arrays): written only while instantiating, before any of
    // the instance's code can run; read on host calls afterwards.
    @exclusivity(unchecked) var hostFunctions: [HostFunction?]
    /// `hostFunctions`' storage, unretained (`hostFunctions` keeps each
    /// alive): what `host_call` reads, without reference counting.
    @exclusivity(unchecked) var hostStorages: [Unmanaged<HostFunction.Storage>?]
    /// The wasm functions this instance imports, by import index.
    var importedFunctions: [Func?]
    /// Instances whose functions this one imports, kept alive.
    var linkedInstances: [Instance] = []
    /// Instances whose function references this one stored in its tables
    /// or globals, kept alive so the references stay callable.
    var heldInstances: [Instance] = []
    /// The entries of the functions called from the host so far, by
    /// function index (made on the first call).
    var entries: [WasmEntry?] = []
    /// Each element segment's references (nil once dropped).
    var elementSegments: [[UInt64]?] = []
    /// Whether each data segment has been dropped.
    var droppedData: [Bool] = []

    /// Instantiates `module` in `store`: resolves and checks its imports,
    /// makes its memory, tables and globals, initialises its active element
    /// and data segments in order, then runs its start function. A trap
    /// during initialisation or in the start function is thrown; what the
    /// segments before it wrote into imported tables and memory stays, as
    /// the spec says, and the instance then lives as long as the store so
    /// the references it wrote stay callable.
    public init(store: Store, module: Module, imports: Imports = Imports()) throws {
        guard module.engine == ObjectIdentifier(store.engine) else { throw InstantiationError.engineMismatch }
        self.module = module
        self.store = store
        let description = module.description

        context = .allocate(capacity: 1)
        context.initialize(to: wu_vmctx())
        importTable = .allocate(capacity: max(1, description.imports.count))
        importTable.initialize(repeating: wu_import(), count: max(1, description.imports.count))
        globalCells = .allocate(capacity: max(1, description.globalCount))
        globalCells.initialize(repeating: nil, count: max(1, description.globalCount))
        tableRecords = .allocate(capacity: max(1, description.tableCount))
        tableRecords.initialize(repeating: nil, count: max(1, description.tableCount))
        functionReferences = .allocate(capacity: max(1, description.functionCount))
        functionReferences.initialize(repeating: nil, count: max(1, description.functionCount))
        tagIdentities = .allocate(capacity: max(1, description.tagCount))
        tagIdentities.initialize(repeating: nil, count: max(1, description.tagCount))
        ownReferences = .allocate(capacity: max(1, description.functionCount))
        ownReferences.initialize(repeating: wu_func_ref(), count: max(1, description.functionCount))
        hostFunctions = Array(repeating: nil, count: description.imports.count)
        hostStorages = Array(repeating: nil, count: description.imports.count)
        importedFunctions = Array(repeating: nil, count: description.imports.count)

        context.pointee.limits = UnsafeMutablePointer(bitPattern: store.limits.address)
        context.pointee.globals = globalCells
        context.pointee.imports = importTable
        context.pointee.tables = tableRecords
        context.pointee.functions = functionReferences
        context.pointee.libcalls = Libcalls.table
        context.pointee.tags = tagIdentities
        context.pointee.store_context = store.interruptionContext
        context.pointee.epoch = UnsafePointer(store.engine.epoch.address)
        context.pointee.epoch_deadline = store.interruptionContext.pointee.epoch_deadline
        context.pointee.throw_exception = ExceptionEntries.throwException
        context.pointee.throw_ref = ExceptionEntries.throwRef
        wu_vmctx_set_entry_points(context, hostCallEntry)
        context.pointee.instance = Unmanaged.passUnretained(self).toOpaque()
        store.register(self, context: context)

        try linkImports(imports)
        try makeDefinitions()
        try store.register(module)
        try initializeSegments()
        if let start = description.start {
            _ = try function(start).call([])
        }
    }

    deinit {
        // A table or global this instance defined may outlive it with no
        // importer to keep it alive (the host kept it): its references to
        // this instance's functions, which go now, become null.
        let defined = module.description
        for table in tables.dropFirst(defined.tableImports.count) { table.removeReferences(toContext: context) }
        for global in globals.dropFirst(defined.globalImports.count) where global.kind == .funcref {
            // SAFETY: a funcref global's cell holds null or a reference the
            // store keeps (this instance's are still allocated here).
            if let reference = UnsafePointer<wu_func_ref>(bitPattern: UInt(global.cell.pointee)),
               reference.pointee.vmctx == context { global.cell.pointee = 0 }
        }
        store.unregister(context: context)
        if let memory {
            memory.detach(context)
            store.noteMemory(base: memory.baseAddress, inUse: false)
        }
        context.deallocate()
        importTable.deallocate()
        globalCells.deallocate()
        tableRecords.deallocate()
        functionReferences.deallocate()
        ownReferences.deallocate()
        tagIdentities.deallocate()
    }

    // MARK: Exports

    /// The exported function `name`, if there is one.
    public func export(_ name: String) -> Func? {
        guard case .function(let index)? = module.description.exports[name] else { return nil }
        return function(index)
    }

    /// Function `index` of this instance: a wasm import is the exporter's
    /// function, a host import the host function.
    func function(_ index: UInt32) -> Func {
        if Int(index) < importedFunctions.count, let imported = importedFunctions[Int(index)] { return imported }
        if Int(index) < hostFunctions.count, let host = hostFunctions[Int(index)] {
            return Func(instance: self, index: index, hostFunction: host)
        }
        return Func(instance: self, index: index)
    }

    /// Export `name` as a definition another instance can import.
    public func exportedDefinition(_ name: String) -> Imports.Definition? {
        switch module.description.exports[name] {
        case .function(let index)?:
            let function = function(index)
            if let host = function.hostFunction { return .host(host) }
            return .function(function)
        case .table(let index)?: return .table(tables[Int(index)])
        case .memory?: return memory.map { .memory($0) }
        case .global(let index)?: return .global(globals[Int(index)])
        case .tag(let index)?: return .tag(tags[Int(index)])
        case nil: return nil
        }
    }

    /// The exported tag `name`, if there is one.
    public func exportedTag(_ name: String) -> Tag? {
        guard case .tag(let index)? = module.description.exports[name] else { return nil }
        return tags[Int(index)]
    }

    /// The exported global `name`, if there is one.
    public func exportedGlobal(_ name: String) -> Global? {
        guard case .global(let index)? = module.description.exports[name] else { return nil }
        return globals[Int(index)]
    }

    /// The host -> wasm entry of defined function `index` (nil for an
    /// import), made once and kept.
    func entry(ofFunction index: UInt32) -> WasmEntry? {
        let slot = Int(index)
        if slot < entries.count, let entry = entries[slot] { return entry }
        guard let entry = WasmEntry(function(index)) else { return nil }
        if entries.count <= slot { entries += Array(repeating: nil, count: slot + 1 - entries.count) }
        entries[slot] = entry
        return entry
    }

    /// What a call to function `index` of this instance jumps to, with which
    /// context: its code here, or for an import, whatever the import is.
    func linkTarget(ofFunction index: UInt32) -> wu_import {
        if let compiled = module.compiledFunction(index) {
            return wu_import(code: UnsafeRawPointer(bitPattern: module.code.address(at: compiled.codeRange.lowerBound)),
                             vmctx: context, is_host: 0, native: nil)
        }
        // A re-exported host import goes through its exit trampoline, which
        // works from any module's code.
        var target = importTable[Int(index)]
        target.is_host = 0
        return target
    }

    /// The instance's linear memory, if it has one (for hosts and tests).
    public func withMemory<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R? {
        guard let memory else { return nil }
        return try memory.withBytes(body)
    }

    /// The host objects this instance holds outside the stack: externrefs
    /// in its own tables and globals (roots for the collector).
    var heldReferences: [UInt64] {
        var held: [UInt64] = []
        for table in tables where table.kind.isCollected {
            held += table.elements.filter { $0 != 0 }
        }
        for global in globals where global.kind.isCollected && global.cell.pointee != 0 {
            held.append(global.cell.pointee)
        }
        for (segment, items) in zip(module.description.elementSegments, elementSegments)
        where segment.kind.isCollected {
            held += (items ?? []).filter { $0 != 0 }
        }
        return held
    }

    // MARK: Host calls

    /// Runs import `index`'s host function on the values the exit trampoline
    /// spilled, and writes its result back. Returns 0, or 1 after recording
    /// the failure in the store.
    fileprivate func callHost(importIndex: Int, values: UnsafeMutablePointer<UInt64>) -> Int32 {
        guard let storage = hostStorages[importIndex] else {
            // The import table only points exit trampolines at host imports.
            fatalError("import \(importIndex) has no host function")
        }
        do {
            // SAFETY: `hostFunctions` holds the storage for the instance's life.
            try storage._withUnsafeGuaranteedRef { storage in
                if let body = storage.slotsBody, storage.referenceParameters.isEmpty {
                    // The fast paths, for host functions with no references
                    // to hold: on slots ...
                    try body(Caller(instance: self), values)
                } else if let body = storage.valuesBody, storage.referenceParameters.isEmpty {
                    // ... and on values, with the store's arguments array.
                    try HostFunction.callOnValues(body, storage.signature, Caller(instance: self), values, store: store,
                                                  importName: self.module.description.imports[importIndex].name)
                } else {
                    try HostFunction(storage: storage).invoke(
                        Caller(instance: self), values, store: store,
                        importName: self.module.description.imports[importIndex].name)
                }
            }
            return 0
        } catch let exception as WasmException {
            // Thrown into the calling wasm (`raise` asks the unwinder).
            store.exceptionInFlight = exception
            return 1
        } catch let trap as Trap {
            if let exception = trap.exception {
                // An exception no frame of a nested activation caught,
                // rethrown by the host: on into this activation's frames.
                store.exceptionInFlight = exception
                return 1
            }
            // A trap from a nested activation, on its way out: it already
            // carries the backtrace of every activation.
            store.pendingFailure = trap
            return 1
        } catch {
            store.pendingFailure = Trap(reason: .host(error), backtrace: store.backtrace())
            return 1
        }
    }

    static func kind(of definition: Imports.Definition) -> String {
        switch definition {
        case .host, .function: return "a function"
        case .table: return "a table"
        case .memory: return "a memory"
        case .global: return "a global"
        case .tag: return "a tag"
        }
    }

    static func describe(_ minimum: UInt64, _ maximum: UInt64?) -> String {
        "\(minimum)" + (maximum.map { " \($0)" } ?? "")
    }

    static func describe(_ type: ModuleDescription.TableType) -> String {
        "table \(describe(type.minimum, type.maximum)) \(type.kind)"
    }

    static func describe(_ table: Table) -> String {
        "table \(describe(table.size, table.maximum)) \(table.kind)"
    }

    static func describe(_ kind: ValueKind, mutable: Bool) -> String {
        mutable ? "global (mut \(kind))" : "global \(kind)"
    }
}

extension HostFunction {
    /// Calls the host function on `values` (arguments in, results out).
    func invoke(_ caller: Caller, _ values: UnsafeMutablePointer<UInt64>, store: Store,
                importName: @autoclosure () -> String) throws {
        let function = storage
        let signature = function.signature
        // References passed to the host are held by the host while it runs.
        let referenceArguments = function.referenceParameters
        if !referenceArguments.isEmpty {
            store.objects.callScopes.append(referenceArguments.map { values[$0] }.filter { $0 != 0 })
        }
        defer { if !referenceArguments.isEmpty { store.objects.callScopes.removeLast() } }
        switch function.implementation {
        case .slots(let body):
            try body(caller, values)
        case .values(let body):
            try Self.callOnValues(body, signature, caller, values, store: store, importName: importName())
        case .native:
            throw CallError.nativeHostFunction
        }
    }
}

extension HostFunction {
    /// A host function on values: the arguments' array is the store's,
    /// reused from call to call and filled in place (a nested host call
    /// takes a fresh one; if the host kept the array, copy-on-write gives
    /// the next call a new one), so a call allocates once: the results'
    /// array.
    @inline(__always)
    static func callOnValues(_ body: (Caller, [Value]) throws -> [Value], _ signature: Signature, _ caller: Caller,
                             _ values: UnsafeMutablePointer<UInt64>, store: Store,
                             importName: @autoclosure () -> String) throws {
        var arguments = store.argumentArray.take() ?? []
        fill(&arguments, kinds: signature.parameters, from: values)
        defer { store.argumentArray = arguments }
        let results = try body(caller, arguments)
        guard results.count == signature.results.count, zip(results, signature.results).allSatisfy({ $0.kind == $1 }) else {
            throw HostFunctionError.resultMismatch(import: importName(), expected: signature.results, returned: results)
        }
        for (index, value) in results.enumerated() { values[index] = value.slot }
    }

    /// `array` holding a value of each kind from `slots`: assigned in place
    /// when the array has the right count already (emptying and appending
    /// cost 13 ns a call more).
    @inline(__always)
    private static func fill(_ array: inout [Value], kinds: [ValueKind], from slots: UnsafeMutablePointer<UInt64>) {
        if array.count != kinds.count {
            array.removeAll(keepingCapacity: true)
            for index in kinds.indices { array.append(Value(slot: slots[index], kind: kinds[index])) }
            return
        }
        array.withUnsafeMutableBufferPointer { buffer in
            for index in kinds.indices { buffer[index] = Value(slot: slots[index], kind: kinds[index]) }
        }
    }
}

/// The C entry point of every exit trampoline (`wu_host_call_fn`).
private let hostCallEntry: wu_host_call_fn = { context, importIndex, values in
    // SAFETY: the instance outlives every call into its code (the caller
    // holds it while wasm runs): no retain needed.
    Unmanaged<Instance>.fromOpaque(context!.pointee.instance!)._withUnsafeGuaranteedRef {
        $0.callHost(importIndex: Int(importIndex), values: values!)
    }
}

/// Why a module could not be instantiated.
public enum InstantiationError: Error, Hashable, CustomStringConvertible {
    case unresolvedImport(module: String, name: String, type: String)
    case importSignatureMismatch(module: String, name: String, expected: Signature, found: Signature)
    case importTypeMismatch(module: String, name: String, expected: String, found: String)
    case importKindMismatch(module: String, name: String, expected: String, found: String)
    case crossStoreImport(module: String, name: String)
    case memoryUnavailable(bytes: Int)
    case tableTooLarge(elements: UInt64)
    case engineMismatch

    public var description: String {
        switch self {
        case .unresolvedImport(let module, let name, let type):
            return "unknown import: `\(module)::\(name)` (\(type)) has not been defined"
        case .importSignatureMismatch(let module, let name, let expected, let found):
            return "\(module)::\(name) expects \(found), the module imports it as \(expected)"
        case .importTypeMismatch(let module, let name, let expected, let found):
            return "incompatible import type for `\(module)::\(name)`: the module imports \(expected), found \(found)"
        case .importKindMismatch(let module, let name, let expected, let found):
            return "incompatible import type for `\(module)::\(name)`: the module imports \(expected), found \(found)"
        case .crossStoreImport(let module, let name):
            return "import `\(module)::\(name)` belongs to another store (a function, table, memory, global or tag is used by the store that made it, or first imported it)"
        case .memoryUnavailable(let bytes):
            return "cannot map \(bytes) bytes of linear memory"
        case .engineMismatch:
            return "the module was compiled by another engine than the store's"
        case .tableTooLarge(let elements):
            return "a table of \(elements) elements is more than this runtime allows (\(Table.limit))"
        }
    }
}

/// A host function broke its own signature.
public enum HostFunctionError: Error, CustomStringConvertible {
    case resultMismatch(import: String, expected: [ValueKind], returned: [Value])
    case notNative(Signature)

    public var description: String {
        switch self {
        case .resultMismatch(let name, let expected, let returned):
            return "host function `\(name)` returned \(returned) but its type says \(expected)"
        case .notNative(let signature):
            return "a native host function takes at most 5 integer and 8 float parameters and returns at most one value, not \(signature)"
        }
    }
}

@_spi(Testing)
extension Instance {
    /// Points this instance's compiled code at other memory than its own:
    /// for tests of what the trap handler does with a fault outside any
    /// memory (a runtime bug), nothing else.
    public func replaceMemoryBaseForTesting(_ base: UInt) {
        context.pointee.memory_base = UnsafeMutablePointer(bitPattern: base)
    }
}
