import CWasmUnwindABI
import WasmParser
import WasmUnwind

/// Linear memory: loads and stores through an explicit bounds check that
/// branches to a trap stub, and `memory.size`.
extension FunctionCompiler {
    /// Leaves the effective address's operand for `[rcx + rax + disp]`
    /// after checking `address + offset + size <= memory size`, trapping
    /// otherwise. Clobbers rax, rcx, rdx.
    mutating func boundsCheckedAddress(_ address: Memory, _ memarg: MemArg, size: Int) throws(CompileError) -> Memory {
        guard module.memoryPages != nil, memarg.memory == 0 else {
            throw .invalid("memory access without a memory", offset: binaryOffset)
        }
        let wasmOffset = binaryOffset
        assembler.mov(.d, .rax, address)  // zero-extends the 32-bit address
        let end = memarg.offset + UInt64(size)
        if end <= UInt64(Int32.max) {
            assembler.lea(.rdx, Memory.at(.rax, Int32(end)))
        } else {
            assembler.mov(.rdx, immediate: Int64(end))
            assembler.arithmetic(.add, .q, .rdx, .rax)
        }
        assembler.arithmetic(.cmp, .q, .rdx, Memory.at(.r15, Int32(WU_VMCTX_MEMORY_SIZE)))
        assembler.j(.above, trapStub(.outOfBoundsMemoryAccess, wasmOffset: wasmOffset, addressOffset: memarg.offset))
        assembler.mov(.q, .rcx, Memory.at(.r15, Int32(WU_VMCTX_MEMORY_BASE)))
        if memarg.offset <= UInt64(Int32.max) {
            return Memory.at(.rcx, index: .rax, Int32(memarg.offset))
        }
        assembler.mov(.rdx, immediate: Int64(memarg.offset))
        assembler.arithmetic(.add, .q, .rax, .rdx)
        return Memory.at(.rcx, index: .rax)
    }

    mutating func load(_ load: Lowering.IntegerLoad, _ memarg: MemArg) throws(CompileError) {
        let address = try pop(.i32)
        let memory = try boundsCheckedAddress(address.slot, memarg, size: load.size)
        let width: Width = load.kind == .i64 ? .q : .d
        switch (load.size, load.signed) {
        case (1, true): assembler.movsx8(width, .rax, memory)
        case (1, false): assembler.movzx8(.rax, memory)
        case (2, true): assembler.movsx16(width, .rax, memory)
        case (2, false): assembler.movzx16(.rax, memory)
        case (4, true): assembler.movsxd(.rax, memory)
        case (4, false): assembler.mov(.d, .rax, memory)
        default: assembler.mov(.q, .rax, memory)
        }
        assembler.mov(.q, push(load.kind), .rax)
    }

    mutating func store(_ kind: ValueKind, size: Int, _ memarg: MemArg) throws(CompileError) {
        let value = try pop(kind)
        let address = try pop(.i32)
        let memory = try boundsCheckedAddress(address.slot, memarg, size: size)
        assembler.mov(.q, .rdx, value.slot)
        switch size {
        case 1: assembler.mov8(memory, .rdx)
        case 2: assembler.mov16(memory, .rdx)
        case 4: assembler.mov(.d, memory, .rdx)
        default: assembler.mov(.q, memory, .rdx)
        }
    }

    mutating func memorySize() throws(CompileError) {
        guard module.memoryPages != nil else { throw .invalid("memory.size without a memory", offset: binaryOffset) }
        assembler.mov(.q, .rax, Memory.at(.r15, Int32(WU_VMCTX_MEMORY_SIZE)))
        assembler.shift(.shr, .q, .rax, by: 16)
        assembler.mov(.q, push(.i32), .rax)
    }
}
