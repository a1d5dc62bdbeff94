import WasmUnwind
import UnwindReports

/// A captured stack: everything needed to walk, symbolicate, find the roots
/// of, and independently unwind a stack of wasm frames after the process
/// that ran them is gone. The byte layout is in docs/capture-format.md.
public struct CaptureFile: Hashable, Sendable {
    /// The instruction set of the captured code: one of
    /// `FrameArchitectures.all`, by its capture code.
    public struct Architecture: Hashable, Sendable {
        /// The capture code (ARCH section).
        public let rawValue: UInt8

        /// The known architecture with this code, or nil.
        public init?(rawValue: UInt8) {
            guard FrameArchitectures.withCaptureCode(rawValue) != nil else { return nil }
            self.rawValue = rawValue
        }

        public init(_ architecture: any FrameArchitecture.Type) { rawValue = architecture.captureCode }

        public static let x86_64 = Architecture(X86_64.self)
        public static let aarch64 = Architecture(AArch64.self)

        /// What the walker needs of it.
        public var frame: any FrameArchitecture.Type { FrameArchitectures.withCaptureCode(rawValue)! }
        public var name: String { frame.name }

        /// The registers a walk starts from, by their DWARF numbers: what a
        /// capture's REGISTERS section holds of its newest frame.
        public func startRegisters(pc: UInt, fp: UInt, sp: UInt) -> [UInt8: UInt] {
            [frame.dwarfProgramCounter: pc, frame.dwarfFramePointer: fp, frame.dwarfStackPointer: sp]
        }
    }

    /// One activation, newest first: where its newest frame is, and where
    /// its entry trampoline's frame is.
    public struct Activation: Hashable, Sendable {
        /// A return address (the activation called out) or a pc (it trapped).
        public var start: FrameAddress
        public var startFramePointer: UInt
        /// The newest wasm frame's stack pointer, if known (for an
        /// independent unwinder's starting registers, and as the lowest
        /// address the activation's frames may have); 0 when unknown.
        public var startStackPointer: UInt
        public var entryFramePointer: UInt

        public init(start: FrameAddress, startFramePointer: UInt, startStackPointer: UInt, entryFramePointer: UInt) {
            self.start = start
            self.startFramePointer = startFramePointer
            self.startStackPointer = startStackPointer
            self.entryFramePointer = entryFramePointer
        }

        public var bounds: ActivationBounds {
            ActivationBounds(start: start, startFramePointer: startFramePointer, entryFramePointer: entryFramePointer,
                             lowestFramePointer: startStackPointer)
        }
    }

    /// A module's code, as far as unwinding and symbolication need it (not
    /// the code bytes themselves).
    public struct Module: Hashable, Sendable {
        public var name: String?
        public var codeBase: UInt
        /// Bytes from `codeBase`: the machine code and, after it, its CFI.
        public var codeSize: UInt
        public var functions: [CodeFunction]
        /// Trampolines and stubs, sorted by offset.
        public var stubs: [CodeStub]
        public var stackMaps: StackMapTable
        /// The `.eh_frame` bytes at the address they had (inside the code
        /// range, after the last function or stub).
        public var ehFrame: CapturedMemoryReader.Segment
        /// The CFI search table (sorted int32 pairs: code start - code base,
        /// FDE address - code base) at the address it had.
        public var searchTable: CapturedMemoryReader.Segment
        /// Who the wasm module is (to find its debug file offline) and its
        /// DWARF when the capture carries it (MODULE_DEBUG section).
        public var debug: ModuleDebug?
        /// Which values its frames' slots hold (FRAME_LAYOUT section), for
        /// coredumps with values.
        public var frameLayout: FrameLayout?

        public init(name: String?, codeBase: UInt, codeSize: UInt, functions: [CodeFunction], stubs: [CodeStub],
                    stackMaps: StackMapTable, ehFrame: CapturedMemoryReader.Segment,
                    searchTable: CapturedMemoryReader.Segment, debug: ModuleDebug? = nil, frameLayout: FrameLayout? = nil) {
            self.debug = debug
            self.frameLayout = frameLayout
            self.name = name
            self.codeBase = codeBase
            self.codeSize = codeSize
            self.functions = functions
            self.stubs = stubs
            self.stackMaps = stackMaps
            self.ehFrame = ehFrame
            self.searchTable = searchTable
        }

        public var codeRange: Range<UInt> { codeBase..<(codeBase &+ codeSize) }

        /// The machine code alone: from the code base to the CFI.
        public var machineCodeRange: Range<UInt> { codeBase..<ehFrame.baseAddress }

        public var codeModule: CodeModule {
            CodeModule(name: name, codeRange: codeRange, functions: functions, stubs: stubs, stackMaps: stackMaps)
        }
    }

    /// A frame of the whole stack as an independent unwinder saw it at
    /// capture time (host frames included), for `--hybrid`.
    public struct HostFrame: Hashable, Sendable {
        public var pc: UInt
        /// What JIT code the frame is in, or nil for host code.
        public var kind: CodeKind?
        /// The host procedure's name (empty when unknown or for JIT code).
        public var name: String
        public var offset: UInt

        public init(pc: UInt, kind: CodeKind?, name: String, offset: UInt) {
            self.pc = pc
            self.kind = kind
            self.name = name
            self.offset = offset
        }
    }

    public var architecture: Architecture
    /// Registers at the capture point, by DWARF number (x86_64: 0 rax ...
    /// 6 rbp, 7 rsp ... 15 r15, 16 rip).
    public var registers: [UInt8: UInt]
    public var activations: [Activation]
    public var stack: [CapturedMemoryReader.Segment]
    public var modules: [Module]
    public var trap: CapturedTrap?
    public var hostFrames: [HostFrame]?
    public var note: String?
    /// The exception being thrown, for a capture taken at a throw.
    public var thrown: Thrown?

    /// A wasm exception at its throw: which tags of each module are its
    /// tag (so the handler search can run on the capture) and its payload.
    public struct Thrown: Hashable, Sendable {
        /// For each module (by position in `modules`), the indices of its
        /// tags that are the thrown exception's tag (an imported tag and
        /// its exporter's are the same tag).
        public var tags: [[UInt32]]
        /// The payload values as text (`i32 42`).
        public var payload: [String]

        public init(tags: [[UInt32]], payload: [String]) {
            self.tags = tags
            self.payload = payload
        }
    }

    public init(architecture: Architecture = .x86_64, registers: [UInt8: UInt], activations: [Activation],
                stack: [CapturedMemoryReader.Segment], modules: [Module], trap: CapturedTrap? = nil,
                hostFrames: [HostFrame]? = nil, note: String? = nil, thrown: Thrown? = nil) {
        self.architecture = architecture
        self.registers = registers
        self.activations = activations
        self.stack = stack
        self.modules = modules
        self.trap = trap
        self.hostFrames = hostFrames
        self.note = note
        self.thrown = thrown
    }
}
