import CWasmUnwindABI
#if canImport(Glibc)
import Glibc
#endif

/// A module instantiated in a store: its context record (what r15 points
/// to), linear memory, globals and import table.
public final class Instance {
    public let module: Module
    /// The store the instance lives in (kept alive by the instance).
    public let store: Store

    let context: UnsafeMutablePointer<wu_vmctx>
    private let importTable: UnsafeMutablePointer<wu_import>
    private let globals: UnsafeMutablePointer<UInt64>
    private let memory: UnsafeMutableRawPointer?
    private let memorySize: Int
    /// Read on every host call; written only while instantiating, before
    /// any code of the instance can run (so no exclusivity check).
    @exclusivity(unchecked) private var hostFunctions: [HostFunction?]
    /// Instances whose functions this one imports, kept alive.
    private var linkedInstances: [Instance] = []

    /// Instantiates `module` in `store`, resolving its imports, then runs its
    /// start function (a trap there is thrown).
    public init(store: Store, module: Module, imports: Imports = Imports()) throws {
        self.module = module
        self.store = store
        let description = module.description

        context = .allocate(capacity: 1)
        context.initialize(to: wu_vmctx())
        importTable = .allocate(capacity: max(1, description.imports.count))
        importTable.initialize(repeating: wu_import(), count: max(1, description.imports.count))
        globals = .allocate(capacity: max(1, description.globals.count))
        globals.initialize(repeating: 0, count: max(1, description.globals.count))
        for (index, global) in description.globals.enumerated() { globals[index] = global.initialValue }
        if let pages = description.memoryPages {
            memorySize = Int(pages) * 65536
            let mapping = mmap(nil, max(memorySize, 1), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            guard let mapping, mapping != MAP_FAILED else {
                throw InstantiationError.memoryUnavailable(bytes: memorySize)
            }
            memory = mapping
        } else {
            memorySize = 0
            memory = nil
        }
        hostFunctions = Array(repeating: nil, count: description.imports.count)

        context.pointee.limits = UnsafeMutablePointer(bitPattern: store.limits.address)
        context.pointee.memory_base = memory?.assumingMemoryBound(to: UInt8.self)
        context.pointee.memory_size = UInt64(memorySize)
        context.pointee.globals = globals
        context.pointee.imports = importTable
        wu_vmctx_set_entry_points(context, hostCallEntry)
        context.pointee.instance = Unmanaged.passUnretained(self).toOpaque()
        store.register(context: context)

        for (index, imported) in description.imports.enumerated() {
            guard let definition = try imports.resolve(module: imported.module, name: imported.name,
                                                       signature: imported.signature)
            else {
                throw InstantiationError.unresolvedImport(module: imported.module, name: imported.name,
                                                          signature: imported.signature)
            }
            switch definition {
            case .host(let function):
                guard function.signature == imported.signature else {
                    throw InstantiationError.importSignatureMismatch(
                        module: imported.module, name: imported.name,
                        expected: imported.signature, found: function.signature)
                }
                hostFunctions[index] = function
                importTable[index].code = module.exitTrampolineOffsets[index].flatMap {
                    UnsafeRawPointer(bitPattern: module.code.address(at: $0))
                }
                importTable[index].vmctx = context
                importTable[index].is_host = 1
            case .function(let function):
                guard function.signature == imported.signature else {
                    throw InstantiationError.importSignatureMismatch(
                        module: imported.module, name: imported.name,
                        expected: imported.signature, found: function.signature)
                }
                guard function.instance.store === store else {
                    throw InstantiationError.crossStoreImport(module: imported.module, name: imported.name)
                }
                linkedInstances.append(function.instance)
                importTable[index] = function.instance.linkTarget(ofFunction: function.index)
            }
        }
        for segment in description.dataSegments {
            guard Int(segment.offset) + segment.bytes.count <= memorySize else {
                throw InstantiationError.dataSegmentOutOfBounds(moduleOffset: segment.moduleOffset,
                                                                end: Int(segment.offset) + segment.bytes.count,
                                                                memorySize: memorySize)
            }
            segment.bytes.withUnsafeBytes { source in
                if let base = source.baseAddress {
                    memory!.advanced(by: Int(segment.offset)).copyMemory(from: base, byteCount: source.count)
                }
            }
        }
        try store.register(module)
        if let start = description.start {
            _ = try Func(instance: self, index: start).call([])
        }
    }

    deinit {
        store.unregister(context: context)
        context.deallocate()
        importTable.deallocate()
        globals.deallocate()
        if let memory { munmap(memory, max(memorySize, 1)) }
    }

    /// The exported function `name`, if there is one.
    public func export(_ name: String) -> Func? {
        guard let index = module.description.exports[name] else { return nil }
        return Func(instance: self, index: index)
    }

    /// What a call to function `index` of this instance jumps to, with which
    /// context: its code here, or for an import, whatever the import is.
    func linkTarget(ofFunction index: UInt32) -> wu_import {
        if let compiled = module.compiledFunction(index) {
            return wu_import(code: UnsafeRawPointer(bitPattern: module.code.address(at: compiled.codeRange.lowerBound)),
                             vmctx: context, is_host: 0)
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
        return try body(UnsafeMutableRawBufferPointer(start: memory, count: memorySize))
    }

    /// Runs import `index`'s host function on the values the exit trampoline
    /// spilled, and writes its result back. Returns 0, or 1 after recording
    /// the failure in the store.
    fileprivate func callHost(importIndex: Int, values: UnsafeMutablePointer<UInt64>) -> Int32 {
        guard let function = hostFunctions[importIndex]?.storage else {
            // The import table only points exit trampolines at host imports.
            fatalError("import \(importIndex) has no host function")
        }
        let signature = function.signature
        // References passed to the host are held by the host while it runs.
        let referenceArguments = function.referenceParameters
        if !referenceArguments.isEmpty {
            store.objects.callScopes.append(referenceArguments.map { values[$0] }.filter { $0 != 0 })
        }
        defer { if !referenceArguments.isEmpty { store.objects.callScopes.removeLast() } }
        do {
            switch function.implementation {
            case .slots(let body):
                try body(Caller(instance: self), values)
            case .values(let body):
                let arguments = signature.parameters.indices.map { Value(slot: values[$0], kind: signature.parameters[$0]) }
                let results = try body(Caller(instance: self), arguments)
                guard results.map(\.kind) == signature.results else {
                    throw HostFunctionError.resultMismatch(import: module.imports[importIndex].name,
                                                           expected: signature.results, returned: results)
                }
                for (index, value) in results.enumerated() { values[index] = value.slot }
            }
            return 0
        } catch let trap as Trap {
            // A trap from a nested activation, on its way out: it already
            // carries the backtrace of every activation.
            store.pendingFailure = trap
            return 1
        } catch {
            store.pendingFailure = Trap(reason: .host(error), backtrace: store.backtrace())
            return 1
        }
    }
}

/// The C entry point of every exit trampoline (`wu_host_call_fn`).
private let hostCallEntry: wu_host_call_fn = { context, importIndex, values in
    // The instance outlives every call into its code: no retain needed.
    Unmanaged<Instance>.fromOpaque(context!.pointee.instance!)._withUnsafeGuaranteedRef {
        $0.callHost(importIndex: Int(importIndex), values: values!)
    }
}

/// Why a module could not be instantiated.
public enum InstantiationError: Error, CustomStringConvertible {
    case unresolvedImport(module: String, name: String, signature: Signature)
    case importSignatureMismatch(module: String, name: String, expected: Signature, found: Signature)
    case crossStoreImport(module: String, name: String)
    case dataSegmentOutOfBounds(moduleOffset: Int, end: Int, memorySize: Int)
    case memoryUnavailable(bytes: Int)

    public var description: String {
        switch self {
        case .unresolvedImport(let module, let name, let signature):
            return "unknown import: `\(module)::\(name)` of type \(signature) has not been defined"
        case .importSignatureMismatch(let module, let name, let expected, let found):
            return "\(module)::\(name) expects \(found), the module imports it as \(expected)"
        case .crossStoreImport(let module, let name):
            return "import `\(module)::\(name)` comes from an instance of another store"
        case .dataSegmentOutOfBounds(let offset, let end, let size):
            return "data segment at module offset \(hex(offset)) ends at \(end), past the memory's \(size) bytes"
        case .memoryUnavailable(let bytes):
            return "cannot map \(bytes) bytes of linear memory"
        }
    }
}

/// A host function broke its own signature.
public enum HostFunctionError: Error, CustomStringConvertible {
    case resultMismatch(import: String, expected: [ValueKind], returned: [Value])

    public var description: String {
        switch self {
        case .resultMismatch(let name, let expected, let returned):
            return "host function `\(name)` returned \(returned) but its type says \(expected)"
        }
    }
}
