import CWasmRuntime
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Compilation and execution settings shared by modules and stores.
public final class Engine: Sendable {
    public struct Configuration: Hashable, Sendable {
        /// How far below the stack pointer of the outermost host -> wasm
        /// entry wasm may grow the stack before trapping with "call stack
        /// exhausted". Wasmtime's default is 512 KiB too.
        public var maximumWasmStackSize: Int
        /// Stack kept free for host code below the wasm stack limit, when the
        /// thread's stack is smaller than the maximum wasm stack.
        public var hostStackReserve: Int
        /// Whether function prologues enforce the stack limit. Off, only the
        /// thread's guard page stops runaway recursion (the trap handler
        /// still reports "call stack exhausted", from its alternate stack);
        /// that is the robustness layer, and turning the check off is how it
        /// is tested.
        public var checksStackLimit: Bool
        /// The DWARF CFI emitted for generated code (`.exact` unless a test
        /// needs CFI that is known to be wrong).
        public var unwindInfo: UnwindInfoStyle
        /// Where a call from wasm to a host function records the exit
        /// frame pointer and pc (docs/runtime.md).
        public var exitRecording: ExitRecording
        /// How a trap that compiled code detects itself (`unreachable`,
        /// division, conversion, `call_indirect`, the stack limit) leaves
        /// wasm (docs/traps.md).
        public var trapInstructions: TrapInstructions
        /// How loads and stores of linear memory stay inside it.
        public var boundsChecks: BoundsChecks
        /// Whether each routine is followed by room for a profiler to map
        /// its unwinding data there (perf's jitdump needs it; the tools set
        /// it when they publish modules to one).
        public var leavesUnwindingRoom: Bool
        /// Whether trap backtraces name source lines and inlined functions
        /// from modules' DWARF (Wasmtime's `wasm_backtrace_details`). The
        /// default follows `WASMTIME_BACKTRACE_DETAILS=1` in the
        /// environment, as Wasmtime's does.
        public var backtraceDetails: Bool
        /// Whether compiled code checks the engine's epoch against its
        /// store's deadline at every function entry and loop header, and
        /// traps with `.interrupt` once it is reached (Wasmtime's
        /// `epoch_interruption`): how a timeout or Ctrl-C stops wasm with
        /// no signal to it (`Engine.incrementEpoch`,
        /// `Store.setEpochDeadline`, `Interruption`).
        public var epochInterruption: Bool
        /// Whether compiled code counts fuel (Wasmtime's `consume_fuel`, the
        /// same cost per instruction) and traps with `.outOfFuel` at a
        /// function entry or loop header once the store's is spent
        /// (`Store.setFuel`).
        public var consumesFuel: Bool
        /// Whether a trap the code detects itself (division, `unreachable`,
        /// a conversion, `call_indirect`, the stack limit, a check) first
        /// executes `int3` at the trapping instruction: under a debugger the
        /// program stops there with SIGTRAP, the trapping wasm frame newest,
        /// and `continue` goes on to the trap. Without a debugger that
        /// SIGTRAP ends the process: `run --debug-info` sets it only when a
        /// tracer is attached. (Memory faults and `ud2` traps stop a
        /// debugger by their own signal.)
        public var stopsDebuggerAtTraps: Bool = false

        /// Whether the environment asks for backtrace details.
        public static var detailsFromEnvironment: Bool {
            guard let value = getenv("WASMTIME_BACKTRACE_DETAILS") else { return false }
            return String(cString: value) == "1"
        }

        public init(maximumWasmStackSize: Int = 512 * 1024, hostStackReserve: Int = 128 * 1024,
                    checksStackLimit: Bool = true, unwindInfo: UnwindInfoStyle = .exact,
                    exitRecording: ExitRecording = .trampoline, trapInstructions: TrapInstructions = .runtimeCall,
                    boundsChecks: BoundsChecks = .guardPages, leavesUnwindingRoom: Bool = false,
                    backtraceDetails: Bool = Configuration.detailsFromEnvironment,
                    epochInterruption: Bool = false, consumesFuel: Bool = false) {
            self.maximumWasmStackSize = maximumWasmStackSize
            self.hostStackReserve = hostStackReserve
            self.checksStackLimit = checksStackLimit
            self.unwindInfo = unwindInfo
            self.exitRecording = exitRecording
            self.trapInstructions = trapInstructions
            self.boundsChecks = boundsChecks
            self.leavesUnwindingRoom = leavesUnwindingRoom
            self.backtraceDetails = backtraceDetails
            self.epochInterruption = epochInterruption
            self.consumesFuel = consumesFuel
        }
    }

    public let configuration: Configuration
    /// Engine-wide ids of signatures, so `call_indirect` can compare types
    /// across modules with one integer comparison.
    private let signatureIDs = Mutex<[Signature: UInt32]>([:])

    /// The id of `signature`: equal signatures have equal ids in every
    /// module this engine compiles.
    func typeID(of signature: Signature) -> UInt32 {
        signatureIDs.withLock { ids in
            if let id = ids[signature] { return id }
            let id = UInt32(ids.count + 1)
            ids[signature] = id
            return id
        }
    }
    /// Called with every module this engine compiles, before it is used:
    /// where tools learn of the code (an unwinder registers its CFI, a
    /// debugger its symbols, a core file's reader its tables). An error
    /// fails the compilation (`CompileError.toolInterface`).
    let didCompile: (@Sendable (Module) throws -> Void)?

    /// The engine's epoch, which compiled epoch checks read.
    let epoch = EpochCounter()

    /// Advances the engine's epoch by one: wasm of every store whose
    /// deadline it reaches traps with `.interrupt` at its next function
    /// entry or loop header (with `epochInterruption`). From any thread,
    /// and from a signal handler: one atomic add.
    public func incrementEpoch() { wu_epoch_increment(epoch.address) }

    /// The engine's epoch now.
    public var currentEpoch: UInt64 { wu_epoch_load(epoch.address) }

    /// An engine; `didCompile` is called with each module it compiles.
    public init(configuration: Configuration = Configuration(), didCompile: (@Sendable (Module) throws -> Void)? = nil) {
        self.configuration = configuration
        self.didCompile = didCompile
    }
}

/// Where wasm -> host calls record the exit frame pointer and pc.
public enum ExitRecording: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// A generated exit trampoline per import records them (its caller's fp
    /// and its own return address) and calls the host: Wasmtime's design.
    case trampoline
    /// The calling wasm function records them at the call site — its own fp
    /// and the address of a label bound right after the call, taken before
    /// the call with `lea` — and calls the host directly: the seed issue's
    /// `get_call_return_address` proposal. No trampoline frame in between.
    case inline
    /// Like `.inline`, but records a deliberately imprecise pc: the end of
    /// the calling function's first instruction instead of the return
    /// address. The backtrace still names the function; stack-map lookups
    /// fail. Exists to show why the precise return address matters.
    @_spi(Testing) case inlineWithImprecisePCForTesting = "inline-imprecise"

    public var description: String { rawValue }
}

/// How compiled code leaves wasm at a trap it detects itself.
public enum TrapInstructions: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// The trap stub calls the runtime's trap entry (`wu_trap_raise`),
    /// which records the trap, walks the stack and jumps out: no signal.
    case runtimeCall = "call"
    /// The trap stub is a `ud2`: the signal handler takes the SIGILL. The
    /// path every memory fault takes anyway; kept so it stays tested.
    case ud2

    public var description: String { rawValue }
}

/// How loads and stores of linear memory stay inside it.
public enum BoundsChecks: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// No check: memory is one reservation covering every address a
    /// 32-bit index plus offset can form, inaccessible past its size, so an
    /// access outside faults and the signal handler turns the fault into
    /// "out of bounds memory access" (how production runtimes do it on
    /// 64-bit hosts).
    case guardPages = "guard-pages"
    /// Each access compares its end with the memory's size first and
    /// branches to a trap stub.
    case explicit

    public var description: String { rawValue }
}

/// A 64-bit counter at a fixed address: compiled code reads it, any thread
/// or signal handler advances it atomically.
final class EpochCounter: @unchecked Sendable {
    // SAFETY: allocated in init and freed in deinit, after every instance
    // (whose contexts point here) is gone — instances keep their store and
    // the store its engine; read and advanced only with atomic operations
    // (`wu_epoch_load`, `wu_epoch_increment`).
    let address: UnsafeMutablePointer<UInt64>

    init() {
        address = .allocate(capacity: 1)
        address.initialize(to: 0)
    }

    deinit { address.deallocate() }
}
