import CMallocCounter
import Foundation
import Testing
import UnwindOracle
import Verification
@_spi(Testing) import WasmJIT
import WasmUnwind

/// Calls that keep the pc moving through prologues, epilogues and both
/// kinds of trampoline: a loop calling a tiny function, which calls a host
/// function, and a host function that re-enters wasm; and a recursion of
/// small wasm functions (most of its calls are prologue and epilogue).
let profilerWorkload = """
(module $calls
  (import "host" "noop" (func $noop (param i32)))
  (import "host" "reenter" (func $reenter (param i32)))
  (func $tiny (param i32) (result i32) (call $noop (local.get 0)) (i32.add (local.get 0) (i32.const 1)))
  (func $leaf (export "leaf") (param i32) (local.set 0 (call $tiny (local.get 0))))
  (func $loop (export "loop") (param $n i32) (local $i i32)
    (loop $next
      (local.set $i (call $tiny (local.get $i)))
      (if (i32.eqz (i32.and (local.get $i) (i32.const 7))) (then (call $reenter (local.get $i))))
      (br_if $next (i32.lt_u (local.get $i) (local.get $n)))))
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2))))))))
"""

@Suite("The sampling profiler", .serialized)
struct ProfilerTests {
    /// Profiles `loop` with libunwind's second opinion in the handler.
    static func profile(_ mode: ExitRecording, iterations: Int32, rounds: Int) throws -> [SamplingProfiler.Sample] {
        let session = OracleSession(configuration: Engine.Configuration(exitRecording: mode), observeTraps: false)
        let store = Store(engine: session.engine)
        let module = try Module(engine: session.engine, text: profilerWorkload)
        var imports = Imports()
        let signature = Signature(parameters: [.i32], results: [])
        imports.define(module: "host", name: "noop", .host(HostFunction.slots(signature: signature) { _, _ in }))
        nonisolated(unsafe) var leaf: Func?
        imports.define(module: "host", name: "reenter", .host(HostFunction.slots(signature: signature) { _, values in
            _ = try? leaf?.call([.i32(Int32(truncatingIfNeeded: values[0]))])
        }))
        let instance = try Instance(store: store, module: module, imports: imports)
        leaf = instance.export("leaf")
        let run = try #require(instance.export("loop"))
        let fib = try #require(instance.export("fib"))
        let profiler = SamplingProfiler(store: store, capacity: 50_000, secondOpinion: Libunwind.signalContextUnwinder)
        try profiler.run(intervalNanoseconds: 100_000) {  // 10 kHz of CPU time
            for _ in 0..<rounds {
                _ = try run.call([.i32(iterations)])
                _ = try fib.call([.i32(30)])
            }
        }
        #expect(profiler.droppedSamples == 0)
        return profiler.samples
    }

    @Test("every sample's wasm frames equal libunwind's from the same signal context, with samples in prologues, epilogues and trampolines",
          arguments: exitRecordingModes)
    func agreesWithLibunwind(mode: ExitRecording) throws {
        let samples = try Self.profile(mode, iterations: 20_000, rounds: 15)
        let checked = samples.filter { $0.secondOpinion != nil }
        #expect(checked.count >= 1_000, "\(checked.count) samples checked of \(samples.count)")
        let mismatches = checked.filter { $0.agreesWithSecondOpinion == false }
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(checked.count) differ; first: \(mismatches.prefix(3))")
        #expect(!samples.contains { $0.walkFailed || $0.isTruncated })
        var landings: [SamplingProfiler.Landing: Int] = [:]
        for sample in samples { landings[sample.landing, default: 0] += 1 }
        print("profiler \(mode): \(samples.count) samples, \(mismatches.count) mismatches; landed: \(landings.sorted { $0.key.rawValue < $1.key.rawValue })")
        // Entry trampolines are a few instructions per re-entry: too rare to
        // be sure of here; `make verify` (100,000 samples) counts them.
        for place in [SamplingProfiler.Landing.prologue, .epilogue, .body, .host] {
            #expect(landings[place, default: 0] > 0, "no sample landed in \(place): \(landings)")
        }
        if mode == .trampoline { #expect(landings[.exitTrampoline, default: 0] > 0, "\(landings)") }
    }

    @Test("a loop of guard-page traps caught by the host: every sample agrees with libunwind (the trap handler's stale exit record once did not)",
          arguments: [ExitRecording.trampoline, .inline])
    func trapLoop(mode: ExitRecording) throws {
        let result = try runCLI(["profile", "fixtures/programs/trap-loop.wat", "--invoke", "main", "--hz", "10000",
                                 "--check-libunwind", "--exit-recording", mode.rawValue, "--", "4000"])
        #expect(result.status == 0, "\(result.stderr)")
        let line = try #require(result.stderr.split(separator: "\n").first { $0.hasPrefix("libunwind: ") })
        let compared = Int(line.split(separator: " ")[1]) ?? 0
        #expect(compared >= 500 && line.contains("compared, 0 differ"), "\(result.stderr)")
    }

    @Test("a sample in another signal handler on the alternate stack is not walked from the exit record")
    func otherSignalHandler() throws {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            // Busy long enough to be sampled.
            var sum = 0
            for value in 0..<300_000 { sum &+= value }
            ProfilerTests.sink = sum
        }
        action.sa_flags = SA_ONSTACK
        sigemptyset(&action.sa_mask)
        var previous = sigaction()
        sigaction(SIGUSR1, &action, &previous)
        // (The test runner's threads may block it.)
        var user = sigset_t(), mask = sigset_t()
        sigemptyset(&user)
        sigaddset(&user, SIGUSR1)
        pthread_sigmask(SIG_UNBLOCK, &user, &mask)
        defer {
            pthread_sigmask(SIG_SETMASK, &mask, nil)
            sigaction(SIGUSR1, &previous, nil)
        }
        // libunwind is given the module's CFI (without it, it falls back to
        // the frame-pointer chain and skips the caller of a trampoline
        // sampled before its `mov rbp, rsp`).
        let session = OracleSession(configuration: Engine.Configuration(exitRecording: .trampoline), observeTraps: false)
        var harness = Harness(engine: session.engine)
        harness.define("poke") { _, _ in
            raise(SIGUSR1)
            return []
        }
        let instance = try harness.instantiate("""
            (module (import "host" "poke" (func $poke))
              (func $caller (export "run") (param i32)
                (loop $l (call $poke) (br_if $l (local.tee 0 (i32.sub (local.get 0) (i32.const 1)))))))
            """)
        let run = try #require(instance.export("run"))
        let profiler = SamplingProfiler(store: harness.store, secondOpinion: Libunwind.signalContextUnwinder)
        try profiler.run(intervalNanoseconds: 100_000) { _ = try run.call([.i32(300)]) }
        let inHandler = profiler.samples.filter { $0.landing == .signalHandler }
        #expect(inHandler.count > 10, "\(profiler.samples.count) samples, none in the handler")
        #expect(inHandler.allSatisfy { $0.frames.isEmpty && $0.secondOpinion == nil })
        let compared = profiler.samples.filter { $0.secondOpinion != nil }
        let disagreeing = compared.filter { $0.agreesWithSecondOpinion != true }
        #expect(disagreeing.isEmpty, "\(disagreeing.count) of \(compared.count): \(disagreeing.prefix(3).map(Self.describe))")
    }

    /// A sample and libunwind's view of it, for a failure message.
    static func describe(_ sample: SamplingProfiler.Sample) -> String {
        "landing \(sample.landing), startsAtPC \(sample.startsAtPC), walkFailed \(sample.walkFailed), ours "
            + "\(sample.frames.map { String($0, radix: 16) }) libunwind \((sample.secondOpinion ?? []).map { String($0, radix: 16) })"
    }
    nonisolated(unsafe) static var sink = 0

    @Test("samples are kept as stack references: a few dozen bytes each, each distinct stack once")
    func compactSamples() throws {
        // libunwind gets the module's CFI (its second opinion needs it).
        let engine = OracleSession(configuration: Engine.Configuration(), observeTraps: false).engine
        let store = Store(engine: engine)
        let module = try Module(engine: engine, text: try String(contentsOfFile: PackagePaths.fixture("programs/hot.wat"), encoding: .utf8))
        let main = try #require(try Instance(store: store, module: module, imports: Imports()).export("main"))
        let profiler = SamplingProfiler(store: store, secondOpinion: Libunwind.signalContextUnwinder)
        try profiler.run(intervalNanoseconds: 100_000) { _ = try main.call([.i32(3000)]) }
        #expect(profiler.sampleCount > 500)
        #expect(profiler.distinctStacks < 200, "\(profiler.distinctStacks) distinct stacks")
        // 32 bytes per sample and each distinct stack once (it was 2 KiB
        // per sample, 4 KiB with the second opinion).
        #expect(profiler.bytesUsed < 32 * profiler.sampleCount + profiler.distinctStacks * 8 * 260,
                "\(profiler.bytesUsed) bytes for \(profiler.sampleCount) samples")
        // The samples read back whole.
        let disagreeing = profiler.samples.filter { $0.agreesWithSecondOpinion == false }
        #expect(disagreeing.isEmpty, "\(disagreeing.count): \(disagreeing.prefix(3).map(Self.describe))")
    }

    @Test("folded stacks of a known workload: work has about 4x mix's samples, under spin and main")
    func foldedStacks() throws {
        let engine = Engine()
        let store = Store(engine: engine)
        let module = try Module(engine: engine, text: try String(contentsOfFile: PackagePaths.fixture("programs/hot.wat"), encoding: .utf8))
        let instance = try Instance(store: store, module: module, imports: Imports())
        let main = try #require(instance.export("main"))
        let profiler = SamplingProfiler(store: store)
        try profiler.run(intervalNanoseconds: 200_000) { _ = try main.call([.i32(3000)]) }
        let folded = profiler.profile.folded
        let counts = Dictionary(folded.split(separator: "\n").map { line -> (String, Int) in
            let space = line.lastIndex(of: " ")!
            return (String(line[..<space]), Int(line[line.index(after: space)...])!)
        }, uniquingKeysWith: +)
        let work = counts["hot!<wasm function 3>;hot!spin;hot!work", default: 0]
        let mix = counts["hot!<wasm function 3>;hot!spin;hot!mix", default: 0]
        #expect(work > 100 && mix > 20, "\(folded)")
        // work runs 10,000 iterations of 3 operations per round, mix 2,500 of 3.
        let ratio = Double(work) / Double(mix)
        #expect(ratio > 2 && ratio < 8, "work/mix = \(ratio)\n\(folded)")
    }

    @Test("the signal handler allocates nothing (malloc interposed, counted while the handler runs)")
    func handlerDoesNotAllocate() throws {
        let engine = Engine()
        let store = Store(engine: engine)
        let module = try Module(engine: engine, text: profilerWorkload)
        var imports = Imports()
        let signature = Signature(parameters: [.i32], results: [])
        imports.define(module: "host", name: "noop", .host(HostFunction.slots(signature: signature) { _, _ in }))
        imports.define(module: "host", name: "reenter", .host(HostFunction.slots(signature: signature) { _, _ in }))
        let instance = try Instance(store: store, module: module, imports: imports)
        let run = try #require(instance.export("loop")), fib = try #require(instance.export("fib"))
        let profiler = SamplingProfiler(store: store, capacity: 20_000)
        let before = malloc_counter_in_sampler()
        let total = malloc_counter_total()
        try profiler.run(intervalNanoseconds: 100_000) {
            for _ in 0..<5 {
                _ = try run.call([.i32(20_000)])
                _ = try fib.call([.i32(27)])
            }
        }
        #expect(profiler.samples.count > 100, "\(profiler.samples.count) samples")
        #expect(malloc_counter_total() > total, "the workload allocates, so the counter is live")
        #expect(malloc_counter_in_sampler() == before, "\(malloc_counter_in_sampler() - before) allocations in the handler")
    }

    @Test("accuracy: three_parts does 3x one_part's work and gets 3/4 of their samples, within 5%")
    func accuracy() throws {
        let engine = Engine()
        let store = Store(engine: engine)
        let module = try Module(engine: engine, text: try String(contentsOfFile: PackagePaths.fixture("programs/ratio.wat"), encoding: .utf8))
        let instance = try Instance(store: store, module: module, imports: Imports())
        let main = try #require(instance.export("main"))
        let profiler = SamplingProfiler(store: store)
        try profiler.run(intervalNanoseconds: 100_000) {
            // About 20,000 samples: the share's standard error is 0.3%.
            while profiler.sampleCount < 20_000 { _ = try main.call([.i32(100)]) }
        }
        let profile = profiler.profile
        let three = profile.share(of: "ratio!three_parts"), one = profile.share(of: "ratio!one_part")
        let share = three / (three + one)
        print("profiler accuracy: three_parts \(three), one_part \(one) of \(profile.sampleCount) samples; share \(share) (truth 0.75)")
        #expect(abs(share - 0.75) <= 0.75 * 0.05, "three_parts' share \(share)")
        #expect(abs((1 - share) - 0.25) <= 0.25 * 0.05, "one_part's share \(1 - share)")
    }

    @Test("wasm-unwind profile: folded stacks, an SVG flame graph, and the libunwind check")
    func command() throws {
        let directory = try temporaryDirectory("profile")
        defer { try? FileManager.default.removeItem(at: directory) }
        let folded = try runCLI(["profile", PackagePaths.fixture("programs/hot.wat"), "--invoke", "main", "--hz", "5000",
                                 "--check-libunwind", "--", "2000"])
        #expect(folded.status == 0, "\(folded.stderr)")
        #expect(folded.stdout.contains("hot!<wasm function 3>;hot!spin;hot!work "), "\(folded.stdout)")
        #expect(folded.stderr.contains(" 0 differ"), "\(folded.stderr)")
        let svgPath = directory.appendingPathComponent("hot.svg").path
        let svg = try runCLI(["profile", PackagePaths.fixture("programs/hot.wat"), "--invoke", "main", "--format", "svg",
                              "-o", svgPath, "--hz", "5000", "--", "2000"])
        #expect(svg.status == 0, "\(svg.stderr)")
        let text = try String(contentsOfFile: svgPath, encoding: .utf8)
        #expect(text.hasPrefix("<?xml") && text.contains("<svg") && text.hasSuffix("</svg>\n"))
        #expect(text.contains(">hot!work<") || text.contains(">hot!work (") || text.contains("<title>hot!work ("), "\(text.prefix(2000))")
        // `run --profile folded`: the same profile of a run, written to a file.
        let runFolded = directory.appendingPathComponent("run.folded").path
        let run = try runCLI(["run", PackagePaths.fixture("programs/hot.wat"), "--invoke", "main", "--profile", "folded",
                              "--profile-hz", "5000", "--profile-output", runFolded, "--", "2000"])
        #expect(run.status == 0 && run.stderr.contains("profile written to \(runFolded)"), "\(run.stderr)")
        #expect(try String(contentsOfFile: runFolded, encoding: .utf8).contains("hot!<wasm function 3>;hot!spin;hot!work "))
        let bad = try runCLI(["profile", PackagePaths.fixture("programs/hot.wat"), "--invoke", "nope"])
        #expect(bad.status == 1 && bad.stderr.contains("has no exported function `nope`"), "\(bad.stderr)")
    }

    @Test("the flame graph renders in a browser: headless Chromium draws it and its DOM holds the workload's frames",
          .enabled(if: ToolPaths.find("chromium-headless-shell") != nil, "chromium-headless-shell is not installed (make tools installs it)"))
    func rendersInChromium() throws {
        let directory = try temporaryDirectory("flame")
        defer { try? FileManager.default.removeItem(at: directory) }
        let svgPath = directory.appendingPathComponent("hot.svg").path
        let svg = try runCLI(["profile", PackagePaths.fixture("programs/hot.wat"), "--invoke", "main", "--format", "svg",
                              "-o", svgPath, "--hz", "5000", "--", "2000"])
        #expect(svg.status == 0, "\(svg.stderr)")
        let png = directory.appendingPathComponent("hot.png").path
        let shot = try #require(try runTool("chromium-headless-shell", ["--no-sandbox", "--disable-gpu", "--screenshot=\(png)",
                                                                       "--window-size=1200,200", "file://\(svgPath)"]))
        #expect(shot.status == 0, "\(shot.stderr)")
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: png)))
        #expect(bytes.count > 2_000 && bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]), "\(bytes.count) bytes")
        let dom = try #require(try runTool("chromium-headless-shell", ["--no-sandbox", "--disable-gpu", "--dump-dom", "file://\(svgPath)"]))
        for name in ["hot!work", "hot!mix", "hot!spin"] {
            #expect(dom.stdout.contains(name), "the rendered DOM lacks \(name)")
        }
    }

    @Test("--format firefox: a Gecko profile (version 30) whose tables are consistent with the documented schema")
    func firefoxProfile() throws {
        let result = try runCLI(["profile", PackagePaths.fixture("programs/hot.wat"), "--invoke", "main", "--format", "firefox",
                                 "--hz", "5000", "--", "2000"])
        #expect(result.status == 0, "\(result.stderr)")
        let root = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let meta = try #require(root["meta"] as? [String: Any])
        #expect(meta["version"] as? Int == 30)
        #expect((meta["interval"] as? Double ?? 0) > 0 && meta["startTime"] != nil && meta["processType"] != nil)
        let categories = try #require(meta["categories"] as? [[String: Any]])
        #expect(categories.allSatisfy { $0["name"] is String && $0["color"] is String && $0["subcategories"] is [String] })
        for key in ["libs", "pausedRanges", "processes"] { #expect(root[key] is [Any], "no \(key)") }
        let threads = try #require(root["threads"] as? [[String: Any]])
        let thread = try #require(threads.first)
        #expect(thread["name"] is String && thread["tid"] != nil && thread["pid"] != nil)
        func table(_ name: String, _ schema: [String]) throws -> [[Any]] {
            let table = try #require(thread[name] as? [String: Any], "no \(name)")
            let columns = try #require(table["schema"] as? [String: Int])
            #expect(Dictionary(uniqueKeysWithValues: schema.enumerated().map { ($1, $0) }) == columns, "\(name) schema \(columns)")
            return try #require(table["data"] as? [[Any]])
        }
        let strings = try #require(thread["stringTable"] as? [String])
        let frames = try table("frameTable", ["location", "relevantForJS", "innerWindowID", "implementation", "line", "column",
                                              "category", "subcategory"])
        let stacks = try table("stackTable", ["prefix", "frame"])
        let samples = try table("samples", ["stack", "time", "eventDelay"])
        _ = try table("markers", ["name", "startTime", "endTime", "phase", "category", "data"])
        for frame in frames {
            #expect(frame.count == 8)
            #expect((frame[0] as? Int).map { $0 < strings.count } == true, "location \(frame[0])")
            #expect((frame[6] as? Int).map { $0 < categories.count } == true, "category \(frame[6])")
        }
        for (index, stack) in stacks.enumerated() {
            #expect(stack[0] is NSNull || (stack[0] as? Int).map { $0 < index } == true, "prefix of \(index)")
            #expect((stack[1] as? Int).map { $0 < frames.count } == true)
        }
        var last = -1.0
        var leaves: [Int: Int] = [:]
        for sample in samples {
            let time = try #require(sample[1] as? Double)
            #expect(time >= last)
            last = time
            if let stack = sample[0] as? Int {
                #expect(stack < stacks.count)
                leaves[stack, default: 0] += 1
            }
        }
        #expect(samples.count > 100)
        // The most frequent stack, read back through the tables.
        var node = try #require(leaves.max { $0.value < $1.value }?.key) as Int?
        var names: [String] = []
        while let index = node {
            names.insert(strings[frames[stacks[index][1] as! Int][0] as! Int], at: 0)
            node = stacks[index][0] as? Int
        }
        #expect(names == ["hot!<wasm function 3>", "hot!spin", "hot!work"], "\(names)")
    }
}

/// Several profilers at once, each of its own thread: each sees only its
/// own thread's wasm, and stopping one leaves the others sampling. Runs in
/// a child (`trap-probe two-profilers`): a SIGPROF left to its default
/// action kills the process.
@Suite("Two profilers at once")
struct ConcurrentProfilerTests {
    @Test("a second profiler of the same thread is refused by name; the first keeps sampling")
    func sameThread() throws {
        let store = Store(engine: Engine())
        let first = SamplingProfiler(store: store), second = SamplingProfiler(store: store)
        try first.run(intervalNanoseconds: 1_000_000) {
            #expect(throws: SamplerError.self) { try second.run(intervalNanoseconds: 1_000_000) {} }
            do { try second.run(intervalNanoseconds: 1_000_000) {} } catch { #expect("\(error)" == "another profiler is sampling this thread") }
        }
        // Both can run one after the other.
        try second.run(intervalNanoseconds: 1_000_000) {}
    }

    @Test("two threads profile at once and stop in either order", arguments: ["a-first", "b-first"])
    func twoProfilers(order: String) throws {
        let result = try runChild(PackagePaths.executable("trap-probe"), ["two-profilers", order])
        #expect(result.signal == nil && result.status == 0, "signal \(result.signal.map(String.init) ?? "none"), \(result.stderr.prefix(300))")
        let lines = Dictionary(uniqueKeysWithValues: result.stdout.split(separator: "\n").compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces))
        })
        for (thread, function) in [("a", "spin_a"), ("b", "spin_b")] {
            let report = try #require(lines[thread], "\(result.stdout)")
            let count = Int(report.split(separator: " ").first ?? "") ?? 0
            #expect(count >= 100, "\(thread): \(report)")
            // Only its own thread's function, never the other's.
            let names = report.split(separator: ":").last.map { $0.split(separator: " ").map(String.init) } ?? []
            #expect(names.allSatisfy { $0 == "<unknown>!\(function)" || $0 == "[host]" }, "\(thread): \(report)")
            #expect(names.contains("<unknown>!\(function)"), "\(thread): \(report)")
        }
    }
}
