import WasmJIT

/// Two modules that throw and catch wasm exceptions, with the arguments to
/// call `main.entry` with.
public struct ExceptionProgram: Sendable {
    public let seed: UInt64
    /// `lib` defines and exports the tags and some functions; `main`
    /// imports them and the host functions of `ExceptionProgramHost`.
    public let lib: String
    public let main: String
    public let arguments: [Int32]

    /// Both modules, for a replay.
    public var text: String { ";; lib\n" + lib + "\n;; main\n" + main }
}

/// Generates the programs the exception handling of the reference runtime
/// is compared with Wasmtime's on: functions of two modules calling each
/// other with a decreasing depth `d`, each call wrapped in up to three
/// nested `try_table`s with random clauses — `catch` of one of three tags
/// (payloads i32, i32 i64, none), `catch_ref`, `catch_all`,
/// `catch_all_ref`, the `_ref` ones sometimes rethrowing with `throw_ref` —
/// throws at a random depth, host functions that throw (`host.throw`) and
/// that re-enter `main.entry` in a new activation (`host.reenter`, through
/// which an uncaught exception passes on into the caller). Every handler
/// adds its own constant to what it caught, so the result says which
/// handler took which payload; an exception no frame catches leaves with
/// its backtrace, which is compared too.
public struct ExceptionProgramGenerator {
    private var random: SplitMix64
    private let seed: UInt64
    private var labels = 0

    public init(seed: UInt64) {
        self.seed = seed
        random = SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ 19)
    }

    /// What a function calls with `d - 1`.
    enum Callee {
        case lib(Int), main(Int), reenter, hostThrow
        var text: String {
            switch self {
            case .lib(let index): return "$f\(index)"
            case .main(let index): return "$g\(index)"
            case .reenter: return "$reenter"
            case .hostThrow: return "$host_throw"
            }
        }
    }

    static let libFunctions = 3
    static let mainFunctions = 3

    public mutating func generate() -> ExceptionProgram {
        let tags = """
              (tag $t0 (export "t0") (param i32))
              (tag $t1 (export "t1") (param i32 i64))
              (tag $t2 (export "t2"))
            """
        var lib = "(module $lib\n" + tags + "\n"
        for index in 0..<Self.libFunctions {
            lib += function("$f\(index)", export: "f\(index)", callee: .lib(random.number(0...(Self.libFunctions - 1))))
        }
        lib += ")"
        var main = """
            (module $main
              (import "lib" "t0" (tag $t0 (param i32)))
              (import "lib" "t1" (tag $t1 (param i32 i64)))
              (import "lib" "t2" (tag $t2))
              (import "host" "reenter" (func $reenter (param i32) (result i32)))
              (import "host" "throw" (func $host_throw (param i32) (result i32)))

            """
        for index in 0..<Self.libFunctions {
            main += "  (import \"lib\" \"f\(index)\" (func $f\(index) (param i32) (result i32)))\n"
        }
        for index in 0..<Self.mainFunctions {
            main += function("$g\(index)", export: nil, callee: mainCallee())
        }
        labels = 0
        main += "  (func (export \"entry\") (param $d i32) (result i32)\n"
        main += wrap(levels: random.number(0...2), "(call \(mainCallee().text) (local.get $d))") + ")\n)"
        let arguments = (0..<6).map { _ in Int32(random.number(0...9)) }
        return ExceptionProgram(seed: seed, lib: lib, main: main, arguments: arguments)
    }

    private mutating func mainCallee() -> Callee {
        switch random.number(0...9) {
        case 0...3: return .main(random.number(0...(Self.mainFunctions - 1)))
        case 4...6: return .lib(random.number(0...(Self.libFunctions - 1)))
        case 7, 8: return .reenter
        default: return .hostThrow
        }
    }

    /// A function of `d`: returns a constant at `d <= 0`, may throw at one
    /// depth, else calls `callee` with `d - 1` inside nested try_tables.
    private mutating func function(_ name: String, export: String?, callee: Callee) -> String {
        labels = 0
        var text = "  (func \(name) \(export.map { "(export \"\($0)\") " } ?? "")(param $d i32) (result i32)\n"
        text += "    (if (i32.le_s (local.get $d) (i32.const 0)) (then (return (i32.const \(random.number(1...99))))))\n"
        if random.chance(60) {
            text += "    (if (i32.eq (local.get $d) (i32.const \(random.number(1...6)))) (then \(throwInstruction())))\n"
        }
        let call = "(call \(callee.text) (i32.sub (local.get $d) (i32.const 1)))"
        text += wrap(levels: random.number(0...3), call) + ")\n"
        return text
    }

    private mutating func throwInstruction() -> String {
        switch random.number(0...2) {
        case 0: return "(throw $t0 (i32.add (local.get $d) (i32.const \(random.number(0...999)))))"
        case 1: return "(throw $t1 (local.get $d) (i64.const \(random.number(0...99_999))))"
        default: return "(throw $t2)"
        }
    }

    /// `inner` (one i32) inside `levels` try_tables, outermost first.
    private mutating func wrap(levels: Int, _ inner: String) -> String {
        guard levels > 0 else { return "    " + inner + "\n" }
        labels += 1
        let out = "$out\(labels)", handler = "$h\(labels)"
        let constant = random.number(100...9_999)
        let rethrow = random.chance(30)
        let (clause, types, body): (String, String, String)
        switch random.number(0...5) {
        case 0: (clause, types, body) = ("(catch $t0 \(handler))", "(result i32)", "i32.const \(constant) i32.add")
        case 1: (clause, types, body) = ("(catch $t1 \(handler))", "(result i32 i64)",
                                         "i32.wrap_i64 i32.add i32.const \(constant) i32.add")
        case 2: (clause, types, body) = ("(catch $t2 \(handler))", "", "i32.const \(constant)")
        case 3: (clause, types, body) = ("(catch_ref $t0 \(handler))", "(result i32 exnref)",
                                         rethrow ? "throw_ref" : "drop i32.const \(constant) i32.add")
        case 4: (clause, types, body) = ("(catch_all \(handler))", "", "i32.const \(constant)")
        default: (clause, types, body) = ("(catch_all_ref \(handler))", "(result exnref)",
                                          rethrow ? "throw_ref" : "drop i32.const \(constant)")
        }
        let nested = wrap(levels: levels - 1, inner)
        return """
                (block \(out) (result i32)
                  (block \(handler) \(types)
                    (try_table (result i32) \(clause)
            \(nested)        )
                    (br \(out)))
                  \(body))

            """
    }
}

/// The host side of an `ExceptionProgram`, the same for every runtime it
/// is compared on (scripts/wasmtime-oracle.py defines the same functions):
///
/// * `host.reenter (i32) -> i32`: calls `main.entry` (a new activation);
///   an exception that leaves it is rethrown into the calling wasm, as
///   returning Wasmtime's error unchanged does;
/// * `host.throw (i32) -> i32`: throws `lib`'s tag `t0` with payload `7d`.
public enum ExceptionProgramHost {
    /// `check` runs in `host.throw` before it throws (with its tag).
    public static func instantiate(_ program: ExceptionProgram, in store: Store, engine: Engine,
                                   check: @escaping (Caller, Tag) -> Void = { _, _ in })
        throws -> (lib: Instance, main: Instance)
    {
        let unary = Signature(parameters: [.i32], results: [.i32])
        var imports = Imports()
        var lib: Instance?
        imports.define(module: "host", name: "reenter", .host(HostFunction(signature: unary) { caller, arguments in
            try caller.export("entry")!.call(arguments)
        }))
        imports.define(module: "host", name: "throw", .host(HostFunction(signature: unary) { caller, arguments in
            guard case .i32(let d) = arguments[0], let tag = lib?.exportedTag("t0") else { return [.i32(0)] }
            check(caller, tag)
            throw try WasmException(tag: tag, payload: [.i32(d &* 7)])
        }))
        lib = try Instance(store: store, module: Module(engine: engine, text: program.lib), imports: imports)
        imports.define(module: "lib", exportsOf: lib!)
        let main = try Instance(store: store, module: Module(engine: engine, text: program.main), imports: imports)
        return (lib!, main)
    }
}
