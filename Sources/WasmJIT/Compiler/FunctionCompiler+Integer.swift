import WasmUnwind

/// Integer arithmetic, comparisons and conversions. i32 values stay
/// zero-extended in their 64-bit slots. Division traps (by zero, and
/// `INT_MIN / -1`) are explicit checks that branch to trap stubs.
extension FunctionCompiler {
    static func kind(of width: Width) -> ValueKind { width == .d ? .i32 : .i64 }

    mutating func equalsZero(_ width: Width) throws(CompileError) {
        let value = try pop(Self.kind(of: width))
        assembler.mov(width, .rax, value.slot)
        assembler.test(width, .rax, .rax)
        assembler.set(.equal, .rax)
        assembler.movzx8(.rax, Register.rax)
        assembler.mov(.q, push(.i32), .rax)
    }

    mutating func compare(_ width: Width, _ condition: Condition) throws(CompileError) {
        let kind = Self.kind(of: width)
        let right = try pop(kind)
        let left = try pop(kind)
        assembler.mov(width, .rax, left.slot)
        assembler.mov(width, .rcx, right.slot)
        assembler.arithmetic(.cmp, width, .rax, .rcx)
        assembler.set(condition, .rax)
        assembler.movzx8(.rax, Register.rax)
        assembler.mov(.q, push(.i32), .rax)
    }

    mutating func binary(_ width: Width, _ op: Lowering.IntegerBinary) throws(CompileError) {
        let kind: ValueKind = width == .d ? .i32 : .i64
        let right = try pop(kind)
        let left = try pop(kind)
        let wasmOffset = binaryOffset
        assembler.mov(width, .rax, left.slot)
        assembler.mov(width, .rcx, right.slot)
        var result = Register.rax
        switch op {
        case .arithmetic(let arithmetic):
            assembler.arithmetic(arithmetic, width, .rax, .rcx)
        case .multiply:
            assembler.imul(width, .rax, .rcx)
        case .shift(let shift):
            assembler.shift(shift, width, .rax)
        case .divideUnsigned, .remainderUnsigned:
            assembler.test(width, .rcx, .rcx)
            assembler.j(.equal, trapStub(.integerDivisionByZero, wasmOffset: wasmOffset))
            assembler.arithmetic(.xor, .d, .rdx, .rdx)
            assembler.div(width, .rcx)
            if op == .remainderUnsigned { result = .rdx }
        case .divideSigned:
            assembler.test(width, .rcx, .rcx)
            assembler.j(.equal, trapStub(.integerDivisionByZero, wasmOffset: wasmOffset))
            // INT_MIN / -1 overflows; idiv would fault, wasm traps.
            let divide = assembler.newLabel()
            assembler.arithmetic(.cmp, width, .rcx, immediate: -1)
            assembler.j(.notEqual, divide)
            emitCompareWithMinimum(width, .rax)
            assembler.j(.equal, trapStub(.integerOverflow, wasmOffset: wasmOffset))
            assembler.bind(divide)
            assembler.signExtendAccumulator(width)
            assembler.idiv(width, .rcx)
        case .remainderSigned:
            assembler.test(width, .rcx, .rcx)
            assembler.j(.equal, trapStub(.integerDivisionByZero, wasmOffset: wasmOffset))
            // x rem -1 is 0 in wasm (idiv would fault on INT_MIN).
            let divide = assembler.newLabel(), done = assembler.newLabel()
            assembler.arithmetic(.cmp, width, .rcx, immediate: -1)
            assembler.j(.notEqual, divide)
            assembler.arithmetic(.xor, .d, .rdx, .rdx)
            assembler.jmp(done)
            assembler.bind(divide)
            assembler.signExtendAccumulator(width)
            assembler.idiv(width, .rcx)
            assembler.bind(done)
            result = .rdx
        }
        assembler.mov(.q, push(kind), result)
    }

    /// Sets flags for `register == INT_MIN` of the width.
    mutating func emitCompareWithMinimum(_ width: Width, _ register: Register) {
        if width == .d {
            assembler.arithmetic(.cmp, .d, register, immediate: Int32.min)
        } else {
            assembler.mov(.rdx, immediate: Int64.min)
            assembler.arithmetic(.cmp, .q, register, .rdx)
        }
    }

    mutating func unary(_ width: Width, _ operation: Lowering.IntegerUnary) throws(CompileError) {
        let kind = Self.kind(of: width)
        let value = try pop(kind)
        let bits: Int64 = width == .d ? 32 : 64
        switch operation {
        case .countLeadingZeros:
            // bsr leaves ZF set for 0; -1 then gives bits - 1 - (-1) = bits.
            assembler.mov(width, .rcx, value.slot)
            assembler.bsr(width, .rax, .rcx)
            assembler.mov(.rdx, immediate: -1)
            assembler.cmov(.equal, width, .rax, .rdx)
            assembler.mov(.rcx, immediate: bits - 1)
            assembler.arithmetic(.sub, width, .rcx, .rax)
            assembler.mov(.q, push(kind), .rcx)
            return
        case .countTrailingZeros:
            assembler.mov(width, .rcx, value.slot)
            assembler.bsf(width, .rax, .rcx)
            assembler.mov(.rdx, immediate: bits)
            assembler.cmov(.equal, width, .rax, .rdx)
        case .populationCount:
            assembler.mov(width, .rcx, value.slot)
            assembler.popcnt(width, .rax, .rcx)
        case .extend8:
            assembler.movsx8(width, .rax, value.slot)
        case .extend16:
            assembler.movsx16(width, .rax, value.slot)
        case .extend32:
            assembler.movsxd(.rax, value.slot)
        }
        if width == .d { assembler.mov(.d, .rax, .rax) }
        assembler.mov(.q, push(kind), .rax)
    }

    mutating func wrap() throws(CompileError) {
        let value = try pop(.i64)
        assembler.mov(.d, .rax, value.slot)
        assembler.mov(.q, push(.i32), .rax)
    }

    mutating func extend(signed: Bool) throws(CompileError) {
        let value = try pop(.i32)
        if signed {
            assembler.movsxd(.rax, value.slot)
        } else {
            assembler.mov(.d, .rax, value.slot)
        }
        assembler.mov(.q, push(.i64), .rax)
    }
}
