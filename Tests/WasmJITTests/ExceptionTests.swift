import Foundation
import JITCapture
import StackCapture
import Testing
import UnwindOracle
import Verification
import WasmJIT
@_spi(Tools) import WasmUnwind
import UnwindReports

/// Wasm exceptions on real stacks: a throw walks the frames of its
/// activation with the frame-pointer walker, finds the handler in the
/// call-site records and resumes through the generated landing pad.
@Suite("Wasm exceptions")
struct ExceptionTests {
    static let program = """
        (module $exn
          (import "host" "probe" (func $probe (param i32)))
          (tag $all (export "all") (param i32 i64 f32 f64))
          (tag $e (export "e") (param i32))
          (tag $other (export "other"))
          ;; Recurses `depth` times, then throws $all or $e (kind 0 / 1),
          ;; or calls the host (kind 2).
          (func $dive (param $depth i32) (param $kind i32)
            (if (i32.eqz (local.get $depth))
              (then
                (if (i32.eqz (local.get $kind))
                  (then (throw $all (i32.const -7) (i64.const 0x1122334455667788) (f32.const 1.5) (f64.const -2.25))))
                (if (i32.eq (local.get $kind) (i32.const 1)) (then (throw $e (i32.const 42))))
                (call $probe (local.get $kind))
                (return)))
            (call $dive (i32.sub (local.get $depth) (i32.const 1)) (local.get $kind)))
          (func (export "catch_all_types") (param $depth i32) (result i32 i64 f32 f64)
            (block $h (result i32 i64 f32 f64)
              (try_table (catch $all $h)
                (call $dive (local.get $depth) (i32.const 0)))
              (unreachable)))
          ;; The inner try_table takes only $other; $e passes it to the outer one.
          (func (export "nested") (param $depth i32) (param $kind i32) (result i32)
            (block $outer (result i32)
              (try_table (catch $e $outer)
                (block $inner
                  (try_table (catch $other $inner)
                    (call $dive (local.get $depth) (local.get $kind))))
                (return (i32.const -1)))
              (return (i32.const -2)))
            (i32.add (i32.const 1000)))
          (func (export "uncaught") (param $depth i32) (param $kind i32)
            (call $dive (local.get $depth) (local.get $kind)))
          (func (export "many") (param $n i32) (result i32)
            (local $sum i32)
            (loop $again
              (block $h (result i32)
                (try_table (catch $e $h) (call $dive (i32.const 3) (i32.const 1)))
                (unreachable))
              (local.set $sum (i32.add (local.get $sum)))
              (br_if $again (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
            (local.get $sum))
          (func (export "catch_all_host") (result i32)
            (block $h
              (try_table (catch_all $h) (call $dive (i32.const 2) (i32.const 2)))
              (return (i32.const 0)))
            (i32.const 1))
          (func (export "tail_to_host")
            (block $h
              (try_table (catch_all $h) (return_call $probe (i32.const 2)))))
          (func (export "null_ref") (throw_ref (ref.null exn)))
        )
        """

    /// An instance of `program` whose `probe` runs `body`.
    func instance(_ mode: ExitRecording, probe: @escaping (Caller, Int32) throws -> Void = { _, _ in }) throws -> Instance {
        var harness = Harness(mode)
        harness.define("probe", [.i32]) { caller, arguments in
            guard case .i32(let kind) = arguments[0] else { return [] }
            try probe(caller, kind)
            return []
        }
        return try harness.instantiate(Self.program)
    }

    @Test("a throw is caught across frames with its payload, every value type", arguments: exitRecordingModes)
    func payload(mode: ExitRecording) throws {
        let instance = try instance(mode)
        for depth: Int32 in [0, 1, 100] {
            let results = try instance.export("catch_all_types")!.call([.i32(depth)])
            #expect(results == [.i32(-7), .i64(0x1122334455667788), .f32(1.5), .f64(-2.25)])
        }
    }

    @Test("clauses are tried innermost first; a tag no clause names passes outwards", arguments: exitRecordingModes)
    func nesting(mode: ExitRecording) throws {
        let instance = try instance(mode)
        #expect(try instance.export("nested")!.call([.i32(5), .i32(1)]) == [.i32(1042)])
        let trap = try #require(throws: Trap.self) { try instance.export("nested")!.call([.i32(5), .i32(0)]) }
        #expect(trap.exception?.tag === instance.exportedTag("all"))
    }

    @Test("10,000 throws in a loop: each resume restores the frame exactly (the stack does not drift)",
          arguments: exitRecordingModes)
    func manyThrows(mode: ExitRecording) throws {
        let instance = try instance(mode)
        #expect(try instance.export("many")!.call([.i32(10_000)]) == [.i32(420_000)])
        #expect(instance.store.activationDepth == 0)
    }

    @Test("an uncaught exception leaves as a Trap with the tag, the payload and the backtrace at the throw",
          arguments: exitRecordingModes)
    func uncaught(mode: ExitRecording) throws {
        let instance = try instance(mode)
        let trap = try #require(throws: Trap.self) { try instance.export("uncaught")!.call([.i32(3), .i32(1)]) }
        let exception = try #require(trap.exception)
        #expect(exception.tag === instance.exportedTag("e"))
        #expect(exception.payload == [.i32(42)])
        #expect(trap.message == "thrown Wasm exception")
        let names = describe(trap.backtrace).map { $0.components(separatedBy: " ").dropFirst().joined(separator: " ") }
        #expect(names == ["exn!dive", "exn!dive", "exn!dive", "exn!dive", "exn!<wasm function 4>"])
        #expect(instance.store.activationDepth == 0)
        // The store works after it.
        #expect(try instance.export("nested")!.call([.i32(0), .i32(1)]) == [.i32(1042)])
    }

    @Test("a host function throws a wasm exception into the calling wasm", arguments: exitRecordingModes)
    func hostThrows(mode: ExitRecording) throws {
        var instance: Instance!
        instance = try self.instance(mode) { _, _ in
            throw try WasmException(tag: instance.exportedTag("e")!, payload: [.i32(9)])
        }
        #expect(try instance.export("nested")!.call([.i32(4), .i32(2)]) == [.i32(1009)])
        #expect(try instance.export("catch_all_host")!.call([]) == [.i32(1)])
    }

    @Test("an exception leaving a nested activation, rethrown by the host, is caught by the outer wasm (Wasmtime 50)",
          arguments: exitRecordingModes)
    func throughHostFrames(mode: ExitRecording) throws {
        var instance: Instance!
        var seen: Trap?
        instance = try self.instance(mode) { _, _ in
            do {
                _ = try instance.export("uncaught")!.call([.i32(2), .i32(1)])
            } catch let trap as Trap {
                seen = trap
                throw trap
            }
        }
        #expect(try instance.export("nested")!.call([.i32(3), .i32(2)]) == [.i32(1042)])
        // The host saw the exception leave its own call as a Trap.
        #expect(seen?.exception?.payload == [.i32(42)])
    }

    @Test("an uncaught exception's backtrace is its last throw's: a throw_ref takes a new one, a host passing it on keeps it",
          arguments: exitRecordingModes)
    func backtraceRule(mode: ExitRecording) throws {
        var harness = Harness(mode)
        var instance: Instance!
        harness.define("reenter") { _, _ in
            _ = try instance.export("inner")!.call([])
            return []
        }
        instance = try harness.instantiate("""
            (module $bt
              (import "host" "reenter" (func $reenter))
              (tag $e)
              (func $deep (throw $e))
              (func $rethrower (export "rethrow")
                (block $h (result exnref) (try_table (catch_all_ref $h) (call $deep)) (unreachable))
                (throw_ref))
              (func $inner (export "inner") (call $deep))
              (func $outer (export "outer") (call $reenter))
              (func $catcher (export "outer_rethrow")
                (block $h (result exnref) (try_table (catch_all_ref $h) (call $reenter)) (unreachable))
                (throw_ref)))
            """)
        func names(_ export: String) throws -> [String] {
            let trap = try #require(throws: Trap.self) { try instance.export(export)!.call([]) }
            #expect(trap.exception != nil)
            return describe(trap.backtrace).map { $0.components(separatedBy: "!").last ?? "" }
        }
        // Caught by catch_all_ref and rethrown: the backtrace is throw_ref's.
        #expect(try names("rethrow") == ["rethrower"])
        // Thrown in a nested activation, passed on by the host: still the
        // throw's, across both activations.
        #expect(try names("outer") == ["deep", "inner", "outer"])
        // Passed on by the host, caught and rethrown by the outer wasm: the
        // throw_ref's.
        #expect(try names("outer_rethrow") == ["catcher"])
    }

    @Test("a host error that is no wasm exception is a trap: catch_all does not take it", arguments: exitRecordingModes)
    func hostErrorIsNoException(mode: ExitRecording) throws {
        struct Failure: Error {}
        let instance = try instance(mode) { _, _ in throw Failure() }
        let trap = try #require(throws: Trap.self) { try instance.export("catch_all_host")!.call([]) }
        #expect(trap.exception == nil)
        if case .host(let error) = trap.reason { #expect(error is Failure) } else { Issue.record("\(trap.reason)") }
    }

    @Test("a return_call from a try_table leaves the handler behind, even when it stays an ordinary call",
          arguments: exitRecordingModes)
    func tailCallLeavesHandler(mode: ExitRecording) throws {
        var instance: Instance!
        instance = try self.instance(mode) { _, _ in
            throw try WasmException(tag: instance.exportedTag("e")!, payload: [.i32(1)])
        }
        let trap = try #require(throws: Trap.self) { try instance.export("tail_to_host")!.call([]) }
        #expect(trap.exception != nil)
    }

    @Test("throw_ref of null traps with \"null reference\"")
    func nullReference() throws {
        let instance = try instance(.trampoline)
        let trap = try #require(throws: Trap.self) { try instance.export("null_ref")!.call([]) }
        #expect(trap.code == .nullReference)
        #expect(trap.message == "wasm trap: null reference")
    }

    @Test("an exnref held in a local is a root; its exception keeps the externref in its payload alive",
          arguments: exitRecordingModes)
    func roots(mode: ExitRecording) throws {
        let collections = LastCollection()
        let instance = try collections.harness(mode, object: "payload").instantiate("""
            (module
              (import "host" "new_object" (func $new (result externref)))
              (import "host" "collect" (func $collect))
              (tag $t (param externref))
              (func (export "run") (result externref)
                (local $held exnref)
                (block $h (result externref exnref)
                  (try_table (catch_ref $t $h) (throw $t (call $new)))
                  (unreachable))
                (local.set $held)
                (drop)
                (call $collect)
                (block $again (result externref)
                  (try_table (catch $t $again) (throw_ref (local.get $held)))
                  (unreachable))))
            """)
        let result = try instance.export("run")!.call([])
        let collected = try #require(collections.report)
        // The exnref in the frame is a stack root, its exception's payload
        // object stays alive through it, and throw_ref hands it back.
        #expect(collected.stackRoots.count == 1)
        #expect(collected.liveObjects == 2)
        guard case .externref(let reference?) = result.first else { Issue.record("\(result)"); return }
        #expect(instance.store.object(for: reference) as? String == "payload")
    }

    @Test("a collection at the throw (Store.onThrow) keeps the payload alive: it is in the throwing call site's stack map",
          arguments: ["throw_new", "rethrow_new"])
    func collectionAtThrow(export: String) throws {
        var harness = Harness(.trampoline)
        harness.define("new_object", [], [.externref]) { caller, _ in
            [.externref(caller.store.externref(for: NSString(string: "payload")))]
        }
        let instance = try harness.instantiate("""
            (module
              (import "host" "new_object" (func $new (result externref)))
              (tag $t (param externref))
              (func (export "throw_new") (result externref)
                (block $h (result externref)
                  (try_table (catch $t $h) (throw $t (call $new)))
                  (unreachable)))
              (func (export "rethrow_new") (result externref)
                (block $again (result externref)
                  (try_table (catch $t $again)
                    (throw_ref
                      (block $h (result exnref)
                        (try_table (catch_all_ref $h) (throw $t (call $new)))
                        (unreachable))))
                  (unreachable))))
            """)
        let store = instance.store
        var freed: [UInt64] = []
        store.onThrow = { _ in freed += (try? store.collectGarbage())?.freed ?? [] }
        let result = try instance.export(export)!.call([])
        #expect(freed.isEmpty)
        guard case .externref(let reference?) = result.first else { Issue.record("\(result)"); return }
        #expect(store.object(for: reference) as? String == "payload")
    }

    @Test("exnrefs in a table and a global (initialised with ref.null exn) keep their exceptions and payloads alive")
    func heldByInstance() throws {
        let collections = LastCollection()
        let instance = try collections.harness(.trampoline, object: "held").instantiate("""
            (module
              (import "host" "new_object" (func $new (result externref)))
              (import "host" "collect" (func $collect))
              (tag $t (param externref))
              (table $exns 2 exnref)
              (global $g (mut exnref) (ref.null exn))
              (func (export "run") (result externref)
                (table.set $exns (i32.const 1)
                  (block $h (result exnref)
                    (try_table (catch_all_ref $h) (throw $t (call $new)))
                    (unreachable)))
                (global.set $g (table.get $exns (i32.const 1)))
                (call $collect)
                (block $again (result externref)
                  (try_table (catch $t $again) (throw_ref (global.get $g)))
                  (unreachable))))
            """)
        let result = try instance.export("run")!.call([])
        let collected = try #require(collections.report)
        #expect(collected.freed.isEmpty)
        #expect(collected.liveObjects == 2)
        guard case .externref(let reference?) = result.first else { Issue.record("\(result)"); return }
        #expect(instance.store.object(for: reference) as? String == "held")
    }

    @Test("after a catch, in a nested activation and in the handler's own frame, a trap's backtrace is exact and libunwind agrees",
          arguments: exitRecordingModes)
    func trapAfterCatch(mode: ExitRecording) throws {
        let session = OracleSession(configuration: Engine.Configuration(exitRecording: mode))
        let store = Store(engine: session.engine)
        var imports = Imports()
        var instance: Instance!
        imports.define(module: "host", name: "reenter", .host(HostFunction(signature: Signature(parameters: [], results: [])) { _, _ in
            // A nested activation that throws and catches, then returns.
            _ = try instance.export("catches")!.call([])
            return []
        }))
        instance = try Instance(store: store, module: Module(engine: session.engine, text: """
            (module $after
              (import "host" "reenter" (func $reenter))
              (tag $e (param i32))
              (func $thrower (throw $e (i32.const 1)))
              (func $catches (export "catches") (result i32)
                (block $h (result i32) (try_table (result i32) (catch $e $h) (call $thrower) (i32.const 0))))
              (func $divide (param i32) (result i32) (i32.div_u (i32.const 1) (local.get 0)))
              (func $handler_traps (export "run")
                (call $reenter)
                (drop (call $catches))
                (block $h (result i32) (try_table (result i32) (catch $e $h) (call $thrower) (i32.const 0)))
                ;; the caught payload is 1: 1 - 1 = 0 divides by zero
                (drop (call $divide (i32.sub (i32.const 1))))))
            """), imports: imports)
        let trap = try #require(throws: Trap.self) { try instance.export("run")!.call([]) }
        #expect(trap.code == .integerDivisionByZero)
        let names = describe(trap.backtrace).map { $0.components(separatedBy: "!").last ?? "" }
        #expect(names == ["divide", "handler_traps"])
        let comparison = OracleSession.compareAtTrap(trap, store: store)
        #expect(comparison.isMatch, "\(TextFormatter().render(comparison))")
        #expect(comparison.framesCompared == 2)
        #expect(store.activationDepth == 0)
    }

    @Test("the frame where the handler search stops is the frame libunwind reaches at the same depth",
          arguments: exitRecordingModes)
    func handlerFrameAgreesWithLibunwind(mode: ExitRecording) throws {
        let session = OracleSession(configuration: Engine.Configuration(exitRecording: mode))
        let store = Store(engine: session.engine)
        var imports = Imports()
        var checks = 0
        imports.define(module: "host", name: "probe", .host(HostFunction(signature: Signature(parameters: [.i32], results: [])) { caller, _ in
            let libunwind = Libunwind.unwindHere()
            let instance = caller.instance
            for tagName in ["e", "other"] {
                let match = try #require(try caller.store.handler(for: instance.exportedTag(tagName)!))
                // libunwind's frames of wasm functions, newest first.
                let wasmFrames = libunwind.filter { frame in
                    caller.store.registry.kind(at: frame.ip &- 1) == .wasmFunction
                }
                let reached = try #require(wasmFrames.dropFirst(match.frameIndex).first)
                #expect(reached.ip == match.frame.address.rawValue, "\(tagName): libunwind \(hex(reached.ip)), search \(hex(match.frame.address.rawValue))")
                #expect(reached.sp == match.stackPointer, "\(tagName): libunwind sp \(hex(reached.sp)), resume sp \(hex(match.stackPointer))")
                checks += 1
            }
            return []
        }))
        let instance = try Instance(store: store, module: Module(engine: session.engine, text: Self.program), imports: imports)
        // dive x6 -> probe: $e is caught by `nested` (frame 7), $other by
        // its inner try_table (the same frame).
        _ = try instance.export("nested")!.call([.i32(6), .i32(2)])
        #expect(checks == 2)
    }
}

/// Captures taken at a throw: the same handler search runs again on the
/// captured stack; `compile --stack-maps` lists each call site's handlers.
@Suite("Wasm exceptions: captures and the CLI")
struct ExceptionCaptureTests {
    @Test("a capture at each throw finds offline the handler the live throw found (frame, clause, sp, landing pad)",
          arguments: exitRecordingModes)
    func offlineSearchAgrees(mode: ExitRecording) throws {
        var harness = Harness(mode)
        harness.define("probe", [.i32]) { _, _ in [] }
        let instance = try harness.instantiate(ExceptionTests.program)
        let store = instance.store
        var pairs: [(live: HandlerMatch?, capture: CaptureFile)] = []
        store.onThrow = { site in pairs.append((site.handler, LiveCapture.atThrow(site, store: store))) }
        _ = try instance.export("nested")!.call([.i32(5), .i32(1)])
        _ = try? instance.export("uncaught")!.call([.i32(2), .i32(1)])
        #expect(pairs.count == 2)
        for (live, capture) in pairs {
            let stack = try CapturedStack(try CaptureFile(parsing: capture.serialized()))
            let offline = try stack.handler(for: try #require(stack.capture.thrown))
            #expect(offline?.frameIndex == live?.frameIndex)
            #expect(offline?.stackPointer == live?.stackPointer)
            #expect(offline?.landingPad == live?.landingPad)
            #expect(offline?.handler == live?.handler)
            #expect(stack.capture.thrown?.payload == ["i32 42"])
        }
        #expect(pairs[0].live?.frameIndex == 6)
        #expect(pairs[1].live == nil)
    }

    @Test("run --capture-throws, then dump: the throw site, the payload and the handler frame")
    func cli() throws {
        let directory = try temporaryDirectory("throw-capture")
        let program = directory.appendingPathComponent("throws.wat")
        try """
            (module $throws
              (tag $e (param i32))
              (func $thrower (param i32) (throw $e (local.get 0)))
              (func $mid (param i32) (call $thrower (local.get 0)))
              (func $catcher (export "run") (param i32) (result i32)
                (block $h (result i32)
                  (try_table (result i32) (catch $e $h) (call $mid (local.get 0)) (i32.const -1))
                  (return))
                (i32.const 100) (i32.add))
              (func (export "uncaught") (param i32) (call $mid (local.get 0))))
            """.write(to: program, atomically: true, encoding: .utf8)
        let capture = directory.appendingPathComponent("at-throw.capture").path
        let caught = try runCLI(["run", program.path, "--invoke", "run", "5", "--capture", capture, "--capture-throws"])
        #expect(caught.stdout == "105\n")
        let dump = try runCLI(["dump", capture])
        #expect(dump.stdout.contains("captured at a throw"))
        #expect(dump.stdout.contains("    0:     0x3b - throws!thrower\n    1:     0x42 - throws!mid\n    2:     0x51 - throws!catcher"))
        #expect(dump.stdout.contains("thrown Wasm exception (payload: i32 5)"))
        #expect(dump.stdout.contains("handler: frame 2 (throws!catcher @ 0x51): catch tag 0 -> +0x"))
        // Uncaught: --capture alone captures it; no handler in the activation.
        let uncaughtCapture = directory.appendingPathComponent("uncaught.capture").path
        let uncaught = try runCLI(["run", program.path, "--invoke", "uncaught", "5", "--capture", uncaughtCapture])
        #expect(uncaught.status != 0)
        #expect(uncaught.stderr.contains("thrown Wasm exception"))
        let json = try runCLI(["run", program.path, "--invoke", "uncaught", "5", "--format", "json"])
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let trap = try #require(document["trap"] as? [String: Any])
        #expect(trap["message"] as? String == "thrown Wasm exception")
        #expect((trap["exception"] as? [String: Any])?["payload"] as? [String] == ["i32 5"])
        let second = try runCLI(["dump", uncaughtCapture])
        #expect(second.stdout.contains("handler: none in the newest activation (the exception leaves it)"))
        // The handlers are in the call-site table.
        let compiled = try runCLI(["compile", program.path, "--stack-maps"])
        #expect(compiled.stdout.contains("call site: return address"))
        #expect(compiled.stdout.contains("    handler: catch tag 0 -> +0x"))
    }

    @Test("nested try_tables share their enclosing handlers: linear in the nesting; the innermost matching clause still wins; a capture keeps the scopes")
    func nestedScopes() throws {
        // 1,500 try_tables, each around a call and the next one: alternately
        // catching tag $a and tag $b. Every call site is in all enclosing
        // try_tables — 1.1 million (site, clause) pairs if each site listed
        // them — yet the module holds one scope per try_table.
        let depth = 1_500
        var body = ""
        for level in 0..<depth {
            body += "(block $l\(level) (result i32) (try_table (catch \(level % 2 == 0 ? "$a" : "$b") $l\(level)) (call $throw_at (i32.const \(level))) "
        }
        body += "(call $throw_at (i32.const \(depth)))"
        for level in (0..<depth).reversed() { body += ") (i32.const -1) (br $l\(level))) drop " }
        let text = """
            (module $nested
              (tag $a (param i32)) (tag $b (param i32))
              (global $target (mut i32) (i32.const -1))
              (func $throw_at (param i32)
                (if (i32.eq (local.get 0) (global.get $target))
                  (then (if (i32.and (local.get 0) (i32.const 1)) (then (throw $b (local.get 0))) (else (throw $a (local.get 0)))))))
              (func (export "run") (param i32) (result i32)
                (global.set $target (local.get 0))
                \(body)
                (i32.const 0)))
            """
        let engine = Engine()
        let module = try Module(engine: engine, text: text)
        let table = module.stackMaps
        #expect(table.handlerScopes.count == depth)
        #expect(table.handlerScopes.reduce(0) { $0 + $1.clauses.count } == depth)
        // The deepest call site sees every clause, innermost first.
        let deepest = try #require(table.maps.max { table.handlers(of: $0).count < table.handlers(of: $1).count })
        #expect(table.handlers(of: deepest).count == depth)
        // A throw from level k is caught by its own try_table when the tag
        // matches; the run returns normally either way (the catch branches
        // to the block, which is dropped).
        let instance = try Instance(store: Store(engine: engine), module: module)
        for level: Int32 in [0, 1, 700, 1_499, 1_500] {
            #expect(try instance.export("run")!.call([.i32(level)]) == [.i32(0)], "level \(level)")
        }
        // A capture of the module keeps the scopes, and reads back equal
        // (capture format 2.2).
        let capture = CaptureFile(registers: [:], activations: [], stack: [], modules: [module.captureModule])
        let bytes = capture.serialized()
        #expect(bytes[10] == 2)
        #expect(try CaptureFile(parsing: bytes).modules.first?.stackMaps == table)
    }

    @Test("profiling a throw loop: libunwind agrees on every sample; the throw's host samples hang under the throwing stack")
    func profile() throws {
        let result = try runCLI(["profile", "fixtures/programs/throwloop.wat", "--invoke", "main", "--hz", "5000",
                                 "--check-libunwind", "--", "20000"])
        #expect(result.status == 0, "\(result.stderr)")
        let summary = result.stderr.split(separator: "\n").filter { $0.hasPrefix("libunwind:") }
        #expect(summary.count == 1 && summary[0].hasSuffix(" 0 differ"), "\(result.stderr)")
        // Samples in the unwinder (host code) are attributed through the
        // throw's recorded exit: catcher, then dive frames.
        #expect(result.stdout.contains("throwloop!<wasm function 2>;throwloop!catcher;throwloop!dive;throwloop!dive"))
    }

    @Test("a THROW section whose tag lists do not match the modules is refused by name")
    func badThrowSection() throws {
        var harness = Harness(.trampoline)
        harness.define("probe", [.i32]) { _, _ in [] }
        let instance = try harness.instantiate(ExceptionTests.program)
        var capture: CaptureFile?
        instance.store.onThrow = { site in capture = LiveCapture.atThrow(site, store: instance.store) }
        _ = try instance.export("nested")!.call([.i32(1), .i32(1)])
        var file = try #require(capture)
        file.thrown?.tags.append([0])
        let error = try #require(throws: CaptureFormatError.self) { try CaptureFile(parsing: file.serialized()) }
        #expect(error.section == "THROW")
        #expect(error.expected == "tag lists for the 1 modules, found 2")
    }
}

/// The last collection a test's `host.collect` made.
final class LastCollection {
    var report: CollectionReport?

    /// A harness whose `host.new_object` makes an object named `object`
    /// and whose `host.collect` collects garbage, keeping the report here.
    func harness(_ mode: ExitRecording, object: String) -> Harness {
        var harness = Harness(mode)
        harness.define("new_object", [], [.externref]) { caller, _ in
            [.externref(caller.store.externref(for: NSString(string: object)))]
        }
        harness.define("collect") { [unowned self] caller, _ in
            report = try caller.store.collectGarbage()
            return []
        }
        return harness
    }
}
