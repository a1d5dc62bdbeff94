import UnwindOracle
import WasmJIT
import WasmJITTools
@_spi(Tools) import WasmUnwind
import UnwindReports

/// The reference runtime with libunwind watching: every module the engine
/// compiles has its CFI registered with libunwind, and a host function or a
/// trap can be unwound both ways and compared.
public final class OracleSession: Sendable {
    public let engine: Engine

    /// An engine whose modules are registered with libunwind as they are
    /// compiled (and unregistered when they are dropped). With
    /// `observeTraps`, every wasm trap is also unwound by libunwind from its
    /// signal context (`compareAtTrap`). Modules are also published to the
    /// tools `publishing` names (gdb, perf, the post-mortem descriptor).
    public init(configuration: Engine.Configuration = Engine.Configuration(), publishing: ToolPublishing = ToolPublishing(),
                observeTraps: Bool = true) {
        engine = Engine(configuration: configuration, publishing: publishing, didCompile: OracleSession.registerUnwindInfo)
        if observeTraps { Libunwind.observeTraps() }
    }

    /// Registers `module`'s CFI with libunwind for the module's lifetime.
    public static func registerUnwindInfo(_ module: Module) {
        let base = module.code.baseAddress
        do {
            module.attach(try UnwindInfoRegistration(
                codeRange: base..<(base + UInt(module.codeSize)),
                segmentBase: base,
                searchTable: base + UInt(module.unwindInfo.searchTable.lowerBound),
                searchTableEntries: module.unwindInfo.searchTableEntries))
        } catch {
            fatalError("\(error)")
        }
    }

    /// Inside a host function: unwinds with libunwind and with the walker,
    /// and compares.
    public static func compareAtHostCall(_ caller: Caller) -> (comparison: FrameComparison, walk: SymbolicatedBacktrace) {
        let libunwind = Libunwind.unwindHere()
        let walk = caller.backtrace()
        let comparison = FrameComparison(libunwind: libunwind, walk: walk.frames.map(\.frame), trapped: false,
                                         exitTrampolines: usesExitTrampolines(caller.store), registry: caller.store.registry)
        return (comparison, walk)
    }

    /// After a wasm trap on this thread: libunwind's unwind from the trap's
    /// signal context (taken inside the handler) against the trap's walk.
    public static func compareAtTrap(_ trap: Trap, store: Store) -> FrameComparison {
        FrameComparison(libunwind: Libunwind.lastTrapFrames(), walk: trap.backtrace.frames.map(\.frame), trapped: true,
                        exitTrampolines: usesExitTrampolines(store), registry: store.registry)
    }

    /// Inside a host function: every frame on the stack, host and wasm.
    public static func hybridBacktrace(_ caller: Caller) throws -> [HybridFrame] {
        let libunwind = Libunwind.unwindHere(names: true)
        return try HybridBacktrace.merge(libunwind: libunwind, walk: caller.backtrace(),
                                         exitTrampolines: usesExitTrampolines(caller.store), registry: caller.store.registry)
    }

    /// Inside a host function: where an exception of `tag` thrown here
    /// would resume (`Store.handler(for:)`) against libunwind's unwind of
    /// the same stack — the handler frame must be the wasm frame libunwind
    /// reaches at the same depth (same return address), and libunwind's sp
    /// there (from the CFI) the resume sp (from the call-site record's frame
    /// size). `found`: a frame of the activation catches (else nothing is
    /// compared); `problem`: what differs, nil when they agree.
    public static func compareHandler(_ caller: Caller, tag: Tag) -> (found: Bool, problem: String?) {
        let libunwind = Libunwind.unwindHere()
        let match: HandlerMatch?
        do {
            match = try caller.store.handler(for: tag)
        } catch {
            return (false, "the handler search failed: \(error)")
        }
        guard let match else { return (false, nil) }
        let registry = caller.store.registry
        let wasmFrames = libunwind.filter { registry.kind(at: $0.ip &- 1) == .wasmFunction }
        guard match.frameIndex < wasmFrames.count else {
            return (true, "the search stopped at wasm frame \(match.frameIndex); libunwind found \(wasmFrames.count) wasm frames")
        }
        let reached = wasmFrames[match.frameIndex]
        if reached.ip != match.frame.address.rawValue || reached.sp != match.stackPointer {
            return (true, "handler frame \(match.frameIndex): search pc \(hex(match.frame.address.rawValue)) sp \(hex(match.stackPointer)), "
                + "libunwind pc \(hex(reached.ip)) sp \(hex(reached.sp))")
        }
        return (true, nil)
    }

    /// Whether wasm reaches the host through exit trampolines in `store`.
    static func usesExitTrampolines(_ store: Store) -> Bool {
        store.engine.configuration.exitRecording == .trampoline
    }

}
