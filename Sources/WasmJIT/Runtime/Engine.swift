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

        public init(maximumWasmStackSize: Int = 512 * 1024, hostStackReserve: Int = 128 * 1024,
                    checksStackLimit: Bool = true, unwindInfo: UnwindInfoStyle = .exact) {
            self.maximumWasmStackSize = maximumWasmStackSize
            self.hostStackReserve = hostStackReserve
            self.checksStackLimit = checksStackLimit
            self.unwindInfo = unwindInfo
        }
    }

    public let configuration: Configuration
    /// Called with every module this engine compiles, before it is used
    /// (an unwinder registers the module's CFI here).
    let didCompile: (@Sendable (Module) -> Void)?

    /// An engine; `didCompile` is called with each module it compiles.
    public init(configuration: Configuration = Configuration(), didCompile: (@Sendable (Module) -> Void)? = nil) {
        self.configuration = configuration
        self.didCompile = didCompile
    }
}
