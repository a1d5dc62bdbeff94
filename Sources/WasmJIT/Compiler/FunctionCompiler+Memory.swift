import CWasmUnwindABI
import WasmParser
import WasmUnwind
import CWasmRuntime

/// Linear memory: loads and stores — with guard pages, plain accesses each
/// recorded as a trap site the signal handler recognises; with explicit
/// checks, through a comparison that branches to a trap stub —
/// `memory.size`, and as runtime calls `memory.grow` and the bulk memory
/// instructions.
extension FunctionCompiler {
    /// Leaves the effective address's operand for `[rcx + rax + disp]`:
    /// with explicit checks after checking `address + offset + size <=
    /// memory size`, trapping otherwise. Clobbers rax, rcx, rdx.
    mutating func boundsCheckedAddress(_ address: MemoryOperand, _ memarg: MemArg, size: Int) throws(CompileError) -> MemoryOperand {
        guard module.hasMemory, memarg.memory == 0 else {
            throw .invalid("memory access without a memory", offset: binaryOffset)
        }
        let wasmOffset = binaryOffset
        assembler.mov(.d, .rax, address)  // zero-extends the 32-bit address
        // With guard pages no check: index < 2^32 and offset < 2^32, so the
        // sum stays inside the reservation (Memory.reservation), past the
        // accessible bytes only into inaccessible ones.
        if boundsChecks == .explicit {
            let end = memarg.offset + UInt64(size)
            if end <= UInt64(Int32.max) {
                assembler.lea(.rdx, MemoryOperand.at(.rax, Int32(end)))
            } else {
                assembler.mov(.rdx, immediate: Int64(end))
                assembler.arithmetic(.add, .q, .rdx, .rax)
            }
            assembler.arithmetic(.cmp, .q, .rdx, MemoryOperand.at(.r15, Int32(WU_VMCTX_MEMORY_SIZE)))
            assembler.j(.above, trapStub(.outOfBoundsMemoryAccess, wasmOffset: wasmOffset, addressOffset: memarg.offset))
        }
        assembler.mov(.q, .rcx, MemoryOperand.at(.r15, Int32(WU_VMCTX_MEMORY_BASE)))
        if memarg.offset <= UInt64(Int32.max) {
            return MemoryOperand.at(.rcx, index: .rax, Int32(memarg.offset))
        }
        assembler.mov(.rdx, immediate: Int64(memarg.offset))
        assembler.arithmetic(.add, .q, .rax, .rdx)
        return MemoryOperand.at(.rcx, index: .rax)
    }

    mutating func load(_ load: Lowering.IntegerLoad, _ memarg: MemArg) throws(CompileError) {
        let address = try pop(.i32)
        let memory = try boundsCheckedAddress(address.slot, memarg, size: load.size)
        let width: Width = load.kind == .i64 ? .q : .d
        recordMemoryAccess()
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
        recordMemoryAccess()
        switch size {
        case 1: assembler.mov8(memory, .rdx)
        case 2: assembler.mov16(memory, .rdx)
        case 4: assembler.mov(.d, memory, .rdx)
        default: assembler.mov(.q, memory, .rdx)
        }
    }

    /// With guard pages, the next instruction is a load or store that
    /// faults past the end of memory: a trap site of its own.
    mutating func recordMemoryAccess() {
        guard boundsChecks == .guardPages else { return }
        trapSites.append(TrapSite(codeOffset: assembler.offset, wasmOffset: binaryOffset, code: .outOfBoundsMemoryAccess,
                                  isMemoryAccess: true, operandKinds: instructionStack))
    }

    mutating func memorySize() throws(CompileError) {
        guard module.hasMemory else { throw .invalid("memory.size without a memory", offset: binaryOffset) }
        assembler.mov(.q, .rax, MemoryOperand.at(.r15, Int32(WU_VMCTX_MEMORY_SIZE)))
        assembler.shift(.shr, .q, .rax, by: 16)
        assembler.mov(.q, push(.i32), .rax)
    }

    func requireMemory(_ instruction: String) throws(CompileError) {
        guard module.hasMemory else { throw .invalid("unknown memory 0: \(instruction) without a memory", offset: binaryOffset) }
    }

    func requireDataSegment(_ segment: UInt32) throws(CompileError) {
        guard Int(segment) < module.dataSegments.count else {
            throw .invalid("unknown data segment \(segment)", offset: binaryOffset)
        }
    }

    /// `memory.grow`: the old size in pages, or -1.
    mutating func memoryGrow() throws(CompileError) {
        try requireMemory("memory.grow")
        let delta = try pop(.i32)
        callRuntime(Int32(WU_LIBCALL_MEMORY_GROW), "memory.grow", [.slot(delta.slot)])
        assembler.mov(.d, .rax, .rax)
        assembler.mov(.q, push(.i32), .rax)
    }

    mutating func memoryFill() throws(CompileError) {
        try requireMemory("memory.fill")
        let count = try pop(.i32)
        let value = try pop(.i32)
        let destination = try pop(.i32)
        callRuntime(Int32(WU_LIBCALL_MEMORY_FILL), "memory.fill",
                    [.slot(destination.slot), .slot(value.slot), .slot(count.slot)], trap: .outOfBoundsMemoryAccess)
    }

    mutating func memoryCopy() throws(CompileError) {
        try requireMemory("memory.copy")
        let count = try pop(.i32)
        let source = try pop(.i32)
        let destination = try pop(.i32)
        callRuntime(Int32(WU_LIBCALL_MEMORY_COPY), "memory.copy",
                    [.slot(destination.slot), .slot(source.slot), .slot(count.slot)], trap: .outOfBoundsMemoryAccess)
    }

    mutating func memoryInit(_ segment: UInt32) throws(CompileError) {
        try requireMemory("memory.init")
        try requireDataSegment(segment)
        let count = try pop(.i32)
        let source = try pop(.i32)
        let destination = try pop(.i32)
        callRuntime(Int32(WU_LIBCALL_MEMORY_INIT), "memory.init",
                    [.constant(Int64(segment)), .slot(destination.slot), .slot(source.slot), .slot(count.slot)],
                    trap: .outOfBoundsMemoryAccess)
    }

    mutating func dataDrop(_ segment: UInt32) throws(CompileError) {
        try requireDataSegment(segment)
        callRuntime(Int32(WU_LIBCALL_DATA_DROP), "data.drop", [.constant(Int64(segment))])
    }
}
