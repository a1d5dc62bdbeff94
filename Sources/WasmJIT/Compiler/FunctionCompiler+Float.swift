import WasmUnwind

/// f32 and f64: scalar SSE (and SSE4.1 `roundss`/`roundsd`) on values
/// loaded from their slots into xmm0 and xmm1, results stored back through
/// rax so a slot always holds the float's bits zero-extended. Sign
/// operations (`abs`, `neg`, `copysign`) are integer bit operations; the
/// cases where x86 and wasm disagree — `min`/`max` with NaN or signed
/// zeros, unsigned conversions, traps of `trunc` — are spelled out.
extension FunctionCompiler {
    static func kind(of precision: FloatPrecision) -> ValueKind { precision == .single ? .f32 : .f64 }
    static func width(of precision: FloatPrecision) -> Width { precision == .single ? .d : .q }

    /// Pushes the float in `register` as a new operand-stack slot.
    mutating func pushFloat(_ precision: FloatPrecision, from register: XMMRegister = .xmm0) {
        // A 32-bit movd zero-extends into rax, so the slot's upper half is 0.
        assembler.movFromXMM(Self.width(of: precision), .rax, register)
        assembler.mov(.q, push(Self.kind(of: precision)), .rax)
    }

    /// `register` = the float whose bits are `bits`.
    mutating func loadFloatConstant(_ precision: FloatPrecision, _ register: XMMRegister, bits: UInt64) {
        assembler.mov(.rax, immediate: Int64(bitPattern: bits))
        assembler.movToXMM(Self.width(of: precision), register, .rax)
    }

    mutating func loadFloatConstant(_ precision: FloatPrecision, _ register: XMMRegister, _ value: Double) {
        let bits = precision == .single ? UInt64(Float(value).bitPattern) : value.bitPattern
        loadFloatConstant(precision, register, bits: bits)
    }

    mutating func floatBinary(_ precision: FloatPrecision, _ operation: Lowering.FloatBinary) throws(CompileError) {
        let kind = Self.kind(of: precision)
        let right = try pop(kind)
        let left = try pop(kind)
        if operation == .copysign {
            // (left without its sign) | (right's sign only)
            let width = Self.width(of: precision)
            assembler.mov(width, .rax, left.slot)
            assembler.mov(width, .rcx, right.slot)
            if precision == .single {
                assembler.arithmetic(.and, .d, .rax, immediate: Int32.max)
                assembler.arithmetic(.and, .d, .rcx, immediate: Int32.min)
            } else {
                assembler.mov(.rdx, immediate: Int64.max)
                assembler.arithmetic(.and, .q, .rax, .rdx)
                assembler.mov(.rdx, immediate: Int64.min)
                assembler.arithmetic(.and, .q, .rcx, .rdx)
            }
            assembler.arithmetic(.or, width, .rax, .rcx)
            assembler.mov(.q, push(kind), .rax)
            return
        }
        assembler.movScalar(precision, .xmm0, left.slot)
        assembler.movScalar(precision, .xmm1, right.slot)
        switch operation {
        case .arithmetic(let arithmetic):
            assembler.floatArithmetic(arithmetic, precision, .xmm0, .xmm1)
        case .min, .max:
            // minss/maxss return the second operand for NaN and for equal
            // operands, so -0 and +0 or a NaN come out wrong. Wasm: a NaN
            // operand gives NaN (propagated by an add), and min(-0, +0) is
            // -0 (or of the bits), max(-0, +0) is +0 (and of the bits).
            let unordered = assembler.newLabel(), ordinary = assembler.newLabel(), done = assembler.newLabel()
            assembler.unorderedCompare(precision, .xmm0, .xmm1)
            assembler.j(.parity, unordered)
            assembler.j(.notEqual, ordinary)
            assembler.floatBitwise(operation == .min ? .or : .and, precision, .xmm0, .xmm1)
            assembler.jmp(done)
            assembler.bind(unordered)
            assembler.floatArithmetic(.add, precision, .xmm0, .xmm1)
            assembler.jmp(done)
            assembler.bind(ordinary)
            assembler.floatArithmetic(operation == .min ? .min : .max, precision, .xmm0, .xmm1)
            assembler.bind(done)
        case .copysign:
            break  // above
        }
        pushFloat(precision)
    }

    mutating func floatUnary(_ precision: FloatPrecision, _ operation: Lowering.FloatUnary) throws(CompileError) {
        let kind = Self.kind(of: precision)
        let value = try pop(kind)
        let width = Self.width(of: precision)
        switch operation {
        case .abs, .neg:
            assembler.mov(width, .rax, value.slot)
            if precision == .single {
                assembler.arithmetic(operation == .abs ? .and : .xor, .d, .rax, immediate: operation == .abs ? Int32.max : Int32.min)
            } else {
                assembler.mov(.rcx, immediate: operation == .abs ? Int64.max : Int64.min)
                assembler.arithmetic(operation == .abs ? .and : .xor, .q, .rax, .rcx)
            }
            assembler.mov(.q, push(kind), .rax)
        case .sqrt:
            assembler.movScalar(precision, .xmm0, value.slot)
            assembler.floatArithmetic(.sqrt, precision, .xmm0, .xmm0)
            pushFloat(precision)
        case .round(let mode):
            assembler.movScalar(precision, .xmm0, value.slot)
            assembler.round(precision, .xmm0, .xmm0, mode)
            pushFloat(precision)
        }
    }

    mutating func floatCompare(_ precision: FloatPrecision, _ comparison: Lowering.FloatComparison) throws(CompileError) {
        let kind = Self.kind(of: precision)
        let right = try pop(kind)
        let left = try pop(kind)
        assembler.movScalar(precision, .xmm0, left.slot)
        assembler.movScalar(precision, .xmm1, right.slot)
        // ucomiss sets ZF, PF and CF all three when unordered (a NaN), so
        // "above" (CF = ZF = 0) and "above or equal" (CF = 0) are false for
        // NaN; less-than is greater-than with the operands swapped.
        switch comparison {
        case .equal:
            assembler.unorderedCompare(precision, .xmm0, .xmm1)
            assembler.set(.equal, .rax)
            assembler.set(.noParity, .rcx)
            assembler.arithmetic(.and, .d, .rax, .rcx)
        case .notEqual:
            assembler.unorderedCompare(precision, .xmm0, .xmm1)
            assembler.set(.notEqual, .rax)
            assembler.set(.parity, .rcx)
            assembler.arithmetic(.or, .d, .rax, .rcx)
        case .less:
            assembler.unorderedCompare(precision, .xmm1, .xmm0)
            assembler.set(.above, .rax)
        case .greater:
            assembler.unorderedCompare(precision, .xmm0, .xmm1)
            assembler.set(.above, .rax)
        case .lessOrEqual:
            assembler.unorderedCompare(precision, .xmm1, .xmm0)
            assembler.set(.aboveOrEqual, .rax)
        case .greaterOrEqual:
            assembler.unorderedCompare(precision, .xmm0, .xmm1)
            assembler.set(.aboveOrEqual, .rax)
        }
        assembler.movzx8(.rax, Register.rax)
        assembler.mov(.q, push(.i32), .rax)
    }

    /// The range of floats `trunc` accepts for an integer of `width`:
    /// `lower` (inclusive or not) and `upper` (exclusive), as exact floats.
    static func truncationBounds(_ width: Width, _ precision: FloatPrecision, signed: Bool)
        -> (lower: Double, lowerInclusive: Bool, upper: Double)
    {
        switch (width, signed) {
        case (.d, true):
            // -2^31 - 1 is exact in f64 only; in f32, -2^31 itself is the bound.
            return precision == .single ? (-2147483648.0, true, 2147483648.0) : (-2147483649.0, false, 2147483648.0)
        case (.d, false): return (-1.0, false, 4294967296.0)
        case (.q, true): return (-9223372036854775808.0, true, 9223372036854775808.0)
        case (.q, false): return (-1.0, false, 18446744073709551616.0)
        }
    }

    /// A float to an integer, rounding toward zero. Trapping: NaN traps
    /// with "invalid conversion to integer", out of range with "integer
    /// overflow". Saturating: NaN gives 0, out of range the nearest bound.
    mutating func truncate(_ width: Width, _ precision: FloatPrecision, signed: Bool,
                           saturating: Bool) throws(CompileError) {
        let value = try pop(Self.kind(of: precision))
        let wasmOffset = binaryOffset
        let bounds = Self.truncationBounds(width, precision, signed: signed)
        let done = assembler.newLabel()
        let isNaN = saturating ? assembler.newLabel() : trapStub(.badConversionToInteger, wasmOffset: wasmOffset)
        let tooLow = saturating ? assembler.newLabel() : trapStub(.integerOverflow, wasmOffset: wasmOffset)
        let tooHigh = saturating ? assembler.newLabel() : tooLow
        assembler.movScalar(precision, .xmm0, value.slot)
        assembler.unorderedCompare(precision, .xmm0, .xmm0)
        assembler.j(.parity, isNaN)
        loadFloatConstant(precision, .xmm1, bounds.lower)
        assembler.unorderedCompare(precision, .xmm0, .xmm1)
        assembler.j(bounds.lowerInclusive ? .below : .belowOrEqual, tooLow)
        loadFloatConstant(precision, .xmm1, bounds.upper)
        assembler.unorderedCompare(precision, .xmm0, .xmm1)
        assembler.j(.aboveOrEqual, tooHigh)
        switch (width, signed) {
        case (.d, true):
            assembler.truncateFloatToInteger(.d, .rax, precision, .xmm0)
        case (.d, false):
            // Below 2^32: a 64-bit conversion is exact; keep the low half.
            assembler.truncateFloatToInteger(.q, .rax, precision, .xmm0)
            assembler.mov(.d, .rax, .rax)
        case (.q, true):
            assembler.truncateFloatToInteger(.q, .rax, precision, .xmm0)
        case (.q, false):
            // At or above 2^63 a signed conversion overflows: take 2^63 off
            // first and put the top bit back.
            let small = assembler.newLabel()
            loadFloatConstant(precision, .xmm1, 9223372036854775808.0)
            assembler.unorderedCompare(precision, .xmm0, .xmm1)
            assembler.j(.below, small)
            assembler.floatArithmetic(.sub, precision, .xmm0, .xmm1)
            assembler.truncateFloatToInteger(.q, .rax, precision, .xmm0)
            assembler.mov(.rcx, immediate: Int64.min)
            assembler.arithmetic(.xor, .q, .rax, .rcx)
            assembler.jmp(done)
            assembler.bind(small)
            assembler.truncateFloatToInteger(.q, .rax, precision, .xmm0)
        }
        if saturating {
            let minimum: Int64 = signed ? (width == .d ? Int64(Int32.min) & 0xFFFF_FFFF : Int64.min) : 0
            let maximum: Int64 = signed ? (width == .d ? Int64(Int32.max) : Int64.max) : (width == .d ? 0xFFFF_FFFF : -1)
            assembler.jmp(done)
            assembler.bind(isNaN)
            assembler.arithmetic(.xor, .d, .rax, .rax)
            assembler.jmp(done)
            assembler.bind(tooLow)
            assembler.mov(.rax, immediate: minimum)
            assembler.jmp(done)
            assembler.bind(tooHigh)
            assembler.mov(.rax, immediate: maximum)
        }
        assembler.bind(done)
        assembler.mov(.q, push(Self.kind(of: width)), .rax)
    }

    /// An integer to a float, rounding to nearest even.
    mutating func convert(_ precision: FloatPrecision, _ width: Width, signed: Bool) throws(CompileError) {
        let value = try pop(Self.kind(of: width))
        switch (width, signed) {
        case (.d, true):
            assembler.mov(.d, .rax, value.slot)
            assembler.convertIntegerToFloat(precision, .xmm0, .d, .rax)
        case (.d, false):
            // Zero-extended, a u32 is a non-negative i64.
            assembler.mov(.d, .rax, value.slot)
            assembler.convertIntegerToFloat(precision, .xmm0, .q, .rax)
        case (.q, true):
            assembler.mov(.q, .rax, value.slot)
            assembler.convertIntegerToFloat(precision, .xmm0, .q, .rax)
        case (.q, false):
            // With the top bit set, halve (keeping the lowest bit, so the
            // rounding stays right), convert, and double.
            let large = assembler.newLabel(), done = assembler.newLabel()
            assembler.mov(.q, .rax, value.slot)
            assembler.test(.q, .rax, .rax)
            assembler.j(.sign, large)
            assembler.convertIntegerToFloat(precision, .xmm0, .q, .rax)
            assembler.jmp(done)
            assembler.bind(large)
            assembler.mov(.q, .rcx, .rax)
            assembler.shift(.shr, .q, .rcx, by: 1)
            assembler.arithmetic(.and, .d, .rax, immediate: 1)
            assembler.arithmetic(.or, .q, .rcx, .rax)
            assembler.convertIntegerToFloat(precision, .xmm0, .q, .rcx)
            assembler.floatArithmetic(.add, precision, .xmm0, .xmm0)
            assembler.bind(done)
        }
        pushFloat(precision)
    }

    mutating func changePrecision(to precision: FloatPrecision) throws(CompileError) {
        let source: FloatPrecision = precision == .single ? .double : .single
        let value = try pop(Self.kind(of: source))
        assembler.movScalar(source, .xmm0, value.slot)
        assembler.convertPrecision(to: precision, .xmm0, .xmm0)
        pushFloat(precision)
    }

    /// The same bits, another kind.
    mutating func reinterpret(from source: ValueKind, to destination: ValueKind) throws(CompileError) {
        let value = try pop(source)
        assembler.mov(source == .i32 || source == .f32 ? .d : .q, .rax, value.slot)
        assembler.mov(.q, push(destination), .rax)
    }
}
