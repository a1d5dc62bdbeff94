import StackCapture
import CWasmUnwindABI
import JITTools
import Synchronization
import WAT
import WasmParser
import WasmUnwind
import CWasmRuntime
import CWasmTools

/// A compiled wasm module: machine code in executable memory and the tables
/// that describe it (functions, call sites, trap sites, trampolines).
/// Immutable once compiled; it can be instantiated in several stores.
public final class Module: @unchecked Sendable {
    /// The module's name from the name section, if it has one.
    public let name: String?
    /// The wasm binary the module was compiled from.
    public let binary: [UInt8]
    /// The executable code of every function and trampoline.
    public let code: CodeMemory
    /// The defined functions (not imports), in index order.
    public let functions: [CompiledFunction]
    /// Entry and exit trampolines.
    public let trampolines: [CompiledTrampoline]
    /// Bytes of machine code at the start of `code` (the rest is unwind info).
    public let codeSize: Int
    /// Where the DWARF CFI for the code lies in `code`.
    public let unwindInfo: UnwindInfoLayout
    /// One stack map per call site of every function, keyed by the return
    /// address's code offset.
    public let stackMaps: StackMapTable

    let description: ModuleDescription
    /// The engine that compiled the module: type ids in its code are that
    /// engine's, so it can only be instantiated in that engine's stores.
    let engine: ObjectIdentifier
    /// Every trap site's code offset, sorted, and its trap code: plain
    /// memory the signal handler reads (`wu_code_region`).
    let trapOffsets: UnsafeMutableBufferPointer<UInt32>
    let trapCodes: UnsafeMutableBufferPointer<UInt8>
    /// Where each routine's frame changes (`wu_frame_state`), for the
    /// sampling profiler's signal handler: plain memory, like the trap sites.
    let frameOffsets: UnsafeMutableBufferPointer<UInt32>
    let frameStates: UnsafeMutableBufferPointer<UInt8>
    let entryTrampolineOffsets: [Signature: Int]
    /// Per imported function: the offset of its exit trampoline (none for a
    /// host import that inline call sites reach directly).
    let exitTrampolineOffsets: [Int?]
    /// Per imported function: the offset of its native exit trampoline,
    /// for a signature a native host function can have.
    let nativeTrampolineOffsets: [Int?]

    /// Compiles a wasm binary.
    public init(engine: Engine, binary: [UInt8]) throws(CompileError) {
        let description = try ModuleDescription(parsing: binary)
        var usesTypedReferences = description.usesTypedReferences
        var assembler = Assembler()
        let functionLabels = description.bodies.map { _ in assembler.newLabel() }
        let typeIDs = description.signatures.map { $0.map { engine.typeID(of: $0) } ?? 0 }

        var functions: [CompiledFunction] = []
        functions.reserveCapacity(description.bodies.count)
        var frames: [FrameDescription] = []
        /// Records how a routine just emitted changes its frame. With a
        /// jitdump, perf maps each routine's unwinding data right after its
        /// code: room for it is left there.
        func finishRoutine(_ frame: FrameDescription) {
            frames.append(frame)
            guard case .jitDump = engine.configuration.profiling else { return }
            let room = JitDump.unwindingRoom(
                codeSize: frame.codeRange.count, cieSize: UnwindInfoEncoder.cieSize,
                fdeSize: UnwindInfoEncoder.fdeSize(for: frame, style: engine.configuration.unwindInfo))
            for _ in 0..<room { assembler.int3() }
        }
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
            // Functions start 16-byte aligned (a convention, and it keeps
            // function starts apart for the pc - 1 rule).
            while assembler.offset % 16 != 0 { assembler.int3() }
            assembler.bind(functionLabels[definedIndex])
            var compiler = FunctionCompiler(
                module: description, index: index, signature: signature, declaredLocals: declared,
                bodyOffset: body.bodyOffset, functionLabels: functionLabels,
                exitRecording: engine.configuration.exitRecording, typeIDs: typeIDs,
                trapInstructions: engine.configuration.trapInstructions, boundsChecks: engine.configuration.boundsChecks)
            swap(&compiler.assembler, &assembler)
            let compiled = try compiler.compile(body.code)
            swap(&compiler.assembler, &assembler)
            functions.append(compiled)
            finishRoutine(FrameDescription(codeRange: compiled.codeRange, events: compiler.frameEvents))
        }

        var trampolines: [CompiledTrampoline] = []
        var entryOffsets: [Signature: Int] = [:]
        var signatures: [Signature] = []
        for function in functions {
            let signature = try description.signature(ofFunction: function.index, offset: nil)
            if entryOffsets[signature] == nil {
                entryOffsets[signature] = -1
                signatures.append(signature)
            }
        }
        for signature in signatures {
            while assembler.offset % 16 != 0 { assembler.int3() }
            let start = assembler.offset
            let events = Trampolines.emitEntry(signature, into: &assembler)
            let range = start..<assembler.offset
            finishRoutine(FrameDescription(codeRange: range, events: events))
            entryOffsets[signature] = start
            trampolines.append(CompiledTrampoline(kind: .entryTrampoline, signature: signature, importIndex: nil,
                                                  codeRange: range))
        }
        var exitOffsets: [Int?] = []
        // With inline exit recording call sites call the host directly; an
        // exit trampoline is needed only for an import whose reference the
        // module can take (re-exported, in a table or a global: those are
        // called through the trampoline by other modules or `call_indirect`).
        let referenced = description.referencedFunctions
        /// Emits one exit trampoline for import `importIndex`, 16-aligned;
        /// returns its offset.
        func emitExitTrampoline(_ importIndex: Int, _ signature: Signature, isNative: Bool,
                                _ emit: (inout Assembler) -> [(offset: Int, event: FrameEvent)]) -> Int {
            while assembler.offset % 16 != 0 { assembler.int3() }
            let start = assembler.offset
            let events = emit(&assembler)
            let range = start..<assembler.offset
            finishRoutine(FrameDescription(codeRange: range, events: events))
            trampolines.append(CompiledTrampoline(kind: .exitTrampoline, signature: signature,
                                                  importIndex: UInt32(importIndex), isNative: isNative, codeRange: range))
            return start
        }
        for (importIndex, imported) in description.imports.enumerated() {
            guard engine.configuration.exitRecording == .trampoline || referenced.contains(UInt32(importIndex)) else {
                exitOffsets.append(nil)
                continue
            }
            exitOffsets.append(emitExitTrampoline(importIndex, imported.signature, isNative: false) {
                Trampolines.emitExit(importIndex: UInt32(importIndex), imported.signature, into: &$0)
            })
        }
        // A native exit trampoline per import a native host function could
        // satisfy: what calls through the import table (trampoline mode),
        // tables and other modules reach when it is one.
        var nativeOffsets: [Int?] = []
        for (importIndex, imported) in description.imports.enumerated() {
            guard HostFunction.isNativeCompatible(imported.signature) else {
                nativeOffsets.append(nil)
                continue
            }
            nativeOffsets.append(emitExitTrampoline(importIndex, imported.signature, isNative: true) {
                Trampolines.emitNativeExit(importIndex: UInt32(importIndex), imported.signature, into: &$0)
            })
        }

        var bytes: [UInt8]
        do {
            bytes = try assembler.finish()
        } catch {
            throw .invalid("internal: \(error)", offset: nil)
        }
        let codeSize = bytes.count
        // The CFI goes in the same mapping, right after the code: its FDE
        // pointers are pc-relative and its search table is relative to the
        // code base.
        let unwindInfo = UnwindInfoEncoder.append(frames, style: engine.configuration.unwindInfo, to: &bytes)
        do {
            self.code = try CodeMemory(code: bytes)
        } catch {
            throw .unsupportedFeature("cannot map executable memory: \(error)", offset: nil)
        }
        do {
            // The functions' handler scopes, one table for the module.
            var scopes: [HandlerScope] = []
            var entries: [(offset: UInt32, map: StackMap)] = []
            for function in functions {
                let base = scopes.count
                scopes += function.handlerScopes.map { HandlerScope(clauses: $0.clauses, parent: $0.parent.map { $0 + base }) }
                for site in function.callSites {
                    var map = StackMap(frameSize: UInt32(function.frameSize), slotOffsets: site.liveReferenceSlots)
                    map.handlerScope = site.handlerScope.map { $0 + base }
                    entries.append((UInt32(site.returnAddressOffset), map))
                }
            }
            stackMaps = try StackMapTable(entries: entries, handlerScopes: scopes)
        } catch {
            throw .invalid("internal: \(error)", offset: nil)
        }
        let sites = functions.flatMap(\.trapSites).sorted { $0.codeOffset < $1.codeOffset }
        trapOffsets = .allocate(capacity: max(1, sites.count))
        trapCodes = .allocate(capacity: max(1, sites.count))
        for (index, site) in sites.enumerated() {
            trapOffsets[index] = UInt32(site.codeOffset)
            trapCodes[index] = site.code.rawValue | (site.carriesAddress ? UInt8(WU_TRAP_SITE_HAS_ADDRESS) : 0)
                | (site.isMemoryAccess ? UInt8(WU_TRAP_SITE_MEMORY_ACCESS) : 0)
        }
        trapSiteCount = sites.count
        let entryTrampolineStarts = Set(trampolines.filter { $0.kind == .entryTrampoline }.map(\.codeRange.lowerBound))
        let transitions = frames.sorted { $0.codeRange.lowerBound < $1.codeRange.lowerBound }.flatMap { frame in
            let flag = entryTrampolineStarts.contains(frame.codeRange.lowerBound) ? UInt8(WU_FRAME_IN_ENTRY_TRAMPOLINE) : 0
            return frame.stateTransitions.map { (offset: $0.offset, state: UInt8($0.state.rawValue) | ($0.state == WU_FRAME_NONE ? 0 : flag)) }
        }
        frameOffsets = .allocate(capacity: max(1, transitions.count))
        frameStates = .allocate(capacity: max(1, transitions.count))
        var frameCount = 0
        for transition in transitions {
            // A routine's start replaces the padding after the one before.
            if frameCount > 0, frameOffsets[frameCount - 1] == UInt32(transition.offset) { frameCount -= 1 }
            frameOffsets[frameCount] = UInt32(transition.offset)
            frameStates[frameCount] = transition.state
            frameCount += 1
        }
        frameStateCount = frameCount
        self.name = description.moduleName
        self.binary = binary
        self.codeSize = codeSize
        self.unwindInfo = unwindInfo
        self.functions = functions
        self.trampolines = trampolines
        self.description = description
        self.engine = ObjectIdentifier(engine)
        self.usesTypedFunctionReferences = usesTypedReferences
        self.entryTrampolineOffsets = entryOffsets
        self.exitTrampolineOffsets = exitOffsets
        self.nativeTrampolineOffsets = nativeOffsets
        try publishToTools(engine.configuration)
        if engine.configuration.postMortem { try publishForPostMortem() }
        engine.didCompile?(self)
    }

    /// The module's code as debuggers and profilers see it: names, machine
    /// code, CFI, and wasm offsets as line numbers in `NAME.wasm`.
    public var toolDescription: JITCodeDescription {
        let memory = UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: code.baseAddress), count: code.size)
        return JITCodeDescription(
            module: codeModule, machineCode: UnsafeRawBufferPointer(rebasing: memory[0..<codeSize]),
            ehFrame: UnsafeRawBufferPointer(rebasing: memory[unwindInfo.ehFrame]),
            sourceName: (name ?? "module") + ".wasm")
    }

    /// What a capture — and the post-mortem descriptor — keeps of the
    /// module: names, address maps, stack maps and CFI at their addresses.
    public var captureModule: CaptureFile.Module {
        let base = code.baseAddress
        let bytes = code.bytes
        return CaptureFile.Module(
            name: name, codeBase: base, codeSize: UInt(code.size),
            functions: codeModule.functions, stubs: codeModule.stubs, stackMaps: stackMaps,
            ehFrame: .init(baseAddress: base + UInt(unwindInfo.ehFrame.lowerBound), bytes: Array(bytes[unwindInfo.ehFrame])),
            searchTable: .init(baseAddress: base + UInt(unwindInfo.searchTable.lowerBound),
                               bytes: Array(bytes[unwindInfo.searchTable])))
    }

    /// Lists the module in the post-mortem descriptor
    /// (`wasm_unwind_debug_descriptor`) for as long as it lives: its code
    /// range and an image a reader of a core file parses as a capture.
    private func publishForPostMortem() throws(CompileError) {
        let image = CaptureFile(registers: [:], activations: [], stack: [], modules: [captureModule],
                                note: "post-mortem image").serialized()
        guard let entry = image.withUnsafeBufferPointer({
            wu_debug_register_module(UInt64(code.baseAddress), UInt64(code.baseAddress) + UInt64(code.size),
                                     $0.baseAddress, UInt64($0.count))
        }) else {
            throw .toolInterface("cannot list it in the post-mortem descriptor: out of memory")
        }
        attach(PostMortemEntry(entry))
    }

    /// Registers the code with gdb and the profiler the configuration asks
    /// for; the gdb image lives as long as the module.
    private func publishToTools(_ configuration: Engine.Configuration) throws(CompileError) {
        guard configuration.debugInfo || configuration.profiling != .none else { return }
        let description = toolDescription
        do {
            if configuration.debugInfo { attach(try GDBJITImage(description)) }
        } catch {
            throw .toolInterface("cannot register it with gdb's JIT interface: \(error)")
        }
        do {
            switch configuration.profiling {
            case .none: break
            case .perfMap: try PerfMap.shared().record(description)
            case .jitDump(let directory): try JitDump.shared(directory: directory).record(description)
            }
        } catch {
            throw .toolInterface("cannot describe it to the profiler: \(error)")
        }
    }

    let trapSiteCount: Int
    let frameStateCount: Int

    /// Whether the module declares typed function references (`(ref $t)`,
    /// `(ref func)`, `nullfuncref` ...). They run as `funcref`; the
    /// compiler validates them as `funcref` too, so it accepts some modules
    /// the typed function references proposal rejects (a null where a
    /// non-null reference is required).
    public let usesTypedFunctionReferences: Bool

    /// Objects that live exactly as long as the module, released before its
    /// code is unmapped (an unwinder's registration of the module's CFI).
    private let attachments = Mutex<[any AnyObject & Sendable]>([])

    /// Keeps `object` alive until the module is dropped; it is released
    /// before the module's code is unmapped.
    public func attach(_ object: any AnyObject & Sendable) {
        attachments.withLock { $0.append(object) }
    }

    deinit {
        attachments.withLock { $0.removeAll() }
        trapOffsets.deallocate()
        trapCodes.deallocate()
        frameOffsets.deallocate()
        frameStates.deallocate()
    }

    /// The module's code and trap sites as the signal handler sees them.
    var codeRegion: wu_code_region {
        wu_code_region(start: UInt64(code.range.lowerBound), end: UInt64(code.range.upperBound),
                       trap_offsets: trapOffsets.baseAddress, trap_codes: trapCodes.baseAddress,
                       trap_count: UInt64(trapSiteCount), frame_offsets: frameOffsets.baseAddress,
                       frame_states: frameStates.baseAddress, frame_count: UInt64(frameStateCount))
    }

    /// Compiles WebAssembly text, turned into a binary by WasmKit's
    /// `wat2wasm` with the name section on (so offsets and names are those
    /// of `wat2wasm --debug-names`).
    public convenience init(engine: Engine, text: String) throws(CompileError) {
        try self.init(engine: engine, binary: TextParsing.binary(of: text))
    }

    /// The binary `init(engine:text:)` compiles: WasmKit's `wat2wasm` of
    /// the text, with the name section.
    public static func binary(ofText text: String) throws(CompileError) -> [UInt8] {
        try TextParsing.binary(of: text)
    }

    /// Whether the module has a start function (run at instantiation).
    public var hasStartFunction: Bool { description.start != nil }

    /// The names of the exported functions, in export order (tables,
    /// memories, globals and tags are not functions: `--invoke` cannot call
    /// them).
    public var exportNames: [String] {
        description.exportOrder.filter { if case .function? = description.exports[$0] { return true } else { return false } }
    }

    /// The names of every export — functions, tables, memories, globals,
    /// tags — in export order.
    public var allExportNames: [String] { description.exportOrder }

    /// The signature of the exported function `name`, if there is one.
    public func exportedSignature(_ name: String) -> Signature? {
        guard case .function(let index)? = description.exports[name] else { return nil }
        return signature(ofFunction: index)
    }

    /// The signature of function `index` (imports first).
    public func signature(ofFunction index: UInt32) -> Signature? {
        try? description.signature(ofFunction: index, offset: nil)
    }

    /// The imported functions: module, name and signature, by import index.
    public var imports: [(module: String, name: String, signature: Signature)] {
        description.imports.map { ($0.module, $0.name, $0.signature) }
    }

    /// The module names the module imports anything from (functions,
    /// tables, memory, globals), in import order without repeats.
    public var importModuleNames: [String] {
        var names: [String] = []
        let all = description.imports.map(\.module) + description.tableImports.map(\.module)
            + (description.memoryImport.map { [$0.module] } ?? []) + description.globalImports.map(\.module)
        for name in all where !names.contains(name) { names.append(name) }
        return names
    }

    /// The module's code as the code registry describes it: functions,
    /// trampolines and stack maps.
    public var codeModule: CodeModule {
        CodeModule(name: name, codeRange: code.range, functions: functions.map { function in
            CodeFunction(index: function.index, name: function.name,
                         codeRange: UInt(function.codeRange.lowerBound)..<UInt(function.codeRange.upperBound),
                         bodyOffset: UInt32(function.bodyOffset), addressMap: function.addressMap)
        }, stubs: trampolines.sorted { $0.codeRange.lowerBound < $1.codeRange.lowerBound }.map { trampoline in
            CodeStub(kind: trampoline.kind,
                     codeRange: UInt(trampoline.codeRange.lowerBound)..<UInt(trampoline.codeRange.upperBound),
                     name: name(of: trampoline))
        }, stackMaps: stackMaps)
    }

    /// A trampoline's name for debuggers and profilers: `entry trampoline
    /// (i32) -> (i32)`, `exit trampoline for host::print_i32`.
    public func name(of trampoline: CompiledTrampoline) -> String {
        if let index = trampoline.importIndex {
            let imported = description.imports[Int(index)]
            return "\(trampoline.isNative ? "native " : "")\(trampoline.kind) for \(imported.module)::\(imported.name)"
        }
        return "\(trampoline.kind) \(trampoline.signature)"
    }

    /// The compiled function with index `index` (imports first), if defined.
    public func compiledFunction(_ index: UInt32) -> CompiledFunction? {
        let defined = Int(index) - description.imports.count
        return functions.indices.contains(defined) ? functions[defined] : nil
    }
}

/// A module's entry in the post-mortem descriptor, removed when the module
/// (which holds it) goes.
final class PostMortemEntry: @unchecked Sendable {
    let entry: UnsafeMutablePointer<wu_debug_module>
    init(_ entry: UnsafeMutablePointer<wu_debug_module>) { self.entry = entry }
    deinit { wu_debug_unregister_module(entry) }
}
