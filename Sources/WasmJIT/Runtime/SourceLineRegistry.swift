import Synchronization
import WasmDWARF
import WasmUnwind

/// The live modules that have DWARF, by code range, with their debug
/// information when they were compiled with backtrace details: how a
/// trap's frames find their source lines (or Wasmtime's hint to turn
/// details on).
final class SourceLineRegistry: Sendable {
    static let shared = SourceLineRegistry()

    private let modules = Mutex<[(range: Range<UInt>, info: ModuleDebugInfo, details: Bool)]>([])

    /// `details`: whether traps show the module's lines (else they get
    /// Wasmtime's hint); profiles and tools may use them either way.
    func register(_ info: ModuleDebugInfo, details: Bool, for range: Range<UInt>) {
        modules.withLock { $0.append((range, info, details)) }
    }

    func unregister(_ range: Range<UInt>) {
        modules.withLock { $0.removeAll { $0.range == range } }
    }

    /// The module at `address`, if it has DWARF: its debug information,
    /// nil without details.
    func module(containing address: UInt) -> ModuleDebugInfo?? {
        modules.withLock { modules in modules.first { $0.range.contains(address) }.map { Optional($0.info) } }
    }

    /// Each frame's source symbols, innermost inlined function first (empty
    /// for a frame without), nil when no frame's module has details; and
    /// whether a frame's module has DWARF that details would show.
    func symbols(of backtrace: SymbolicatedBacktrace) -> (symbols: [[SourceSymbol]]?, hint: Bool) {
        var any = false, hint = false
        // One look at the table for the whole backtrace.
        let registered = modules.withLock { $0 }
        guard !registered.isEmpty else { return (nil, false) }
        var last: (range: Range<UInt>, info: ModuleDebugInfo, details: Bool)?
        func module(containing address: UInt) -> ModuleDebugInfo?? {
            if let last, last.range.contains(address) { return .some(last.details ? last.info : nil) }
            guard let found = registered.first(where: { $0.range.contains(address) }) else { return nil }
            last = found
            return .some(found.details ? found.info : nil)
        }
        let symbols = backtrace.frames.map { frame -> [SourceSymbol] in
            guard let offset = frame.symbol?.moduleOffset, let module = module(containing: frame.frame.address.rawValue) else { return [] }
            guard let info = module else {
                hint = true
                return []
            }
            any = true
            return info.symbols(atModuleOffset: offset)
        }
        return (any ? symbols : nil, hint && !any)
    }
}

extension SymbolicatedBacktrace {
    /// Each frame's source symbols (innermost inlined function first; empty
    /// for a frame without) when a frame's module was compiled with
    /// backtrace details on and has DWARF, else nil: what a trap's report
    /// carries, for any backtrace of the reference runtime's code.
    public var sourceSymbols: [[SourceSymbol]]? { SourceLineRegistry.shared.symbols(of: self).symbols }
}
