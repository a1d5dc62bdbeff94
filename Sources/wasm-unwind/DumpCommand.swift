import ArgumentParser
import Foundation
import StackCapture
import UnwindOracle
import WasmUnwind
import UnwindReports
import WasmCoredumpFormat
import WasmDWARF
import WasmJIT

struct DumpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print the backtraces of captured stacks.",
        discussion: """
            Reads each FILE (made by `wasm-unwind run --capture`, a standard wasm \
            coredump — `run --coredump-on-trap`, or any producer's — or an ELF core file \
            of a crashed process: every thread that was running wasm is dumped, the \
            crashing one first; --exe names the program when the core's first mapped \
            file is not it), walks its captured \
            stack with the same walker as a live stack, and prints the wasm frames in \
            Wasmtime's layout with the activation boundaries marked. --roots adds the GC \
            roots found through the captured stack maps; --hybrid prints every frame of \
            the stack where the capture kept the host frames (taken at \
            host.backtrace_all); --verify unwinds the capture again offline with \
            libunwind — registers from the capture, memory from the captured bytes, CFI \
            from the captured tables — and compares frame for frame.

            Frames show source lines (file:line:column, inlined functions) when a \
            module's DWARF is at hand: carried in the capture (taken with backtrace \
            details on), named by --debug-file (the module built with -g, or a separate \
            debug file), found in a --debug-dir by the module's build_id or content, or \
            named by the module's external_debug_info section (docs/source-lines.md).

            --pid PID reads a running process instead (docs/live-processes.md): every \
            thread running wasm, each stopped only for the moment of reading its \
            registers and stack (or not at all when it is in a host call), then \
            resumed; the process runs on.

            A file that cannot be read, a corrupt capture, a broken frame chain or a \
            mismatch is reported (file, section, byte, what was expected; the frames \
            found before a break) and makes the exit status 1; the other files are \
            still dumped. With --format json the dumps of all files are one JSON \
            document.
            """)

    @Argument(help: "Capture files.")
    var files: [String] = []

    @Option(name: .long, help: ArgumentHelp("Read the wasm stacks of this running process (an embedder of the runtime) instead of files.", valueName: "PID"))
    var pid: Int32?

    @Option(name: .long, help: "text (Wasmtime's layout) or json (one document for all files).")
    var format: OutputFormat = .text

    @Flag(name: .long, help: "Also print the GC roots of the captured frames.")
    var roots = false

    @Flag(name: .long, help: "Print every frame of the stack, host and wasm, when the capture has them.")
    var hybrid = false

    @Flag(name: .long, help: "Unwind each capture offline with libunwind and compare with the walk.")
    var verify = false

    @Option(name: .long, help: ArgumentHelp("For a core file: the crashed program (default: the first file the core says was mapped).", valueName: "PATH"))
    var exe: String?

    @Option(name: .long, help: ArgumentHelp("For a core file: write the memory the reader read (a few KiB that `dump` replays like the core) to FILE, for a bug report of the reader.", valueName: "FILE"))
    var recordReads: String?

    @Option(name: .customLong("debug-file"), help: ArgumentHelp("A wasm module with DWARF, or a separate debug file, for source lines of the module it belongs to (by build_id, else by content); repeatable.", valueName: "FILE"))
    var debugFiles: [String] = []

    @Option(name: .customLong("debug-dir"), help: ArgumentHelp("A directory to look for debug files in: BUILDID.debug, BUILDID.wasm, .build-id/XX/REST.debug, the module's external_debug_info name, then every .wasm and .debug file; repeatable.", valueName: "DIR"))
    var debugDirectories: [String] = []

    @Option(name: .customLong("module"), help: ArgumentHelp("For a wasm coredump: a module it names, for function and local names (found by file name or name-section name; default: the path the coredump records); repeatable.", valueName: "PATH"))
    var modules: [String] = []

    func validate() throws {
        guard !files.isEmpty || pid != nil else { throw ValidationError("give at least one capture file, or --pid PID") }
        guard files.isEmpty || pid == nil else { throw ValidationError("give capture files or --pid, not both") }
    }

    func run() throws {
        let search: DebugFileSearch
        do {
            search = try DebugFileSearch(files: debugFiles, directories: debugDirectories)
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        let sink = format.sink()
        var failed = false
        if let pid {
            let dumps = dumpProcess(pid, search)
            for (entry, sound) in dumps {
                if !sound { failed = true }
                try sink.emit(entry)
            }
        }
        for file in files {
            // Each file is read once (a pipe or FIFO has no second reading),
            // as far as it is needed (a core is read where it is looked at).
            let dumps: [(DumpReport.Entry, Bool)]
            do {
                let input = try InputBytes(path: file)
                if input.starts(with: [0x7F, 0x45, 0x4C, 0x46]) {
                    dumps = try dumpCore(input, search)
                } else if input.starts(with: [0x00, 0x61, 0x73, 0x6D]) {
                    dumps = [dumpCoredump(input)]
                } else if input.starts(with: Array("WURECORD".utf8)) {
                    dumps = dumpRecording(input, search)
                } else {
                    dumps = [dump(input, search)]
                }
            } catch let error as InputError {
                printError("error: \(error)")
                dumps = [(.failure(file: file, message: "\(error)"), false)]
            }
            for (entry, sound) in dumps {
                if !sound { failed = true }
                try sink.emit(entry)
            }
        }
        sink.finishDump()
        for (path, file) in search.files where !search.usedFiles.contains(path) {
            printError("warning: --debug-file \(path) matched no module with DWARF in the dumped files"
                       + (file.hasDebugInfo ? " (its build_id: \(file.sections.buildID.map(ModuleIdentity.hex) ?? "none"))" : " (it has no .debug_info section)"))
        }
        if failed { throw ExitCode(1) }
    }

    /// A core file's threads that were running wasm, each dumped as a
    /// capture, the crashing thread first (docs/post-mortem.md).
    func dumpCore(_ input: InputBytes, _ search: DebugFileSearch) throws -> [(DumpReport.Entry, Bool)] {
        let file = input.name
        do {
            let core = ReadRecorder(try CoreFile(input))
            guard let program = exe ?? core.mappedFiles.first?.path else {
                return failure(file, "the core names no mapped files; give the program with --exe")
            }
            let address = try PostMortem.descriptorAddress(in: core, executable: try InputBytes(path: program))
            let threads = try PostMortem.threads(of: core, descriptorAt: address, program: program)
            if let recordReads {
                let recording = ProcessRecording(of: core.process, descriptorAddress: address, reads: core.reads)
                try writeFile(recordReads, recording.serialized(), what: "the reads")
            }
            return dumps(of: threads, file: file, search)
        } catch let error as CoreFileError {
            return failure(file, "\(error)")
        } catch let error as InputError {
            return failure(file, "\(error)")
        }
    }

    /// A standard wasm coredump (ours or another producer's): its threads'
    /// frames with their locals and operand stacks, named from the modules
    /// when they are found.
    func dumpCoredump(_ input: InputBytes) -> (DumpReport.Entry, Bool) {
        let file = input.name
        let coredump: WasmCoredump
        do {
            coredump = try WasmCoredump(parsing: try input.all(limit: InputBytes.defaultStreamLimit))
        } catch {
            printError("\(file): not a valid wasm coredump: \(error)")
            return (.failure(file: file, message: "not a valid wasm coredump: \(error)"), false)
        }
        var warnings: [String] = []
        /// A module's bytes (a .wat is text, read through its binary) and symbols.
        func module(at path: String) throws -> (bytes: [UInt8], symbols: ModuleSymbols) {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            let binary = path.hasSuffix(".wat") ? try Module.binary(ofText: String(decoding: bytes, as: UTF8.self)) : bytes
            return (binary, try ModuleSymbols(parsing: binary))
        }
        let given = modules.compactMap { path -> (path: String, module: (bytes: [UInt8], symbols: ModuleSymbols))? in
            do {
                return (path, try module(at: path))
            } catch {
                warnings.append("--module \(path): \(error)")
                return nil
            }
        }
        let directory = URL(fileURLWithPath: file).deletingLastPathComponent()
        let found = coredump.modules.map { name -> (bytes: [UInt8], symbols: ModuleSymbols)? in
            let base = URL(fileURLWithPath: name).lastPathComponent
            if let match = given.first(where: { URL(fileURLWithPath: $0.path).lastPathComponent == base || $0.module.symbols.moduleName == name }) {
                return match.module
            }
            for candidate in [name, directory.appendingPathComponent(base).path] where FileManager.default.fileExists(atPath: candidate) {
                if let made = try? module(at: candidate) { return made }
            }
            warnings.append("module \(name) not found: its frames show function indices (give it with --module PATH)")
            return nil
        }
        let moduleSymbols = found.map { $0?.symbols }
        var report = CoredumpReport(file: file, dump: coredump, symbols: moduleSymbols)
        // Source lines and variable names from the modules' own DWARF.
        let debugInfo = found.map { module in
            module.flatMap { try? ModuleDebugInfo(module: $0.bytes) }.flatMap { $0.hasDebugInfo ? $0 : nil }
        }
        report.addSources(debugInfo)
        for (index, info) in debugInfo.enumerated() {
            if let problem = info?.diagnostic { warnings.append("module \(coredump.modules[index]): its DWARF: \(problem)") }
        }
        report.warnings = warnings
        for warning in warnings { printError("warning: \(file): \(warning)") }
        return (.coredump(report), true)
    }

    /// A running process's threads that are running wasm, read from
    /// outside; each thread's note says how it was read.
    func dumpProcess(_ pid: Int32, _ search: DebugFileSearch) -> [(DumpReport.Entry, Bool)] {
        let name = "process \(pid)"
        do {
            let process = try LiveProcess(pid: pid)
            if verify {
                // Every thread stopped, and while it is, libunwind-ptrace
                // unwinds it over the live process.
                process.stopsEveryThread = true
                process.whileStopped = { tid, modules in
                    RemoteUnwinder.unwindStoppedThread(tid: tid, tables: modules.map { module in
                        RemoteUnwinder.CodeTable(codeRange: module.machineCodeRange, segmentBase: module.codeBase,
                                                 searchTable: module.searchTable.baseAddress, entries: module.searchTable.bytes.count / 8)
                    }).map(\.ip)
                }
            }
            var read = try process.read()
            for index in read.threads.indices {
                let thread = read.threads[index]
                if let how = read.reads[thread.tid] { read.threads[index].capture.note = "thread \(thread.tid), \(how.description)" }
            }
            if read.retries > 0 { printError("\(name): the descriptor was in change; read again \(read.retries) times") }
            var entries = dumps(of: read.threads, file: "\(name) (\(process.program))", search)
            for (index, thread) in read.threads.enumerated() where index < entries.count {
                guard let ips = read.whileStopped[thread.tid], case .dump(var dump) = entries[index].0,
                      let stack = try? CapturedStack(thread.capture) else { continue }
                let live = Self.liveVerification(ips, stack, dump.backtrace)
                dump.liveVerification = live
                if !live.isMatch { printError("\(name) thread \(thread.tid): libunwind-ptrace disagrees with the walk") }
                entries[index] = (.dump(dump), entries[index].1 && live.isMatch)
            }
            return entries
        } catch {
            return failure(name, error.problem)
        }
    }

    /// libunwind-ptrace's frames (`ips`: the pc, then return addresses) in
    /// wasm functions, against the walk's frames.
    static func liveVerification(_ ips: [UInt], _ stack: CapturedStack, _ walk: SymbolicatedBacktrace) -> LiveVerification {
        var wasm: [UInt] = []
        var other = 0
        for (position, ip) in ips.enumerated() {
            if stack.registry.kind(at: position == 0 ? ip : ip &- 1) == .wasmFunction { wasm.append(ip) } else { other += 1 }
        }
        // libunwind goes on past the outermost activation into the host's
        // frames: those count as other frames too.
        return LiveVerification(libunwind: wasm, walk: walk.frames.map { $0.frame.address.rawValue }, otherFrames: other,
                                activations: Set(walk.frames.map { $0.frame.activation }).count)
    }

    /// A recording of a reader's reads (`--record-reads`), replayed as the
    /// core it was made from.
    func dumpRecording(_ input: InputBytes, _ search: DebugFileSearch) -> [(DumpReport.Entry, Bool)] {
        do {
            let recording = try ProcessRecording(parsing: try input.all(limit: InputBytes.defaultStreamLimit))
            return dumps(of: try PostMortem.threads(of: recording, descriptorAt: recording.descriptorAddress, program: input.name),
                         file: input.name, search)
        } catch {
            return failure(input.name, "\(error)")
        }
    }

    func failure(_ file: String, _ message: String) -> [(DumpReport.Entry, Bool)] {
        printError("\(file): \(message)")
        return [(.failure(file: file, message: message), false)]
    }

    /// Each thread's capture, dumped.
    func dumps(of threads: [PostMortem.ThreadCapture], file: String, _ search: DebugFileSearch) -> [(DumpReport.Entry, Bool)] {
        guard !threads.isEmpty else { return failure(file, "no thread was running wasm") }
        return threads.map { thread in
            let stack: CapturedStack
            do { stack = try CapturedStack(thread.capture) } catch { return failure(file, "thread \(thread.tid): \(error)")[0] }
            var (dump, sound) = stack.dump(file: "\(file) thread \(thread.tid)", roots: roots, hybrid: false, verify: verify,
                                           warnings: [])
            if thread.interruptedInWasm { dump.place = .interrupted }
            addSourceLines(&dump, stack, search, file: file)
            return (.dump(dump), sound)
        }
    }

    /// One file's dump, and whether it was sound. Problems are also
    /// reported on standard error as they are found.
    func dump(_ input: InputBytes, _ search: DebugFileSearch) -> (DumpReport.Entry, Bool) {
        let file = input.name
        func failure(_ message: String) -> (DumpReport.Entry, Bool) {
            printError("\(file): \(message)")
            return (.failure(file: file, message: message), false)
        }
        let bytes: [UInt8]
        do { bytes = try input.all(limit: InputBytes.defaultStreamLimit) } catch { return failure("\(error)") }
        var warnings: [String] = []
        let stack: CapturedStack
        do {
            stack = try CapturedStack(CaptureFile(parsing: bytes, warnings: &warnings))
        } catch {
            return failure("not a valid capture: \(error)")
        }
        for warning in warnings { printError("warning: \(file): \(warning)") }
        var (dump, sound) = stack.dump(file: file, roots: roots, hybrid: hybrid, verify: verify, warnings: warnings)
        addSourceLines(&dump, stack, search, file: file)
        if let error = dump.backtrace.error {
            printError("\(file): the captured frame chain is broken after \(dump.backtrace.frames.count) frames: \(error) [\(error.rule)]")
        }
        if let error = dump.hybridError { printError("\(file): \(error)") }
        return (.dump(dump), sound)
    }

    /// The frames' source lines, from the modules' DWARF wherever `search`
    /// finds it; what could not be found or read is a warning.
    func addSourceLines(_ dump: inout CaptureDump, _ stack: CapturedStack, _ search: DebugFileSearch, file: String) {
        let lines = stack.sourceLines(of: dump.backtrace, search: search, captureDirectory: DebugFileSearch.directory(of: file))
        dump.sourceSymbols = lines.symbols
        dump.moduleDebug = lines.modules
        for problem in lines.problems {
            printError("warning: \(file): \(problem)")
            dump.warnings.append(problem)
        }
    }
}
