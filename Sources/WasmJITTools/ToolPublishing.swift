import WasmDWARF
import CWasmTools
import CWasmUnwindABI
import JITCapture
import JITTools
import StackCapture
import WasmJIT
import WasmUnwind

/// What the reference runtime tells the tools about each module it
/// compiles: gdb's JIT interface, a profiler's map or jitdump, the
/// post-mortem descriptor a core file's reader follows. The runtime knows
/// none of them: they are published through the engine's `didCompile`
/// hook (`Engine(configuration:publishing:)`), and each publication lives
/// as long as its module (`Module.attach`).
public struct ToolPublishing: Hashable, Sendable {
    /// Register each module with gdb's JIT interface (`GDBJITImage`:
    /// symbols, CFI and wasm offsets as line numbers). It adds to each
    /// module's load time (docs/debugging.md measures it).
    public var debugInfo: Bool
    /// What each module tells a profiler (docs/debugging.md).
    public var profiling: Profiling
    /// List every module in the post-mortem descriptor
    /// (`wasm_unwind_debug_descriptor`, docs/post-mortem.md), and every
    /// thread that enters wasm, so that a core file leads to the wasm frames.
    public var postMortem: Bool

    public init(debugInfo: Bool = false, profiling: Profiling = .none, postMortem: Bool = false) {
        self.debugInfo = debugInfo
        self.profiling = profiling
        self.postMortem = postMortem
    }

    /// Whether anything is published.
    public var isEmpty: Bool { !debugInfo && profiling == .none && !postMortem }

    /// Publishes `module` to every tool asked for; fails with what could
    /// not be published, and why.
    public func publish(_ module: Module) throws(CompileError) {
        if debugInfo || profiling != .none {
            let description = module.toolDescription
            do {
                if debugInfo { module.attach(try GDBJITImage(description)) }
            } catch {
                throw .toolInterface("cannot register it with gdb's JIT interface: \(error)")
            }
            do {
                switch profiling {
                case .none: break
                case .perfMap: try PerfMap.shared().record(description)
                case .jitDump(let directory): try JitDump.shared(directory: directory).record(description)
                }
            } catch {
                throw .toolInterface("cannot describe it to the profiler: \(error)")
            }
        }
        if postMortem { try Self.listForPostMortem(module) }
    }

    /// Lists the module in the post-mortem descriptor for as long as it
    /// lives: its code range and an image a reader of a core file parses as
    /// a capture. Every thread that enters wasm from now on is listed too
    /// (a core file's reader finds its activations).
    static func listForPostMortem(_ module: Module) throws(CompileError) {
        wu_set_thread_entry_hook(wu_debug_register_current_thread)
        let image = CaptureFile(registers: [:], activations: [], stack: [], modules: [module.captureModule],
                                note: "post-mortem image").serialized()
        let code = module.code
        guard let entry = image.withUnsafeBufferPointer({
            wu_debug_register_module(UInt64(code.baseAddress), UInt64(code.baseAddress) + UInt64(code.size),
                                     $0.baseAddress, UInt64($0.count))
        }) else {
            throw .toolInterface("cannot list it in the post-mortem descriptor: out of memory")
        }
        module.attach(PostMortemEntry(entry))
    }
}

/// What compiled code tells a profiler about itself.
public enum Profiling: Hashable, Sendable {
    /// Nothing.
    case none
    /// A line per function and stub in `/tmp/perf-PID.map` (`PerfMap`):
    /// `perf report` names JIT samples.
    case perfMap
    /// Records in `DIRECTORY/jit-PID.dump` (`JitDump`): names, code, wasm
    /// offsets as lines and unwinding information, for `perf record -k 1`
    /// and `perf inject --jit`.
    case jitDump(directory: String)
}

extension Engine {
    /// An engine whose modules are published as `publishing` says, then
    /// handed to `didCompile`. A jitdump needs room after each routine for
    /// its unwinding data: the configuration is made to leave it.
    public convenience init(configuration: Configuration = Configuration(), publishing: ToolPublishing,
                            didCompile: (@Sendable (Module) throws -> Void)? = nil) {
        var configuration = configuration
        if case .jitDump = publishing.profiling { configuration.leavesUnwindingRoom = true }
        guard !publishing.isEmpty else {
            self.init(configuration: configuration, didCompile: didCompile)
            return
        }
        self.init(configuration: configuration) { module in
            try publishing.publish(module)
            try didCompile?(module)
        }
    }
}

extension Module {
    /// The module's code as debuggers and profilers see it: names, machine
    /// code, CFI, and line numbers — the C or Rust source lines of the
    /// module's DWARF where it has them, else wasm offsets in `NAME.wasm`.
    public var toolDescription: JITCodeDescription {
        let memory = UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: code.baseAddress), count: code.size)
        let sourceLine: (@Sendable (UInt32) -> (file: String, line: UInt32)?)?
        if let info = debugInfo ?? (hasDebugInfo ? try? ModuleDebugInfo(module: binary) : nil) {
            sourceLine = { offset in
                guard let innermost = info.symbols(atModuleOffset: offset).first, let file = innermost.file,
                      let line = innermost.line else { return nil }
                return (file, line)
            }
        } else {
            sourceLine = nil
        }
        // A module named after its file (`kv.wasm`) keeps its name.
        let moduleName = name ?? "module"
        return JITCodeDescription(
            module: codeModule, machineCode: UnsafeRawBufferPointer(rebasing: memory[0..<codeSize]),
            ehFrame: UnsafeRawBufferPointer(rebasing: memory[unwindInfo.ehFrame]),
            sourceName: moduleName.hasSuffix(".wasm") ? moduleName : moduleName + ".wasm", sourceLine: sourceLine)
    }
}

/// A module's entry in the post-mortem descriptor, removed when the module
/// (which holds it) goes.
final class PostMortemEntry: @unchecked Sendable {
    // SAFETY: the entry was made by wu_debug_register_module for this
    // object alone and is freed only here, once.
    let entry: UnsafeMutablePointer<wu_debug_module>
    init(_ entry: UnsafeMutablePointer<wu_debug_module>) { self.entry = entry }
    deinit { wu_debug_unregister_module(entry) }
}
