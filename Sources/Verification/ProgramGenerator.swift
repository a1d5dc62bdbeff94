import WasmJIT

/// A seeded random number generator (SplitMix64): the same seed gives the
/// same programs on every machine.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension SplitMix64 {
    /// True `percent` times in a hundred.
    mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &self) < percent }
    /// A number in `range`.
    mutating func number(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }
}

/// The type and locals of one function of a generated program.
struct GeneratedFunction {
    var parameters: [ValueKind]
    var locals: [ValueKind]
    var result: ValueKind?
    /// Parameters, then locals: the local index space.
    var all: [ValueKind] { parameters + locals }

    /// `(param ...) (result ...)`, for the function and for imports of it.
    var signatureText: String {
        var parts: [String] = []
        if !parameters.isEmpty { parts.append("(param " + parameters.map(\.description).joined(separator: " ") + ")") }
        if let result { parts.append("(result \(result))") }
        return parts.joined(separator: " ")
    }
}

/// A generated program: its text, the export to call and the arguments.
public struct RandomProgram: Sendable {
    public let seed: UInt64
    public let text: String
    public let entry: String
    public let arguments: [Value]
}

/// Generates random valid modules in the compiler's subset, shaped to stress
/// unwinding: random call graphs (calls only go to higher-numbered
/// functions, so every program terminates), fan-out, frame sizes from 0 to
/// 40 locals, operand stacks several values deep at calls, more than six
/// parameters (stack arguments), deep self-recursion, host re-entry through
/// `host.call:fN` at random depths (new activations), checkpoints where the
/// host compares the walk with libunwind (`host.check`), host failures
/// (`host.fail`), and traps at random points (`unreachable`, division by
/// zero, out-of-bounds loads, stack overflow). A global fuel counter bounds
/// the calls a program makes.
public struct ProgramGenerator {
    private var random: SplitMix64
    private let seed: UInt64
    /// The program's initial fuel: traps fire when the fuel reaches a value
    /// in 0...fuel.
    private var fuel = 0

    public init(seed: UInt64) {
        self.seed = seed
        random = SplitMix64(seed: seed)
    }

    private typealias Function = GeneratedFunction

    private mutating func kind() -> ValueKind { random.chance(50) ? .i32 : .i64 }

    public mutating func generate() -> RandomProgram {
        let count = random.number(2...9)
        var functions: [Function] = []
        for _ in 0..<count {
            let parameters = (0..<random.number(0...8)).map { _ in kind() }
            let locals = (0..<random.number(0...40)).map { _ in kind() }
            functions.append(Function(parameters: parameters, locals: locals, result: random.chance(60) ? kind() : nil))
        }
        // The last function recurses on its first parameter (an i32 depth).
        functions[count - 1].parameters.insert(.i32, at: 0)
        let recursionDepthLimit = random.chance(3) ? 1_000_000 : random.number(1...120)

        var text = "(module $random\(seed)\n"
        text += "  (import \"host\" \"check\" (func $check))\n"
        text += "  (import \"host\" \"fail\" (func $fail))\n"
        var reentryTargets: [Int] = []
        for target in 1..<count where random.chance(50) {
            reentryTargets.append(target)
            text += "  (import \"host\" \"call:f\(target)\" (func $enter_f\(target) \(functions[target].signatureText)))\n"
        }
        text += "  (memory 1)\n"
        fuel = random.number(3...30)
        text += "  (global $fuel (mut i32) (i32.const \(fuel)))\n"
        for (index, function) in functions.enumerated() {
            text += "  (func $f\(index) (export \"f\(index)\") \(function.signatureText)\n"
            if !function.locals.isEmpty {
                text += "    (local " + function.locals.map(\.description).joined(separator: " ") + ")\n"
            }
            var body: [String] = []
            if index == count - 1 {
                body += recursion(function, index: index, limit: recursionDepthLimit)
            }
            // The recursive function's own statements run at every level on
            // the way back up; keep them free of checkpoints, or deep
            // recursions would compare depth-squared frames.
            for _ in 0..<random.number(1...7) {
                body += statement(in: function, index: index, functions: functions, reentryTargets: reentryTargets,
                                  checkpoints: index != count - 1)
            }
            if let result = function.result { body += expression(result, in: function, depth: 2) }
            text += body.map { "    " + $0 + "\n" }.joined()
            text += "  )\n"
        }
        text += ")\n"
        let arguments = functions[0].parameters.map { kind -> Value in
            kind == .i32 ? .i32(Int32.random(in: -1000...1000, using: &random)) : .i64(Int64.random(in: -1000...1000, using: &random))
        }
        return RandomProgram(seed: seed, text: text, entry: "f0", arguments: arguments)
    }

    /// Calls itself with depth + 1 while depth is below `limit` (callers
    /// pass depth 0), with a checkpoint at the bottom. A limit of a million
    /// exhausts the wasm stack: a stack-overflow trap.
    private mutating func recursion(_ function: Function, index: Int, limit: Int) -> [String] {
        var lines = ["local.get 0", "i32.const \(limit)", "i32.lt_u", "if",
                     "  local.get 0", "  i32.const 1", "  i32.add"]
        for kind in function.parameters.dropFirst() { lines += expression(kind, in: function, depth: 1).map { "  " + $0 } }
        lines += ["  call $f\(index)"]
        if function.result != nil { lines += ["  drop"] }
        lines += ["else", "  call $check", "end"]
        return lines
    }

    private mutating func statement(in function: Function, index: Int, functions: [Function],
                                    reentryTargets: [Int], checkpoints: Bool) -> [String] {
        let roll = random.number(0...99)
        let checkpoint = (70..<82).contains(roll) || roll >= 93
        switch roll {
        case _ where checkpoint && !checkpoints, 0..<25:
            // Compute into a local.
            guard let local = function.all.indices.randomElement(using: &random) else { return [] }
            return expression(function.all[local], in: function, depth: 3) + ["local.set \(local)"]
        case 25..<55 where index + 1 < functions.count:
            return guardedCall(to: random.number((index + 1)...(functions.count - 1)), in: function, functions: functions, viaHost: false)
        case 55..<70 where !reentryTargets.filter({ $0 > index }).isEmpty:
            let target = reentryTargets.filter { $0 > index }.randomElement(using: &random)!
            return guardedCall(to: target, in: function, functions: functions, viaHost: true)
        case 70..<82:
            return ["call $check"]
        case 82..<88:
            // Memory traffic through a bounds-checked store and load.
            let address = random.number(0...8191) * 8
            return ["i32.const \(address)"] + expression(.i64, in: function, depth: 2) + ["i64.store",
                    "i32.const \(address)", "i64.load", "drop"]
        case 88..<91:
            // A trap when the fuel reaches a chosen value.
            let trap: [String]
            switch random.number(0...2) {
            case 0: trap = ["  unreachable"]
            case 1: trap = ["  i32.const 1", "  i32.const 0", "  i32.div_s", "  drop"]
            default: trap = ["  i32.const 70000", "  i32.load", "  drop"]
            }
            return ["global.get $fuel", "i32.const \(random.number(0...fuel))", "i32.eq", "if"] + trap + ["end"]
        case 91..<93:
            return ["global.get $fuel", "i32.const \(random.number(0...fuel))", "i32.eq", "if", "  call $fail", "end"]
        case 93...:
            // Values left on the operand stack across a checkpoint, then dropped.
            let kind = self.kind()
            return expression(kind, in: function, depth: 2) + expression(kind, in: function, depth: 1)
                + ["call $check", "drop", "drop"]
        default:
            // A call the program cannot make here (no higher function, no
            // re-entry import): compute instead.
            guard let local = function.all.indices.randomElement(using: &random) else { return [] }
            return expression(function.all[local], in: function, depth: 3) + ["local.set \(local)"]
        }
    }

    /// `if fuel { fuel -= 1; call target(arguments) }`, with operand-stack
    /// values live across the call.
    private mutating func guardedCall(to target: Int, in function: Function, functions: [Function], viaHost: Bool) -> [String] {
        let callee = functions[target]
        var lines = ["global.get $fuel", "if",
                     "  global.get $fuel", "  i32.const 1", "  i32.sub", "  global.set $fuel"]
        let pending = random.number(0...2)
        for _ in 0..<pending { lines += ["  i64.const \(random.number(0...99))"] }
        for (position, kind) in callee.parameters.enumerated() {
            if target == functions.count - 1 && position == 0 {
                lines += ["  i32.const 0"]  // recursion depth starts at 0
            } else {
                lines += expression(kind, in: function, depth: 1).map { "  " + $0 }
            }
        }
        lines += ["  call " + (viaHost ? "$enter_f\(target)" : "$f\(target)")]
        if let result = callee.result {
            if let local = function.all.indices.filter({ function.all[$0] == result }).randomElement(using: &random) {
                lines += ["  local.set \(local)"]
            } else {
                lines += ["  drop"]
            }
        }
        for _ in 0..<pending { lines += ["  drop"] }
        lines += ["end"]
        return lines
    }

    /// An expression of `kind` that cannot trap.
    private mutating func expression(_ kind: ValueKind, in function: Function, depth: Int) -> [String] {
        let candidates = function.all.indices.filter { function.all[$0] == kind }
        if depth == 0 || random.chance(35) {
            if let local = candidates.randomElement(using: &random), random.chance(70) { return ["local.get \(local)"] }
            return ["\(kind).const \(random.number(-100_000...100_000))"]
        }
        switch random.number(0...9) {
        case 0...5:
            let operation = ["add", "sub", "mul", "xor", "and", "or", "shl", "shr_u", "shr_s", "rotl"].randomElement(using: &random)!
            return expression(kind, in: function, depth: depth - 1) + expression(kind, in: function, depth: depth - 1)
                + ["\(kind).\(operation)"]
        case 6:
            return kind == .i32
                ? expression(.i64, in: function, depth: depth - 1) + ["i32.wrap_i64"]
                : expression(.i32, in: function, depth: depth - 1) + [random.chance(50) ? "i64.extend_i32_s" : "i64.extend_i32_u"]
        case 7 where kind == .i32:
            let compared = self.kind()
            return expression(compared, in: function, depth: depth - 1) + expression(compared, in: function, depth: depth - 1)
                + ["\(compared).\(["lt_s", "ge_u", "eq", "ne"].randomElement(using: &random)!)"]
        default:
            return expression(kind, in: function, depth: depth - 1) + expression(kind, in: function, depth: depth - 1)
                + expression(.i32, in: function, depth: depth - 1) + ["select"]
        }
    }
}
