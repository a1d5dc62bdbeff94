/// x86_64 general-purpose registers, numbered as the instruction encoding
/// numbers them.
public enum Register: UInt8, CaseIterable, Sendable {
    case rax = 0, rcx, rdx, rbx, rsp, rbp, rsi, rdi
    case r8, r9, r10, r11, r12, r13, r14, r15

    @inlinable var low3: UInt8 { rawValue & 7 }
    @inlinable var isExtended: Bool { rawValue >= 8 }

    /// The System V integer argument registers, in order.
    public static let integerArguments: [Register] = [.rdi, .rsi, .rdx, .rcx, .r8, .r9]

    /// Where compiled code keeps the running instance's context
    /// (`wu_vmctx *`), from the entry trampoline on.
    public static let instanceContext: Register = .r15
}

/// Operand width of an integer instruction.
public enum Width: Sendable {
    /// 32-bit: writes zero the upper half of the destination register.
    case d
    /// 64-bit (REX.W).
    case q
}

/// Condition codes, numbered as `jcc`/`setcc`/`cmovcc` encode them.
public enum Condition: UInt8, Sendable {
    case overflow = 0, noOverflow
    case below, aboveOrEqual          // unsigned <, >=
    case equal, notEqual
    case belowOrEqual, above          // unsigned <=, >
    case sign, notSign
    case parity, noParity
    case less, greaterOrEqual         // signed <, >=
    case lessOrEqual, greater         // signed <=, >

    /// The condition that holds exactly when this one does not.
    public var inverted: Condition { Condition(rawValue: rawValue ^ 1)! }
}

/// A position in the code that is not known yet when it is referred to.
/// Bound with `Assembler.bind`; jumps, calls and `lea` may name it before.
public struct Label: Hashable, Sendable {
    let id: Int
}

/// A memory operand: `[base + index * scale + displacement]`, or an address
/// relative to the instruction pointer of a label (`[rip + label]`).
public struct MemoryOperand: Sendable {
    enum Base: Sendable {
        case register(Register)
        case label(Label)
    }

    let base: Base
    let index: Register?
    let scale: UInt8
    let displacement: Int32

    /// `[base + displacement]`.
    public static func at(_ base: Register, _ displacement: Int32 = 0) -> MemoryOperand {
        MemoryOperand(base: .register(base), index: nil, scale: 1, displacement: displacement)
    }

    /// `[base + index * scale + displacement]`; `scale` is 1, 2, 4 or 8.
    public static func at(_ base: Register, index: Register, scale: UInt8 = 1, _ displacement: Int32 = 0) -> MemoryOperand {
        precondition(index != .rsp, "rsp cannot be an index register")
        precondition([1, 2, 4, 8].contains(scale), "scale must be 1, 2, 4 or 8")
        return MemoryOperand(base: .register(base), index: index, scale: scale, displacement: displacement)
    }

    /// `[rip + label]`: the address of `label` wherever the code ends up.
    public static func label(_ label: Label) -> MemoryOperand {
        MemoryOperand(base: .label(label), index: nil, scale: 1, displacement: 0)
    }
}

/// Two-operand integer operations that share one encoding pattern.
public enum ArithmeticOperation: UInt8, Sendable {
    // The /digit of the immediate forms; the register forms are digit * 8 + 1.
    case add = 0, or = 1, adc = 2, sbb = 3, and = 4, sub = 5, xor = 6, cmp = 7
}

/// Shifts and rotates by `cl`.
public enum ShiftOperation: UInt8, Sendable {
    case rol = 0, ror = 1, shl = 4, shr = 5, sar = 7
}

/// An x86_64 assembler for the instructions the baseline compiler and the
/// trampolines need. It appends machine code to a byte buffer, binds labels
/// to offsets in it, and patches every reference to a label when `finish()`
/// is called. Each encoding is checked against GNU `as` in
/// `AssemblerEncodingTests`.
public struct Assembler: Sendable {
    /// The code emitted so far.
    public private(set) var bytes: [UInt8] = []
    private var labelOffsets: [Int?] = []
    /// A 32-bit field at `position` that must hold `label - end`.
    private var fixups: [(position: Int, end: Int, label: Label)] = []

    public init() {}

    /// The offset the next instruction will be emitted at.
    public var offset: Int { bytes.count }

    /// A label not bound to any offset yet.
    public mutating func newLabel() -> Label {
        labelOffsets.append(nil)
        return Label(id: labelOffsets.count - 1)
    }

    /// Binds `label` to the current offset. A label is bound once.
    public mutating func bind(_ label: Label) {
        precondition(labelOffsets[label.id] == nil, "label bound twice")
        labelOffsets[label.id] = offset
    }

    /// The offset `label` is bound to, if it is bound.
    public func offset(of label: Label) -> Int? { labelOffsets[label.id] }

    /// Resolves every label reference and returns the code. Every referenced
    /// label must be bound.
    public mutating func finish() throws(AssemblerError) -> [UInt8] {
        for fixup in fixups {
            guard let target = labelOffsets[fixup.label.id] else { throw .unboundLabel(fixup.label.id) }
            let relative = Int32(target - fixup.end)
            withUnsafeBytes(of: relative.littleEndian) { raw in
                for i in 0..<4 { bytes[fixup.position + i] = raw[i] }
            }
        }
        fixups.removeAll()
        return bytes
    }

    /// Overwrites the 32-bit little-endian field at `position` (for frame
    /// sizes known only after the function body is compiled).
    public mutating func patch32(at position: Int, _ value: Int32) {
        withUnsafeBytes(of: value.littleEndian) { raw in
            for i in 0..<4 { bytes[position + i] = raw[i] }
        }
    }

    /// A 32-bit data word holding `label - anchor` (a jump table entry;
    /// `anchor` is a code offset, usually the table's start).
    public mutating func emitLabelOffset(_ label: Label, from anchor: Int) {
        let position = offset
        emit32(0)
        fixups.append((position, anchor, label))
    }

    // MARK: Encoding helpers

    mutating func emit(_ byte: UInt8) { bytes.append(byte) }
    mutating func emit(_ some: [UInt8]) { bytes.append(contentsOf: some) }
    mutating func emit32(_ value: Int32) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
    mutating func emit64(_ value: Int64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// REX prefix when needed: W for 64-bit, R/X/B for extended registers,
    /// or a bare REX so byte operations reach spl/bpl/sil/dil.
    mutating func rex(w: Bool, reg: UInt8 = 0, index: UInt8 = 0, base: UInt8 = 0, forceForByte: Bool = false) {
        let value: UInt8 = 0x40 | (w ? 8 : 0) | ((reg >> 3) & 1) << 2 | ((index >> 3) & 1) << 1 | ((base >> 3) & 1)
        if value != 0x40 || forceForByte { emit(value) }
    }

    /// REX + opcode + ModRM for a register-register form.
    mutating func registerForm(_ width: Width, opcode: [UInt8], reg: UInt8, rm: Register, byteOperands: Bool = false) {
        rex(w: width == .q, reg: reg, base: rm.rawValue,
            forceForByte: byteOperands && ((4...7).contains(rm.rawValue) || (4...7).contains(reg)))
        emit(opcode)
        emit(0xC0 | (reg & 7) << 3 | rm.low3)
    }

    /// REX + opcode + ModRM/SIB/displacement for a register-memory form.
    /// `trailingImmediateBytes` counts the bytes emitted after the
    /// displacement, which a rip-relative displacement is relative to.
    mutating func memoryForm(_ width: Width, opcode: [UInt8], reg: UInt8, memory: MemoryOperand,
                             byteRegister: Bool = false, trailingImmediateBytes: Int = 0) {
        switch memory.base {
        case .label(let label):
            rex(w: width == .q, reg: reg, forceForByte: byteRegister && (4...7).contains(reg))
            emit(opcode)
            emit(0x05 | (reg & 7) << 3)
            let position = offset
            emit32(0)
            fixups.append((position, position + 4 + trailingImmediateBytes, label))
        case .register(let base):
            let index = memory.index
            rex(w: width == .q, reg: reg, index: index?.rawValue ?? 0, base: base.rawValue,
                forceForByte: byteRegister && (4...7).contains(reg))
            emit(opcode)
            let displacement = memory.displacement
            let mod: UInt8
            if displacement == 0 && base.low3 != 5 {
                mod = 0
            } else if Int8(exactly: displacement) != nil {
                mod = 1
            } else {
                mod = 2
            }
            if let index {
                emit(mod << 6 | (reg & 7) << 3 | 4)
                let scaleBits: UInt8 = [1: 0, 2: 1, 4: 2, 8: 3][memory.scale]!
                emit(scaleBits << 6 | index.low3 << 3 | base.low3)
            } else if base.low3 == 4 {
                emit(mod << 6 | (reg & 7) << 3 | 4)
                emit(0x24)
            } else {
                emit(mod << 6 | (reg & 7) << 3 | base.low3)
            }
            if mod == 1 { emit(UInt8(bitPattern: Int8(displacement))) }
            if mod == 2 { emit32(displacement) }
        }
    }

    mutating func relative32(_ opcode: [UInt8], to label: Label) {
        emit(opcode)
        let position = offset
        emit32(0)
        fixups.append((position, position + 4, label))
    }
}

/// Why assembling failed.
public enum AssemblerError: Error, Hashable, Sendable {
    /// Code referred to a label that was never bound.
    case unboundLabel(Int)
}
