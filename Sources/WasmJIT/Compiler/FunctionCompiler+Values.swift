import CWasmUnwindABI
import WasmUnwind

/// Locals, globals, constants, references and the parametric instructions
/// (`drop`, `select`): moves between slots, through rax.
extension FunctionCompiler {
    func localKind(_ local: UInt32) throws(CompileError) -> ValueKind {
        guard Int(local) < locals.count else { throw .invalid("local \(local) out of range", offset: binaryOffset) }
        return locals[Int(local)]
    }

    func globalDefinition(_ global: UInt32) throws(CompileError) -> ModuleDescription.GlobalDefinition {
        guard Int(global) < module.globals.count else { throw .invalid("global \(global) out of range", offset: binaryOffset) }
        return module.globals[Int(global)]
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

    mutating func globalGet(_ global: UInt32) throws(CompileError) {
        let definition = try globalDefinition(global)
        assembler.mov(.q, .rcx, Memory.at(.r15, Int32(WU_VMCTX_GLOBALS)))
        assembler.mov(.q, .rax, Memory.at(.rcx, Int32(8 * global)))
        assembler.mov(.q, push(definition.kind), .rax)
    }

    mutating func globalSet(_ global: UInt32) throws(CompileError) {
        let definition = try globalDefinition(global)
        guard definition.mutable else { throw .invalid("global.set of immutable global \(global)", offset: binaryOffset) }
        let value = try pop(definition.kind)
        assembler.mov(.q, .rax, value.slot)
        assembler.mov(.q, .rcx, Memory.at(.r15, Int32(WU_VMCTX_GLOBALS)))
        assembler.mov(.q, Memory.at(.rcx, Int32(8 * global)), .rax)
    }

    /// A constant's 64-bit slot value, through rax.
    mutating func constant(_ kind: ValueKind, _ bits: UInt64) {
        assembler.mov(.rax, immediate: Int64(bitPattern: bits))
        assembler.mov(.q, push(kind), .rax)
    }

    mutating func refIsNull() throws(CompileError) {
        let value = try pop(.externref)
        assembler.mov(.q, .rax, value.slot)
        assembler.test(.q, .rax, .rax)
        assembler.set(.equal, .rax)
        assembler.movzx8(.rax, Register.rax)
        assembler.mov(.q, push(.i32), .rax)
    }

    mutating func select() throws(CompileError) {
        let condition = try pop(.i32)
        let second = try pop()
        let first = try pop(second.kind)
        assembler.mov(.q, .rax, first.slot)
        assembler.mov(.q, .rcx, second.slot)
        assembler.mov(.d, .rdx, condition.slot)
        assembler.test(.d, .rdx, .rdx)
        assembler.cmov(.equal, .q, .rax, .rcx)
        assembler.mov(.q, push(first.kind), .rax)
    }
}
