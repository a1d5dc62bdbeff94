import ArgumentParser
import Foundation
import StackCapture
import WasmCoredumpFormat
@_spi(Tools) import WasmUnwind

/// `wasm-unwind coredump`: a capture, or an ELF core of a crashed embedder,
/// as a standard wasm coredump (docs/post-mortem.md#converting-captures-and-cores).
struct CoredumpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coredump",
        abstract: "Convert a capture or an ELF core file into a standard wasm coredump.",
        discussion: """
            Reads FILE — a capture (`run --capture`, a crash capture) or an ELF core \
            file of a crashed process that embeds the runtime (every thread that was \
            running wasm, through the post-mortem descriptor; --exe names the program \
            when the core's first mapped file is not it) — walks each thread's wasm \
            frames as `dump` does, and writes them as a standard wasm coredump \
            (tool-conventions Coredump.md) to OUTPUT: one `corestack` per thread, each \
            frame's instance (one per module and instance context the frames saved), \
            function index, code offset, and its locals' and operand stack's values \
            from the captured stack (through the FRAME_LAYOUT the capture carries). A \
            capture holds no linear memory or globals: the coredump has none \
            (`run --coredump-on-trap` writes those).

            --pid PID reads a running process instead (docs/live-processes.md): every \
            thread in wasm, each stopped for the moment its registers and stack are \
            copied (none when blocked in a host call), with the values its frames hold \
            then; the process runs on.
            """)

    @Argument(help: "A capture file or an ELF core file.")
    var file: String?

    @Option(name: .long, help: ArgumentHelp("Take the coredump of this running process (an embedder of the runtime) instead.", valueName: "PID"))
    var pid: Int32?

    @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp("Where to write the coredump.", valueName: "OUTPUT"))
    var destination: String

    @Option(name: .long, help: ArgumentHelp("For a core file: the crashed program (default: the first file the core says was mapped).", valueName: "PATH"))
    var exe: String?

    func validate() throws {
        guard (file == nil) != (pid == nil) else { throw ValidationError("give a capture or core FILE, or --pid PID") }
    }

    func run() throws {
        var threads: [(name: String, capture: CaptureFile)] = []
        if let pid {
            let read: LiveProcess.Read
            let process: LiveProcess
            do {
                process = try LiveProcess(pid: pid)
                read = try process.read()
            } catch {
                throw CommandError("\(error)")
            }
            threads = read.threads.map { ("\($0.tid)", $0.capture) }
            guard !threads.isEmpty else { throw CommandError("process \(pid): no thread is running wasm") }
            return try write(threads, processName: process.program, source: "process \(pid)")
        }
        guard let file else { return }
        let input = try InputBytes(path: file)
        var processName = file
        if input.starts(with: [0x7F, 0x45, 0x4C, 0x46]) {
            let core = try CoreFile(input)
            guard let program = exe ?? core.mappedFiles.first?.path else {
                throw CommandError("\(file): the core names no mapped files; give the program with --exe")
            }
            let address = try PostMortem.descriptorAddress(in: core, executable: try InputBytes(path: program))
            threads = try PostMortem.threads(of: core, descriptorAt: address, program: program).map { ("\($0.tid)", $0.capture) }
            processName = program
            guard !threads.isEmpty else { throw CommandError("\(file): no thread was running wasm") }
        } else {
            var warnings: [String] = []
            let capture = try CaptureFile(parsing: try input.all(limit: InputBytes.defaultStreamLimit), warnings: &warnings)
            for warning in warnings { printError("warning: \(file): \(warning)") }
            threads = [("captured", capture)]
        }
        try write(threads, processName: processName, source: file)
    }

    func write(_ threads: [(name: String, capture: CaptureFile)], processName: String, source file: String) throws {
        var converter = Converter(processName: processName)
        for (name, capture) in threads { try converter.add(thread: name, capture) }
        let coredump = converter.coredump
        try writeFile(destination, CoredumpEncoder.encode(coredump), what: "the coredump")
        let frames = coredump.threads.reduce(0) { $0 + $1.frames.count }
        output("\(destination): wasm coredump of \(file): \(coredump.threads.count) thread\(coredump.threads.count == 1 ? "" : "s"), "
               + "\(frames) frame\(frames == 1 ? "" : "s"), \(coredump.modules.count) module\(coredump.modules.count == 1 ? "" : "s"), "
               + "\(coredump.instances.count) instance\(coredump.instances.count == 1 ? "" : "s")")
    }

    /// Threads' captures into one coredump: modules by name and code, one
    /// instance per module and instance context.
    struct Converter {
        var processName: String
        var modules: [String] = []
        var moduleKeys: [String: UInt32] = [:]
        var instances: [WasmCoredump.Instance] = []
        var instanceKeys: [String: UInt32] = [:]
        var threads: [WasmCoredump.Thread] = []

        init(processName: String) { self.processName = processName }

        var coredump: WasmCoredump {
            WasmCoredump(processName: processName, modules: modules, instances: instances, memories: [], globals: [], threads: threads)
        }

        mutating func add(thread name: String, _ capture: CaptureFile) throws {
            let stack = try CapturedStack(capture)
            let backtrace = stack.symbolicated()
            var frames: [WasmCoredump.Frame] = []
            // Each frame's instance context (saved at fp - 8); one the
            // capture does not hold (the newest frame of a capture taken
            // at a host call starts at its fp) is its nearest older frame's
            // of the same module.
            let saved = backtrace.frames.map { stack.memory.loadWord(at: $0.frame.framePointer &- 8) }
            func context(_ index: Int, in module: CaptureFile.Module) -> UInt {
                if let known = saved[index] { return known }
                for older in (index + 1)..<max(index + 1, backtrace.frames.count) {
                    let pc = backtrace.frames[older].frame.address.rawValue
                    if module.codeRange.contains(pc), let known = saved[older] { return known }
                }
                return 0
            }
            for (index, symbolicated) in backtrace.frames.enumerated() {
                let pc = symbolicated.frame.address.rawValue
                guard let symbol = symbolicated.symbol, let functionIndex = symbol.functionIndex,
                      let module = capture.modules.first(where: { $0.codeBase <= pc && pc - $0.codeBase < $0.codeSize }),
                      let function = module.functions.first(where: { $0.codeRange.contains(pc - module.codeBase) })
                else { continue }
                let moduleName = module.name ?? "<anonymous-module-\(modules.count)>"
                let moduleIndex = Self.interned("\(moduleName)@\(module.codeBase)", in: &moduleKeys, next: modules.count) {
                    modules.append(moduleName)
                }
                let instanceIndex = Self.interned("\(moduleIndex)@\(context(index, in: module))", in: &instanceKeys,
                                                  next: instances.count) {
                    instances.append(WasmCoredump.Instance(module: moduleIndex, memories: [], globals: []))
                }
                let offset = symbol.moduleOffset.map { UInt32(clamping: max(0, Int($0) - Int(function.bodyOffset))) } ?? 0
                let (locals, operands) = Self.values(of: symbolicated.frame, function: function, in: module, memory: stack.memory,
                                                     newest: frames.isEmpty)
                frames.append(WasmCoredump.Frame(instance: instanceIndex, function: functionIndex, codeOffset: offset,
                                                 locals: locals, stack: operands))
            }
            threads.append(WasmCoredump.Thread(name: name, frames: frames))
        }

        /// The index `key` has, or `next` when it is new (then `add` adds
        /// what it names).
        static func interned(_ key: String, in keys: inout [String: UInt32], next: Int, add: () -> Void) -> UInt32 {
            if let known = keys[key] { return known }
            keys[key] = UInt32(next)
            add()
            return UInt32(next)
        }

        /// A frame's locals and operand stack from the captured stack,
        /// through the module's frame layout (none without one).
        static func values(of frame: Frame, function: CodeFunction, in module: CaptureFile.Module,
                           memory: CapturedMemoryReader, newest: Bool) -> ([WasmCoredump.Value], [WasmCoredump.Value]) {
            guard let layout = module.frameLayout,
                  let position = module.functions.firstIndex(where: { $0.codeRange == function.codeRange }) else { return ([], []) }
            let pc = frame.address.rawValue
            let offset = UInt32(pc - module.codeBase)
            let kinds: [UInt8]?
            var inPrologue = false
            if frame.address.isReturnAddress {
                kinds = layout.callSites[offset]
            } else if newest, let site = layout.trapSites.keys.filter({ $0 <= offset && offset - $0 < 16 }).max() {
                // A trap's pc is at its site, or inside the stub's call.
                kinds = layout.trapSites[site] ?? nil
                inPrologue = kinds == nil
            } else {
                kinds = nil
            }
            func value(_ type: UInt8, _ displacement: Int) -> WasmCoredump.Value {
                WasmCoredump.Value(slot: memory.loadWord(at: UInt(bitPattern: Int(bitPattern: frame.framePointer) &+ displacement)).map(UInt64.init),
                                   type: type)
            }
            let localKinds = layout.locals[position]
            let locals = localKinds.enumerated().map { index, type in inPrologue ? .missing : value(type, -16 - 8 * index) }
            let operands = (kinds ?? []).enumerated().map { depth, type in value(type, -16 - 8 * localKinds.count - 8 * depth) }
            return (locals, operands)
        }
    }
}
