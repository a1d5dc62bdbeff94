import WasmUnwind

/// Wasm execution stopped: a trap in wasm code, or a host function that
/// failed. Carries the wasm backtrace across every activation at the moment
/// it happened.
public struct Trap: Error, CustomStringConvertible {
    public enum Reason: Sendable {
        /// Wasm code trapped.
        case wasm(TrapCode)
        /// A host function threw this error.
        case host(any Error)
    }

    public var reason: Reason
    /// The wasm frames on the stack when the trap happened, newest first.
    public var backtrace: SymbolicatedBacktrace
    /// A copy of the trapped stack, when snapshots are on for the thread
    /// (`Store.enableTrapSnapshots`), for captures.
    public var snapshot: TrapSnapshot?

    public init(reason: Reason, backtrace: SymbolicatedBacktrace) {
        self.reason = reason
        self.backtrace = backtrace
    }

    /// The trap code, if wasm code trapped.
    public var code: TrapCode? {
        if case .wasm(let code) = reason { return code }
        return nil
    }

    /// The last line Wasmtime prints: `wasm trap: ...`, or the host error.
    public var message: String {
        switch reason {
        case .wasm(let code): return "wasm trap: \(code.message)"
        case .host(let error): return String(describing: error)
        }
    }

    /// Wasmtime's display of a trap:
    ///
    /// ```
    /// error while executing at wasm backtrace:
    ///     0:     0x23 - m!die
    /// wasm trap: wasm `unreachable` instruction executed
    /// ```
    public var description: String {
        "error while executing at wasm backtrace:\n" + backtrace.text() + "\n" + message
    }
}
