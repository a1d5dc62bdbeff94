import CWasmUnwindABI
import WasmUnwind
import CWasmRuntime

/// References and tables: `ref.null`, `ref.is_null`, `ref.func`,
/// `table.get`/`table.set`/`table.size` inline, the rest (`table.grow`,
/// `table.fill`, `table.copy`, `table.init`, `elem.drop`) as runtime calls.
///
/// A funcref value is the address of a `wu_func_ref` (0 for null); an
/// externref value is a host-object handle. A function reference of
/// another instance stored into this instance's table or global makes this
/// instance keep the other alive (the `hold_reference` runtime call, taken
/// only when the reference is not this instance's own).
extension FunctionCompiler {
    mutating func refNull(_ kind: ValueKind) {
        assembler.mov(.q, push(kind), immediate: 0)
    }

    mutating func refIsNull() throws(CompileError) {
        let value = try pop()
        guard value.kind.isReference else {
            throw .invalid("type mismatch: ref.is_null of \(value.kind)", offset: binaryOffset)
        }
        assembler.mov(.q, .rax, value.slot)
        assembler.test(.q, .rax, .rax)
        assembler.set(.equal, .rax)
        assembler.movzx8(.rax, Register.rax)
        assembler.mov(.q, push(.i32), .rax)
    }

    /// `ref.func f`: this instance's reference of function `f`.
    mutating func refFunc(_ function: UInt32) throws(CompileError) {
        guard Int(function) < module.functionCount else {
            throw .invalid("unknown function \(function)", offset: binaryOffset)
        }
        guard module.referencedFunctions.contains(function) else {
            throw .invalid("undeclared function reference \(function)", offset: binaryOffset)
        }
        assembler.mov(.q, .rax, MemoryOperand.at(.r15, Int32(WU_VMCTX_FUNCTIONS)))
        assembler.mov(.q, .rax, MemoryOperand.at(.rax, Int32(8 * function)))
        assembler.mov(.q, push(.funcref), .rax)
    }

    func tableKind(_ table: UInt32) throws(CompileError) -> ValueKind {
        try module.tableType(table, offset: binaryOffset).kind
    }

    /// Leaves `[rcx + 8 * rax]` addressing element `index` of `table` after
    /// checking it is in bounds. Clobbers rax and rcx.
    mutating func tableElement(_ table: UInt32, index: MemoryOperand) -> MemoryOperand {
        loadTableRecord(table, into: .rcx)
        assembler.mov(.d, .rax, index)
        assembler.arithmetic(.cmp, .q, .rax, MemoryOperand.at(.rcx, Int32(WU_TABLE_SIZE)))
        assembler.j(.aboveOrEqual, trapStub(.tableOutOfBounds, wasmOffset: binaryOffset))
        assembler.mov(.q, .rcx, MemoryOperand.at(.rcx, Int32(WU_TABLE_ELEMENTS)))
        return MemoryOperand.at(.rcx, index: .rax, scale: 8)
    }

    mutating func tableGet(_ table: UInt32) throws(CompileError) {
        let kind = try tableKind(table)
        let index = try pop(.i32)
        let element = tableElement(table, index: index.slot)
        assembler.mov(.q, .rax, element)
        assembler.mov(.q, push(kind), .rax)
    }

    mutating func tableSet(_ table: UInt32) throws(CompileError) {
        let kind = try tableKind(table)
        let value = try pop(kind)
        let index = try pop(.i32)
        if kind == .funcref { holdIfForeign(value.slot) }
        let element = tableElement(table, index: index.slot)
        assembler.mov(.q, .rdx, value.slot)
        assembler.mov(.q, element, .rdx)
    }

    mutating func tableSize(_ table: UInt32) throws(CompileError) {
        _ = try tableKind(table)
        loadTableRecord(table, into: .rcx)
        assembler.mov(.q, .rax, MemoryOperand.at(.rcx, Int32(WU_TABLE_SIZE)))
        assembler.mov(.q, push(.i32), .rax)
    }

    /// `table.grow`: the old size, or -1 (as an i32).
    mutating func tableGrow(_ table: UInt32) throws(CompileError) {
        let kind = try tableKind(table)
        let delta = try pop(.i32)
        let value = try pop(kind)
        callRuntime(Int32(WU_LIBCALL_TABLE_GROW), "table.grow",
                    [.constant(Int64(table)), .slot(value.slot), .slot(delta.slot)])
        assembler.mov(.d, .rax, .rax)
        assembler.mov(.q, push(.i32), .rax)
    }

    mutating func tableFill(_ table: UInt32) throws(CompileError) {
        let kind = try tableKind(table)
        let count = try pop(.i32)
        let value = try pop(kind)
        let destination = try pop(.i32)
        callRuntime(Int32(WU_LIBCALL_TABLE_FILL), "table.fill",
                    [.constant(Int64(table)), .slot(destination.slot), .slot(value.slot), .slot(count.slot)],
                    trap: .tableOutOfBounds)
    }

    mutating func tableCopy(destination destinationTable: UInt32, source sourceTable: UInt32) throws(CompileError) {
        guard try tableKind(destinationTable) == tableKind(sourceTable) else {
            throw .invalid("type mismatch: table.copy from table \(sourceTable) to table \(destinationTable)",
                           offset: binaryOffset)
        }
        let count = try pop(.i32)
        let source = try pop(.i32)
        let destination = try pop(.i32)
        callRuntime(Int32(WU_LIBCALL_TABLE_COPY), "table.copy",
                    [.constant(Int64(destinationTable)), .constant(Int64(sourceTable)), .slot(destination.slot),
                     .slot(source.slot), .slot(count.slot)],
                    trap: .tableOutOfBounds)
    }

    mutating func tableInit(segment: UInt32, table: UInt32) throws(CompileError) {
        guard Int(segment) < module.elementSegments.count else {
            throw .invalid("unknown elem segment \(segment)", offset: binaryOffset)
        }
        guard try tableKind(table) == module.elementSegments[Int(segment)].kind else {
            throw .invalid("type mismatch: table.init of elem segment \(segment) into table \(table)",
                           offset: binaryOffset)
        }
        let count = try pop(.i32)
        let source = try pop(.i32)
        let destination = try pop(.i32)
        callRuntime(Int32(WU_LIBCALL_TABLE_INIT), "table.init",
                    [.constant(Int64(table)), .constant(Int64(segment)), .slot(destination.slot),
                     .slot(source.slot), .slot(count.slot)],
                    trap: .tableOutOfBounds)
    }

    mutating func elemDrop(_ segment: UInt32) throws(CompileError) {
        guard Int(segment) < module.elementSegments.count else {
            throw .invalid("unknown elem segment \(segment)", offset: binaryOffset)
        }
        callRuntime(Int32(WU_LIBCALL_ELEM_DROP), "elem.drop", [.constant(Int64(segment))])
    }

    /// Before a funcref in `slot` is stored into a table or global of this
    /// instance: if it is another instance's, this instance keeps that one
    /// alive (`hold_reference`). Null and this instance's own references
    /// take the two-branch fast path.
    mutating func holdIfForeign(_ slot: MemoryOperand) {
        let done = assembler.newLabel()
        assembler.mov(.q, .rax, slot)
        assembler.test(.q, .rax, .rax)
        assembler.j(.equal, done)
        assembler.arithmetic(.cmp, .q, .r15, MemoryOperand.at(.rax, Int32(WU_FUNC_REF_VMCTX)))
        assembler.j(.equal, done)
        callRuntime(Int32(WU_LIBCALL_HOLD_REFERENCE), "hold_reference", [.slot(slot)])
        assembler.bind(done)
    }
}
