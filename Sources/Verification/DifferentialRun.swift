import UnwindOracle
import WasmJIT

/// Runs generated programs on the reference runtime and compares the
/// frame-pointer walk with libunwind at every checkpoint (`host.check`,
/// `host.fail`) and every trap.
public struct DifferentialRun {
    /// One comparison that failed, with what is needed to replay it.
    public struct Mismatch: Sendable {
        public var seed: UInt64
        public var program: String
        public var place: String
        public var report: String
    }

    public struct Summary: Sendable {
        public var programs = 0
        public var framesCompared = 0
        public var checkpoints = 0
        public var traps = 0
        public var mismatches: [Mismatch] = []
    }

    /// Failures the programs raise on purpose (`host.fail`).
    struct ProgramFailure: Error, CustomStringConvertible {
        var description: String { "host.fail called" }
    }

    public let session: OracleSession

    public init(configuration: Engine.Configuration = Engine.Configuration()) {
        session = OracleSession(configuration: configuration)
    }

    /// Generates and checks `count` programs with seeds `seed`, `seed + 1` ...
    /// `progress` is called after each program.
    public func run(seed: UInt64, count: Int, progress: (Summary) -> Void = { _ in }) -> Summary {
        var summary = Summary()
        for offset in 0..<count {
            var generator = ProgramGenerator(seed: seed &+ UInt64(offset))
            check(generator.generate(), into: &summary)
            progress(summary)
        }
        return summary
    }

    /// Runs one program and adds its comparisons to `summary`.
    public func check(_ program: RandomProgram, into summary: inout Summary) {
        summary.programs += 1
        let store = Store(engine: session.engine)
        var local = Summary()
        func compareHere(_ caller: Caller, place: String) {
            let (comparison, walk) = OracleSession.compareAtHostCall(caller)
            local.checkpoints += 1
            local.framesCompared += comparison.wasmFramesCompared
            if !comparison.isMatch || walk.error != nil {
                local.mismatches.append(Mismatch(
                    seed: program.seed, program: program.text, place: place,
                    report: (walk.error.map { "walk error: \($0)\n" } ?? "")
                        + comparison.report { OracleSession.symbolicate($0, store: store) }))
            }
        }
        var imports = Imports()
        imports.define(module: "host", name: "check", .host(HostFunction(signature: Signature(parameters: [], results: [])) { caller, _ in
            compareHere(caller, place: "host.check")
            return []
        }))
        imports.define(module: "host", name: "fail", .host(HostFunction(signature: Signature(parameters: [], results: [])) { caller, _ in
            compareHere(caller, place: "host.fail")
            throw ProgramFailure()
        }))
        imports.fallback = { module, name, signature in
            guard module == "host", name.hasPrefix("call:") else { return nil }
            let export = String(name.dropFirst("call:".count))
            return .host(HostFunction(signature: signature) { caller, arguments in
                try caller.export(export)!.call(arguments)
            })
        }
        do {
            let instance = try Instance(store: store, module: Module(engine: session.engine, text: program.text), imports: imports)
            _ = try instance.export(program.entry)!.call(program.arguments)
        } catch let trap as Trap {
            if trap.code != nil {
                local.traps += 1
                let comparison = OracleSession.compareAtTrap(trap, store: store)
                local.framesCompared += comparison.wasmFramesCompared
                if !comparison.isMatch || trap.backtrace.error != nil {
                    local.mismatches.append(Mismatch(
                        seed: program.seed, program: program.text, place: "trap: \(trap.message)",
                        report: comparison.report { OracleSession.symbolicate($0, store: store) }))
                }
            }
        } catch {
            local.mismatches.append(Mismatch(seed: program.seed, program: program.text, place: "running the program",
                                             report: "\(error)"))
        }
        summary.framesCompared += local.framesCompared
        summary.checkpoints += local.checkpoints
        summary.traps += local.traps
        summary.mismatches += local.mismatches
    }
}
