// Scalar SSE/SSE4.1 instructions for f32 and f64, named as in the Intel
// manual with Intel operand order (destination first). Every encoding is
// checked against GNU `as` in `AssemblerEncodingTests`.

/// An SSE register.
public enum XMMRegister: UInt8, CaseIterable, Sendable {
    case xmm0 = 0, xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7
    case xmm8, xmm9, xmm10, xmm11, xmm12, xmm13, xmm14, xmm15
}

/// The precision of a scalar float instruction.
public enum FloatPrecision: Sendable {
    /// 32-bit: the `ss` forms (prefix F3), `ps` for bitwise operations.
    case single
    /// 64-bit: the `sd` forms (prefix F2), `pd` for bitwise operations (66).
    case double

    var scalarPrefix: UInt8 { self == .single ? 0xF3 : 0xF2 }
}

/// Scalar arithmetic that shares the `F3/F2 0F op /r` pattern.
public enum FloatArithmetic: UInt8, Sendable {
    case sqrt = 0x51, add = 0x58, mul = 0x59, sub = 0x5C, min = 0x5D, div = 0x5E, max = 0x5F
}

/// Packed bitwise operations (`andps`, `orps`, `xorps` and the `pd` forms).
public enum FloatBitwise: UInt8, Sendable {
    case and = 0x54, andNot = 0x55, or = 0x56, xor = 0x57
}

/// SSE4.1 rounding modes for `roundss`/`roundsd` (exceptions suppressed).
public enum RoundingMode: UInt8, Sendable {
    case nearest = 0x08, floor = 0x09, ceil = 0x0A, trunc = 0x0B
}

extension Assembler {
    /// Mandatory prefix, then REX, then `0F` and the opcode bytes, then
    /// ModRM with `reg` and a register `rm`.
    mutating func sseRegisterForm(prefix: UInt8?, w: Bool = false, opcode: [UInt8], reg: UInt8, rm: UInt8) {
        if let prefix { emit(prefix) }
        rex(w: w, reg: reg, base: rm)
        emit(0x0F)
        emit(opcode)
        emit(0xC0 | (reg & 7) << 3 | (rm & 7))
    }

    /// The same with a memory `rm`.
    mutating func sseMemoryForm(prefix: UInt8?, opcode: [UInt8], reg: UInt8, memory: MemoryOperand) {
        if let prefix { emit(prefix) }
        memoryForm(.d, opcode: [0x0F] + opcode, reg: reg, memory: memory)
    }

    /// `movd xmm, r32` / `movq xmm, r64`: the integer's bits into the low
    /// lane, the rest zeroed.
    public mutating func movToXMM(_ width: Width, _ destination: XMMRegister, _ source: Register) {
        sseRegisterForm(prefix: 0x66, w: width == .q, opcode: [0x6E], reg: destination.rawValue, rm: source.rawValue)
    }

    /// `movd r32, xmm` / `movq r64, xmm`: the low lane's bits (a 32-bit
    /// move zeroes the register's upper half).
    public mutating func movFromXMM(_ width: Width, _ destination: Register, _ source: XMMRegister) {
        sseRegisterForm(prefix: 0x66, w: width == .q, opcode: [0x7E], reg: source.rawValue, rm: destination.rawValue)
    }

    /// `movss xmm, dword ptr [mem]` / `movsd xmm, qword ptr [mem]`.
    public mutating func movScalar(_ precision: FloatPrecision, _ destination: XMMRegister, _ source: MemoryOperand) {
        sseMemoryForm(prefix: precision.scalarPrefix, opcode: [0x10], reg: destination.rawValue, memory: source)
    }

    /// `movss dword ptr [mem], xmm` / `movsd qword ptr [mem], xmm`.
    public mutating func movScalar(_ precision: FloatPrecision, _ destination: MemoryOperand, _ source: XMMRegister) {
        sseMemoryForm(prefix: precision.scalarPrefix, opcode: [0x11], reg: source.rawValue, memory: destination)
    }

    /// `addss`, `subss`, `mulss`, `divss`, `minss`, `maxss`, `sqrtss` (and
    /// the `sd` forms): `dst = dst op src` (`sqrt`: `dst = sqrt(src)`).
    public mutating func floatArithmetic(_ operation: FloatArithmetic, _ precision: FloatPrecision,
                                         _ destination: XMMRegister, _ source: XMMRegister) {
        sseRegisterForm(prefix: precision.scalarPrefix, opcode: [operation.rawValue], reg: destination.rawValue,
                        rm: source.rawValue)
    }

    /// `andps`/`orps`/`xorps`/`andnps` (or the `pd` forms).
    public mutating func floatBitwise(_ operation: FloatBitwise, _ precision: FloatPrecision,
                                      _ destination: XMMRegister, _ source: XMMRegister) {
        sseRegisterForm(prefix: precision == .double ? 0x66 : nil, opcode: [operation.rawValue],
                        reg: destination.rawValue, rm: source.rawValue)
    }

    /// `ucomiss a, b` / `ucomisd a, b`: ZF, PF, CF as for an unsigned
    /// compare of a with b; all three set when either is NaN (unordered).
    public mutating func unorderedCompare(_ precision: FloatPrecision, _ a: XMMRegister, _ b: XMMRegister) {
        sseRegisterForm(prefix: precision == .double ? 0x66 : nil, opcode: [0x2E], reg: a.rawValue, rm: b.rawValue)
    }

    /// `cvtsi2ss xmm, r32/r64` / `cvtsi2sd`: a signed integer to float.
    public mutating func convertIntegerToFloat(_ precision: FloatPrecision, _ destination: XMMRegister,
                                               _ width: Width, _ source: Register) {
        sseRegisterForm(prefix: precision.scalarPrefix, w: width == .q, opcode: [0x2A], reg: destination.rawValue,
                        rm: source.rawValue)
    }

    /// `cvttss2si r32/r64, xmm` / `cvttsd2si`: truncate to a signed integer;
    /// out of range or NaN gives the "integer indefinite" value
    /// (0x80000000 or 0x8000000000000000).
    public mutating func truncateFloatToInteger(_ width: Width, _ destination: Register,
                                                _ precision: FloatPrecision, _ source: XMMRegister) {
        sseRegisterForm(prefix: precision.scalarPrefix, w: width == .q, opcode: [0x2C], reg: destination.rawValue,
                        rm: source.rawValue)
    }

    /// `cvtss2sd` (single to double, `to: .double`) or `cvtsd2ss`.
    public mutating func convertPrecision(to precision: FloatPrecision, _ destination: XMMRegister, _ source: XMMRegister) {
        // cvtss2sd is F3 0F 5A (the source is single), cvtsd2ss F2 0F 5A.
        sseRegisterForm(prefix: precision == .double ? 0xF3 : 0xF2, opcode: [0x5A], reg: destination.rawValue,
                        rm: source.rawValue)
    }

    /// `roundss`/`roundsd xmm, xmm, mode` (SSE4.1).
    public mutating func round(_ precision: FloatPrecision, _ destination: XMMRegister, _ source: XMMRegister,
                               _ mode: RoundingMode) {
        sseRegisterForm(prefix: 0x66, opcode: [0x3A, precision == .single ? 0x0A : 0x0B], reg: destination.rawValue,
                        rm: source.rawValue)
        emit(mode.rawValue)
    }
}
