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

        public init(maximumWasmStackSize: Int = 512 * 1024, hostStackReserve: Int = 128 * 1024) {
            self.maximumWasmStackSize = maximumWasmStackSize
            self.hostStackReserve = hostStackReserve
        }
    }

    public let configuration: Configuration

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }
}
