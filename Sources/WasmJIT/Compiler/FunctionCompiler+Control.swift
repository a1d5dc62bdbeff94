import WasmParser
import WasmTypes
import WasmUnwind

/// Control flow: blocks, loops, `if`/`else`, branches, and code that is
/// unreachable after a branch. Every value a branch carries is moved to the
/// slots its target expects, so slots stay compile-time facts across joins.
extension FunctionCompiler {
    mutating func compileUnreachable() {
        trapSites.append(TrapSite(codeOffset: assembler.offset, wasmOffset: binaryOffset, code: .unreachable))
        assembler.ud2()
        unreachable = true
    }

    mutating func compileIf(_ type: BlockType) throws(CompileError) {
        let condition = try pop(.i32)
        assembler.mov(.d, .rax, condition.slot)
        assembler.test(.d, .rax, .rax)
        try openBlock(.if, type)
        assembler.j(.equal, control[control.count - 1].elseLabel!)
    }

    /// In unreachable code nothing is emitted, but block structure is
    /// followed to find where code becomes reachable again (unsupported
    /// instructions were already rejected by the dispatch).
    mutating func skipUnreachable(_ lowering: Lowering) throws(CompileError) {
        switch lowering {
        case .block, .loop, .if:
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

    mutating func blockResults(_ type: BlockType) throws(CompileError) -> [ValueKind] {
        switch type {
        case .empty: return []
        case .type(let value): return [try ValueKind(value, offset: binaryOffset)]
        case .funcType(let index):
            let signature = try module.signature(atTypeIndex: index, offset: binaryOffset)
            guard signature.parameters.isEmpty, signature.results.count <= 1 else {
                throw .unsupportedFeature("multi-value block type \(signature)", offset: binaryOffset)
            }
            return signature.results
        }
    }

    mutating func openBlock(_ kind: ControlFrame.Kind, _ type: BlockType) throws(CompileError) {
        let results = try blockResults(type)
        let end = assembler.newLabel()
        var frame = ControlFrame(kind: kind, branchTarget: end, end: end, height: stack.count, results: results)
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
            throw .invalid("block ends with operand stack \(stack[min(frame.height, stack.count)...]) but its type is \(frame.results)",
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
            // `if` without `else`: the false branch falls through to the end.
            guard frame.results.isEmpty else {
                throw .invalid("`if` with a result needs an `else`", offset: binaryOffset)
            }
            assembler.bind(elseLabel)
        }
        control.removeLast()
        stack.removeSubrange(min(frame.height, stack.count)...)
        stack.append(contentsOf: frame.results)
        maxDepth = max(maxDepth, stack.count)
        unreachable = false
        assembler.bind(frame.end)
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

}
