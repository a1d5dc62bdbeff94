// The instructions, one method per instruction form, named as in the Intel
// manual with the operand order of Intel syntax (destination first).

extension Assembler {
    // MARK: Stack and control

    /// `push reg`
    public mutating func push(_ register: Register) {
        rex(w: false, base: register.rawValue)
        emit(0x50 + register.low3)
    }

    /// `pop reg`
    public mutating func pop(_ register: Register) {
        rex(w: false, base: register.rawValue)
        emit(0x58 + register.low3)
    }

    /// `ret`
    public mutating func ret() { emit(0xC3) }

    /// `ud2`: the guaranteed-invalid instruction (SIGILL).
    public mutating func ud2() { emit([0x0F, 0x0B]) }

    /// `int3`
    public mutating func int3() { emit(0xCC) }

    /// `nop`
    public mutating func nop() { emit(0x90) }

    /// `call rel32` to a label.
    public mutating func call(_ label: Label) { relative32([0xE8], to: label) }

    /// `call reg`
    public mutating func call(_ register: Register) {
        registerForm(.d, opcode: [0xFF], reg: 2, rm: register)
    }

    /// `call qword ptr [mem]`
    public mutating func call(_ memory: MemoryOperand) {
        memoryForm(.d, opcode: [0xFF], reg: 2, memory: memory)
    }

    /// `jmp rel32` to a label.
    public mutating func jmp(_ label: Label) { relative32([0xE9], to: label) }

    /// `jmp reg`
    public mutating func jmp(_ register: Register) {
        registerForm(.d, opcode: [0xFF], reg: 4, rm: register)
    }

    /// `jmp qword ptr [mem]`
    public mutating func jmp(_ memory: MemoryOperand) {
        memoryForm(.d, opcode: [0xFF], reg: 4, memory: memory)
    }

    /// `jcc rel32` to a label.
    public mutating func j(_ condition: Condition, _ label: Label) {
        relative32([0x0F, 0x80 + condition.rawValue], to: label)
    }

    // MARK: Moves

    /// `mov dst, src`
    public mutating func mov(_ width: Width, _ destination: Register, _ source: Register) {
        registerForm(width, opcode: [0x89], reg: source.rawValue, rm: destination)
    }

    /// `mov dst, [mem]` (load)
    public mutating func mov(_ width: Width, _ destination: Register, _ source: MemoryOperand) {
        memoryForm(width, opcode: [0x8B], reg: destination.rawValue, memory: source)
    }

    /// `mov [mem], src` (store)
    public mutating func mov(_ width: Width, _ destination: MemoryOperand, _ source: Register) {
        memoryForm(width, opcode: [0x89], reg: source.rawValue, memory: destination)
    }

    /// `mov [mem], simm32` (64-bit stores sign-extend the immediate)
    public mutating func mov(_ width: Width, _ destination: MemoryOperand, immediate: Int32) {
        memoryForm(width, opcode: [0xC7], reg: 0, memory: destination, trailingImmediateBytes: 4)
        emit32(immediate)
    }

    /// Loads a constant with the shortest encoding: `mov r32, imm32` for
    /// values that zero-extend, `mov r64, simm32` for ones that sign-extend,
    /// `movabs` otherwise. Flags are left alone.
    /// `movabs rax, qword ptr [address]`: a load from a 64-bit absolute
    /// address in one instruction (only into rax).
    public mutating func loadRAX(absolute address: UInt64) {
        emit(0x48)
        emit(0xA1)
        emit64(Int64(bitPattern: address))
    }

    public mutating func mov(_ destination: Register, immediate value: Int64) {
        if let unsigned = UInt32(exactly: value) {
            rex(w: false, base: destination.rawValue)
            emit(0xB8 + destination.low3)
            emit32(Int32(bitPattern: unsigned))
        } else if let signed = Int32(exactly: value) {
            registerForm(.q, opcode: [0xC7], reg: 0, rm: destination)
            emit32(signed)
        } else {
            rex(w: true, base: destination.rawValue)
            emit(0xB8 + destination.low3)
            emit64(value)
        }
    }

    /// `mov byte ptr [mem], src8`
    public mutating func mov8(_ destination: MemoryOperand, _ source: Register) {
        memoryForm(.d, opcode: [0x88], reg: source.rawValue, memory: destination, byteRegister: true)
    }

    /// `mov word ptr [mem], src16`
    public mutating func mov16(_ destination: MemoryOperand, _ source: Register) {
        emit(0x66)
        memoryForm(.d, opcode: [0x89], reg: source.rawValue, memory: destination)
    }

    /// `movzx dst, byte ptr [mem]` (zero-extends to 64 bits)
    public mutating func movzx8(_ destination: Register, _ source: MemoryOperand) {
        memoryForm(.d, opcode: [0x0F, 0xB6], reg: destination.rawValue, memory: source)
    }

    /// `movzx dst, word ptr [mem]`
    public mutating func movzx16(_ destination: Register, _ source: MemoryOperand) {
        memoryForm(.d, opcode: [0x0F, 0xB7], reg: destination.rawValue, memory: source)
    }

    /// `movsx dst, byte ptr [mem]`
    public mutating func movsx8(_ width: Width, _ destination: Register, _ source: MemoryOperand) {
        memoryForm(width, opcode: [0x0F, 0xBE], reg: destination.rawValue, memory: source)
    }

    /// `movsx dst, word ptr [mem]`
    public mutating func movsx16(_ width: Width, _ destination: Register, _ source: MemoryOperand) {
        memoryForm(width, opcode: [0x0F, 0xBF], reg: destination.rawValue, memory: source)
    }

    /// `movsxd dst, dword ptr [mem]`
    public mutating func movsxd(_ destination: Register, _ source: MemoryOperand) {
        memoryForm(.q, opcode: [0x63], reg: destination.rawValue, memory: source)
    }

    /// `movzx dst, src8` (the low byte of `src`)
    public mutating func movzx8(_ destination: Register, _ source: Register) {
        registerForm(.d, opcode: [0x0F, 0xB6], reg: destination.rawValue, rm: source, byteOperands: true)
    }

    /// `movsx dst, src8`
    public mutating func movsx8(_ width: Width, _ destination: Register, _ source: Register) {
        registerForm(width, opcode: [0x0F, 0xBE], reg: destination.rawValue, rm: source, byteOperands: true)
    }

    /// `movsx dst, src16`
    public mutating func movsx16(_ width: Width, _ destination: Register, _ source: Register) {
        registerForm(width, opcode: [0x0F, 0xBF], reg: destination.rawValue, rm: source)
    }

    /// `movsxd dst, src32`
    public mutating func movsxd(_ destination: Register, _ source: Register) {
        registerForm(.q, opcode: [0x63], reg: destination.rawValue, rm: source)
    }

    /// `lea dst, [mem]`; with `.label` this is `lea dst, [rip + label]`.
    public mutating func lea(_ destination: Register, _ source: MemoryOperand) {
        memoryForm(.q, opcode: [0x8D], reg: destination.rawValue, memory: source)
    }

    /// `cmovcc dst, src`
    public mutating func cmov(_ condition: Condition, _ width: Width, _ destination: Register, _ source: Register) {
        registerForm(width, opcode: [0x0F, 0x40 + condition.rawValue], reg: destination.rawValue, rm: source)
    }

    /// `setcc dst8`
    public mutating func set(_ condition: Condition, _ destination: Register) {
        registerForm(.d, opcode: [0x0F, 0x90 + condition.rawValue], reg: 0, rm: destination, byteOperands: true)
    }

    // MARK: Arithmetic

    /// `op dst, src` for add, or, adc, sbb, and, sub, xor, cmp.
    public mutating func arithmetic(_ operation: ArithmeticOperation, _ width: Width,
                                    _ destination: Register, _ source: Register) {
        registerForm(width, opcode: [operation.rawValue << 3 | 1], reg: source.rawValue, rm: destination)
    }

    /// `op dst, [mem]`
    public mutating func arithmetic(_ operation: ArithmeticOperation, _ width: Width,
                                    _ destination: Register, _ source: MemoryOperand) {
        memoryForm(width, opcode: [operation.rawValue << 3 | 3], reg: destination.rawValue, memory: source)
    }

    /// `op [mem], src`
    public mutating func arithmetic(_ operation: ArithmeticOperation, _ width: Width,
                                    _ destination: MemoryOperand, _ source: Register) {
        memoryForm(width, opcode: [operation.rawValue << 3 | 1], reg: source.rawValue, memory: destination)
    }

    /// `op dst, imm` (imm8 form when the value fits).
    public mutating func arithmetic(_ operation: ArithmeticOperation, _ width: Width,
                                    _ destination: Register, immediate: Int32) {
        if let small = Int8(exactly: immediate) {
            registerForm(width, opcode: [0x83], reg: operation.rawValue, rm: destination)
            emit(UInt8(bitPattern: small))
        } else if destination == .rax {
            // The accumulator has a form without ModRM, one byte shorter.
            rex(w: width == .q)
            emit(operation.rawValue << 3 | 5)
            emit32(immediate)
        } else {
            registerForm(width, opcode: [0x81], reg: operation.rawValue, rm: destination)
            emit32(immediate)
        }
    }

    /// `op qword ptr [mem], imm` (e.g. `cmp [mem], 0`; imm8 form when the
    /// value fits)
    public mutating func arithmetic(_ operation: ArithmeticOperation, _ width: Width,
                                    _ destination: MemoryOperand, immediate: Int32) {
        if let small = Int8(exactly: immediate) {
            memoryForm(width, opcode: [0x83], reg: operation.rawValue, memory: destination, trailingImmediateBytes: 1)
            emit(UInt8(bitPattern: small))
        } else {
            memoryForm(width, opcode: [0x81], reg: operation.rawValue, memory: destination, trailingImmediateBytes: 4)
            emit32(immediate)
        }
    }

    /// `op dst, imm32` (64-bit) always in the 4-byte immediate form, so the
    /// immediate can be patched later (`patch32`). Returns its position.
    public mutating func arithmeticWithPatchableImmediate(_ operation: ArithmeticOperation,
                                                          _ destination: Register) -> Int {
        registerForm(.q, opcode: [0x81], reg: operation.rawValue, rm: destination)
        let position = offset
        emit32(0)
        return position
    }

    /// `test a, b`
    public mutating func test(_ width: Width, _ a: Register, _ b: Register) {
        registerForm(width, opcode: [0x85], reg: b.rawValue, rm: a)
    }

    /// `imul dst, src`
    public mutating func imul(_ width: Width, _ destination: Register, _ source: Register) {
        registerForm(width, opcode: [0x0F, 0xAF], reg: destination.rawValue, rm: source)
    }

    /// `shl/shr/sar/rol/ror dst, cl`
    public mutating func shift(_ operation: ShiftOperation, _ width: Width, _ destination: Register) {
        registerForm(width, opcode: [0xD3], reg: operation.rawValue, rm: destination)
    }

    /// `neg dst`
    public mutating func neg(_ width: Width, _ destination: Register) {
        registerForm(width, opcode: [0xF7], reg: 3, rm: destination)
    }

    /// `div src`: unsigned rdx:rax / src, quotient in rax, remainder in rdx.
    public mutating func div(_ width: Width, _ source: Register) {
        registerForm(width, opcode: [0xF7], reg: 6, rm: source)
    }

    /// `idiv src`: signed rdx:rax / src.
    public mutating func idiv(_ width: Width, _ source: Register) {
        registerForm(width, opcode: [0xF7], reg: 7, rm: source)
    }

    /// `cdq` (32-bit) or `cqo` (64-bit): sign-extend rax into rdx.
    public mutating func signExtendAccumulator(_ width: Width) {
        if width == .q { emit(0x48) }
        emit(0x99)
    }

    /// `bsr dst, src`: index of the highest set bit; ZF when src is 0.
    public mutating func bsr(_ width: Width, _ destination: Register, _ source: Register) {
        registerForm(width, opcode: [0x0F, 0xBD], reg: destination.rawValue, rm: source)
    }

    /// `bsf dst, src`: index of the lowest set bit; ZF when src is 0.
    public mutating func bsf(_ width: Width, _ destination: Register, _ source: Register) {
        registerForm(width, opcode: [0x0F, 0xBC], reg: destination.rawValue, rm: source)
    }

    /// `popcnt dst, src`
    public mutating func popcnt(_ width: Width, _ destination: Register, _ source: Register) {
        emit(0xF3)  // mandatory prefix, before REX
        registerForm(width, opcode: [0x0F, 0xB8], reg: destination.rawValue, rm: source)
    }
}

extension Assembler {
    /// `shl/shr/sar/rol/ror dst, imm8`
    public mutating func shift(_ operation: ShiftOperation, _ width: Width, _ destination: Register, by count: UInt8) {
        registerForm(width, opcode: [0xC1], reg: operation.rawValue, rm: destination)
        emit(count)
    }
}
