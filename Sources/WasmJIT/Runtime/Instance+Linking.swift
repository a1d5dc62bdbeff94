import CWasmUnwindABI
import WasmUnwind
import Glibc
import CWasmRuntime

extension Instance {
    // MARK: Instantiation

    /// Resolves and checks every import, kind by kind, and links it.
    func linkImports(_ imports: Imports) throws {
        try linkFunctions(imports)
        try linkTables(imports)
        try linkMemory(imports)
        try linkGlobals(imports)
        try linkTags(imports)
    }

    /// Imported functions: a host function, or another instance's function
    /// of the same store (a re-exported host import is bound as a host
    /// function).
    func linkFunctions(_ imports: Imports) throws {
        let description = module.description
        for (index, imported) in description.imports.enumerated() {
            guard let definition = try imports.resolve(module: imported.module, name: imported.name,
                                                       signature: imported.signature)
            else {
                throw InstantiationError.unresolvedImport(module: imported.module, name: imported.name,
                                                          type: "function \(imported.signature)")
            }
            let typeID = UInt64(store.engine.typeID(of: imported.signature))
            switch definition {
            case .host(let function):
                guard function.signature == imported.signature else {
                    throw InstantiationError.importSignatureMismatch(
                        module: imported.module, name: imported.name,
                        expected: imported.signature, found: function.signature)
                }
                try bindHost(function, toImport: index, typeID: typeID)
            case .function(let function):
                guard function.signature == imported.signature else {
                    throw InstantiationError.importSignatureMismatch(
                        module: imported.module, name: imported.name,
                        expected: imported.signature, found: function.signature)
                }
                guard function.instance.store === store else {
                    throw InstantiationError.crossStoreImport(module: imported.module, name: imported.name)
                }
                if let host = function.hostFunction {
                    // A re-exported host import: this module's own exit
                    // trampoline calls it.
                    try bindHost(host, toImport: index, typeID: typeID)
                } else {
                    keepLinked(function.instance)
                    importedFunctions[index] = function
                    importTable[index] = function.instance.linkTarget(ofFunction: function.index)
                    functionReferences[index] = function.instance.functionReferences[Int(function.index)]
                }
            default:
                throw InstantiationError.importKindMismatch(module: imported.module, name: imported.name,
                                                            expected: "a function", found: Self.kind(of: definition))
            }
        }
    }

    /// Imported tables: of the element kind, at least as large, at most as
    /// large a maximum; bound to this store.
    func linkTables(_ imports: Imports) throws {
        let description = module.description
        for (index, imported) in description.tableImports.enumerated() {
            guard let definition = imports.resolve(module: imported.module, name: imported.name) else {
                throw InstantiationError.unresolvedImport(module: imported.module, name: imported.name, type: "table")
            }
            guard case .table(let table) = definition else {
                throw InstantiationError.importKindMismatch(module: imported.module, name: imported.name,
                                                            expected: "a table", found: Self.kind(of: definition))
            }
            let wanted = imported.type
            guard table.kind == wanted.kind, table.size >= wanted.minimum,
                  wanted.maximum.map({ table.maximum != nil && table.maximum! <= $0 }) ?? true
            else {
                throw InstantiationError.importTypeMismatch(
                    module: imported.module, name: imported.name,
                    expected: Self.describe(wanted), found: Self.describe(table))
            }
            guard table.binding.bind(store) else {
                throw InstantiationError.crossStoreImport(module: imported.module, name: imported.name)
            }
            tables.append(table)
            tableRecords[index] = table.record
            // Whatever this instance writes into the table (its segments,
            // even if instantiation then fails; its code) may refer to it;
            // and what the defining instance wrote must stay callable.
            if table.kind == .funcref { table.keepAlive(self) }
            if let definer = table.definer { keepLinked(definer) }
        }
    }

    /// The imported memory: at least as large, at most as large a maximum;
    /// bound to this store, whose trap handler then knows its reservation.
    func linkMemory(_ imports: Imports) throws {
        if let imported = module.description.memoryImport {
            guard let definition = imports.resolve(module: imported.module, name: imported.name) else {
                throw InstantiationError.unresolvedImport(module: imported.module, name: imported.name, type: "memory")
            }
            guard case .memory(let memory) = definition else {
                throw InstantiationError.importKindMismatch(module: imported.module, name: imported.name,
                                                            expected: "a memory", found: Self.kind(of: definition))
            }
            let wanted = imported.type
            guard memory.pages >= wanted.minimum,
                  wanted.maximum.map({ memory.maximumPages != nil && memory.maximumPages! <= $0 }) ?? true
            else {
                throw InstantiationError.importTypeMismatch(
                    module: imported.module, name: imported.name,
                    expected: "memory \(Self.describe(wanted.minimum, wanted.maximum))",
                    found: "memory \(Self.describe(memory.pages, memory.maximumPages))")
            }
            guard memory.binding.bind(store) else {
                throw InstantiationError.crossStoreImport(module: imported.module, name: imported.name)
            }
            self.memory = memory
            memory.attach(context)
            store.noteMemory(base: memory.baseAddress, inUse: true)
        }
    }

    /// Imported globals: of the same type and mutability.
    func linkGlobals(_ imports: Imports) throws {
        for (index, imported) in module.description.globalImports.enumerated() {
            guard let definition = imports.resolve(module: imported.module, name: imported.name) else {
                throw InstantiationError.unresolvedImport(module: imported.module, name: imported.name, type: "global")
            }
            guard case .global(let global) = definition else {
                throw InstantiationError.importKindMismatch(module: imported.module, name: imported.name,
                                                            expected: "a global", found: Self.kind(of: definition))
            }
            guard global.kind == imported.type.kind, global.isMutable == imported.type.mutable else {
                throw InstantiationError.importTypeMismatch(
                    module: imported.module, name: imported.name,
                    expected: Self.describe(imported.type.kind, mutable: imported.type.mutable),
                    found: Self.describe(global.kind, mutable: global.isMutable))
            }
            guard global.binding.bind(store) else {
                throw InstantiationError.crossStoreImport(module: imported.module, name: imported.name)
            }
            globals.append(global)
            globalCells[index] = global.cell
            if global.kind == .funcref && global.isMutable { global.keepAlive(self) }
            if global.kind == .funcref, let definer = global.definer { keepLinked(definer) }
        }
    }

    /// Imported tags: of the same type identity.
    func linkTags(_ imports: Imports) throws {
        let description = module.description
        for imported in description.tagImports {
            guard let definition = imports.resolve(module: imported.module, name: imported.name) else {
                throw InstantiationError.unresolvedImport(module: imported.module, name: imported.name, type: "tag")
            }
            guard case .tag(let tag) = definition else {
                throw InstantiationError.importKindMismatch(module: imported.module, name: imported.name,
                                                            expected: "a tag", found: Self.kind(of: definition))
            }
            let wanted = description.typeIdentities[Int(imported.typeIndex)]
            guard tag.type == wanted else {
                throw InstantiationError.importTypeMismatch(
                    module: imported.module, name: imported.name,
                    expected: "tag \(Signature(parameters: description.signatures[Int(imported.typeIndex)]?.parameters ?? [], results: []))",
                    found: "tag \(Signature(parameters: tag.payload, results: []))")
            }
            guard tag.binding.bind(store) else {
                throw InstantiationError.crossStoreImport(module: imported.module, name: imported.name)
            }
            tagIdentities[tags.count] = tag.identity
            tags.append(tag)
        }
    }

    /// Keeps `instance` alive as long as this one (its functions are
    /// reachable from here).
    func keepLinked(_ instance: Instance) {
        if instance !== self && !linkedInstances.contains(where: { $0 === instance }) { linkedInstances.append(instance) }
    }

    /// Import `index` is the host function `function`: calls reach it
    /// through this module's exit trampoline (or, inline, directly) — the
    /// native one for a native host function.
    func bindHost(_ function: HostFunction, toImport index: Int, typeID: UInt64) throws {
        hostFunctions[index] = function
        hostStorages[index] = Unmanaged.passUnretained(function.storage)
        let offset: Int?
        if let native = function.nativeFunction {
            guard let nativeTrampoline = module.nativeTrampolineOffsets[index] else {
                throw InstantiationError.importSignatureMismatch(
                    module: module.description.imports[index].module, name: module.description.imports[index].name,
                    expected: module.description.imports[index].signature, found: function.signature)
            }
            offset = nativeTrampoline
            let code = UnsafeRawPointer(bitPattern: module.code.address(at: nativeTrampoline))
            importTable[index] = wu_import(code: code, vmctx: context, is_host: UInt64(WU_IMPORT_NATIVE), native: native)
        } else {
            offset = module.exitTrampolineOffsets[index]
            let code = offset.flatMap { UnsafeRawPointer(bitPattern: module.code.address(at: $0)) }
            importTable[index] = wu_import(code: code, vmctx: context, is_host: UInt64(WU_IMPORT_HOST), native: nil)
        }
        let trampoline = offset.flatMap { UnsafeRawPointer(bitPattern: module.code.address(at: $0)) }
        ownReferences[index] = wu_func_ref(code: trampoline, vmctx: context, type: typeID, is_host: 1)
        functionReferences[index] = ownReferences + index
    }

    /// The memory, tables and globals the module defines, and the
    /// references of its defined functions.
    func makeDefinitions() throws {
        let description = module.description
        for (defined, function) in module.functions.enumerated() {
            let index = description.imports.count + defined
            let signature = try description.signature(ofFunction: function.index, offset: nil)
            ownReferences[index] = wu_func_ref(
                code: UnsafeRawPointer(bitPattern: module.code.address(at: function.codeRange.lowerBound)),
                vmctx: context, type: UInt64(store.engine.typeID(of: signature)), is_host: 0)
            functionReferences[index] = ownReferences + index
        }
        if let defined = description.definedMemory {
            let memory = try Memory(minimumPages: defined.minimum, maximumPages: defined.maximum)
            _ = memory.binding.bind(store)
            self.memory = memory
            memory.attach(context)
            store.noteMemory(base: memory.baseAddress, inUse: true)
        }
        for type in description.tables {
            let initial = type.initializer.map(evaluate) ?? 0
            if type.kind == .funcref { holdReference(initial, in: nil) }
            let table = try Table(kind: type.kind, minimum: type.minimum, maximum: type.maximum, initial: initial)
            _ = table.binding.bind(store)
            table.definer = self
            tableRecords[tables.count] = table.record
            tables.append(table)
        }
        for typeIndex in description.definedTags {
            let tag = Tag(payload: try description.tagPayload(UInt32(tags.count), offset: nil),
                          type: description.typeIdentities[Int(typeIndex)])
            _ = tag.binding.bind(store)
            tagIdentities[tags.count] = tag.identity
            tags.append(tag)
        }
        for definition in description.globals {
            let global = Global(kind: definition.type.kind, mutable: definition.type.mutable,
                                bits: evaluate(definition.initializer))
            _ = global.binding.bind(store)
            global.definer = self
            globalCells[globals.count] = global.cell
            globals.append(global)
        }
    }

    /// A constant expression's 64-bit slot.
    func evaluate(_ expression: ModuleDescription.ConstantExpression) -> UInt64 {
        switch expression {
        case .value(let bits): return bits
        case .globalGet(let index): return globalCells[Int(index)]!.pointee
        case .refFunc(let index): return UInt64(UInt(bitPattern: functionReferences[Int(index)]))
        case .refNull: return 0
        case .arithmetic(let operation, let a, let b): return operation.apply(evaluate(a), evaluate(b))
        }
    }

    /// Active element segments, then active data segments, in order; each
    /// one dropped once applied. The first one out of bounds traps.
    func initializeSegments() throws {
        let description = module.description
        elementSegments = description.elementSegments.map { segment in segment.items.map(evaluate) }
        for (segment, items) in zip(description.elementSegments, elementSegments) where segment.kind == .funcref {
            for item in items ?? [] { holdReference(item, in: nil) }
        }
        droppedData = Array(repeating: false, count: description.dataSegments.count)
        for (index, segment) in description.elementSegments.enumerated() {
            switch segment.mode {
            case .active(let table, let offset):
                let items = elementSegments[index] ?? []
                let start = evaluate(offset) & 0xFFFF_FFFF
                let target = tables[Int(table)]
                guard start + UInt64(items.count) <= target.size else {
                    throw Trap(reason: .wasm(.tableOutOfBounds), backtrace: SymbolicatedBacktrace(frames: []))
                }
                for (position, item) in items.enumerated() { _ = target.set(start + UInt64(position), item) }
                elementSegments[index] = nil
            case .declarative:
                elementSegments[index] = nil
            case .passive:
                break
            }
        }
        for (index, segment) in description.dataSegments.enumerated() {
            guard case .active(let offset) = segment.mode, let memory else { continue }
            let start = Int(evaluate(offset) & 0xFFFF_FFFF)
            guard start + segment.bytes.count <= memory.size else {
                throw Trap(reason: .wasm(.outOfBoundsMemoryAccess), backtrace: SymbolicatedBacktrace(frames: []))
            }
            memory.withBytes { bytes in
                segment.bytes.withUnsafeBytes { source in
                    if let base = source.baseAddress {
                        (bytes.baseAddress! + start).copyMemory(from: base, byteCount: source.count)
                    }
                }
            }
            droppedData[index] = true
        }
    }

    /// Keeps alive the instance a function reference `bits` belongs to,
    /// when that is another instance and the reference is about to be
    /// stored in a table or global of this one (`table` says which table;
    /// nil: a funcref global or a funcref table known to the caller).
    func holdReference(_ bits: UInt64, in table: Int?) {
        if let table, tables[table].kind != .funcref { return }
        // SAFETY: `bits` is a funcref just stored: null or a reference
        // whose instance is alive (its code produced it).
        guard bits != 0, let reference = UnsafePointer<wu_func_ref>(bitPattern: UInt(bits)),
              let owner = reference.pointee.vmctx, owner != context, let object = owner.pointee.instance
        else { return }
        let instance = Unmanaged<Instance>.fromOpaque(object).takeUnretainedValue()
        if !heldInstances.contains(where: { $0 === instance }) { heldInstances.append(instance) }
    }
}
