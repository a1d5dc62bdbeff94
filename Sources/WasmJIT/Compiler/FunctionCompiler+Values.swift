import CWasmUnwindABI
import WasmUnwind
import CWasmRuntime

/// Locals, globals, constants, references and the parametric instructions
/// (`drop`, `select`): moves between slots, through rax.
extension FunctionCompiler {
    func localKind(_ local: UInt32) throws(CompileError) -> ValueKind {
        guard Int(local) < locals.count else { throw .invalid("local \(local) out of range", offset: binaryOffset) }
        return locals[Int(local)]
    }

    func globalType(_ global: UInt32) throws(CompileError) -> ModuleDescription.GlobalType {
        try module.globalType(global, offset: binaryOffset)
    }

    mutating func localGet(_ local: UInt32) throws(CompileError) {
        let kind = try localKind(local)
        assembler.mov(.q, .rax, localSlot(Int(local)))
        assembler.mov(.q, push(kind), .rax)
    }

    mutating func localSet(_ local: UInt32) throws(CompileError) {
        let value = try pop(try localKind(local))
        assembler.mov(.q, .rax, value.slot)
        assembler.mov(.q, localSlot(Int(local)), .rax)
    }

    mutating func localTee(_ local: UInt32) throws(CompileError) {
        let value = try pop(try localKind(local))
        push(value.kind)
        assembler.mov(.q, .rax, value.slot)
        assembler.mov(.q, localSlot(Int(local)), .rax)
    }

    /// `rcx = vmctx->globals[global]`: the global's cell (an imported
    /// global's is the exporter's).
    mutating func loadGlobalCell(_ global: UInt32) {
        assembler.mov(.q, .rcx, MemoryOperand.at(.r15, Int32(WU_VMCTX_GLOBALS)))
        assembler.mov(.q, .rcx, MemoryOperand.at(.rcx, Int32(8 * global)))
    }

    mutating func globalGet(_ global: UInt32) throws(CompileError) {
        let type = try globalType(global)
        loadGlobalCell(global)
        assembler.mov(.q, .rax, MemoryOperand.at(.rcx))
        assembler.mov(.q, push(type.kind), .rax)
    }

    mutating func globalSet(_ global: UInt32) throws(CompileError) {
        let type = try globalType(global)
        guard type.mutable else { throw .invalid("global is immutable: global.set of global \(global)", offset: binaryOffset) }
        let value = try pop(type.kind)
        if type.kind == .funcref { holdIfForeign(value.slot) }
        loadGlobalCell(global)
        assembler.mov(.q, .rax, value.slot)
        assembler.mov(.q, MemoryOperand.at(.rcx), .rax)
    }

    /// A constant's 64-bit slot value, through rax.
    mutating func constant(_ kind: ValueKind, _ bits: UInt64) {
        assembler.mov(.rax, immediate: Int64(bitPattern: bits))
        assembler.mov(.q, push(kind), .rax)
    }

    mutating func select(typed: ValueKind?) throws(CompileError) {
        let condition = try pop(.i32)
        let second = try pop(typed)
        let first = try pop(second.kind)
        if typed == nil && second.kind.isReference {
            throw .invalid("type mismatch: select of \(second.kind) needs a type annotation", offset: binaryOffset)
        }
        assembler.mov(.q, .rax, first.slot)
        assembler.mov(.q, .rcx, second.slot)
        assembler.mov(.d, .rdx, condition.slot)
        assembler.test(.d, .rdx, .rdx)
        assembler.cmov(.equal, .q, .rax, .rcx)
        assembler.mov(.q, push(first.kind), .rax)
    }
}
