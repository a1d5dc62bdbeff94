import WasmCoredumpFormat
import WasmDWARF
@_spi(Tools) import WasmUnwind

// The values that formatters render. Everything the tools print — a trap,
// a captured stack's dump, a hybrid backtrace, a comparison with another
// unwinder, GC roots — is first one of these values; `TextFormatter` and
// `JSONFormatter` turn them into text. Producers never build strings for
// output. (A backtrace alone is the library's `SymbolicatedBacktrace`,
// which renders itself in Wasmtime's layout; a run's events are the
// command line's.)

/// Why wasm stopped, where, and what Wasmtime would say about it.
public struct TrapReport: Hashable, Sendable {
    /// The last line of Wasmtime's display: `wasm trap: ...`, or a host
    /// error's own text.
    public var message: String
    /// A line Wasmtime prints before the message, such as `memory fault at
    /// wasm address 0x10000 in linear memory of size 0x10000`.
    public var cause: String?
    /// The trap code (`wu_trap_code`), nil when a host function failed.
    public var code: UInt8?
    /// The wasm frames across every activation when it happened.
    public var backtrace: SymbolicatedBacktrace
    /// For a wasm exception no frame caught: its payload (`i32 42`).
    public var exceptionPayload: [String]?
    /// With backtrace details: each frame's functions from the module's
    /// DWARF, the innermost inlined one first, with their source lines
    /// (empty for a frame the DWARF says nothing about); nil without.
    public var sourceSymbols: [[SourceSymbol]]?
    /// Whether a frame's module has DWARF that details would show
    /// (Wasmtime's note about `WASMTIME_BACKTRACE_DETAILS=1`).
    public var detailsHint: Bool

    public init(message: String, cause: String? = nil, code: UInt8?, backtrace: SymbolicatedBacktrace,
                exceptionPayload: [String]? = nil, sourceSymbols: [[SourceSymbol]]? = nil, detailsHint: Bool = false) {
        self.message = message
        self.cause = cause
        self.code = code
        self.backtrace = backtrace
        self.exceptionPayload = exceptionPayload
        self.sourceSymbols = sourceSymbols
        self.detailsHint = detailsHint
    }
}

/// One frame of a hybrid backtrace: every frame on the stack in stack
/// order, host frames named by an unwinder that can walk them (libunwind),
/// JIT code from the registry.
public enum HybridFrame: Hashable, Sendable {
    /// Host code: the procedure's name (demangled) and the pc's offset in it.
    case host(pc: UInt, name: String?, offset: UInt)
    /// JIT code that is not a wasm function: a trampoline or a stub.
    case stub(pc: UInt, kind: CodeKind)
    /// A wasm frame of the walk, symbolicated.
    case wasm(SymbolicatedFrame)
    /// A wasm frame the other unwinder saw that the walk does not have.
    case unmatchedWasm(pc: UInt)

    /// The frame's pc (a return address for every frame but the newest).
    public var pc: UInt {
        switch self {
        case .host(let pc, _, _), .stub(let pc, _), .unmatchedWasm(let pc): return pc
        case .wasm(let frame): return frame.frame.address.rawValue
        }
    }
}

/// A GC root as reports show it: the root, its frame symbolicated, and what
/// the embedder knows of the referenced object.
public struct RootReport: Hashable, Sendable {
    public var root: GCRoot
    public var frame: SymbolicatedFrame
    /// The embedder's description of the object (`object 3`), if any.
    public var object: String?

    public init(root: GCRoot, frame: SymbolicatedFrame, object: String? = nil) {
        self.root = root
        self.frame = frame
        self.object = object
    }

    /// The slot's offset from its frame's frame pointer (negative).
    public var frameOffset: Int { Int(bitPattern: root.slotAddress) - Int(bitPattern: root.frame.framePointer) }
}

/// A wasm exception being thrown, as a capture taken at the throw shows
/// it: the payload, and the handler the search found in the newest
/// activation (nil: none; the exception leaves the activation).
public struct ThrowReport: Hashable, Sendable {
    public var payload: [String]
    public var handler: HandlerReport?
    /// Why the search could not finish, if it could not.
    public var searchError: String?

    public init(payload: [String], handler: HandlerReport?, searchError: String? = nil) {
        self.payload = payload
        self.handler = handler
        self.searchError = searchError
    }
}

/// Where a thrown exception resumes: the frame, the clause, the frame's
/// stack pointer and the landing pad.
public struct HandlerReport: Hashable, Sendable {
    public var frameIndex: Int
    public var frame: SymbolicatedFrame
    public var handler: ExceptionHandler
    public var stackPointer: UInt
    public var landingPad: UInt

    public init(match: HandlerMatch, frame: SymbolicatedFrame) {
        frameIndex = match.frameIndex
        self.frame = frame
        handler = match.handler
        stackPointer = match.stackPointer
        landingPad = match.landingPad
    }
}

/// The frame-pointer walk against another unwinder (libunwind), frame for
/// frame, over the JIT code of one or more activations.
public struct FrameComparison: Hashable, Sendable {
    /// What one unwinder saw at one position.
    public struct Entry: Hashable, Sendable {
        public var kind: CodeKind
        /// The pc, where the position is one frame (nil: any trampoline).
        public var pc: UInt?
        /// The start of the procedure the unwinder's unwind information
        /// covers, when it says (libunwind's `unw_get_proc_info`).
        public var procedureStart: UInt?
        /// The registry's view of `pc`.
        public var symbol: FrameSymbol?

        public init(kind: CodeKind, pc: UInt?, procedureStart: UInt? = nil, symbol: FrameSymbol? = nil) {
            self.kind = kind
            self.pc = pc
            self.procedureStart = procedureStart
            self.symbol = symbol
        }
    }

    /// One position in the expected sequence of JIT frames.
    public struct Row: Hashable, Sendable {
        public var index: Int
        /// What the walk and the registry expect here.
        public var expected: Entry?
        /// What the other unwinder found here.
        public var found: Entry?
        public var matches: Bool
        /// Why the row does not match, in words.
        public var problem: String?

        public init(index: Int, expected: Entry?, found: Entry?, matches: Bool, problem: String? = nil) {
            self.index = index
            self.expected = expected
            self.found = found
            self.matches = matches
            self.problem = problem
        }
    }

    /// Every position, matching or not.
    public var rows: [Row]
    /// The wasm frames of the walk that were compared.
    public var framesCompared: Int

    public init(rows: [Row], framesCompared: Int) {
        self.rows = rows
        self.framesCompared = framesCompared
    }

    public var mismatches: [Row] { rows.filter { !$0.matches } }
    public var isMatch: Bool { rows.allSatisfy(\.matches) }
}

/// A captured stack as `wasm-unwind dump` shows it.
public struct CaptureDump: Hashable, Sendable {
    /// Where the capture was taken.
    public enum Place: String, Hashable, Sendable {
        case hostCall = "host-call"
        case trap
        case `throw`
        /// A thread of a core file (or a live process) stopped in wasm code
        /// by a signal, not at a trap or host call.
        case interrupted
    }

    public var file: String
    public var architecture: String
    public var activationCount: Int
    public var stackBytes: Int
    public var moduleCount: Int
    public var place: Place
    public var note: String?
    /// The captured trap, if the capture was taken at one.
    public var trap: CapturedTrap?
    /// The exception, if the capture was taken at a throw.
    public var thrown: ThrowReport?
    public var backtrace: SymbolicatedBacktrace
    /// Each frame's source symbols, innermost inlined function first, when
    /// a module of the capture has debug information (carried in the
    /// capture or found in a debug file); nil when none has.
    public var sourceSymbols: [[SourceSymbol]]?
    /// The modules' identities (build id, content hash) and where their
    /// debug information came from, for modules whose capture says.
    public var moduleDebug: [ModuleDebugReport] = []
    /// With `--roots`: the roots, or why they could not be enumerated.
    public var roots: [RootReport]?
    public var rootsError: String?
    /// With `--hybrid`: every frame of the stack, when the capture kept them.
    public var hybrid: [HybridFrame]?
    public var hybridError: String?
    /// With `--verify`: the offline libunwind comparison, per activation.
    public var verification: [FrameComparison]?
    /// With `dump --pid --verify`: libunwind-ptrace's unwind of the live,
    /// stopped thread compared with the walk.
    public var liveVerification: LiveVerification?
    /// Things a reader should know that do not make the capture unusable
    /// (trailing bytes after the last section).
    public var warnings: [String]

    public init(file: String, architecture: String, activationCount: Int, stackBytes: Int, moduleCount: Int,
                place: Place, note: String?, backtrace: SymbolicatedBacktrace, warnings: [String] = []) {
        self.file = file
        self.architecture = architecture
        self.activationCount = activationCount
        self.stackBytes = stackBytes
        self.moduleCount = moduleCount
        self.place = place
        self.note = note
        self.backtrace = backtrace
        self.warnings = warnings
    }

}

/// A trap as a capture records it: its code and message.
public struct CapturedTrap: Hashable, Sendable {
    public var code: UInt8
    public var message: String

    public init(code: UInt8, message: String) {
        self.code = code
        self.message = message
    }
}

/// The dumps of `wasm-unwind dump`, one per file, in order.
public struct DumpReport: Hashable, Sendable {
    public enum Entry: Hashable, Sendable {
        case dump(CaptureDump)
        /// A standard wasm coredump.
        case coredump(CoredumpReport)
        /// The file could not be read as a capture: why.
        case failure(file: String, message: String)
    }

    public var entries: [Entry]

    public init(entries: [Entry]) { self.entries = entries }
}

/// A captured module's identity and where its debug information was found.
public struct ModuleDebugReport: Hashable, Sendable {
    public var module: String?
    /// The `build_id` section's bytes in hex, if the module has one.
    public var buildID: String?
    /// SHA-256 of the module's bytes, in hex.
    public var contentHash: String
    public var externalDebugInfo: String?
    /// The debug file's path, "the capture", or nil when none was found.
    public var debugSource: String?

    public init(module: String?, buildID: String?, contentHash: String, externalDebugInfo: String?, debugSource: String?) {
        self.module = module
        self.buildID = buildID
        self.contentHash = contentHash
        self.externalDebugInfo = externalDebugInfo
        self.debugSource = debugSource
    }
}

/// A standard wasm coredump as `dump` shows it: its threads' frames with
/// every local and operand value, named from the modules when they are at
/// hand (`symbols`, per coredump module).
public struct CoredumpReport: Hashable, Sendable {
    public var file: String
    public var processName: String
    public var modules: [String]
    /// Per coredump module: its functions' body starts and names, when the
    /// module was found (at its recorded path, or given).
    public var symbols: [ModuleSymbols?]
    public var instances: [WasmCoredump.Instance]
    /// Per memory: its size in pages and the bytes its segments hold.
    public var memories: [(pages: UInt64, bytes: Int)]
    public var globals: [WasmCoredump.Global]
    public var threads: [WasmCoredump.Thread]
    /// Per thread, per frame: what the module's DWARF says about it, when
    /// the module has DWARF (empty otherwise; see ``addSources(_:)``).
    public var sources: [[FrameSource]] = []
    public var warnings: [String] = []

    /// A frame's source-level view: its functions (innermost inlined one
    /// first) with their lines, and the source variables each local and
    /// operand holds at its instruction.
    public struct FrameSource: Hashable, Sendable {
        public var symbols: [SourceSymbol]
        public var variables: [WasmPlace: [String]]
    }

    public init(file: String, dump: WasmCoredump, symbols: [ModuleSymbols?]) {
        self.file = file
        processName = dump.processName
        modules = dump.modules
        self.symbols = symbols
        instances = dump.instances
        memories = dump.memories.map { ($0.pages, $0.segments.reduce(0) { $0 + $1.bytes.count }) }
        globals = dump.globals
        threads = dump.threads
    }

    /// The module of a frame's instance.
    public func module(of frame: WasmCoredump.Frame) -> Int { Int(instances[Int(frame.instance)].module) }

    /// Looks up every frame in its module's DWARF (`debugInfo`, per
    /// coredump module): source lines and the variables in its locals at
    /// the frame's instruction (the trapping one, or the call).
    public mutating func addSources(_ debugInfo: [ModuleDebugInfo?]) {
        sources = threads.map { thread in
            thread.frames.map { frame in
                let module = module(of: frame)
                guard module < debugInfo.count, let info = debugInfo[module],
                      let offset = symbols[module]?.moduleOffset(function: frame.function, codeOffset: frame.codeOffset),
                      let at = UInt32(exactly: offset) else { return FrameSource(symbols: [], variables: [:]) }
                return FrameSource(symbols: info.symbols(atModuleOffset: at), variables: info.variables(atModuleOffset: at))
            }
        }
    }

    /// A frame's DWARF view, if any.
    func source(thread: Int, frame: Int) -> FrameSource? {
        thread < sources.count && frame < sources[thread].count ? sources[thread][frame] : nil
    }

    public static func == (a: CoredumpReport, b: CoredumpReport) -> Bool {
        a.file == b.file && a.processName == b.processName && a.modules == b.modules && a.symbols == b.symbols
            && a.instances == b.instances && a.memories.map(\.pages) == b.memories.map(\.pages)
            && a.memories.map(\.bytes) == b.memories.map(\.bytes) && a.globals == b.globals && a.threads == b.threads
            && a.sources == b.sources && a.warnings == b.warnings
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(file)
        hasher.combine(threads)
    }
}

/// libunwind-ptrace unwinding a stopped thread of a live process (through
/// its host frames too, with the ELF files' unwind information) compared
/// with our walk of the same stop: its frames in wasm functions, in order,
/// must be the walk's frames.
public struct LiveVerification: Hashable, Sendable {
    /// The wasm frames' addresses (pc, then return addresses), newest first.
    public var libunwind: [UInt]
    public var walk: [UInt]
    /// Frames libunwind unwound outside wasm functions (host code and
    /// trampolines) on the way.
    public var otherFrames: Int
    public var activations: Int

    public init(libunwind: [UInt], walk: [UInt], otherFrames: Int, activations: Int) {
        self.libunwind = libunwind
        self.walk = walk
        self.otherFrames = otherFrames
        self.activations = activations
    }

    public var isMatch: Bool { !walk.isEmpty && libunwind == walk }
}
