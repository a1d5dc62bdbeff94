import WasmUnwind

/// Compiling a module, stage by stage: the functions, then the trampolines
/// (entry, exit, native exit), then one machine-code image with its CFI
/// after it, then the tables that describe it (stack maps, trap sites,
/// frame states). `Module.init` runs the stages in that order; each one
/// appends to the assembler and to the routines' frame descriptions.
struct ModuleCompiler {
    let engine: Engine
    let description: ModuleDescription
    private(set) var assembler = Assembler()
    /// How each routine (function or trampoline) changes its frame, in
    /// emission order: the CFI and the frame-state table are made from it.
    private(set) var frames: [FrameDescription] = []
    private(set) var functions: [CompiledFunction] = []
    private(set) var trampolines: [CompiledTrampoline] = []
    /// Whether a function uses typed function references
    /// (`Module.usesTypedFunctionReferences`).
    private(set) var usesTypedReferences: Bool

    init(engine: Engine, description: ModuleDescription) {
        self.engine = engine
        self.description = description
        usesTypedReferences = description.usesTypedReferences
    }

    private var configuration: Engine.Configuration { engine.configuration }

    /// Starts a routine 16-byte aligned (a convention, and it keeps routine
    /// starts apart for the pc - 1 rule); returns its offset.
    private mutating func alignRoutine() -> Int {
        while assembler.offset % 16 != 0 { assembler.int3() }
        return assembler.offset
    }

    /// Records how a routine just emitted changes its frame. When a
    /// profiler maps each routine's unwinding data right after its code
    /// (perf's jitdump), room for it is left there.
    private mutating func finishRoutine(_ frame: FrameDescription) {
        frames.append(frame)
        guard configuration.leavesUnwindingRoom else { return }
        let room = UnwindInfoEncoder.standaloneUnwindingRoom(after: frame, style: configuration.unwindInfo)
        for _ in 0..<room { assembler.int3() }
    }

    // MARK: Stage 1: functions

    /// Validates and compiles every function body, in index order.
    mutating func compileFunctions() throws(CompileError) {
        let labels = description.bodies.map { _ in assembler.newLabel() }
        let typeIDs = description.signatures.map { $0.map { engine.typeID(of: $0) } ?? 0 }
        functions.reserveCapacity(description.bodies.count)
        for (definedIndex, body) in description.bodies.enumerated() {
            let index = UInt32(description.imports.count + definedIndex)
            let signature = try description.signature(ofFunction: index, offset: body.bodyOffset)
            let declared = try body.code.locals.map { (type) throws(CompileError) in
                try ValueKind(type, offset: body.bodyOffset)
            }
            if try FunctionValidator.validate(body.code, module: description, signature: signature,
                                              locals: signature.parameters + declared) {
                usesTypedReferences = true
            }
            _ = alignRoutine()
            assembler.bind(labels[definedIndex])
            var compiler = FunctionCompiler(
                module: description, index: index, signature: signature, declaredLocals: declared,
                bodyOffset: body.bodyOffset, functionLabels: labels,
                exitRecording: configuration.exitRecording, typeIDs: typeIDs,
                trapInstructions: configuration.trapInstructions, boundsChecks: configuration.boundsChecks,
                epochInterruption: configuration.epochInterruption, consumesFuel: configuration.consumesFuel,
                epochAddress: UInt64(UInt(bitPattern: engine.epoch.address)), lastLocalsOffset: body.lastLocalsOffset)
            compiler.stopsDebugger = configuration.stopsDebuggerAtTraps
            swap(&compiler.assembler, &assembler)
            let compiled = try compiler.compile(body.code)
            swap(&compiler.assembler, &assembler)
            functions.append(compiled)
            finishRoutine(FrameDescription(codeRange: compiled.codeRange, events: compiler.frameEvents))
        }
    }

    // MARK: Stage 2: trampolines

    /// One entry trampoline per signature of a defined function; returns
    /// each one's offset by signature.
    mutating func emitEntryTrampolines() throws(CompileError) -> [Signature: Int] {
        var offsets: [Signature: Int] = [:]
        var signatures: [Signature] = []
        for function in functions {
            let signature = try description.signature(ofFunction: function.index, offset: nil)
            if offsets[signature] == nil {
                offsets[signature] = -1
                signatures.append(signature)
            }
        }
        for signature in signatures {
            let start = alignRoutine()
            let events = Trampolines.emitEntry(signature, into: &assembler)
            let range = start..<assembler.offset
            finishRoutine(FrameDescription(codeRange: range, events: events))
            offsets[signature] = start
            trampolines.append(CompiledTrampoline(kind: .entryTrampoline, signature: signature, importIndex: nil,
                                                  codeRange: range))
        }
        return offsets
    }

    /// An exit trampoline per imported function (its offset; nil for none).
    /// With inline exit recording call sites call the host directly; an
    /// exit trampoline is needed only for an import whose reference the
    /// module can take (re-exported, in a table or a global: those are
    /// called through the trampoline by other modules or `call_indirect`).
    mutating func emitExitTrampolines() -> [Int?] {
        let referenced = description.referencedFunctions
        return description.imports.enumerated().map { importIndex, imported in
            guard configuration.exitRecording == .trampoline || referenced.contains(UInt32(importIndex)) else {
                return nil
            }
            return emitExitTrampoline(importIndex, imported.signature, isNative: false) {
                Trampolines.emitExit(importIndex: UInt32(importIndex), imported.signature, into: &$0)
            }
        }
    }

    /// A native exit trampoline per import a native host function could
    /// satisfy: what calls through the import table (trampoline mode),
    /// tables and other modules reach when it is one.
    mutating func emitNativeExitTrampolines() -> [Int?] {
        description.imports.enumerated().map { importIndex, imported in
            guard HostFunction.isNativeCompatible(imported.signature) else { return nil }
            return emitExitTrampoline(importIndex, imported.signature, isNative: true) {
                Trampolines.emitNativeExit(importIndex: UInt32(importIndex), imported.signature, into: &$0)
            }
        }
    }

    private mutating func emitExitTrampoline(_ importIndex: Int, _ signature: Signature, isNative: Bool,
                                             _ emit: (inout Assembler) -> [(offset: Int, event: FrameEvent)]) -> Int {
        let start = alignRoutine()
        let events = emit(&assembler)
        let range = start..<assembler.offset
        finishRoutine(FrameDescription(codeRange: range, events: events))
        trampolines.append(CompiledTrampoline(kind: .exitTrampoline, signature: signature,
                                              importIndex: UInt32(importIndex), isNative: isNative, codeRange: range))
        return start
    }

    // MARK: Stage 3: the image

    /// The machine code, with the CFI right after it (its FDE pointers are
    /// pc-relative and its search table is relative to the code base, so
    /// both must be in the same mapping): the bytes, how many are code, and
    /// where the CFI lies.
    mutating func assemble() throws(CompileError) -> (bytes: [UInt8], codeSize: Int, unwindInfo: UnwindInfoLayout) {
        var bytes: [UInt8]
        do {
            bytes = try assembler.finish()
        } catch {
            throw .invalid("internal: \(error)", offset: nil)
        }
        let codeSize = bytes.count
        let unwindInfo = UnwindInfoEncoder.append(frames, style: configuration.unwindInfo, to: &bytes)
        return (bytes, codeSize, unwindInfo)
    }

    // MARK: Stage 4: tables

    /// One stack map per call site, keyed by its return address's code
    /// offset, and the functions' handler scopes in one table.
    func stackMapTable() throws(CompileError) -> StackMapTable {
        var scopes: [HandlerScope] = []
        var entries: [(offset: UInt32, map: StackMap)] = []
        do {
            for function in functions {
                let base = scopes.count
                scopes += function.handlerScopes.map { HandlerScope(clauses: $0.clauses, parent: $0.parent.map { $0 + base }) }
                for site in function.callSites {
                    var map = try StackMap(frameSize: UInt32(function.frameSize), slotOffsets: site.liveReferenceSlots)
                    map.handlerScope = site.handlerScope.map { $0 + base }
                    entries.append((UInt32(site.returnAddressOffset), map))
                }
            }
            return try StackMapTable(entries: entries, handlerScopes: scopes)
        } catch {
            throw .invalid("internal: \(error)", offset: nil)
        }
    }
}
