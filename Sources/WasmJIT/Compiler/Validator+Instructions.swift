import WasmParser
import WasmTypes

extension FunctionValidator {
    // The instructions, by kind: each method validates the ones it knows
    // and says whether `lowering` was one of them.

    mutating func validate(_ lowering: Lowering) throws(CompileError) {
        if try validateControl(lowering) { return }
        if try validateCall(lowering) { return }
        if try validateVariable(lowering) { return }
        if try validateTable(lowering) { return }
        if try validateMemory(lowering) { return }
        try validateNumeric(lowering)
    }

    /// Blocks, branches, `return`, `try_table` and throws. Returns whether `lowering` is one.
    mutating func validateControl(_ lowering: Lowering) throws(CompileError) -> Bool {
        switch lowering {
        case .unreachable:
            setUnreachable()
        case .nop:
            break
        case .block(let type), .loop(let type):
            let (parameters, results) = try blockType(type)
            try pop(parameters)
            if case .loop = lowering { pushFrame(.loop, parameters, results) } else { pushFrame(.block, parameters, results) }
            let written = writtenBlockType(type)
            frames[frames.count - 1].writtenLabelTypes = { if case .loop = lowering { return written?.parameters } else { return written?.results } }()
        case .if(let type):
            let (parameters, results) = try blockType(type)
            try pop(.i32)
            try pop(parameters)
            pushFrame(.if, parameters, results)
        case .else:
            guard frames.last?.kind == .if else { throw .invalid("`else` without a matching `if`", offset: offset) }
            let frame = try popFrame()
            pushFrame(.else, frame.parameters, frame.results)
        case .end:
            let frame = try popFrame()
            if frame.kind == .if && frame.parameters != frame.results {
                throw mismatch("`if` without `else` must leave its parameters as its results")
            }
            push(frame.results)
        case .br(let depth):
            try pop(try label(depth).labelTypes)
            setUnreachable()
        case .brIf(let depth):
            try pop(.i32)
            let types = try label(depth).labelTypes
            try pop(types)
            push(types)
        case .brTable(let table):
            try pop(.i32)
            let arity = try label(table.defaultIndex).labelTypes.count
            for depth in table.labelIndices + [table.defaultIndex] {
                let types = try label(depth).labelTypes
                guard types.count == arity else { throw mismatch("br_table targets carry different numbers of values") }
                // Each target's types must match the same operands.
                let saved = operands
                try pop(types)
                operands = saved
            }
            try pop(try label(table.defaultIndex).labelTypes)
            setUnreachable()
        case .return:
            try pop(signature.results)
            setUnreachable()
        case .tryTable(let type, let clauses):
            let (parameters, results) = try blockType(type)
            try pop(parameters)
            // Catch labels are resolved outside the try_table's own block.
            for clause in clauses {
                let (carried, depth) = try catchValues(clause)
                let target = try label(depth)
                guard target.labelTypes == carried else {
                    throw mismatch("catch clause carries \(carried) to a label expecting \(target.labelTypes)")
                }
                try checkNullability(of: clause, into: target)
            }
            pushFrame(.block, parameters, results)
            frames[frames.count - 1].writtenLabelTypes = writtenBlockType(type)?.results
        case .throw(let tag):
            try pop(try module.tagPayload(tag, offset: offset))
            setUnreachable()
        case .throwRef:
            try pop(.exnref)
            setUnreachable()
        default:
            return false
        }
        return true
    }

    /// Direct, indirect and tail calls. Returns whether `lowering` is one.
    mutating func validateCall(_ lowering: Lowering) throws(CompileError) -> Bool {
        switch lowering {
        case .call(let function):
            let callee = try module.signature(ofFunction: function, offset: offset)
            try pop(callee.parameters)
            push(callee.results)
        case .callIndirect(let type, let table):
            guard try self.table(table) == .funcref else { throw mismatch("call_indirect through a table of externref") }
            let callee = try module.signature(atTypeIndex: type, offset: offset)
            try pop(.i32)
            try pop(callee.parameters)
            push(callee.results)
        case .returnCall(let function):
            let callee = try module.signature(ofFunction: function, offset: offset)
            guard callee.results == signature.results else { throw mismatch("tail call to a function of other results") }
            try pop(callee.parameters)
            setUnreachable()
        case .returnCallIndirect(let type, let table):
            guard try self.table(table) == .funcref else { throw mismatch("return_call_indirect through a table of externref") }
            let callee = try module.signature(atTypeIndex: type, offset: offset)
            guard callee.results == signature.results else { throw mismatch("tail call to a function of other results") }
            try pop(.i32)
            try pop(callee.parameters)
            setUnreachable()
        default:
            return false
        }
        return true
    }

    /// `drop`, `select`, locals, globals, constants and references. Returns whether `lowering` is one.
    mutating func validateVariable(_ lowering: Lowering) throws(CompileError) -> Bool {
        switch lowering {
        case .drop:
            _ = try pop()
        case .select(let typed):
            try pop(.i32)
            if let typed {
                try pop(typed)
                try pop(typed)
                push(typed)
            } else {
                let second = try pop(), first = try pop()
                if let first, first.isReference { throw mismatch("select of references needs a type annotation") }
                if let second, second.isReference { throw mismatch("select of references needs a type annotation") }
                if let first, let second, first != second { throw mismatch("select of \(first) and \(second)") }
                operands.append(first ?? second)
            }
        case .localGet(let index):
            push(try local(index))
        case .localSet(let index):
            try pop(try local(index))
        case .localTee(let index):
            let type = try local(index)
            try pop(type)
            push(type)
        case .globalGet(let index):
            guard Int(index) < module.globalCount else { throw .invalid("unknown global \(index)", offset: offset) }
            push(try module.globalType(index, offset: offset).kind)
        case .globalSet(let index):
            guard Int(index) < module.globalCount else { throw .invalid("unknown global \(index)", offset: offset) }
            let type = try module.globalType(index, offset: offset)
            guard type.mutable else { throw .invalid("global is immutable: global.set of global \(index)", offset: offset) }
            try pop(type.kind)
        case .constant(let kind, _):
            push(kind)
        case .refNull(let kind):
            push(kind)
        case .refIsNull:
            if let type = try pop(), !type.isReference { throw mismatch("ref.is_null of \(type)") }
            push(.i32)
        case .refFunc(let function):
            guard Int(function) < module.functionCount else { throw .invalid("unknown function \(function)", offset: offset) }
            guard module.referencedFunctions.contains(function) else {
                throw .invalid("undeclared function reference \(function)", offset: offset)
            }
            push(.funcref)
        default:
            return false
        }
        return true
    }

    /// Table accesses, growth, copies and element segments. Returns whether `lowering` is one.
    mutating func validateTable(_ lowering: Lowering) throws(CompileError) -> Bool {
        switch lowering {
        case .tableGet(let index):
            let kind = try table(index)
            try pop(.i32)
            push(kind)
        case .tableSet(let index):
            let kind = try table(index)
            try pop(kind)
            try pop(.i32)
        case .tableSize(let index):
            _ = try table(index)
            push(.i32)
        case .tableGrow(let index):
            let kind = try table(index)
            try pop(.i32)
            try pop(kind)
            push(.i32)
        case .tableFill(let index):
            let kind = try table(index)
            try pop(.i32)
            try pop(kind)
            try pop(.i32)
        case .tableCopy(let destination, let source):
            guard try table(destination) == table(source) else {
                throw mismatch("table.copy between tables of different types")
            }
            try pop([.i32, .i32, .i32])
        case .tableInit(let segment, let index):
            guard try table(index) == elementSegment(segment) else {
                throw mismatch("table.init of an element segment of another type")
            }
            try pop([.i32, .i32, .i32])
        case .elemDrop(let segment):
            _ = try elementSegment(segment)
        default:
            return false
        }
        return true
    }

    /// Loads, stores and bulk memory. Returns whether `lowering` is one.
    mutating func validateMemory(_ lowering: Lowering) throws(CompileError) -> Bool {
        switch lowering {
        case .load(let load, let memarg):
            try checkAlignment(memarg, size: load.size)
            try pop(.i32)
            push(load.kind)
        case .store(let kind, let size, let memarg):
            try checkAlignment(memarg, size: size)
            try pop(kind)
            try pop(.i32)
        case .memorySize:
            try requireMemory()
            push(.i32)
        case .memoryGrow:
            try requireMemory()
            try pop(.i32)
            push(.i32)
        case .memoryFill, .memoryCopy:
            try requireMemory()
            try pop([.i32, .i32, .i32])
        case .memoryInit(let segment):
            try requireMemory()
            try requireDataSegment(segment)
            try pop([.i32, .i32, .i32])
        case .dataDrop(let segment):
            try requireDataSegment(segment)
        default:
            return false
        }
        return true
    }

    /// Comparisons, arithmetic and conversions.
    mutating func validateNumeric(_ lowering: Lowering) throws(CompileError) {
        switch lowering {
        case .equalsZero(let width):
            try pop(width.kind)
            push(.i32)
        case .integerCompare(let width, _):
            try pop([width.kind, width.kind])
            push(.i32)
        case .integerBinary(let width, _):
            try pop([width.kind, width.kind])
            push(width.kind)
        case .integerUnary(let width, _):
            try pop(width.kind)
            push(width.kind)
        case .wrap:
            try pop(.i64)
            push(.i32)
        case .extend:
            try pop(.i32)
            push(.i64)
        case .floatBinary(let precision, _):
            try pop([precision.kind, precision.kind])
            push(precision.kind)
        case .floatUnary(let precision, _):
            try pop(precision.kind)
            push(precision.kind)
        case .floatCompare(let precision, _):
            try pop([precision.kind, precision.kind])
            push(.i32)
        case .truncate(let width, let precision, _, _):
            try pop(precision.kind)
            push(width.kind)
        case .convert(let precision, let width, _):
            try pop(width.kind)
            push(precision.kind)
        case .demote:
            try pop(.f64)
            push(.f32)
        case .promote:
            try pop(.f32)
            push(.f64)
        case .reinterpret(let from, let to):
            try pop(from)
            push(to)
        default:
            preconditionFailure("every other instruction is validated above")
        }
    }
}
