import WasmDWARF
import CWasmRuntime
import Synchronization
import WasmUnwind

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
    /// What the signal handlers read of the module: its trap sites and
    /// where its routines' frames change.
    let trapSites: TrapSiteTable
    let frameStates: FrameStateTable
    let entryTrampolineOffsets: [Signature: Int]
    /// Per imported function: the offset of its exit trampoline (none for a
    /// host import that inline call sites reach directly).
    let exitTrampolineOffsets: [Int?]
    /// Per imported function: the offset of its native exit trampoline,
    /// for a signature a native host function can have.
    let nativeTrampolineOffsets: [Int?]

    /// Compiles a wasm binary: parses and validates it, compiles its
    /// functions and trampolines (`ModuleCompiler`, stage by stage), maps
    /// the code, builds its tables, and hands the module to the engine's
    /// `didCompile` hook (debuggers, profilers, unwinders) before anything
    /// can run it. `debugFile`, when given, is a separate file with the
    /// module's DWARF (`DebugFile.matches` it), used in place of the
    /// module's own debug sections.
    public init(engine: Engine, binary: [UInt8], debugFile: DebugFile? = nil) throws(CompileError) {
        var compiler = ModuleCompiler(engine: engine, description: try ModuleDescription(parsing: binary))
        try compiler.compileFunctions()
        entryTrampolineOffsets = try compiler.emitEntryTrampolines()
        exitTrampolineOffsets = compiler.emitExitTrampolines()
        nativeTrampolineOffsets = compiler.emitNativeExitTrampolines()
        let image = try compiler.assemble()
        do {
            code = try CodeMemory(code: image.bytes)
        } catch {
            throw .unsupportedFeature("cannot map executable memory: \(error)", offset: nil)
        }
        stackMaps = try compiler.stackMapTable()
        trapSites = TrapSiteTable(compiler.functions)
        frameStates = FrameStateTable(compiler.frames, entryTrampolineStarts: Set(
            compiler.trampolines.filter { $0.kind == .entryTrampoline }.map(\.codeRange.lowerBound)))
        name = compiler.description.moduleName
        self.binary = binary
        codeSize = image.codeSize
        unwindInfo = image.unwindInfo
        functions = compiler.functions
        trampolines = compiler.trampolines
        description = compiler.description
        self.engine = ObjectIdentifier(engine)
        usesTypedFunctionReferences = compiler.usesTypedReferences
        // Source lines: only the section table is read now; the DWARF is
        // parsed when a trap first asks.
        let sections = try? WasmSections(parsing: binary)
        self.debugFile = debugFile?.hasDebugInfo == true ? debugFile : nil
        hasDebugInfo = self.debugFile != nil || sections?.custom[".debug_info"] != nil
        let info = hasDebugInfo ? try? ModuleDebugInfo(module: binary, debugFile: self.debugFile?.bytes) : nil
        debugInfo = engine.configuration.backtraceDetails ? info : nil
        if let info { SourceLineRegistry.shared.register(info, details: engine.configuration.backtraceDetails, for: code.range) }
        do {
            try engine.didCompile?(self)
        } catch let error as CompileError {
            throw error
        } catch {
            throw .toolInterface("\(error)")
        }
    }

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
        if hasDebugInfo { SourceLineRegistry.shared.unregister(code.range) }
    }

    /// The module's DWARF, when the engine shows backtrace details and the
    /// module has a `.debug_info` section.
    public let debugInfo: ModuleDebugInfo?
    /// Whether the module has a `.debug_info` section (details or not).
    public let hasDebugInfo: Bool

    private let identityCache = Mutex<ModuleIdentity??>(nil)

    /// Who the module is, for finding its debug file offline (its
    /// `build_id`, else a SHA-256 of the binary): made when first asked,
    /// once. Nil for a module without code.
    public var identity: ModuleIdentity? {
        identityCache.withLock { cache in
            if let known = cache { return known }
            let made = (try? WasmSections(parsing: binary)).flatMap { ModuleIdentity(module: binary, sections: $0) }
            cache = .some(made)
            return made
        }
    }

    /// The module's `.debug_*` sections as a wasm binary of custom
    /// sections, when the engine shows backtrace details and the module
    /// has DWARF: what a capture carries so that a dump shows the same
    /// source lines as the live trap.
    public var carriedDebugSections: [UInt8]? {
        guard debugInfo != nil else { return nil }
        if let debugFile { return DebugFile.debugSections(of: debugFile.bytes, debugFile.sections) }
        guard let sections = try? WasmSections(parsing: binary) else { return nil }
        return DebugFile.debugSections(of: binary, sections)
    }

    /// The separate debug file the module was compiled with, if any.
    public let debugFile: DebugFile?

    /// The module's code and trap sites as the signal handler sees them.
    var codeRegion: wu_code_region {
        wu_code_region(start: UInt64(code.range.lowerBound), end: UInt64(code.range.upperBound),
                       trap_offsets: trapSites.offsets.baseAddress, trap_codes: trapSites.codes.baseAddress,
                       trap_count: UInt64(trapSites.count), frame_offsets: frameStates.offsets.baseAddress,
                       frame_states: frameStates.states.baseAddress, frame_count: UInt64(frameStates.count))
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
