import WasmCoredumpFormat
import WasmJIT

/// A trap's coredump checked against its backtrace: the same frames —
/// function index and module offset, newest first — and an encoding that
/// reads back to the same coredump (`verify`: every trap of the random
/// programs; CoredumpTests: the C fixtures).
public struct CoredumpCheck {
    public init() {}

    /// The differences (none: they agree) and how many frames were compared.
    public func problems(of trap: Trap) -> (problems: [String], frames: Int) {
        guard let coredump = trap.coredump else { return (["the trap has no coredump"], 0) }
        let instances = coredump.dump.instances
        guard let frames = coredump.dump.threads.first?.frames else { return (["the coredump has no thread"], 0) }
        // Each module's body starts (the coredump keeps its modules alive).
        let symbols = coredump.modules.map { try? ModuleSymbols(parsing: $0.binary) }
        let dumped = frames.map { frame -> String in
            guard Int(frame.instance) < instances.count else { return "instance \(frame.instance)?" }
            let index = Int(instances[Int(frame.instance)].module)
            let offset = symbols[index]?.moduleOffset(function: frame.function, codeOffset: frame.codeOffset) ?? -1
            return "\(coredump.modules[index].name ?? "?")!\(frame.function)@\(offset)"
        }
        let live = trap.backtrace.frames.compactMap { frame -> String? in
            guard let symbol = frame.symbol, let function = symbol.functionIndex else { return nil }
            // A prologue's pc has no offset: the coredump says the body's start.
            let module = coredump.modules.firstIndex { $0.name == symbol.moduleName }
            let offset = symbol.moduleOffset.map(Int.init)
                ?? module.flatMap { symbols[$0]?.moduleOffset(function: function, codeOffset: 0) } ?? -1
            return "\(symbol.moduleName ?? "?")!\(function)@\(offset)"
        }
        var problems: [String] = []
        if dumped != live { problems.append("coredump frames \(dumped)\nbacktrace frames \(live)") }
        let written = coredump.withMemoryBytes
        do {
            let read = try WasmCoredump(parsing: CoredumpEncoder.encode(written))
            if read.threads != written.threads || read.instances != written.instances || read.globals != written.globals
                || read.modules != written.modules || read.memories.map(\.pages) != written.memories.map(\.pages) {
                problems.append("the encoded coredump reads back differently")
            }
        } catch {
            problems.append("the encoded coredump does not read back: \(error)")
        }
        return (problems, frames.count)
    }
}
