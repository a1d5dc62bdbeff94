import Foundation
import WasmJIT
import WasmWASI

/// WASI commands (modules exporting `_start`) run by `wasm-unwind run` and
/// by real Wasmtime 50's WASI (scripts/wasmtime-wasi.py), compared as a
/// user sees them: standard output, standard error before the trap, the
/// exit status, and the trap's message and every frame line Wasmtime
/// shows (WASIProgramTests, `verify-wasmtime --wasi-fixtures`, and
/// `verify-wasmtime FILE` for a command).
public enum WASIComparison {
    /// The programs of fixtures/wasi (scripts/build-wasi-fixtures.sh) and
    /// the argv runs of each: the ordinary run, then each way it ends
    /// otherwise (exit status, abort, assert, wasm traps, Rust panics,
    /// stack overflow).
    public static let fixtureRuns: [(program: String, arguments: [String])] = [
        ("args", []), ("args", ["5", "x"]), ("args", ["5", "abort"]), ("args", ["5", "assert"]), ("args", ["1", "2", "3"]),
        ("wordfreq", []), ("wordfreq", ["overflow"]), ("wordfreq", ["exit"]),
        ("calc", ["1+2*(3-4)/5"]), ("calc", ["7/(3-3)"]), ("calc", ["2*(3"]),
        ("panics", []), ("panics", ["index"]), ("panics", ["unwrap"]), ("panics", ["panic"]), ("panics", ["exit"]),
        ("panics", ["overflow"]),
        ("collections", []), ("collections", ["0"]),
        ("reader", []),
        ("matrix", []), ("matrix", ["nan"]), ("matrix", ["alloc"]),
        ("interpreter", []), ("interpreter", ["underflow"]), ("interpreter", ["divide"]),
        ("strings", []), ("strings", ["parse"]), ("strings", ["slice"]),
        ("recursion", []), ("recursion", ["deep"]),
    ]

    /// What a run did, as a user sees it.
    public struct Outcome: Sendable {
        public var stdout: String
        public var stderr: String
        public var status: Int32?
        public var trapMessage: String?
        /// The trap's frame lines (and source lines), one per line, folded
        /// runs written out.
        public var display: [String] = []
    }

    /// A backtrace display's frame lines, a folded run of identical frames
    /// written out one line each (Wasmtime prints each).
    public static func frames(_ lines: [String]) -> [String] {
        lines.flatMap { line -> [String] in
            let trimmed = line.drop { $0 == " " }
            guard let colon = trimmed.firstIndex(of: ":"), let dash = trimmed[..<colon].firstIndex(of: "-"),
                  let first = Int(trimmed[..<dash]), let last = Int(trimmed[trimmed.index(after: dash)..<colon]),
                  first <= last, let times = line.range(of: " (", options: .backwards) else { return [line] }
            let rest = line[line.index(line.startIndex, offsetBy: line.distance(from: line.startIndex, to: colon) + 1)..<times.lowerBound]
            return (first...last).map { index in
                String(repeating: " ", count: max(0, 3 - String(index).count)) + "  \(index):" + rest
            }
        }
    }

    /// `cli run PATH -- ARGUMENTS` (a child process), with `options`
    /// before the `--`.
    public static func ours(cli: String, _ path: String, _ arguments: [String], options: [String] = []) throws -> Outcome {
        let run = try ChildProcess.run(cli, ["run", path] + options + ["--"] + arguments)
        let parts = run.stderr.components(separatedBy: "error while executing at wasm backtrace:\n")
        var outcome = Outcome(stdout: run.stdout, stderr: parts[0], status: run.status)
        if parts.count > 1 {
            let lines = parts[1].split(separator: "\n").map(String.init)
            outcome.trapMessage = lines.last
            outcome.display = frames(lines.dropLast().filter { !$0.hasPrefix("note:") })
        }
        return outcome
    }

    /// The same run on Wasmtime 50 (`script`: scripts/wasmtime-wasi.py).
    public static func wasmtime(python: String, script: String, _ path: String, _ arguments: [String],
                                details: Bool) throws -> Outcome {
        let run = try ChildProcess.run(python, [script, path] + arguments,
                                       environment: ["WASMTIME_BACKTRACE_DETAILS": details ? "1" : "0"])
        guard let answer = try? JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any] else {
            throw WasmtimeOracleError("\(script) \(path) answered: \(run.stdout)\(run.stderr)")
        }
        var outcome = Outcome(stdout: answer["stdout"] as? String ?? "", stderr: answer["stderr"] as? String ?? "",
                              status: (answer["exit"] as? NSNumber)?.int32Value)
        if let trap = answer["trap"] as? [String: Any] {
            outcome.trapMessage = trap["message"] as? String
            outcome.display = trap["display"] as? [String] ?? []
            outcome.status = 134  // `wasmtime run` exits 128 + SIGABRT on a trap
        }
        return outcome
    }

    /// How many frames a display shows (its numbered lines; the rest are
    /// source lines and inlined functions under them).
    public static func frameCount(_ display: [String]) -> Int {
        WasmtimeComparison.frameBlocks(display).count
    }

    /// How `ours` differs from `theirs`, one line each (none: the same).
    /// Wasmtime displays the newest frames of a deep stack only: ours must
    /// begin with all of them.
    public static func differences(_ ours: Outcome, _ theirs: Outcome) -> [String] {
        var found: [String] = []
        if ours.stdout != theirs.stdout { found.append("stdout:\n\(ours.stdout)\nWasmtime's:\n\(theirs.stdout)") }
        if ours.stderr != theirs.stderr { found.append("stderr:\n\(ours.stderr)\nWasmtime's:\n\(theirs.stderr)") }
        if ours.status != theirs.status {
            found.append("exit status \(ours.status.map(String.init) ?? "-"), Wasmtime's \(theirs.status.map(String.init) ?? "-")")
        }
        if ours.trapMessage != theirs.trapMessage {
            found.append("trap \(ours.trapMessage ?? "none"), Wasmtime's \(theirs.trapMessage ?? "none")")
        }
        if Array(ours.display.prefix(theirs.display.count)) != theirs.display || ours.display.count < theirs.display.count {
            found.append("frames:\n\(ours.display.prefix(30).joined(separator: "\n"))\nWasmtime's:\n\(theirs.display.joined(separator: "\n"))")
        }
        return found
    }
}

/// The WASI programs' runs with libunwind as the oracle: every WASI call
/// of every run is a checkpoint where the walk must give libunwind's
/// frames, and so is each trap (`verify --wasi-fixtures`,
/// WASIProgramTests).
public struct WASICheckpoints {
    public struct Summary: Sendable {
        public var runs = 0
        public var checkpoints = 0
        public var traps = 0
        public var framesCompared = 0
        public var mismatches: [(run: String, place: String, report: String)] = []

        public init() {}
    }

    let session: OracleSession

    public init(configuration: Engine.Configuration) {
        session = OracleSession(configuration: configuration, observeTraps: true)
    }

    /// Runs `binary`'s `_start` with argv `arguments` (standard output and
    /// error to /dev/null, standard input empty).
    public func check(_ binary: [UInt8], name: String, arguments: [String], into summary: inout Summary) throws {
        let sink = open("/dev/null", O_RDWR)
        defer { close(sink) }
        var configuration = WASIPreview1.Configuration(arguments: [name] + arguments)
        configuration.standardInput = sink
        configuration.standardOutput = sink
        configuration.standardError = sink
        let wasi = WASIPreview1(configuration: configuration)
        let run = ([name] + arguments).joined(separator: " ")
        var local = summary
        wasi.onCall = { caller, call in
            let (comparison, walk) = OracleSession.compareAtHostCall(caller)
            local.checkpoints += 1
            local.framesCompared += walk.frames.count
            if !comparison.isMatch { local.mismatches.append((run, "at \(call)", "\(comparison)")) }
        }
        var imports = Imports()
        imports.fallback = wasi.resolve
        let store = Store(engine: session.engine)
        let instance = try Instance(store: store, module: Module(engine: session.engine, binary: binary), imports: imports)
        do {
            _ = try instance.export("_start")?.call([])
        } catch let trap as Trap where trap.exitCode == nil {
            if case .wasm = trap.reason {
                let comparison = OracleSession.compareAtTrap(trap, store: store)
                local.traps += 1
                local.framesCompared += trap.backtrace.frames.count
                if !comparison.isMatch { local.mismatches.append((run, "at the trap (\(trap.message))", "\(comparison)")) }
            }
        } catch {}
        local.runs += 1
        summary = local
    }
}

extension Trap {
    /// The status a WASI program gave `proc_exit`, if that ended it.
    public var exitCode: Int32? {
        if case .host(let error as WASIPreview1.Exit) = reason { return error.code }
        return nil
    }
}
