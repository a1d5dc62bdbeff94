import WasmJIT

/// Generates random programs that hold `externref`s in parameters, locals
/// and operand-stack slots across calls, and say which references each frame
/// holds: before every call that can reach a root check, a frame announces
/// its live references to the host (`host.frame_begin`, `host.announce` per
/// reference, `host.frame_end`), and withdraws the announcement after the
/// call returns (`host.frame_pop`). The host keeps those announcements as a
/// shadow stack; at `host.check_roots` the roots enumerated from the real
/// stack through the stack maps must equal it, frame by frame, as multisets.
///
/// A frame's live references at a call are its reference-typed locals
/// (parameters included) and the reference values left on its operand stack
/// under the call's arguments. Programs also create objects
/// (`host.new_object`), drop references (`ref.null`), copy and select them,
/// pass them to callees and through host re-entry (`host.call:fN`), and
/// collect (`host.gc`) at random points.
public struct ReferenceProgramGenerator {
    private var random: SplitMix64
    private let seed: UInt64
    private var nextObject: Int32 = 1

    public init(seed: UInt64) {
        self.seed = seed
        random = SplitMix64(seed: seed)
    }

    private typealias Function = GeneratedFunction

    private mutating func kind() -> ValueKind { random.chance(55) ? .externref : .i32 }

    public mutating func generate() -> RandomProgram {
        let count = random.number(2...7)
        var functions: [Function] = []
        for _ in 0..<count {
            var parameters = (0..<random.number(0...7)).map { _ in kind() }
            if parameters.isEmpty || !parameters.contains(.externref) && random.chance(50) { parameters.append(.externref) }
            let locals = (0..<random.number(0...8)).map { _ in kind() } + [.i32]
            let result: ValueKind? = random.chance(40) ? .externref : (random.chance(50) ? .i32 : nil)
            functions.append(Function(parameters: parameters, locals: locals, result: result))
        }
        var text = "(module $references\(seed)\n"
        for (name, signature) in [("new_object", "(param i32) (result externref)"), ("frame_begin", ""),
                                  ("announce", "(param externref)"), ("frame_end", ""), ("frame_pop", ""),
                                  ("check_roots", ""), ("gc", "")] {
            text += "  (import \"host\" \"\(name)\" (func $\(name) \(signature)))\n"
        }
        var reentryTargets: [Int] = []
        for target in 1..<count where random.chance(50) {
            reentryTargets.append(target)
            text += "  (import \"host\" \"call:f\(target)\" (func $enter_f\(target) \(functions[target].signatureText)))\n"
        }
        text += "  (global $fuel (mut i32) (i32.const \(random.number(3...25))))\n"
        for (index, function) in functions.enumerated() {
            text += "  (func $f\(index) (export \"f\(index)\") \(function.signatureText)\n"
            text += "    (local " + function.locals.map(\.description).joined(separator: " ") + ")\n"
            var body: [String] = []
            for _ in 0..<random.number(2...8) {
                body += statement(in: function, index: index, functions: functions, reentryTargets: reentryTargets)
            }
            if let result = function.result { body += value(result, in: function) }
            text += body.map { "    " + $0 + "\n" }.joined()
            text += "  )\n"
        }
        text += ")\n"
        let arguments = functions[0].parameters.map { kind -> Value in
            kind == .i32 ? .i32(Int32(random.number(0...100))) : .externref(nil)
        }
        return RandomProgram(seed: seed, text: text, entry: "f0", arguments: arguments)
    }

    /// A value of `kind`: a local of that kind, a constant, or a null.
    private mutating func value(_ kind: ValueKind, in function: Function) -> [String] {
        let candidates = kind == .externref ? function.referenceLocals : function.integerLocals
        if let local = candidates.randomElement(using: &random), random.chance(80) { return ["local.get \(local)"] }
        return kind == .externref ? ["ref.null extern"] : ["i32.const \(random.number(0...100))"]
    }

    /// Announces the frame's live references: every reference local, plus
    /// the reference locals whose values are about to be left on the
    /// operand stack under the call's arguments.
    private func announcement(_ function: Function, pending: [Int]) -> [String] {
        var lines = ["call $frame_begin"]
        for local in function.referenceLocals + pending { lines += ["local.get \(local)", "call $announce"] }
        return lines + ["call $frame_end"]
    }

    private mutating func statement(in function: Function, index: Int, functions: [Function],
                                    reentryTargets: [Int]) -> [String] {
        let references = function.referenceLocals
        switch random.number(0...99) {
        case 0..<20 where !references.isEmpty:
            let id = nextObject
            nextObject += 1
            return ["i32.const \(id)", "call $new_object", "local.set \(references.randomElement(using: &random)!)"]
        case 20..<27 where !references.isEmpty:
            return ["ref.null extern", "local.set \(references.randomElement(using: &random)!)"]
        case 27..<34 where references.count >= 2:
            let target = references.randomElement(using: &random)!
            return value(.externref, in: function) + value(.externref, in: function) + value(.i32, in: function)
                + ["select (result externref)", "local.set \(target)"]
        case 34..<62 where index + 1 < functions.count:
            return call(to: random.number((index + 1)...(functions.count - 1)), in: function, functions: functions, viaHost: false)
        case 62..<75 where !reentryTargets.filter({ $0 > index }).isEmpty:
            let target = reentryTargets.filter { $0 > index }.randomElement(using: &random)!
            return call(to: target, in: function, functions: functions, viaHost: true)
        case 75..<82:
            return ["call $gc"]
        default:
            // A root check, with some references left on the operand stack.
            let pending = (0..<random.number(0...2)).compactMap { _ in references.randomElement(using: &random) }
            return announcement(function, pending: pending) + pending.map { "local.get \($0)" }
                + ["call $check_roots"] + pending.map { _ in "drop" } + ["call $frame_pop"]
        }
    }

    /// `if fuel { fuel -= 1; announce; push pending; call; pop }`.
    private mutating func call(to target: Int, in function: Function, functions: [Function], viaHost: Bool) -> [String] {
        let callee = functions[target]
        let pending = (0..<random.number(0...2)).compactMap { _ in function.referenceLocals.randomElement(using: &random) }
        var lines = ["global.get $fuel", "i32.eqz", "if", "else",
                     "  global.get $fuel", "  i32.const 1", "  i32.sub", "  global.set $fuel"]
        lines += announcement(function, pending: pending).map { "  " + $0 }
        lines += pending.map { "  local.get \($0)" }
        for kind in callee.parameters { lines += value(kind, in: function).map { "  " + $0 } }
        lines += ["  call " + (viaHost ? "$enter_f\(target)" : "$f\(target)")]
        if let result = callee.result {
            let targets = result == .externref ? function.referenceLocals : function.integerLocals
            if let local = targets.randomElement(using: &random) {
                lines += ["  local.set \(local)"]
            } else {
                lines += ["  drop"]
            }
        }
        lines += pending.map { _ in "  drop" }
        lines += ["  call $frame_pop", "end"]
        return lines
    }
}

extension GeneratedFunction {
    /// Indices of the reference-typed locals (parameters included).
    var referenceLocals: [Int] { all.indices.filter { all[$0] == .externref } }
    /// Indices of the i32 locals.
    var integerLocals: [Int] { all.indices.filter { all[$0] == .i32 } }
}
