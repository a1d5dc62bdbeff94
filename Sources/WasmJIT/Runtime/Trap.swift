import CWasmUnwindABI
import WasmUnwind
import UnwindReports
import CWasmRuntime

/// Wasm execution stopped: a trap in wasm code, or a host function that
/// failed. Carries the wasm backtrace across every activation at the moment
/// it happened.
public struct Trap: Error, CustomStringConvertible {
    public enum Reason: Sendable {
        /// Wasm code trapped.
        case wasm(TrapCode)
        /// A host function threw this error.
        case host(any Error)
        /// A wasm exception no frame caught (Wasmtime: "thrown Wasm
        /// exception"). Rethrowing the trap from a host function throws
        /// the exception on into the wasm that called the host.
        case exception(WasmException)
    }

    public var reason: Reason
    /// The wasm frames on the stack when the trap happened, newest first.
    public var backtrace: SymbolicatedBacktrace
    /// What caused the trap, when Wasmtime would say more than the trap
    /// code: for an out-of-bounds access, `memory fault at wasm address
    /// 0x10000 in linear memory of size 0x10000`.
    public var cause: String?
    /// The coredump taken at the trap, when the store takes them
    /// (`Store.coredumpOnTrap`).
    public var coredump: CapturedCoredump?
    /// A copy of the trapped stack, when snapshots are on for the thread
    /// (`Store.enableTrapSnapshots`), for captures.
    public var snapshot: TrapSnapshot?
    /// The signal that reported a wasm trap (SIGSEGV for a memory access
    /// past a guard page, SIGILL for a `ud2` stub), or nil when compiled
    /// code raised it by calling the runtime (`TrapInstructions.runtimeCall`).
    public var signal: Int32?

    public init(reason: Reason, backtrace: SymbolicatedBacktrace, cause: String? = nil) {
        self.reason = reason
        self.backtrace = backtrace
        self.cause = cause
    }

    /// The trap code, if wasm code trapped.
    public var code: TrapCode? {
        if case .wasm(let code) = reason { return code }
        return nil
    }

    /// The uncaught wasm exception, if that is what stopped execution.
    public var exception: WasmException? {
        if case .exception(let exception) = reason { return exception }
        return nil
    }

    /// The last line Wasmtime prints: `wasm trap: ...`, or the host error.
    public var message: String {
        switch reason {
        case .wasm(let code): return "wasm trap: \(code.message)"
        case .host(let error): return String(describing: error)
        case .exception: return "thrown Wasm exception"
        }
    }

    /// The trap as a value for formatters.
    public var report: TrapReport {
        // Source lines for modules compiled with backtrace details.
        let (symbols, hint) = SourceLineRegistry.shared.symbols(of: backtrace)
        return TrapReport(message: message, cause: cause, code: code?.rawValue, backtrace: backtrace,
                          exceptionPayload: exception.map { $0.payload.map { "\($0.kind) \($0)" } },
                          sourceSymbols: symbols, detailsHint: hint)
    }

    /// Wasmtime's display of a trap (`TextFormatter.render(_: TrapReport)`):
    ///
    /// ```
    /// error while executing at wasm backtrace:
    ///     0:     0x23 - m!die
    /// wasm trap: wasm `unreachable` instruction executed
    /// ```
    ///
    /// with the cause, if there is one, on the line before the message.
    public var description: String { TextFormatter().render(report) }
}

/// Why wasm code trapped.
///
/// Each code is one of the C header's `wu_trap_code` constants, so trap-site
/// tables, the signal handler and captured stacks agree on the numbers by
/// construction; this type names them and says what Wasmtime prints for
/// each.
public struct TrapCode: RawRepresentable, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    public let rawValue: UInt8

    /// The code with this number, if there is one.
    public init?(rawValue: UInt8) {
        guard Self.allCases.contains(where: { $0.rawValue == rawValue }) else { return nil }
        self.rawValue = rawValue
    }

    init(_ code: wu_trap_code) { rawValue = UInt8(code.rawValue) }

    /// `unreachable` executed (`WU_TRAP_UNREACHABLE`).
    public static var unreachable: TrapCode { TrapCode(WU_TRAP_UNREACHABLE) }
    /// An integer division or remainder by zero (`WU_TRAP_INTEGER_DIVISION_BY_ZERO`).
    public static var integerDivisionByZero: TrapCode { TrapCode(WU_TRAP_INTEGER_DIVISION_BY_ZERO) }
    /// `INT_MIN / -1` (`WU_TRAP_INTEGER_OVERFLOW`).
    public static var integerOverflow: TrapCode { TrapCode(WU_TRAP_INTEGER_OVERFLOW) }
    /// A load or store outside linear memory (`WU_TRAP_OUT_OF_BOUNDS_MEMORY_ACCESS`).
    public static var outOfBoundsMemoryAccess: TrapCode { TrapCode(WU_TRAP_OUT_OF_BOUNDS_MEMORY_ACCESS) }
    /// The wasm stack ran out (`WU_TRAP_STACK_OVERFLOW`).
    public static var stackOverflow: TrapCode { TrapCode(WU_TRAP_STACK_OVERFLOW) }
    /// A float-to-integer `trunc` of NaN (`WU_TRAP_BAD_CONVERSION_TO_INTEGER`).
    public static var badConversionToInteger: TrapCode { TrapCode(WU_TRAP_BAD_CONVERSION_TO_INTEGER) }
    /// A table access or `call_indirect` past the table's end (`WU_TRAP_TABLE_OUT_OF_BOUNDS`).
    public static var tableOutOfBounds: TrapCode { TrapCode(WU_TRAP_TABLE_OUT_OF_BOUNDS) }
    /// `call_indirect` of a null element (`WU_TRAP_INDIRECT_CALL_TO_NULL`).
    public static var indirectCallToNull: TrapCode { TrapCode(WU_TRAP_INDIRECT_CALL_TO_NULL) }
    /// `call_indirect` of a function of another type (`WU_TRAP_BAD_SIGNATURE`).
    public static var badSignature: TrapCode { TrapCode(WU_TRAP_BAD_SIGNATURE) }
    /// `throw_ref` of a null `exnref` (`WU_TRAP_NULL_REFERENCE`).
    public static var nullReference: TrapCode { TrapCode(WU_TRAP_NULL_REFERENCE) }
    /// Stopped from outside: SIGINT, SIGTERM or a timeout (`Interruption`),
    /// or the engine's epoch reached the store's deadline at a compiled
    /// check (`WU_TRAP_INTERRUPT`); Wasmtime's message for an interrupted run.
    public static var interrupt: TrapCode { TrapCode(WU_TRAP_INTERRUPT) }
    /// A compiled fuel check found the store's fuel spent
    /// (`Store.setFuel`, `WU_TRAP_OUT_OF_FUEL`).
    public static var outOfFuel: TrapCode { TrapCode(WU_TRAP_OUT_OF_FUEL) }

    public static let allCases: [TrapCode] = [
        .unreachable, .integerDivisionByZero, .integerOverflow, .outOfBoundsMemoryAccess, .stackOverflow,
        .badConversionToInteger, .tableOutOfBounds, .indirectCallToNull, .badSignature, .nullReference, .interrupt,
        .outOfFuel,
    ]

    /// The message Wasmtime prints for this trap.
    public var message: String {
        switch self {
        case .unreachable: return "wasm `unreachable` instruction executed"
        case .integerDivisionByZero: return "integer divide by zero"
        case .integerOverflow: return "integer overflow"
        case .outOfBoundsMemoryAccess: return "out of bounds memory access"
        case .stackOverflow: return "call stack exhausted"
        case .badConversionToInteger: return "invalid conversion to integer"
        case .tableOutOfBounds: return "undefined element: out of bounds table access"
        case .indirectCallToNull: return "uninitialized element"
        case .badSignature: return "indirect call type mismatch"
        case .nullReference: return "null reference"
        case .interrupt: return "interrupt"
        case .outOfFuel: return "all fuel consumed by WebAssembly"
        default: return "trap code \(rawValue)"
        }
    }

    public var description: String { message }
}
