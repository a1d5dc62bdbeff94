import CMallocCounter
import Foundation
import Testing
import WasmJIT

/// Traps on real stacks: signals, the handler's capture, the jump back to
/// the activation, and Wasmtime's display. Offsets are `wasm-objdump -d`'s
/// for the same modules.
@Suite("Traps")
struct TrapTests {
    static let traps = """
        (module $traps
          (import "host" "trap" (func $host_trap (param i32)))
          (import "host" "call:inner" (func $reenter (param i32)))
          (memory 1)
          (func $div (export "div") (param i32 i32) (result i32) local.get 0 local.get 1 i32.div_s)
          (func $oob (export "oob") (param i32) (result i32) local.get 0 i32.load offset=4)
          (func $recurse (export "recurse") (param i32) (result i32) local.get 0 i32.const 1 i32.add call $recurse)
          (func $fail (export "fail") i32.const 7 call $host_trap)
          (func $outer (export "outer") i32.const 1 call $reenter)
          (func $inner (export "inner") (param i32) local.get 0 unreachable)
        )
        """
    // wasm-objdump -d:
    //   000080 func[2] <div>:      000085 i32.div_s
    //   000088 func[3] <oob>:      00008b i32.load 2 4
    //   000090 func[4] <recurse>:  000096 call 4 <recurse>
    //   00009a func[5] <fail>:     00009d call 0 <host_trap>
    //   0000a1 func[6] <outer>:    0000a4 call 1 <reenter>
    //   0000a8 func[7] <inner>:    0000ab unreachable

    struct HostFailure: Error, CustomStringConvertible {
        let code: Int32
        var description: String { "host failed with \(code)" }
    }

    static func instantiate(_ engine: Engine = Engine()) throws -> (Store, Instance) {
        let store = Store(engine: engine)
        var imports = Imports()
        imports.define(module: "host", name: "trap", .host(HostFunction(signature: Signature(parameters: [.i32], results: [])) { _, arguments in
            guard case .i32(let code) = arguments[0] else { return [] }
            throw HostFailure(code: code)
        }))
        imports.define(module: "host", name: "call:inner", .host(HostFunction(signature: Signature(parameters: [.i32], results: [])) { caller, arguments in
            try caller.export("inner")!.call(arguments)
        }))
        return (store, try Instance(store: store, module: Module(engine: engine, text: traps), imports: imports))
    }

    func trap(_ export: String, _ arguments: [Value], engine: Engine = Engine()) throws -> Trap {
        try trap(export, arguments, engine: engine, mode: nil)
    }

    func trap(_ export: String, _ arguments: [Value], mode: ExitRecording) throws -> Trap {
        try trap(export, arguments, engine: Engine(configuration: Engine.Configuration(exitRecording: mode)), mode: mode)
    }

    func trap(_ export: String, _ arguments: [Value], engine: Engine, mode: ExitRecording?) throws -> Trap {
        let (_, instance) = try Self.instantiate(engine)
        do {
            let results = try instance.export(export)!.call(arguments)
            Issue.record("\(export)\(arguments) returned \(results) instead of trapping")
            throw CancellationError()
        } catch let trap as Trap {
            return trap
        }
    }

    @Test("unreachable: reported at the instruction itself", arguments: exitRecordingModes)
    func unreachable(mode: ExitRecording) throws {
        let trap = try trap("inner", [.i32(0)], mode: mode)
        #expect(trap.code == .unreachable)
        #expect(describe(trap.backtrace) == ["0xab traps!inner"])
        #expect(trap.backtrace.frames.first?.frame.address.rawValue != nil)
        if case .programCounter = trap.backtrace.frames[0].frame.address {} else {
            Issue.record("the trapping frame must hold a program counter")
        }
    }

    @Test("integer divide by zero and INT_MIN / -1, by explicit checks", arguments: exitRecordingModes)
    func division(mode: ExitRecording) throws {
        let byZero = try trap("div", [.i32(7), .i32(0)], mode: mode)
        #expect(byZero.code == .integerDivisionByZero)
        #expect(describe(byZero.backtrace) == ["0x85 traps!div"])
        let overflow = try trap("div", [.i32(Int32.min), .i32(-1)], mode: mode)
        #expect(overflow.code == .integerOverflow)
        #expect(describe(overflow.backtrace) == ["0x85 traps!div"])
    }

    @Test("out-of-bounds loads trap; the last in-bounds word does not", arguments: exitRecordingModes)
    func outOfBounds(mode: ExitRecording) throws {
        let (_, instance) = try Self.instantiate(Engine(configuration: Engine.Configuration(exitRecording: mode)))
        // offset 4 + address 65528 + 4 bytes = 65536: the last word.
        #expect(try instance.export("oob")!.call([.i32(65528)]) == [.i32(0)])
        let trap = try trap("oob", [.i32(65529)], mode: mode)
        #expect(trap.code == .outOfBoundsMemoryAccess)
        #expect(describe(trap.backtrace) == ["0x8b traps!oob"])
        #expect(try self.trap("oob", [.i32(-1)], mode: mode).code == .outOfBoundsMemoryAccess)
    }

    @Test("an out-of-bounds access says where it went, in Wasmtime 50's words", arguments: exitRecordingModes)
    func outOfBoundsCause(mode: ExitRecording) throws {
        // Wasmtime 50 (guard pages) for the same module: the first byte the
        // access touched outside memory.
        let straddling = try trap("oob", [.i32(65529)], mode: mode)
        #expect(straddling.cause == "memory fault at wasm address 0x10000 in linear memory of size 0x10000")
        let outside = try trap("oob", [.i32(65533)], mode: mode)
        #expect(outside.cause == "memory fault at wasm address 0x10001 in linear memory of size 0x10000")
        let wrapped = try trap("oob", [.i32(-1)], mode: mode)
        #expect(wrapped.cause == "memory fault at wasm address 0x100000003 in linear memory of size 0x10000")
        #expect(wrapped.description == """
            error while executing at wasm backtrace:
                0:     0x8b - traps!oob
            memory fault at wasm address 0x100000003 in linear memory of size 0x10000
            wasm trap: out of bounds memory access
            """)
        #expect(try trap("inner", [.i32(0)], mode: mode).cause == nil)
    }

    @Test("stack overflow: the prologue check against stack_limit, the whole recursion in the trace", arguments: exitRecordingModes)
    func stackOverflow(mode: ExitRecording) throws {
        let trap = try trap("recurse", [.i32(0)], mode: mode)
        #expect(trap.code == .stackOverflow)
        #expect(trap.backtrace.error == nil)
        #expect(!trap.backtrace.isTruncated)
        let lines = describe(trap.backtrace)
        // The newest frame trapped in its prologue, which runs no wasm
        // instruction: no module offset, as Wasmtime prints it.
        #expect(lines.first == "? traps!recurse")
        #expect(lines.dropFirst().allSatisfy { $0 == "0x96 traps!recurse" })
        // 512 KiB of wasm stack, 48-byte frames.
        #expect(lines.count > 10_000)
    }

    @Test("a host function that fails: its error, with the backtrace at the call", arguments: exitRecordingModes)
    func hostFailure(mode: ExitRecording) throws {
        let trap = try trap("fail", [], mode: mode)
        guard case .host(let error) = trap.reason else {
            Issue.record("expected a host failure, got \(trap.reason)")
            return
        }
        #expect((error as? HostFailure)?.code == 7)
        #expect(describe(trap.backtrace) == ["0x9d traps!fail"])
        #expect(trap.description == """
            error while executing at wasm backtrace:
                0:     0x9d - traps!fail
            host failed with 7
            """)
    }

    @Test("a trap two activations deep surfaces through the host and gives one trace across both", arguments: exitRecordingModes)
    func nestedTwo(mode: ExitRecording) throws {
        let trap = try trap("outer", [], mode: mode)
        #expect(trap.code == .unreachable)
        #expect(describe(trap.backtrace) == ["0xab traps!inner", "0xa4 traps!outer"])
        #expect(trap.backtrace.frames.map(\.frame.activation) == [0, 1])
    }

    @Test("a trap three activations deep: the host rethrows, the trace covers all three", arguments: exitRecordingModes)
    func nestedThree(mode: ExitRecording) throws {
        let engine = Engine(configuration: Engine.Configuration(exitRecording: mode))
        let store = Store(engine: engine)
        var imports = Imports()
        var rethrown = 0
        imports.fallback = { module, name, signature in
            guard module == "host", name.hasPrefix("call:") else { return nil }
            let export = String(name.dropFirst(5))
            return .host(HostFunction(signature: signature) { caller, arguments in
                do {
                    return try caller.export(export)!.call(arguments)
                } catch {
                    rethrown += 1
                    throw error
                }
            })
        }
        let instance = try Instance(store: store, module: Module(engine: engine, text: """
            (module $deep
              (import "host" "call:second" (func $to_second))
              (import "host" "call:third" (func $to_third))
              (func $first (export "first") call $to_second)
              (func $second (export "second") call $to_third)
              (func $third (export "third") call $die)
              (func $die unreachable))
            """), imports: imports)
        // wasm-objdump -d: first 0x5e call 0; second 0x63 call 1; third 0x68 call 5; die 0x6d unreachable.
        do {
            _ = try instance.export("first")!.call([])
            Issue.record("expected a trap")
        } catch let trap as Trap {
            #expect(trap.code == .unreachable)
            #expect(describe(trap.backtrace) == ["0x6d deep!die", "0x68 deep!third", "0x63 deep!second", "0x5e deep!first"])
            #expect(trap.backtrace.frames.map(\.frame.activation) == [0, 0, 1, 2])
            #expect(trap.description == """
                error while executing at wasm backtrace:
                    0:     0x6d - deep!die
                    1:     0x68 - deep!third
                    2:     0x63 - deep!second
                    3:     0x5e - deep!first
                wasm trap: wasm `unreachable` instruction executed
                """)
        }
        #expect(rethrown == 2)
        #expect(store.activationDepth == 0)
        #expect(store.limits.lastWasmEntryFP == 0 && store.limits.lastWasmExitPC == 0)
    }

    @Test("after a trap the limits record and activation chain are restored and the store works", arguments: exitRecordingModes)
    func reuseAfterTrap(mode: ExitRecording) throws {
        let engine = Engine(configuration: Engine.Configuration(exitRecording: mode))
        let store = Store(engine: engine)
        let recorder = Recorder()
        var imports = Imports()
        imports.define(module: "host", name: "backtrace", .host(HostFunction(signature: Signature(parameters: [], results: [])) { caller, _ in
            recorder.traces.append(caller.backtrace())
            return []
        }))
        let instance = try Instance(store: store, module: Module(engine: engine, text: """
            (module $reuse
              (import "host" "backtrace" (func $bt))
              (func $die (export "die") unreachable)
              (func $look (export "look") call $bt))
            """), imports: imports)
        let before = (store.limits.stackLimit, store.limits.lastWasmExitFP, store.limits.lastWasmExitPC, store.limits.lastWasmEntryFP)
        for _ in 0..<3 {
            #expect(throws: Trap.self) { try instance.export("die")!.call([]) }
            #expect(store.activationDepth == 0)
            #expect(Activation.current == nil)
            let after = (store.limits.stackLimit, store.limits.lastWasmExitFP, store.limits.lastWasmExitPC, store.limits.lastWasmEntryFP)
            #expect(after == before)
            _ = try instance.export("look")!.call([])
        }
        // wasm-objdump -d: look calls bt at 0x40.
        #expect(recorder.traces.map(describe) == Array(repeating: ["0x40 reuse!look"], count: 3))
    }

    @Test("a trapping start function fails instantiation with the trap")
    func startTraps() throws {
        let engine = Engine()
        #expect(throws: Trap.self) {
            try Instance(store: Store(engine: engine), module: Module(engine: engine, text: """
                (module $boot (func $init unreachable) (start $init))
                """))
        }
    }

    @Test("the guard page catches recursion when the limit check is off, on the alternate stack")
    func guardPage() throws {
        // A thread with a 2 MiB stack and no prologue limit: recursion runs
        // into the thread's guard page; the handler runs on its own stack.
        let outcome = try runOnThread(stackSize: 2 << 20) { () throws -> Trap? in
            let engine = Engine(configuration: Engine.Configuration(checksStackLimit: false))
            do {
                _ = try TrapTests().trap("recurse", [.i32(0)], engine: engine)
                return try TrapTests().trap("recurse", [.i32(0)], engine: engine)
            } catch let trap as Trap {
                return trap
            }
        }
        let trap = try #require(outcome)
        #expect(trap.code == .stackOverflow)
        #expect(trap.backtrace.frames.count > 20_000)
        #expect(describe(trap.backtrace).dropFirst(2).allSatisfy { $0 == "0x96 traps!recurse" })
    }

    @Test("10,000 traps leave resident memory flat (measured in a child process of its own)")
    func manyTraps() throws {
        let result = try runChild(PackagePaths.executable("trap-probe"), ["trap-loop", "10000"])
        #expect(result.status == 0)
        let numbers = result.stdout.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        try #require(numbers.count == 2, "\(result.stdout)")
        #expect(numbers[1] < numbers[0] + (1 << 20), "resident memory grew from \(numbers[0]) to \(numbers[1]) bytes")
    }

    @Test("8 threads, each with its own store, trapping at once: each gets exactly its own trace")
    func concurrentThreads() throws {
        let results = try (0..<8).map { index in
            Thread.detachWithResult { () throws -> [String] in
                let engine = Engine()
                let store = Store(engine: engine)
                let name = "thread\(index)"
                // Different depths per thread: thread i traps i + 1 calls deep.
                var text = "(module $\(name)\n"
                text += "  (func $f0 (export \"run\") call $f1)\n"
                for k in 1..<(index + 1) { text += "  (func $f\(k) call $f\(k + 1))\n" }
                text += "  (func $f\(index + 1) unreachable))"
                let instance = try Instance(store: store, module: Module(engine: engine, text: text))
                var traces: Set<[String]> = []
                for _ in 0..<300 {
                    do {
                        _ = try instance.export("run")!.call([])
                    } catch let trap as Trap {
                        traces.insert(trap.backtrace.frames.map { "\($0.symbol?.moduleName ?? "?")!\($0.symbol?.functionName ?? "?")" })
                    }
                }
                guard traces.count == 1 else { return ["\(traces.count) different traces"] }
                return traces.first!
            }
        }.map { try $0.wait() }
        for (index, trace) in results.enumerated() {
            #expect(trace == (0...(index + 1)).reversed().map { "thread\(index)!f\($0)" })
        }
    }

    @Test("the handler path allocates nothing (interposed malloc counts allocations inside it)")
    func noAllocationInHandler() throws {
        let (_, instance) = try Self.instantiate()
        _ = try? instance.export("inner")!.call([.i32(0)])
        // The counter sees allocations made with the handler flag set...
        #expect(malloc_counter_self_test() == 1)
        // ...and the interposer is live for this process.
        let total = malloc_counter_total()
        let array = [Int](repeating: 1, count: 1000)
        #expect(malloc_counter_total() > total && array.count == 1000)
        let before = malloc_counter_in_trap_handler_on_this_thread()
        for export in ["inner", "recurse"] {
            for _ in 0..<50 {
                _ = try? instance.export(export)!.call([.i32(0)])
            }
        }
        _ = try? instance.export("outer")!.call([])
        #expect(malloc_counter_in_trap_handler_on_this_thread() == before)
    }

    @Test("a host crash is not a wasm trap: the child dies of SIGSEGV, after Swift's crash report")
    func hostNullDereference() throws {
        let result = try runChild(PackagePaths.executable("trap-probe"), ["null-dereference"])
        #expect(result.signal == SIGSEGV)
        #expect(result.stderr.contains("Program crashed: Bad pointer dereference"))
        #expect(!result.stdout.contains("wasm trap"))
    }

    @Test("a host crash with Swift's reporter off dies of the signal by the default action")
    func hostNullDereferenceDefaultAction() throws {
        let result = try runChild(PackagePaths.executable("trap-probe"), ["null-dereference"],
                                  environment: ["SWIFT_BACKTRACE": "enable=no"])
        #expect(result.signal == SIGSEGV)
        #expect(!result.stdout.contains("wasm trap"))
    }

    @Test("fatalError in host code (a ud2 outside wasm) dies of SIGILL, not as a wasm trap")
    func hostFatalError() throws {
        let result = try runChild(PackagePaths.executable("trap-probe"), ["fatal-error"])
        #expect(result.signal == SIGILL)
        #expect(result.stderr.contains("Fatal error: host code gave up"))
    }

    @Test("the probe itself catches a real wasm trap (the control case)")
    func probeControl() throws {
        let result = try runChild(PackagePaths.executable("trap-probe"), ["wasm-trap"])
        #expect(result.signal == nil && result.status == 0)
        #expect(result.stdout.contains("wasm trap: wasm `unreachable` instruction executed"))
    }
}

/// Runs `body` on a new thread with the given stack size and waits for it.
func runOnThread<T>(stackSize: Int, _ body: @escaping @Sendable () throws -> T) throws -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        box.result = Result { try body() }
        done.signal()
    }
    thread.stackSize = stackSize
    thread.start()
    done.wait()
    return try box.result!.get()
}

final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
}

extension Thread {
    /// Starts `body` on a new thread; `wait()` returns its result.
    static func detachWithResult<T>(_ body: @escaping @Sendable () throws -> T) -> PendingResult<T> {
        let pending = PendingResult<T>()
        let thread = Thread {
            pending.box.result = Result { try body() }
            pending.done.signal()
        }
        thread.stackSize = 8 << 20
        thread.start()
        return pending
    }
}

final class PendingResult<T>: @unchecked Sendable {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    func wait() throws -> T {
        done.wait()
        return try box.result!.get()
    }
}
