import UnwindOracle
import WasmJIT
import WasmUnwind
import UnwindReports

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
        public init() {}
        public var programs = 0
        /// Of `programs`, the two-module programs of `LinkedProgramGenerator`.
        public var linkedPrograms = 0
        public var framesCompared = 0
        public var checkpoints = 0
        public var traps = 0
        /// Root checks: enumerated roots against the program's own account.
        public var rootChecks = 0
        public var rootsCompared = 0
        public var collections = 0
        /// Frames of the traps' coredumps compared with their backtraces.
        public var coredumpFrames = 0
        public var mismatches: [Mismatch] = []
    }

    /// Every trap's coredump against its backtrace.
    let coredumps = CoredumpCheck()

    /// What the reference programs' objects are: counted, so a run can check
    /// the collector freed exactly what it should.
    final class ProgramObject {
        let id: Int32
        let census: Census
        init(_ id: Int32, _ census: Census) {
            self.id = id
            self.census = census
            census.alive += 1
        }
        deinit { census.alive -= 1 }
    }

    final class Census {
        var alive = 0
    }

    /// Failures the programs raise on purpose (`host.fail`).
    struct ProgramFailure: Error, CustomStringConvertible {
        var description: String { "host.fail called" }
    }

    public let session: OracleSession

    public init(configuration: Engine.Configuration = Engine.Configuration()) {
        session = OracleSession(configuration: configuration)
    }

    /// The program for `seed`: even seeds make call-graph programs
    /// (`ProgramGenerator`), odd seeds reference programs
    /// (`ReferenceProgramGenerator`).
    public static func program(seed: UInt64) -> RandomProgram {
        if seed % 2 == 0 {
            var generator = ProgramGenerator(seed: seed)
            return generator.generate()
        }
        var generator = ReferenceProgramGenerator(seed: seed)
        return generator.generate()
    }

    /// Generates and checks `count` programs with seeds `seed`, `seed + 1` ...
    /// `progress` is called after each program.
    public func run(seed: UInt64, count: Int, progress: (Summary) -> Void = { _ in }) -> Summary {
        var summary = Summary()
        for offset in 0..<count {
            check(Self.program(seed: seed &+ UInt64(offset)), into: &summary)
            // Every fourth seed also runs a two-module program of the
            // instructions real compilers emit (tables, br_table ...).
            if (seed &+ UInt64(offset)) % 4 == 0 {
                var generator = LinkedProgramGenerator(seed: seed &+ UInt64(offset))
                check(generator.generate(), into: &summary)
            }
            progress(summary)
        }
        return summary
    }

    /// Runs one program and adds its comparisons to `summary`.
    public func check(_ program: RandomProgram, into summary: inout Summary) {
        summary.programs += 1
        let store = Store(engine: session.engine)
        store.coredumpOnTrap = true
        // The trapping thread is what is checked (other threads of a test
        // process would be stopped for nothing).
        store.coredumpIncludesOtherThreads = false
        var local = Summary()
        func compareHere(_ caller: Caller, place: String) {
            let (comparison, walk) = OracleSession.compareAtHostCall(caller)
            local.checkpoints += 1
            local.framesCompared += comparison.framesCompared
            if !comparison.isMatch || walk.error != nil {
                local.mismatches.append(Mismatch(
                    seed: program.seed, program: program.text, place: place,
                    report: (walk.error.map { "walk error: \($0)\n" } ?? "")
                        + TextFormatter().render(comparison)))
            }
        }
        func mismatch(_ place: String, _ report: String) {
            local.mismatches.append(Mismatch(seed: program.seed, program: program.text, place: place, report: report))
        }
        let census = Census()
        var shadow: [[UInt64]] = []
        var announcing: [UInt64]?
        let unit = Signature(parameters: [], results: [])
        var imports = Imports()
        imports.define(module: "host", name: "new_object", .host(HostFunction(
            signature: Signature(parameters: [.i32], results: [.externref])) { caller, arguments in
            guard case .i32(let id) = arguments[0] else { return [] }
            return [.externref(caller.store.externref(for: ProgramObject(id, census)))]
        }))
        imports.define(module: "host", name: "frame_begin", .host(HostFunction(signature: unit) { _, _ in
            announcing = []
            return []
        }))
        imports.define(module: "host", name: "announce", .host(HostFunction(
            signature: Signature(parameters: [.externref], results: [])) { _, arguments in
            if case .externref(let reference?) = arguments[0] { announcing?.append(reference.handle) }
            return []
        }))
        imports.define(module: "host", name: "frame_end", .host(HostFunction(signature: unit) { _, _ in
            shadow.append(announcing ?? [])
            announcing = nil
            return []
        }))
        imports.define(module: "host", name: "frame_pop", .host(HostFunction(signature: unit) { _, _ in
            _ = shadow.popLast()
            return []
        }))
        imports.define(module: "host", name: "gc", .host(HostFunction(signature: unit) { caller, _ in
            local.collections += 1
            _ = try caller.store.collectGarbage()
            return []
        }))
        imports.define(module: "host", name: "check_roots", .host(HostFunction(signature: unit) { caller, _ in
            compareHere(caller, place: "host.check_roots")
            local.rootChecks += 1
            do {
                let roots = try caller.store.registry.roots(of: caller.store.limits)
                var perFrame = [[UInt64]](repeating: [], count: shadow.count)
                var outside: [GCRoot] = []
                for root in roots {
                    if root.frameIndex < perFrame.count { perFrame[perFrame.count - 1 - root.frameIndex].append(UInt64(root.value)) } else { outside.append(root) }
                }
                local.rootsCompared += roots.count
                let walkDepth = caller.backtrace().frames.count
                if walkDepth != shadow.count || !outside.isEmpty
                    || zip(perFrame, shadow).contains(where: { $0.sorted() != $1.sorted() }) {
                    mismatch("host.check_roots", "frames: \(walkDepth), announced frames: \(shadow.count)\n"
                             + "enumerated roots per frame (oldest first): \(perFrame)\nannounced: \(shadow)")
                }
                // Every announced object must still be alive.
                for root in roots where caller.store.object(for: ExternRef(handle: UInt64(root.value))) == nil {
                    let frame = caller.store.registry.symbolicate(root.frame)
                    mismatch("host.check_roots", "frame \(root.frameIndex) (\(frame.line(index: root.frameIndex))): "
                             + "slot fp\(Int(bitPattern: root.slotAddress) - Int(bitPattern: root.frame.framePointer)) holds 0x\(String(root.value, radix: 16)), "
                             + "which is no live object")
                }
            } catch {
                mismatch("host.check_roots", "root enumeration failed: \(error)")
            }
            return []
        }))
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
                local.framesCompared += comparison.framesCompared
                if !comparison.isMatch || trap.backtrace.error != nil {
                    local.mismatches.append(Mismatch(
                        seed: program.seed, program: program.text, place: "trap: \(trap.message)",
                        report: TextFormatter().render(comparison)))
                }
                let (problems, frames) = coredumps.problems(of: trap)
                local.coredumpFrames += frames
                for problem in problems { mismatch("the coredump of the trap (\(trap.message))", problem) }
            }
        } catch {
            mismatch("running the program", "\(error)")
        }
        // With no wasm running and nothing pinned, a collection frees every
        // object the program made.
        do {
            _ = try store.collectGarbage()
            if census.alive != 0 { mismatch("after the program", "\(census.alive) objects survived the final collection") }
        } catch {
            mismatch("after the program", "the final collection failed: \(error)")
        }
        summary.add(local)
    }

    /// Runs a two-module program with every checkpoint (`host.check`) and
    /// trap compared with libunwind, for each of its arguments.
    public func check(_ program: LinkedProgram, into summary: inout Summary) {
        summary.programs += 1
        summary.linkedPrograms += 1
        var local = Summary()
        func mismatch(_ place: String, _ report: String) {
            local.mismatches.append(Mismatch(seed: program.seed, program: program.text, place: place, report: report))
        }
        do {
            let store = Store(engine: session.engine)
            store.coredumpOnTrap = true
            // The trapping thread is what is checked (other threads of a test
            // process would be stopped for nothing).
            store.coredumpIncludesOtherThreads = false
            let instances = try LinkedProgramHost.instantiate(program, in: store, engine: session.engine) { caller in
                let (comparison, walk) = OracleSession.compareAtHostCall(caller)
                local.checkpoints += 1
                local.framesCompared += comparison.framesCompared
                if !comparison.isMatch || walk.error != nil {
                    mismatch("host.check", (walk.error.map { "walk error: \($0)\n" } ?? "") + TextFormatter().render(comparison))
                }
            }
            for argument in program.arguments {
                do {
                    _ = try instances.main.export(program.entry)!.call([.i32(argument)])
                } catch let trap as Trap where trap.code != nil {
                    local.traps += 1
                    let comparison = OracleSession.compareAtTrap(trap, store: store)
                    local.framesCompared += comparison.framesCompared
                    if !comparison.isMatch || trap.backtrace.error != nil {
                        mismatch("entry(\(argument)): trap: \(trap.message)", TextFormatter().render(comparison))
                    }
                    let (problems, frames) = coredumps.problems(of: trap)
                    local.coredumpFrames += frames
                    for problem in problems { mismatch("entry(\(argument)): the coredump of the trap", problem) }
                }
            }
        } catch {
            mismatch("running the program", "\(error)")
        }
        summary.add(local)
    }
}

extension DifferentialRun.Summary {
    mutating func add(_ local: Self) {
        framesCompared += local.framesCompared
        checkpoints += local.checkpoints
        traps += local.traps
        rootChecks += local.rootChecks
        rootsCompared += local.rootsCompared
        collections += local.collections
        coredumpFrames += local.coredumpFrames
        mismatches += local.mismatches
    }
}
