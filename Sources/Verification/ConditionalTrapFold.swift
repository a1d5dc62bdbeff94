import WasmParser

/// The one known difference between our trap frames and Wasmtime's
/// (docs/runtime.md): Cranelift compiles an `unreachable` that is reached
/// only through a conditional into a conditional trap at the branch, and
/// reports the branch's offset. A difference is that fold only if the
/// instruction at Wasmtime's offset is an `if` or `br_if` of the same
/// function whose taken or fall-through path leads — past `end`s only — to
/// the `unreachable` at ours.
public enum ConditionalTrapFold {
    /// Whether `branch` and `unreachable` (module offsets) are such a pair
    /// in the module `bytes`.
    public static func holds(module bytes: [UInt8], branch: Int, unreachable: Int) -> Bool {
        guard let instructions = try? function(containing: branch, in: bytes),
              let at = instructions.firstIndex(where: { $0.offset == branch }),
              let target = instructions.firstIndex(where: { $0.offset == unreachable }),
              case .unreachable = instructions[target].instruction else { return false }
        let structure = Structure(instructions)
        switch instructions[at].instruction {
        case .if:
            // The `then` arm starts right after the `if`; the `else` arm
            // right after its `else`.
            if at + 1 == target { return true }
            if let elseIndex = structure.elseOf[at], elseIndex + 1 == target { return true }
            return false
        case .brIf(let depth):
            // Not taken: the next instruction. Taken: where the label goes.
            if at + 1 == target { return true }
            guard let label = structure.label(at: at, depth: Int(depth)) else { return false }
            var next = label
            while next < instructions.count, case .end = instructions[next].instruction { next += 1 }
            return next == target
        default:
            return false
        }
    }

    /// The instructions, with their module offsets, of the function body
    /// that contains `offset`.
    static func function(containing offset: Int, in bytes: [UInt8]) throws -> [(offset: Int, instruction: Instruction)]? {
        try bodies(in: bytes).first { body in
            guard let first = body.first?.offset, let last = body.last?.offset else { return false }
            return (first...last).contains(offset)
        }
    }

    /// Every function body's instructions with their module offsets.
    static func bodies(in bytes: [UInt8]) throws -> [[(offset: Int, instruction: Instruction)]] {
        var parser = Parser(bytes: bytes, features: [.referenceTypes, .tailCall, .exceptionHandling, .simd, .threads, .functionReferences, .gc])
        var bodies: [[(offset: Int, instruction: Instruction)]] = []
        while let payload = try parser.parseNext() {
            guard case .codeSection(let codes) = payload else { continue }
            for code in codes {
                var recorder = Recorder()
                var expression = ExpressionParser(code: code)
                while let visit = try expression.parse() { try visit(visitor: &recorder) }
                bodies.append(recorder.instructions)
            }
        }
        return bodies
    }

    /// For each defined function: the offsets of its `if`s and `br_if`s, and
    /// of its `unreachable`s (for tests that try every pair).
    public static func branchesAndTraps(in bytes: [UInt8]) throws -> [(branches: [Int], unreachables: [Int])] {
        try bodies(in: bytes).map { body in
            (body.filter { if case .if = $0.instruction { return true }; if case .brIf = $0.instruction { return true }; return false }.map(\.offset),
             body.filter { if case .unreachable = $0.instruction { return true }; return false }.map(\.offset))
        }
    }

    struct Recorder: AnyInstructionVisitor {
        typealias VisitorError = WasmParserError
        var binaryOffset = 0
        var instructions: [(offset: Int, instruction: Instruction)] = []
        mutating func visit(_ instruction: Instruction) throws(WasmParserError) {
            instructions.append((binaryOffset, instruction))
        }
    }

    /// Which `end` closes each block, loop, `if` and `try_table`, the `else`
    /// of each `if`, and each instruction's enclosing blocks.
    struct Structure {
        var endOf: [Int: Int] = [:]
        var elseOf: [Int: Int] = [:]
        /// The blocks open at each instruction, innermost last (indices of
        /// their opening instruction; -1 is the function's own block).
        var open: [[Int]] = []
        var isLoop: Set<Int> = []

        init(_ instructions: [(offset: Int, instruction: Instruction)]) {
            var stack: [Int] = [-1]
            for (index, entry) in instructions.enumerated() {
                open.append(stack)
                switch entry.instruction {
                case .block, .if, .tryTable:
                    stack.append(index)
                case .loop:
                    stack.append(index)
                    isLoop.insert(index)
                case .else:
                    if let top = stack.last { elseOf[top] = index }
                case .end:
                    if let top = stack.popLast() { endOf[top] = index }
                default:
                    break
                }
            }
        }

        /// Where a branch of `depth` at instruction `index` continues: the
        /// start of a loop's body, or just after a block's `end`; nil for
        /// the function's own block (a return).
        func label(at index: Int, depth: Int) -> Int? {
            let blocks = open[index]
            guard depth < blocks.count else { return nil }
            let block = blocks[blocks.count - 1 - depth]
            guard block >= 0 else { return nil }
            if isLoop.contains(block) { return block + 1 }
            return endOf[block].map { $0 + 1 }
        }
    }
}
