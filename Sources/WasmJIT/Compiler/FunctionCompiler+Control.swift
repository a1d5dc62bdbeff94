import WasmParser
import WasmTypes
import WasmUnwind

/// Control flow: blocks, loops, `if`/`else`, branches, and code that is
/// unreachable after a branch. Every value a branch carries is moved to the
/// slots its target expects, so slots stay compile-time facts across joins.
extension FunctionCompiler {
    mutating func compileUnreachable() {
        emitTrap(.unreachable, wasmOffset: binaryOffset, carriesAddress: false)
        unreachable = true
    }

    /// `if`: with parameters, the `then` arm works on a copy of them right
    /// above the originals, which stay untouched for the `else` arm (every
    /// value lives in a slot, and the `then` arm may overwrite any slot at
    /// or above its own base).
    mutating func compileIf(_ type: BlockType) throws(CompileError) {
        let condition = try pop(.i32)
        let (parameters, _) = try blockType(type)
        try checkParameters(parameters)
        let original = stack.count - parameters.count
        // The condition's slot is where the first copy goes: read it first.
        let conditionRegister: Register = parameters.isEmpty ? .rax : .rdx
        assembler.mov(.d, conditionRegister, condition.slot)
        for (i, kind) in parameters.enumerated() {
            assembler.mov(.q, .rax, stackSlot(original + i))
            assembler.mov(.q, push(kind), .rax)
        }
        assembler.test(.d, conditionRegister, conditionRegister)
        try openBlock(.if, type)
        if !parameters.isEmpty { control[control.count - 1].savedParameters = original }
        assembler.j(.equal, control[control.count - 1].elseLabel!)
    }

    /// In unreachable code nothing is emitted, but block structure is
    /// followed to find where code becomes reachable again (unsupported
    /// instructions were already rejected by the dispatch).
    mutating func skipUnreachable(_ lowering: Lowering) throws(CompileError) {
        switch lowering {
        case .block, .loop, .if, .tryTable:
            deadNesting += 1
        case .end where deadNesting > 0:
            deadNesting -= 1
        case .else where deadNesting > 0:
            break
        case .else:
            try compileElse()
        case .end:
            try compileEnd()
        default:
            break
        }
    }

    /// A block type's parameters and results.
    func blockType(_ type: BlockType) throws(CompileError) -> (parameters: [ValueKind], results: [ValueKind]) {
        switch type {
        case .empty: return ([], [])
        case .type(let value): return ([], [try ValueKind(value, offset: binaryOffset)])
        case .funcType(let index):
            let signature = try module.signature(atTypeIndex: index, offset: binaryOffset)
            return (signature.parameters, signature.results)
        }
    }

    /// The top of the operand stack holds `parameters`.
    func checkParameters(_ parameters: [ValueKind]) throws(CompileError) {
        let height = control[control.count - 1].height
        guard stack.count - height >= parameters.count, Array(stack.suffix(parameters.count)) == parameters else {
            throw .invalid("type mismatch: the block takes \(parameters), the operand stack ends \(stack.suffix(parameters.count))",
                           offset: binaryOffset)
        }
    }

    mutating func openBlock(_ kind: ControlFrame.Kind, _ type: BlockType) throws(CompileError) {
        let (parameters, results) = try blockType(type)
        try checkParameters(parameters)
        let end = assembler.newLabel()
        var frame = ControlFrame(kind: kind, branchTarget: end, end: end, height: stack.count - parameters.count,
                                 parameters: parameters, results: results)
        if kind == .loop {
            frame.branchTarget = assembler.newLabel()
            assembler.bind(frame.branchTarget)
        }
        if kind == .if { frame.elseLabel = assembler.newLabel() }
        control.append(frame)
    }

    mutating func checkFrameResults(_ frame: ControlFrame) throws(CompileError) {
        guard stack.count == frame.height + frame.results.count,
              Array(stack[frame.height...]) == frame.results
        else {
            throw .invalid("type mismatch: block ends with operand stack \(stack[min(frame.height, stack.count)...]) but its type is \(frame.results)",
                           offset: binaryOffset)
        }
    }

    mutating func compileElse() throws(CompileError) {
        guard let frame = control.last, frame.kind == .if else { throw .invalid("`else` outside `if`", offset: binaryOffset) }
        if !unreachable {
            recordAddress(wasmOffset: binaryOffset)
            try checkFrameResults(frame)
            assembler.jmp(frame.end)
        }
        assembler.bind(frame.elseLabel!)
        control[control.count - 1].kind = .else
        control[control.count - 1].elseLabel = nil
        stack.removeSubrange(frame.height...)
        if let saved = frame.savedParameters {
            for i in frame.parameters.indices {
                assembler.mov(.q, .rax, stackSlot(saved + i))
                assembler.mov(.q, stackSlot(frame.height + i), .rax)
            }
        }
        stack.append(contentsOf: frame.parameters)
        unreachable = false
    }

    mutating func compileEnd() throws(CompileError) {
        let frame = control[control.count - 1]
        if unreachable {
            recordAddress(wasmOffset: binaryOffset)
        } else {
            try checkFrameResults(frame)
        }
        if let elseLabel = frame.elseLabel {
            // `if` without `else`: the false branch passes its parameters
            // through as its results, so they must be the same types.
            guard frame.results == frame.parameters else {
                throw .invalid("type mismatch: `if` without `else` must have results equal to its parameters",
                               offset: binaryOffset)
            }
            assembler.bind(elseLabel)
        }
        if frame.kind == .tryTable { closeTryTable(frame) }
        control.removeLast()
        stack.removeSubrange(min(frame.height, stack.count)...)
        stack.append(contentsOf: frame.results)
        maxDepth = max(maxDepth, stack.count)
        unreachable = false
        assembler.bind(frame.end)
        if let saved = frame.savedParameters {
            // The `if`'s results, from above the saved parameters down to
            // where the parameters were.
            for i in frame.results.indices {
                assembler.mov(.q, .rax, stackSlot(frame.height + i))
                assembler.mov(.q, stackSlot(saved + i), .rax)
            }
            stack.removeSubrange(saved...)
            stack.append(contentsOf: frame.results)
        }
        if frame.kind == .function {
            emitEpilogueAndStubs()
        }
    }

    func target(depth: UInt32) throws(CompileError) -> ControlFrame {
        guard Int(depth) < control.count else { throw .invalid("branch depth \(depth) out of range", offset: binaryOffset) }
        return control[control.count - 1 - Int(depth)]
    }

    /// Moves the values a branch carries to where the target expects them.
    mutating func emitBranchValues(to frame: ControlFrame) throws(CompileError) {
        let arity = frame.branchArity
        guard stack.count >= arity.count + control[control.count - 1].height,
              Array(stack.suffix(arity.count)) == arity
        else { throw .invalid("branch carries \(stack.suffix(arity.count)) but its target expects \(arity)", offset: binaryOffset) }
        for (i, _) in arity.enumerated() {
            let from = stack.count - arity.count + i
            let to = frame.height + i
            if from != to {
                assembler.mov(.q, .rax, stackSlot(from))
                assembler.mov(.q, stackSlot(to), .rax)
            }
        }
    }

    mutating func branch(depth: UInt32) throws(CompileError) {
        let frame = try target(depth: depth)
        try emitBranchValues(to: frame)
        assembler.jmp(frame.branchTarget)
    }

    mutating func branchIf(depth: UInt32) throws(CompileError) {
        let condition = try pop(.i32)
        let frame = try target(depth: depth)
        assembler.mov(.d, .rax, condition.slot)
        assembler.test(.d, .rax, .rax)
        let needsMoves = !frame.branchArity.isEmpty && stack.count - frame.branchArity.count != frame.height
        if needsMoves {
            let skip = assembler.newLabel()
            assembler.j(.equal, skip)
            try emitBranchValues(to: frame)
            assembler.jmp(frame.branchTarget)
            assembler.bind(skip)
        } else {
            try emitBranchValues(to: frame)
            assembler.j(.notEqual, frame.branchTarget)
        }
    }


    /// `br_table`: a jump table of 32-bit offsets from the table's start,
    /// placed right after the indirect jump; the index is checked against
    /// the table's length first (past it: the default). A target whose
    /// values must move first gets a stub that moves them and jumps on.
    ///
    /// ```
    ///   mov eax, [index]
    ///   cmp rax, count; jae default
    ///   lea rcx, [rip + table]
    ///   movsxd rax, [rcx + 4 * rax]
    ///   add rax, rcx; jmp rax
    /// table:
    ///   .long target0 - table, target1 - table ...
    /// ```
    mutating func branchTable(_ table: BrTable) throws(CompileError) {
        let index = try pop(.i32)
        let defaultFrame = try target(depth: table.defaultIndex)
        let arity = defaultFrame.branchArity
        var stubs: [UInt32: Label] = [:]
        var targets: [Label] = []
        var pendingStubs: [(label: Label, frame: ControlFrame)] = []
        for depth in table.labelIndices + [table.defaultIndex] {
            let frame = try target(depth: depth)
            guard frame.branchArity == arity else {
                throw .invalid("type mismatch: br_table targets carry \(frame.branchArity) and \(arity)", offset: binaryOffset)
            }
            if stack.count - arity.count == frame.height {
                targets.append(frame.branchTarget)
            } else if let stub = stubs[depth] {
                targets.append(stub)
            } else {
                let stub = assembler.newLabel()
                stubs[depth] = stub
                pendingStubs.append((stub, frame))
                targets.append(stub)
            }
        }
        guard stack.count - control[control.count - 1].height >= arity.count,
              Array(stack.suffix(arity.count)) == arity
        else { throw .invalid("type mismatch: br_table carries \(arity), the stack ends \(stack.suffix(arity.count))", offset: binaryOffset) }
        let defaultTarget = targets.removeLast()
        assembler.mov(.d, .rax, index.slot)
        if !targets.isEmpty {
            assembler.arithmetic(.cmp, .q, .rax, immediate: Int32(clamping: targets.count))
            assembler.j(.aboveOrEqual, defaultTarget)
            let tableLabel = assembler.newLabel()
            assembler.lea(.rcx, MemoryOperand.label(tableLabel))
            assembler.movsxd(.rax, MemoryOperand.at(.rcx, index: .rax, scale: 4))
            assembler.arithmetic(.add, .q, .rax, .rcx)
            assembler.jmp(.rax)
            assembler.bind(tableLabel)
            let start = assembler.offset
            for target in targets { assembler.emitLabelOffset(target, from: start) }
        } else {
            assembler.jmp(defaultTarget)
        }
        for (label, frame) in pendingStubs {
            assembler.bind(label)
            try emitBranchValues(to: frame)
            assembler.jmp(frame.branchTarget)
        }
    }
}
