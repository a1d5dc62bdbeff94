import WasmParser

/// Which counts of bulk operations are constants, as Wasmtime sees them.
///
/// Wasmtime charges a bulk operation's per-byte or per-element fuel in one
/// of two ways: when Cranelift's SSA value of the count is an `iconst`, it
/// is added to the straight-line run's cost at compile time (no check
/// there, charged even if the operation fails); otherwise it is added and
/// checked after the operation succeeds. To stop at the same place, the
/// compiler follows the same values: a constant is the `i32.const` or
/// `i64.const` instruction that made it (two instructions are two values,
/// whatever their numbers), a local keeps the value last stored in it (a
/// declared local starts as its own zero), and where paths join a local
/// keeps its value only if every path brings the same one — a loop header
/// keeps those its body never stores to (Cranelift's SSA construction
/// removes exactly those phis). Values on the operand stack are followed
/// through fall-through block ends; a block branched to gives its results
/// no known value.
struct ConstantValues {
    /// A constant value: the instruction (wasm offset, or a declared
    /// local's zero) that made it, and its bits.
    struct Definition: Equatable {
        var origin: Int
        var bits: UInt64
    }

    /// What a control frame collects: the locals' values on each branch
    /// to its end, and at an `if`, the values where it began.
    struct Frame {
        var incoming: [[Definition?]] = []
        var atIf: [Definition?]?
        var sawElse = false
    }

    var locals: [Definition?] = []
    var operands: [Definition?] = []
    var frames: [Frame] = []
    /// The locals each loop (by its wasm offset) stores to.
    var loopStores: [Int: Set<Int>] = [:]
    /// Set by `before(.end)` for `after(.end)`.
    var endLocals: [Definition?] = []
    var endResults: (height: Int, count: Int, branchedTo: Bool) = (0, 0, false)

    /// Every value not known at a join: the first of the states if all
    /// agree, per local.
    static func merge(_ states: [[Definition?]], count: Int) -> [Definition?] {
        guard let first = states.first else { return Array(repeating: nil, count: count) }
        return first.indices.map { index in states.allSatisfy { $0[index] == first[index] } ? first[index] : nil }
    }
}

/// Finds, for every loop of a body, the locals stored to inside it.
struct LoopStoreScanner: AnyInstructionVisitor {
    typealias VisitorError = CompileError
    var binaryOffset = 0
    /// Open blocks: a loop's offset, or nil for another kind.
    var open: [Int?] = []
    var stores: [Int: Set<Int>] = [:]

    mutating func visit(_ instruction: Instruction) throws(CompileError) {
        guard let lowering = Lowering(instruction) else { return }
        switch lowering {
        case .block, .if, .tryTable: open.append(nil)
        case .loop:
            open.append(binaryOffset)
            stores[binaryOffset] = []
        case .end: if !open.isEmpty { open.removeLast() }
        case .localSet(let local), .localTee(let local):
            for case let loop? in open { stores[loop]!.insert(Int(local)) }
        default: break
        }
    }

    static func scan(_ code: Code) -> [Int: Set<Int>] {
        var scanner = LoopStoreScanner()
        var parser = ExpressionParser(code: code)
        // A body that does not parse fails its compilation anyway.
        while let instruction = try? parser.parse() {
            do { try instruction(visitor: &scanner) } catch { break }
        }
        return scanner.stores
    }
}

extension FunctionCompiler {
    /// The value states at the function's entry: parameters unknown,
    /// each declared local its own zero.
    mutating func startConstantValues(_ code: Code) {
        guard consumesFuel else { return }
        constants.locals = locals.indices.map { index in
            index < signature.parameters.count ? nil : ConstantValues.Definition(origin: -1 - index, bits: 0)
        }
        constants.frames = [ConstantValues.Frame()]
        constants.loopStores = LoopStoreScanner.scan(code)
    }

    /// The constant count of a bulk operation about to be compiled, if
    /// Wasmtime would see one.
    var constantCount: UInt64? {
        guard consumesFuel else { return nil }
        return constants.operands.last.flatMap { $0 }?.bits
    }

    /// Before an instruction (reachable, or an `else`/`end` that ends dead
    /// code): what branches carry, where paths join.
    mutating func trackValuesBefore(_ lowering: Lowering, reachable: Bool) {
        guard consumesFuel else { return }
        syncOperands()
        func branch(_ depth: UInt32) {
            let target = constants.frames.count - 1 - Int(depth)
            guard target >= 0, control[target].kind != .loop else { return }
            constants.frames[target].incoming.append(constants.locals)
        }
        switch lowering {
        case .br(let depth), .brIf(let depth): branch(depth)
        case .brTable(let table):
            for depth in Set(table.labelIndices + [table.defaultIndex]) { branch(depth) }
        case .tryTable(_, let clauses):
            // A catch lands after a call somewhere in the body: no local's
            // value is known there.
            for clause in clauses {
                let depth: UInt32
                switch clause {
                case .catch(_, let label), .catchRef(_, let label), .catchAll(let label), .catchAllRef(let label): depth = label
                }
                let target = constants.frames.count - 1 - Int(depth)
                if target >= 0, control[target].kind != .loop {
                    constants.frames[target].incoming.append(Array(repeating: nil, count: locals.count))
                }
            }
        case .localSet(let local), .localTee(let local):
            if Int(local) < constants.locals.count { constants.locals[Int(local)] = constants.operands.last ?? nil }
        case .else:
            guard var frame = constants.frames.last else { return }
            if reachable { frame.incoming.append(constants.locals) }
            frame.sawElse = true
            constants.frames[constants.frames.count - 1] = frame
            constants.locals = frame.atIf ?? constants.locals
        case .end:
            guard let frame = constants.frames.last, let controlFrame = control.last else { return }
            var states = frame.incoming
            if reachable { states.append(constants.locals) }
            if let atIf = frame.atIf, !frame.sawElse { states.append(atIf) }
            constants.endLocals = ConstantValues.merge(states, count: locals.count)
            constants.endResults = (controlFrame.height, controlFrame.results.count, !frame.incoming.isEmpty)
        default: break
        }
    }

    /// After it: the values it made.
    mutating func trackValuesAfter(_ lowering: Lowering) {
        guard consumesFuel else { return }
        syncOperands()
        switch lowering {
        case .constant(let kind, let bits) where kind == .i32 || kind == .i64:
            constants.operands[constants.operands.count - 1] = ConstantValues.Definition(origin: binaryOffset, bits: bits)
        case .localGet(let local), .localTee(let local):
            constants.operands[constants.operands.count - 1] = constants.locals[Int(local)]
        case .block, .loop, .if, .tryTable:
            var frame = ConstantValues.Frame()
            if case .if = lowering { frame.atIf = constants.locals }
            constants.frames.append(frame)
            if case .loop = lowering {
                for local in constants.loopStores[binaryOffset] ?? [] { constants.locals[local] = nil }
                // A loop's parameters join with what its back edges bring.
                let parameters = control[control.count - 1].parameters.count
                for index in (constants.operands.count - parameters)..<constants.operands.count { constants.operands[index] = nil }
            }
        case .else:
            let height = control[control.count - 1].height
            for index in height..<constants.operands.count { constants.operands[index] = nil }
        case .end:
            if !constants.frames.isEmpty { constants.frames.removeLast() }
            constants.locals = constants.endLocals
            let results = constants.endResults
            if results.branchedTo {
                for index in results.height..<min(results.height + results.count, constants.operands.count) {
                    constants.operands[index] = nil
                }
            }
        default: break
        }
    }

    /// The operand values, one per operand-stack entry (entries pushed
    /// since, by any instruction, are no known constant).
    mutating func syncOperands() {
        if constants.operands.count > stack.count { constants.operands.removeLast(constants.operands.count - stack.count) }
        while constants.operands.count < stack.count { constants.operands.append(nil) }
    }
}
