import CWasmUnwindABI

/// What code is at an address, for signal handlers: a trap handler asks it
/// whether the faulting pc is in wasm code (take the trap) or not (a host
/// crash: hand the signal on).
///
/// A `CodeRegistry` made with `CodeRegistry(publishingTo:)` publishes every
/// registration here. Publishing allocates and may wait for lookups in
/// progress; `kind(at:in:)` only reads, with atomics, so it may run in a
/// signal handler — keep the map's `handle` in a global the handler reads:
///
/// ```swift
/// let map = SignalSafeCodeMap()
/// var registry = CodeRegistry(publishingTo: map)
/// nonisolated(unsafe) let handle = map.handle
/// // in the handler:
/// if SignalSafeCodeMap.kind(at: pc, in: handle) == .wasmFunction { ... }
/// ```
public final class SignalSafeCodeMap: @unchecked Sendable {
    // SAFETY: made in init, freed in deinit; the embedder must not keep
    // using `handle` in a handler after the map is gone (as with any
    // memory a handler reads).
    private let map: OpaquePointer

    public init() {
        guard let map = wu_code_map_create() else { fatalError("cannot allocate a code map") }
        self.map = map
    }

    deinit { wu_code_map_destroy(map) }

    /// The map for `kind(at:in:)`: a plain pointer a signal handler can
    /// read from a global.
    public var handle: OpaquePointer { map }

    /// Publishes every function and stub of `snapshot`'s modules.
    func publish(_ snapshot: RegistrySnapshot) {
        var entries: [wu_code_map_entry] = []
        for (index, record) in snapshot.records.enumerated() {
            let module = record.module
            let base = module.codeRange.lowerBound
            var pieces = module.functions.map { ($0.codeRange, CodeKind.wasmFunction) }
                + module.stubs.map { ($0.codeRange, $0.kind) }
            pieces.sort { $0.0.lowerBound < $1.0.lowerBound }
            for (range, kind) in pieces where !range.isEmpty {
                entries.append(wu_code_map_entry(start: UInt64(base + range.lowerBound), end: UInt64(base + range.upperBound),
                                                 kind: UInt32(kind.rawValue), module: UInt32(index)))
            }
        }
        guard entries.withUnsafeBufferPointer({ wu_code_map_publish(map, $0.baseAddress, UInt64($0.count)) }) == 0 else {
            fatalError("cannot allocate the published code map")
        }
    }

    /// What the code at `pc` is, from the map `handle` refers to: nil for
    /// an address in no published function or stub. Async-signal-safe: no
    /// allocation, no lock, no Swift object. A trapping pc is looked up as
    /// is; a return address at `pc - 1`.
    public static func kind(at pc: UInt, in handle: OpaquePointer) -> CodeKind? {
        var entry = wu_code_map_entry()
        guard wu_code_map_lookup(handle, UInt64(pc), &entry) != 0 else { return nil }
        return CodeKind(rawValue: UInt8(truncatingIfNeeded: entry.kind))
    }
}
