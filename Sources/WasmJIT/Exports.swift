// The runtime's API speaks in the embedder library's types (backtraces,
// frames, limits), so importing the runtime imports them too.
@_exported import WasmUnwind
