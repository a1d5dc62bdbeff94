import UnwindOracle
@_spi(Testing) import WasmJIT
import WasmUnwind

/// The sampling profiler checked against libunwind on random programs: each
/// program runs over and over under a fast timer; in the signal handler the
/// profiler walks from the interrupted instruction and libunwind unwinds
/// the same signal context; the wasm frames of the two must be equal for
/// every sample. Where the samples landed (host, prologue, body, epilogue,
/// trampolines) is counted, to show the hard places were hit.
public struct ProfilerVerification {
    public struct Summary: Sendable {
        public var programs = 0
        public var samples = 0
        /// Samples libunwind could not unwind (its lock was held).
        public var unchecked = 0
        /// Compared samples in which either unwinder found a wasm frame (the
        /// others, in host code with no wasm below, agree trivially).
        public var comparedWithWasmFrames = 0
        /// The largest share of unchecked samples a run may have and pass.
        public static let maximumUncheckedShare = 0.01
        /// Why the run proves too little, if it does: nothing compared, or
        /// more than 1% of the samples unchecked.
        public var insufficiency: String? {
            if samples == 0 { return "no samples were taken" }
            if comparedWithWasmFrames == 0 { return "no sample with wasm frames was compared" }
            if Double(unchecked) > Double(samples) * Self.maximumUncheckedShare {
                return "\(unchecked) of \(samples) samples were not unwound by libunwind (more than 1%)"
            }
            return nil
        }
        public var landings: [SamplingProfiler.Landing: Int] = [:]
        public var mismatches: [Mismatch] = []
    }

    public struct Mismatch: Sendable {
        public var seed: UInt64
        public var sample: SamplingProfiler.Sample
    }

    let configuration: Engine.Configuration
    /// Calls a program may make per run (the generator gives 8 to 32).
    static let fuel = 5_000

    public init(configuration: Engine.Configuration = Engine.Configuration()) {
        self.configuration = configuration
    }

    /// Profiles programs `seed`, `seed + 1` ... at `hz` until `samples`
    /// samples were taken, each program for at most `samplesPerProgram`.
    public func run(seed: UInt64, samples target: Int, hz: Int, samplesPerProgram: Int = 400,
                    progress: (Summary) -> Void = { _ in }) -> Summary {
        var summary = Summary()
        // The call-graph programs (`ProgramGenerator`, even seeds), with more
        // fuel: thousands of calls per run instead of a handful, so samples
        // land in wasm prologues and epilogues, not mostly in the host code
        // that enters wasm.
        var seed = seed + seed % 2
        while summary.samples < target {
            var generator = ProgramGenerator(seed: seed)
            profile(generator.generate(), hz: hz, samples: samplesPerProgram, into: &summary)
            summary.programs += 1
            seed += 2
            progress(summary)
        }
        return summary
    }

    func profile(_ program: RandomProgram, hz: Int, samples: Int, into summary: inout Summary) {
        let session = OracleSession(configuration: configuration, observeTraps: false)
        let store = Store(engine: session.engine)
        var imports = Imports()
        // Every host import the generators use does nothing (the checks are
        // the sampler's now) and returns zeros; `call:` re-enters wasm.
        imports.fallback = { module, name, signature in
            guard module == "host" else { return nil }
            if name.hasPrefix("call:") {
                let export = String(name.dropFirst("call:".count))
                return .host(HostFunction(signature: signature) { caller, arguments in
                    try caller.export(export)!.call(arguments)
                })
            }
            // Raw slots, zeroed: 0 is also the null reference.
            let count = signature.results.count
            return .host(HostFunction.slots(signature: signature) { _, slots in
                for index in 0..<count { slots[index] = 0 }
            })
        }
        let text = program.text.replacingFuel(with: Self.fuel)
        guard let module = try? Module(engine: session.engine, text: text),
              var instance = try? Instance(store: store, module: module, imports: imports) else { return }
        let profiler = SamplingProfiler(store: store, capacity: samples + 64, maximumDepth: 512,
                                        secondOpinion: Libunwind.signalContextUnwinder)
        let interval = UInt64(1_000_000_000 / hz)
        var calls = 0
        _ = try? profiler.run(intervalNanoseconds: interval) {
            // Long enough for `samples` samples at this rate, and at least once.
            let deadline = ContinuousClock.now + .nanoseconds(Int64(interval) * Int64(samples))
            repeat {
                // A new instance each time: the fuel is a global the run uses up.
                if calls > 0, let fresh = try? Instance(store: store, module: module, imports: imports) { instance = fresh }
                _ = try? instance.export(program.entry)?.call(program.arguments)
                calls += 1
            } while ContinuousClock.now < deadline && calls < 100_000
        }
        for sample in profiler.samples {
            summary.samples += 1
            summary.landings[sample.landing, default: 0] += 1
            guard let agrees = sample.agreesWithSecondOpinion else {
                summary.unchecked += 1
                continue
            }
            if !sample.frames.isEmpty || !(sample.secondOpinion ?? []).isEmpty { summary.comparedWithWasmFrames += 1 }
            if !agrees {
                summary.mismatches.append(Mismatch(seed: program.seed, sample: sample))
            }
        }
    }
}

extension String {
    /// The program with its `$fuel` global starting at `fuel`.
    func replacingFuel(with fuel: Int) -> String {
        guard let start = range(of: "(global $fuel (mut i32) (i32.const "),
              let end = self[start.upperBound...].firstIndex(of: ")") else { return self }
        return String(self[..<start.upperBound]) + String(fuel) + String(self[end...])
    }
}
