import Foundation
import UnwindReports
import WasmJIT
import WasmUnwind

/// Runs the same programs on the reference runtime and on real Wasmtime
/// (through scripts/wasmtime-oracle.py and the `wasmtime` Python package)
/// and compares, call by call: the results, or the trap's message and its
/// frames — module, function, module offset — newest first. Wasmtime keeps
/// the newest 20 frames of a trap by default; those are compared.
public final class WasmtimeComparison {
    public struct Mismatch: Sendable {
        public var program: String
        public var call: String
        public var report: String

        public init(program: String, call: String, report: String) {
            self.program = program
            self.call = call
            self.report = report
        }
    }

    public struct Summary: Sendable {
        public var programs = 0
        public var calls = 0
        public var traps = 0
        public var framesCompared = 0
        /// Calls that differ only as docs/runtime.md says they must (the
        /// trap of an `unreachable` alone on a conditional path).
        public var knownDifferences = 0
        /// Handler frames (found at a `host.throw` of an exception program)
        /// compared with libunwind's frame at the same depth.
        public var handlerChecks = 0
        /// With backtrace details: frames whose display (functions, files,
        /// lines, columns) was compared with Wasmtime's.
        public var detailFramesCompared = 0
        /// With backtrace details, frames at a known difference's first
        /// frame (our offset is the `unreachable`, Wasmtime's the branch):
        /// the module, our offset and our display of the frame, for a
        /// check against `wasm-tools addr2line` at our offset.
        public var detailsAtOurOffset: [(module: String, offset: Int, display: [String])] = []
        public var mismatches: [Mismatch] = []

        public init() {}
    }

    /// Frames of a trap Wasmtime records by default.
    public static let wasmtimeFrameLimit = 20

    /// With fuel (an engine configuration with `consumesFuel`): each call
    /// is made again with budgets around what it spends on Wasmtime (none,
    /// 1, and what it spends minus 1, exactly and plus 1) and this many
    /// more, drawn below it; the outcome at each budget and the fuel left
    /// are compared. 0: calls are made once, with all the fuel they want.
    public var fuelBudgets = 0
    /// With epoch checks (an engine configuration with
    /// `epochInterruption`): each call starts with the store's deadline one
    /// tick ahead, and every third `host.check` of a linked program's call
    /// advances the epoch, so the call stops at the next function entry or
    /// loop header after it — where Wasmtime's stops, compared frame for
    /// frame.
    public static let checksPerTick = 3
    /// `host.check`s so far in this call.
    var checksThisCall = 0
    /// Calls compared with a budget of fuel.
    public private(set) var fuelCallsCompared = 0
    /// What a store starts with, and a call's fuel when it is measured.
    static let ampleFuel: UInt64 = 1 << 40

    /// A call of an export, with the fuel its store gets first (nil: as it is).
    struct Call {
        var export: String
        var arguments: [Value]
        var fuel: UInt64?
        var description: String { "\(export)\(arguments)" + (fuel.map { " with fuel \($0)" } ?? "") }
    }

    private let process: Process
    private let input: FileHandle
    private let output: FileHandle
    private var buffered = Data()
    /// Where each module compared from a file is, by the name its frames carry.
    private var modulePaths: [String: String] = [:]
    public let engine: Engine
    private let directory: URL

    /// Starts the Python helper `script` with `python`.
    public init(python: String, script: String, configuration: Engine.Configuration = Engine.Configuration()) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script]
        // Wasmtime shows source lines exactly when we do.
        var environment = ProcessInfo.processInfo.environment
        environment["WASMTIME_BACKTRACE_DETAILS"] = configuration.backtraceDetails ? "1" : "0"
        process.environment = environment
        let toHelper = Pipe(), fromHelper = Pipe()
        process.standardInput = toHelper
        process.standardOutput = fromHelper
        try process.run()
        input = toHelper.fileHandleForWriting
        output = fromHelper.fileHandleForReading
        // Modules' CFI registered with libunwind: exception programs check
        // each handler search against it.
        engine = OracleSession(configuration: configuration, observeTraps: false).engine
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("wasm-unwind-wasmtime-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    deinit {
        try? input.close()
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: directory)
    }

    // MARK: Programs

    /// A generated two-module program, each of its arguments a call.
    public func compare(_ program: LinkedProgram, into summary: inout Summary) {
        compareTwoModules(name: "linked program seed \(program.seed)", lib: program.lib, main: program.main,
                          text: program.text, arguments: program.arguments, host: "linked", into: &summary) { store in
            let engine = self.engine
            return try LinkedProgramHost.instantiate(program, in: store, engine: engine, tick: { [unowned self] in
                checksThisCall += 1
                if engine.configuration.epochInterruption && checksThisCall % Self.checksPerTick == 0 { engine.incrementEpoch() }
            }).main
        }
    }

    /// An exception program: results (which handler took which payload)
    /// and, for an exception no frame catches, the message and the frames
    /// at the throw.
    /// At every `host.throw`, the handler search that throw runs is also
    /// checked against libunwind (`OracleSession.compareHandler`).
    public func compare(_ program: ExceptionProgram, into summary: inout Summary) {
        var checks = 0
        var disagreements: [String] = []
        compareTwoModules(name: "exception program seed \(program.seed)", lib: program.lib, main: program.main,
                          text: program.text, arguments: program.arguments, host: "exceptions", into: &summary) { store in
            try ExceptionProgramHost.instantiate(program, in: store, engine: self.engine) { caller, tag in
                let (found, problem) = OracleSession.compareHandler(caller, tag: tag)
                if found { checks += 1 }
                if let problem { disagreements.append(problem) }
            }.main
        }
        summary.handlerChecks += checks
        for problem in disagreements {
            summary.mismatches.append(Mismatch(program: "exception program seed \(program.seed)\n" + program.text,
                                               call: "host.throw", report: "libunwind: \(problem)"))
        }
    }

    /// `lib` then `main` instantiated with the host functions `host` names
    /// (ours by `instantiate`), `main.entry` called with each argument on
    /// both runtimes.
    func compareTwoModules(name: String, lib: String, main: String, text: String, arguments: [Int32], host: String,
                           into summary: inout Summary, instantiate: (Store) throws -> Instance) {
        summary.programs += 1
        do {
            let libBinary = try TextToBinary.binary(lib), mainBinary = try TextToBinary.binary(main)
            let mainInstance = try instantiate(try fueledStore())
            let moduleList = [("lib", libBinary), ("main", mainBinary)]
            let calls = try budgeted(arguments.map { Call(export: "entry", arguments: [Value.i32($0)]) },
                                     modules: moduleList, host: host)
            let theirs = try ask(modules: moduleList, host: host, calls: calls)
            var modules: [String: [UInt8]] = [:]
            for binary in [libBinary, mainBinary] {
                if let name = try Module(engine: engine, binary: binary).name { modules[name] = binary }
            }
            for (call, answer) in zip(calls, theirs) {
                checksThisCall = 0
                let ours = Outcome(calling: mainInstance.export(call.export)!, call.arguments, fileName: nil,
                                   fuel: call.fuel, store: mainInstance.store)
                compare(ours, answer, program: name + "\n" + text, call: call.description,
                        modules: modules, into: &summary)
            }
        } catch {
            summary.mismatches.append(Mismatch(program: name + "\n" + text, call: "-", report: "\(error)"))
        }
    }

    /// A compiled program (`.wasm`) without imports: each export in `calls`.
    public func compare(file: String, calls: [(String, [Value])], into summary: inout Summary) {
        summary.programs += 1
        do {
            let binary = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
            let store = try fueledStore()
            let instance = try Instance(store: store, module: Module(engine: engine, binary: binary))
            let fileName = URL(fileURLWithPath: file).lastPathComponent
            let calls = try budgeted(calls.map { Call(export: $0.0, arguments: $0.1) }, modules: [(fileName, binary)],
                                     host: "none", paths: [file])
            let theirs = try ask(modules: [(fileName, binary)], host: "none", calls: calls, paths: [file])
            modulePaths[instance.module.name ?? fileName] = file
            for (call, answer) in zip(calls, theirs) {
                guard let function = instance.export(call.export) else {
                    summary.mismatches.append(Mismatch(program: file, call: call.export, report: "no export \(call.export)"))
                    continue
                }
                compare(Outcome(calling: function, call.arguments, fileName: fileName, fuel: call.fuel, store: store),
                        answer, program: file, call: call.description,
                        modules: [instance.module.name ?? fileName: binary], into: &summary)
            }
        } catch {
            summary.mismatches.append(Mismatch(program: file, call: "-", report: "\(error)"))
        }
    }

    /// A store of the engine, with ample fuel when the engine counts it
    /// (instantiation may run wasm: a start function).
    func fueledStore() throws -> Store {
        let store = Store(engine: engine)
        if engine.configuration.consumesFuel { try store.setFuel(Self.ampleFuel) }
        return store
    }

    /// `calls`, or with `fuelBudgets`, each at its budgets: what it spends
    /// is measured on Wasmtime first (calls are made in order in one
    /// store, as they will be again).
    func budgeted(_ calls: [Call], modules: [(String, [UInt8])], host: String, paths: [String]? = nil) throws -> [Call] {
        guard fuelBudgets > 0 else { return calls }
        let measured = calls.map { Call(export: $0.export, arguments: $0.arguments, fuel: Self.ampleFuel) }
        let answers = try ask(modules: modules, host: host, calls: measured, paths: paths)
        var result: [Call] = []
        for (call, answer) in zip(calls, answers) {
            // A call that recurses until the stack runs out gets no budgets:
            // how deep each runtime's stack lets it go differs (a host
            // re-entry's frames are larger here), so a budget between the
            // two depths stops one by fuel and the other by the stack.
            guard let left = (answer["fuel_left"] as? NSNumber)?.uint64Value, left <= Self.ampleFuel,
                  answer["trap"] as? String != "wasm trap: \(TrapCode.stackOverflow.message)" else {
                result.append(call)
                continue
            }
            let spent = Self.ampleFuel - left
            var budgets: Set<UInt64> = [0, 1, spent, spent + 1]
            if spent > 0 { budgets.insert(spent - 1) }
            for _ in 0..<fuelBudgets { budgets.insert(UInt64.random(in: 0...spent)) }
            for budget in budgets.sorted() {
                result.append(Call(export: call.export, arguments: call.arguments, fuel: budget))
            }
        }
        return result
    }

    // MARK: Comparing

    /// What one call did on the reference runtime.
    struct Outcome {
        var results: [Value]?
        var trap: String?
        var cause: String?
        /// (module, function, offset), newest first.
        var frames: [FrameKey] = []
        /// With backtrace details: the backtrace as displayed, one string
        /// per line, no frames folded.
        var display: [String]?
        /// With a budget of fuel: what was left after the call.
        var fuelLeft: UInt64?

        init(results: [Value]? = nil, trap: String? = nil, cause: String? = nil, frames: [FrameKey] = []) {
            self.results = results
            self.trap = trap
            self.cause = cause
            self.frames = frames
        }

        init(calling function: Func, _ arguments: [Value], fileName: String?, fuel: UInt64? = nil, store: Store? = nil) {
            defer { if fuel != nil { fuelLeft = try? store?.fuel() } }
            do {
                if let fuel { try store?.setFuel(fuel) }
                if let store, store.engine.configuration.epochInterruption { store.setEpochDeadline(1) }
                results = try function.call(arguments)
            } catch let trap as Trap {
                self.trap = trap.message
                cause = trap.cause
                frames = trap.backtrace.frames.map { frame in
                    FrameKey(module: frame.symbol?.moduleName ?? fileName, function: frame.symbol?.functionName,
                             offset: frame.symbol?.moduleOffset.map(Int.init))
                }
                let report = trap.report
                if let symbols = report.sourceSymbols {
                    display = TextFormatter().renderDetails(trap.backtrace, symbols, foldingThreshold: .max)
                        .split(separator: "\n").map(String.init)
                }
            } catch {
                self.trap = "\(error)"
            }
        }
    }

    struct FrameKey: Equatable, CustomStringConvertible {
        var module: String?
        var function: String?
        var offset: Int?
        var description: String {
            "\(module ?? "?")!\(function ?? "<unnamed>") @ " + (offset.map { "0x" + String($0, radix: 16) } ?? "-")
        }
    }

    /// `modules`: each module's bytes by the name its frames carry.
    func compare(_ ours: Outcome, _ theirs: [String: Any], program: String, call: String, modules: [String: [UInt8]],
                 into summary: inout Summary) {
        summary.calls += 1
        func mismatch(_ report: String) {
            summary.mismatches.append(Mismatch(program: program, call: call, report: report))
        }
        if let error = theirs["error"] as? String {
            return mismatch("Wasmtime: \(error)")
        }
        // With a budget, the fuel left is Wasmtime's after a return and
        // after fuel ran out (0); after another trap each may have counted
        // a different part of the straight-line run it left.
        if let left = (theirs["fuel_left"] as? NSNumber)?.uint64Value {
            fuelCallsCompared += 1
            let outOfFuel = theirs["trap"] as? String == "wasm trap: \(TrapCode.outOfFuel.message)"
            if (theirs["results"] != nil || outOfFuel) && ours.fuelLeft != left {
                mismatch("Wasmtime left \(left) fuel, we left \(ours.fuelLeft.map(String.init) ?? "none")")
            }
        }
        if let results = theirs["results"] as? [Any] {
            guard let ourResults = ours.results else {
                return mismatch("Wasmtime returned \(results), we trapped: \(ours.trap ?? "")")
            }
            let same = results.count == ourResults.count && zip(ourResults, results).allSatisfy { Self.equal($0, $1) }
            if !same { mismatch("Wasmtime returned \(results), we returned \(ourResults)") }
            return
        }
        guard let message = theirs["trap"] as? String, let rawFrames = theirs["frames"] as? [[Any]] else {
            return mismatch("unreadable answer \(theirs)")
        }
        summary.traps += 1
        guard let ourMessage = ours.trap else {
            return mismatch("Wasmtime trapped (\(message)), we returned \(ours.results ?? [])")
        }
        if ourMessage != message { return mismatch("Wasmtime: \(message); we: \(ourMessage)") }
        let cause = theirs["cause"] as? String
        if ours.cause != cause {
            return mismatch("Wasmtime's cause: \(cause ?? "none"); ours: \(ours.cause ?? "none")")
        }
        // A module without a name in its name section (rustc writes none)
        // has none in Wasmtime's frames; ours are named after its file, as
        // the one module of the program is here.
        let onlyModule = modules.count == 1 ? modules.keys.first : nil
        let theirFrames = rawFrames.map { frame in
            FrameKey(module: frame[0] as? String ?? onlyModule, function: frame[1] as? String,
                     offset: (frame[2] as? NSNumber)?.intValue)
        }
        let ourFrames = Array(ours.frames.prefix(Self.wasmtimeFrameLimit))
        summary.framesCompared += min(ourFrames.count, theirFrames.count)
        var knownDifference = false
        if ourFrames != theirFrames {
            guard ourFrames.count == theirFrames.count, ourFrames.dropFirst() == theirFrames.dropFirst(),
                  Self.isConditionalTrapFold(ours: ourFrames[0], theirs: theirFrames[0], modules: modules) else {
                return mismatch(Self.framesReport(ourFrames, theirFrames))
            }
            summary.knownDifferences += 1
            knownDifference = true
        }
        guard let theirDisplay = theirs["display"] as? [String] else { return }
        guard let ourDisplay = ours.display else {
            return mismatch("Wasmtime showed source lines, we did not:\n" + theirDisplay.joined(separator: "\n"))
        }
        let ourBlocks = Self.frameBlocks(ourDisplay), theirBlocks = Self.frameBlocks(theirDisplay)
        for index in 0..<min(theirBlocks.count, Self.wasmtimeFrameLimit) {
            let mine = index < ourBlocks.count ? ourBlocks[index] : []
            if knownDifference && index == 0 {
                if let module = ourFrames[0].module, let path = modulePaths[module], let offset = ourFrames[0].offset {
                    summary.detailsAtOurOffset.append((path, offset, mine))
                }
                continue
            }
            summary.detailFramesCompared += 1
            if mine != theirBlocks[index] {
                return mismatch("frame \(index) shows differently:\n  ours:\n" + mine.joined(separator: "\n")
                                + "\n  Wasmtime's:\n" + theirBlocks[index].joined(separator: "\n"))
            }
        }
    }

    /// A details display's lines grouped by frame: each frame's numbered
    /// line and the symbol and `at` lines under it.
    static func frameBlocks(_ lines: [String]) -> [[String]] {
        var blocks: [[String]] = []
        for line in lines {
            let trimmed = line.drop { $0 == " " }
            if let colon = trimmed.firstIndex(of: ":"), !trimmed[..<colon].isEmpty,
               trimmed[..<colon].allSatisfy({ $0.isNumber }) {
                blocks.append([line])
            } else if !blocks.isEmpty {
                blocks[blocks.count - 1].append(line)
            }
        }
        return blocks
    }

    static func framesReport(_ ourFrames: [FrameKey], _ theirFrames: [FrameKey]) -> String {
        var report = "frames differ (newest first):\n"
        for index in 0..<max(ourFrames.count, theirFrames.count) {
            let mine = index < ourFrames.count ? ourFrames[index].description : "-"
            let other = index < theirFrames.count ? theirFrames[index].description : "-"
            report += "  \(index): ours \(mine)   wasmtime \(other)\(mine == other ? "" : "   <--")\n"
        }
        return report
    }

    /// Cranelift compiles an `unreachable` that is alone on one side of a
    /// conditional into a conditional trap, reported at the branch (`if`,
    /// `br_if`) instead of at the `unreachable` (docs/runtime.md): the
    /// frame's own module must have, in one function, a branch at
    /// Wasmtime's offset whose path leads to the `unreachable` at ours
    /// (`ConditionalTrapFold`).
    static func isConditionalTrapFold(ours: FrameKey, theirs: FrameKey, modules: [String: [UInt8]]) -> Bool {
        guard ours.module == theirs.module, ours.function == theirs.function, let name = ours.module,
              let module = modules[name], let mine = ours.offset, let other = theirs.offset
        else { return false }
        return ConditionalTrapFold.holds(module: module, branch: other, unreachable: mine)
    }

    /// Whether our value is Wasmtime's: integers by value, floats by their
    /// bits (so -0.0 is not +0.0, and NaN payloads count), null references.
    public static func equal(_ value: Value, _ json: Any) -> Bool {
        switch value {
        case .i32(let v): return (json as? NSNumber)?.int64Value == Int64(v)
        case .i64(let v): return (json as? NSNumber)?.int64Value == v
        case .f32(let v): return ((json as? [String: Any])?["f32"] as? String).flatMap { UInt32($0, radix: 16) } == v.bitPattern
        case .f64(let v): return ((json as? [String: Any])?["f64"] as? String).flatMap { UInt64($0, radix: 16) } == v.bitPattern
        case .funcref(nil), .externref(nil): return json is NSNull
        default: return false
        }
    }

    // MARK: The helper process

    private func ask(modules: [(String, [UInt8])], host: String, calls: [Call],
                     paths: [String]? = nil) throws -> [[String: Any]] {
        var entries: [[String: Any]] = []
        for (index, (name, binary)) in modules.enumerated() {
            let path: String
            if let paths {
                path = paths[index]
            } else {
                path = directory.appendingPathComponent("\(name).wasm").path
                try Data(binary).write(to: URL(fileURLWithPath: path))
            }
            entries.append(["name": name, "path": path])
        }
        let request: [String: Any] = [
            "modules": entries, "host": host, "consume_fuel": engine.configuration.consumesFuel,
            "epoch": engine.configuration.epochInterruption,
            "calls": calls.map { call in
                var entry: [String: Any] = ["export": call.export, "args": call.arguments.map(Self.json)]
                if let fuel = call.fuel { entry["fuel"] = fuel }
                return entry
            },
        ]
        var line = try JSONSerialization.data(withJSONObject: request)
        line.append(0x0A)
        try input.write(contentsOf: line)
        let answer = try readLine()
        guard let object = try JSONSerialization.jsonObject(with: answer) as? [String: Any] else {
            throw WasmtimeOracleError("the helper answered \(String(decoding: answer, as: UTF8.self))")
        }
        if let error = object["error"] as? String { throw WasmtimeOracleError("Wasmtime: \(error)") }
        guard let answers = object["calls"] as? [[String: Any]], answers.count == calls.count else {
            throw WasmtimeOracleError("the helper answered \(object)")
        }
        return answers
    }

    static func json(_ value: Value) -> Any {
        switch value {
        case .i32(let v): return Int(v)
        case .i64(let v): return Int(v)
        case .f32(let v): return ["f32": String(v.bitPattern, radix: 16)]
        case .f64(let v): return ["f64": String(v.bitPattern, radix: 16)]
        default: return NSNull()
        }
    }

    private func readLine() throws -> Data {
        while true {
            if let newline = buffered.firstIndex(of: 0x0A) {
                let line = buffered[buffered.startIndex..<newline]
                buffered.removeSubrange(buffered.startIndex...newline)
                return Data(line)
            }
            let more = output.availableData
            if more.isEmpty { throw WasmtimeOracleError("the Wasmtime helper exited") }
            buffered.append(more)
        }
    }
}

/// The Wasmtime helper could not be run or answered nonsense.
public struct WasmtimeOracleError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// WebAssembly text to the binary both runtimes load.
enum TextToBinary {
    static func binary(_ text: String) throws -> [UInt8] {
        try Module.binary(ofText: text)
    }
}
