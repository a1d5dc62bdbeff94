import CMallocCounter
import Foundation
import Testing
import WasmJIT

/// The two ways a trap leaves wasm, and the two ways memory stays in
/// bounds, give the same traps: messages, causes and backtraces. By
/// default a stub calls the runtime's trap entry (no signal) and memory
/// accesses rely on guard pages (the fault is the trap); `.ud2` stubs and
/// explicit bounds checks are kept so the signal path and the check path
/// stay tested.
@Suite("Trap mechanisms")
struct TrapMechanismTests {
    struct Mechanism: Sendable, CustomTestStringConvertible {
        var trapInstructions: TrapInstructions
        var boundsChecks: BoundsChecks
        var testDescription: String { "\(trapInstructions), \(boundsChecks)" }
        var configuration: Engine.Configuration {
            Engine.Configuration(trapInstructions: trapInstructions, boundsChecks: boundsChecks)
        }
    }

    static let mechanisms = TrapInstructions.allCases.flatMap { instructions in
        BoundsChecks.allCases.map { Mechanism(trapInstructions: instructions, boundsChecks: $0) }
    }

    static let module = """
        (module $m
          (type $t (func (param i32) (result i32)))
          (table 2 funcref)
          (elem (i32.const 0) $id)
          (memory 1)
          (func $id (type $t) (local.get 0))
          (func (export "unreachable") (unreachable))
          (func (export "div") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
          (func (export "load") (param i32) (result i32) (i32.load offset=4 (local.get 0)))
          (func (export "store") (param i32) (i64.store (local.get 0) (i64.const 1)))
          (func (export "convert") (param f64) (result i32) (i32.trunc_f64_s (local.get 0)))
          (func (export "indirect") (param i32) (result i32) (call_indirect (type $t) (i32.const 5) (local.get 0)))
          (func $deep (export "deep") (param i32) (result i32) (call $deep (i32.add (local.get 0) (i32.const 1))))
        )
        """

    func trap(_ mechanism: Mechanism, _ export: String, _ arguments: [Value]) throws -> Trap {
        let engine = Engine(configuration: mechanism.configuration)
        let instance = try Instance(store: Store(engine: engine), module: Module(engine: engine, text: Self.module))
        do {
            let results = try instance.export(export)!.call(arguments)
            Issue.record("\(export) returned \(results)")
            throw CancellationError()
        } catch let trap as Trap {
            return trap
        }
    }

    @Test("every trap: the same message, cause and backtrace whichever way it is raised", arguments: mechanisms)
    func traps(mechanism: Mechanism) throws {
        let cases: [(String, [Value], String, String?)] = [
            ("unreachable", [], "wasm trap: wasm `unreachable` instruction executed", nil),
            ("div", [.i32(1), .i32(0)], "wasm trap: integer divide by zero", nil),
            ("div", [.i32(Int32.min), .i32(-1)], "wasm trap: integer overflow", nil),
            ("load", [.i32(65530)], "wasm trap: out of bounds memory access",
             "memory fault at wasm address 0x10000 in linear memory of size 0x10000"),
            ("load", [.i32(-1)], "wasm trap: out of bounds memory access",
             "memory fault at wasm address 0x100000003 in linear memory of size 0x10000"),
            ("store", [.i32(65532)], "wasm trap: out of bounds memory access",
             "memory fault at wasm address 0x10000 in linear memory of size 0x10000"),
            ("convert", [.f64(3e9)], "wasm trap: integer overflow", nil),
            ("convert", [.f64(.nan)], "wasm trap: invalid conversion to integer", nil),
            ("indirect", [.i32(7)], "wasm trap: undefined element: out of bounds table access", nil),
            ("indirect", [.i32(1)], "wasm trap: uninitialized element", nil),
            ("deep", [.i32(0)], "wasm trap: call stack exhausted", nil),
        ]
        for (export, arguments, message, cause) in cases {
            let trap = try trap(mechanism, export, arguments)
            #expect(trap.message == message, "\(export)\(arguments)")
            #expect(trap.cause == cause, "\(export)\(arguments)")
            #expect(trap.backtrace.error == nil)
            let isMemory = message.contains("memory")
            // Signals: every trap with ud2 stubs; memory faults with guard pages.
            let signalled = mechanism.trapInstructions == .ud2 || (isMemory && mechanism.boundsChecks == .guardPages)
            #expect((trap.signal != nil) == signalled, "\(export)\(arguments): signal \(String(describing: trap.signal))")
            #expect(trap.backtrace.frames.first?.symbol?.function != nil)
        }
    }

    @Test("the trapping frame names the trapping instruction: the same offsets in every mechanism")
    func offsetsAgree() throws {
        var lines: [[String]] = []
        for mechanism in Self.mechanisms {
            var these: [String] = []
            for (export, arguments) in [("unreachable", [Value]()), ("div", [.i32(1), .i32(0)]), ("load", [.i32(-1)]),
                                        ("store", [.i32(-1)]), ("convert", [.f64(.nan)]), ("indirect", [.i32(9)])] {
                these += describe(try trap(mechanism, export, arguments).backtrace)
            }
            lines.append(these)
        }
        #expect(Set(lines.map { $0.joined(separator: "|") }).count == 1, "\(lines)")
    }

    @Test("raising a trap by call allocates nothing either")
    func noAllocation() throws {
        let engine = Engine(configuration: Engine.Configuration(trapInstructions: .runtimeCall))
        let instance = try Instance(store: Store(engine: engine), module: Module(engine: engine, text: Self.module))
        _ = try? instance.export("unreachable")!.call([])
        let before = malloc_counter_in_trap_handler_on_this_thread()
        for _ in 0..<50 {
            _ = try? instance.export("unreachable")!.call([])
            _ = try? instance.export("div")!.call([.i32(1), .i32(0)])
            _ = try? instance.export("deep")!.call([.i32(0)])
        }
        #expect(malloc_counter_in_trap_handler_on_this_thread() == before)
    }
}
