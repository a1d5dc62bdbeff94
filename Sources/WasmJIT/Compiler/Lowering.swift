import WasmParser
import WasmTypes

/// How the baseline compiler implements each wasm instruction: the one
/// table that says whether an instruction is supported (`Lowering(_:)` is
/// nil for the rest) and which code it becomes. The compiler switches over
/// a `Lowering`, never over WasmKit's `Instruction` directly; the
/// instruction's text name comes from `InstructionNames.name(of:)`.
enum Lowering {
    // Control (FunctionCompiler+Control.swift)
    case unreachable
    case nop
    case block(BlockType)
    case loop(BlockType)
    case `if`(BlockType)
    case `else`
    case end
    case br(UInt32)
    case brIf(UInt32)
    case brTable(BrTable)
    case `return`

    // Exceptions (FunctionCompiler+Exceptions.swift)
    case tryTable(BlockType, [CatchClause])
    case `throw`(UInt32)
    case throwRef

    // Calls (FunctionCompiler+Calls.swift)
    case call(UInt32)
    case callIndirect(type: UInt32, table: UInt32)
    case returnCall(UInt32)
    case returnCallIndirect(type: UInt32, table: UInt32)

    // Values (FunctionCompiler+Values.swift)
    case drop
    /// `select`, or the typed `select t` (which references need).
    case select(typed: ValueKind?)
    case localGet(UInt32)
    case localSet(UInt32)
    case localTee(UInt32)
    case globalGet(UInt32)
    case globalSet(UInt32)
    /// A constant's kind and its 64-bit slot.
    case constant(ValueKind, UInt64)

    // References and tables (FunctionCompiler+Tables.swift)
    case refNull(ValueKind)
    case refIsNull
    case refFunc(UInt32)
    case tableGet(UInt32)
    case tableSet(UInt32)
    case tableSize(UInt32)
    case tableGrow(UInt32)
    case tableFill(UInt32)
    case tableCopy(destination: UInt32, source: UInt32)
    case tableInit(segment: UInt32, table: UInt32)
    case elemDrop(UInt32)

    // Integers (FunctionCompiler+Integer.swift)
    case equalsZero(Width)
    case integerCompare(Width, Condition)
    case integerBinary(Width, IntegerBinary)
    case integerUnary(Width, IntegerUnary)
    case wrap
    case extend(signed: Bool)

    // Floats (FunctionCompiler+Float.swift)
    case floatBinary(FloatPrecision, FloatBinary)
    case floatUnary(FloatPrecision, FloatUnary)
    case floatCompare(FloatPrecision, FloatComparison)
    /// A float to an integer of `width`: trapping, or saturating.
    case truncate(Width, FloatPrecision, signed: Bool, saturating: Bool)
    /// An integer of `width` to a float.
    case convert(FloatPrecision, Width, signed: Bool)
    case demote
    case promote
    /// The same bits as another kind: i32 <-> f32, i64 <-> f64.
    case reinterpret(from: ValueKind, to: ValueKind)

    // Memory (FunctionCompiler+Memory.swift)
    case load(IntegerLoad, MemArg)
    case store(kind: ValueKind, size: Int, MemArg)
    case memorySize
    case memoryGrow
    case memoryFill
    case memoryCopy
    case memoryInit(UInt32)
    case dataDrop(UInt32)

    enum IntegerBinary: Equatable {
        case arithmetic(ArithmeticOperation)
        case multiply
        case shift(ShiftOperation)
        case divideSigned, divideUnsigned, remainderSigned, remainderUnsigned
    }

    enum FloatBinary: Equatable {
        case arithmetic(FloatArithmetic)
        case min, max, copysign
    }

    enum FloatUnary: Equatable {
        case abs, neg, sqrt
        case round(RoundingMode)
    }

    enum FloatComparison: Equatable {
        case equal, notEqual, less, greater, lessOrEqual, greaterOrEqual
    }

    enum IntegerUnary: Equatable {
        case countLeadingZeros, countTrailingZeros, populationCount
        case extend8, extend16, extend32
    }

    /// A load: the result's kind, the access size, and how the loaded bits
    /// are extended to the slot (floats: zero-extended bits).
    struct IntegerLoad: Equatable {
        var kind: ValueKind
        var size: Int
        var signed: Bool
    }

    /// The lowering of `instruction`, or nil if the compiler does not
    /// implement it.
    init?(_ instruction: Instruction) {
        switch instruction {
        case .unreachable: self = .unreachable
        case .nop: self = .nop
        case .block(let type): self = .block(type)
        case .loop(let type): self = .loop(type)
        case .if(let type): self = .if(type)
        case .else: self = .else
        case .end: self = .end
        case .br(let depth): self = .br(depth)
        case .brIf(let depth): self = .brIf(depth)
        case .brTable(let table): self = .brTable(table)
        case .return: self = .return
        case .tryTable(let type, let clauses): self = .tryTable(type, clauses.catches)
        case .throw(let tag): self = .throw(tag)
        case .throwRef: self = .throwRef
        case .call(let function): self = .call(function)
        case .callIndirect(let type, let table): self = .callIndirect(type: type, table: table)
        case .returnCall(let function): self = .returnCall(function)
        case .returnCallIndirect(let type, let table): self = .returnCallIndirect(type: type, table: table)
        case .drop: self = .drop
        case .select: self = .select(typed: nil)
        case .typedSelect(let type):
            guard let kind = try? ValueKind(type, offset: nil) else { return nil }
            self = .select(typed: kind)
        case .localGet(let local): self = .localGet(local)
        case .localSet(let local): self = .localSet(local)
        case .localTee(let local): self = .localTee(local)
        case .globalGet(let global): self = .globalGet(global)
        case .globalSet(let global): self = .globalSet(global)
        case .i32Const(let value): self = .constant(.i32, UInt64(UInt32(bitPattern: value)))
        case .i64Const(let value): self = .constant(.i64, UInt64(bitPattern: value))
        case .refNull(.abstract(.externRef)), .refNull(.abstract(.noExtern)): self = .refNull(.externref)
        case .refNull(.abstract(.funcRef)), .refNull(.abstract(.noFunc)), .refNull(.concrete): self = .refNull(.funcref)
        case .refNull(.abstract(.exnRef)), .refNull(.abstract(.noExn)): self = .refNull(.exnref)
        case .refIsNull: self = .refIsNull
        case .refFunc(let function): self = .refFunc(function)
        case .tableGet(let table): self = .tableGet(table)
        case .tableSet(let table): self = .tableSet(table)
        case .tableSize(let table): self = .tableSize(table)
        case .tableGrow(let table): self = .tableGrow(table)
        case .tableFill(let table): self = .tableFill(table)
        case .tableCopy(let destination, let source): self = .tableCopy(destination: destination, source: source)
        case .tableInit(let segment, let table): self = .tableInit(segment: segment, table: table)
        case .elemDrop(let segment): self = .elemDrop(segment)
        case .i32Eqz: self = .equalsZero(.d)
        case .i64Eqz: self = .equalsZero(.q)
        case .f32Const(let value): self = .constant(.f32, UInt64(value.bitPattern))
        case .f64Const(let value): self = .constant(.f64, value.bitPattern)
        case .cmp(let comparison):
            if let (width, condition) = Self.integerComparison(comparison) {
                self = .integerCompare(width, condition)
            } else if let (precision, condition) = Self.floatComparison(comparison) {
                self = .floatCompare(precision, condition)
            } else {
                return nil
            }
        case .binary(let operation):
            if let (width, lowering) = Self.integerBinary(operation) {
                self = .integerBinary(width, lowering)
            } else if let (precision, lowering) = Self.floatBinary(operation) {
                self = .floatBinary(precision, lowering)
            } else {
                return nil
            }
        case .unary(let operation):
            if let (width, lowering) = Self.integerUnary(operation) {
                self = .integerUnary(width, lowering)
            } else if let (precision, lowering) = Self.floatUnary(operation) {
                self = .floatUnary(precision, lowering)
            } else {
                return nil
            }
        case .conversion(let conversion):
            self = Self.conversion(conversion)
        case .load(let load, let memarg):
            guard let lowering = Self.integerLoad(load) else { return nil }
            self = .load(lowering, memarg)
        case .store(let store, let memarg):
            guard let (kind, size) = Self.integerStore(store) else { return nil }
            self = .store(kind: kind, size: size, memarg)
        case .memorySize(let memory) where memory == 0: self = .memorySize
        case .memoryGrow(let memory) where memory == 0: self = .memoryGrow
        case .memoryFill(let memory) where memory == 0: self = .memoryFill
        case .memoryCopy(let destination, let source) where destination == 0 && source == 0: self = .memoryCopy
        case .memoryInit(let segment, let memory) where memory == 0: self = .memoryInit(segment)
        case .dataDrop(let segment): self = .dataDrop(segment)
        default: return nil
        }
    }

    static func conversion(_ conversion: Instruction.Conversion) -> Lowering {
        switch conversion {
        case .i32WrapI64: return .wrap
        case .i64ExtendI32S: return .extend(signed: true)
        case .i64ExtendI32U: return .extend(signed: false)
        case .i32TruncF32S: return .truncate(.d, .single, signed: true, saturating: false)
        case .i32TruncF32U: return .truncate(.d, .single, signed: false, saturating: false)
        case .i32TruncF64S: return .truncate(.d, .double, signed: true, saturating: false)
        case .i32TruncF64U: return .truncate(.d, .double, signed: false, saturating: false)
        case .i64TruncF32S: return .truncate(.q, .single, signed: true, saturating: false)
        case .i64TruncF32U: return .truncate(.q, .single, signed: false, saturating: false)
        case .i64TruncF64S: return .truncate(.q, .double, signed: true, saturating: false)
        case .i64TruncF64U: return .truncate(.q, .double, signed: false, saturating: false)
        case .i32TruncSatF32S: return .truncate(.d, .single, signed: true, saturating: true)
        case .i32TruncSatF32U: return .truncate(.d, .single, signed: false, saturating: true)
        case .i32TruncSatF64S: return .truncate(.d, .double, signed: true, saturating: true)
        case .i32TruncSatF64U: return .truncate(.d, .double, signed: false, saturating: true)
        case .i64TruncSatF32S: return .truncate(.q, .single, signed: true, saturating: true)
        case .i64TruncSatF32U: return .truncate(.q, .single, signed: false, saturating: true)
        case .i64TruncSatF64S: return .truncate(.q, .double, signed: true, saturating: true)
        case .i64TruncSatF64U: return .truncate(.q, .double, signed: false, saturating: true)
        case .f32ConvertI32S: return .convert(.single, .d, signed: true)
        case .f32ConvertI32U: return .convert(.single, .d, signed: false)
        case .f32ConvertI64S: return .convert(.single, .q, signed: true)
        case .f32ConvertI64U: return .convert(.single, .q, signed: false)
        case .f64ConvertI32S: return .convert(.double, .d, signed: true)
        case .f64ConvertI32U: return .convert(.double, .d, signed: false)
        case .f64ConvertI64S: return .convert(.double, .q, signed: true)
        case .f64ConvertI64U: return .convert(.double, .q, signed: false)
        case .f32DemoteF64: return .demote
        case .f64PromoteF32: return .promote
        case .i32ReinterpretF32: return .reinterpret(from: .f32, to: .i32)
        case .i64ReinterpretF64: return .reinterpret(from: .f64, to: .i64)
        case .f32ReinterpretI32: return .reinterpret(from: .i32, to: .f32)
        case .f64ReinterpretI64: return .reinterpret(from: .i64, to: .f64)
        }
    }

    static func floatBinary(_ operation: Instruction.Binary) -> (FloatPrecision, FloatBinary)? {
        switch operation {
        case .f32Add: return (.single, .arithmetic(.add))
        case .f32Sub: return (.single, .arithmetic(.sub))
        case .f32Mul: return (.single, .arithmetic(.mul))
        case .f32Div: return (.single, .arithmetic(.div))
        case .f32Min: return (.single, .min)
        case .f32Max: return (.single, .max)
        case .f32Copysign: return (.single, .copysign)
        case .f64Add: return (.double, .arithmetic(.add))
        case .f64Sub: return (.double, .arithmetic(.sub))
        case .f64Mul: return (.double, .arithmetic(.mul))
        case .f64Div: return (.double, .arithmetic(.div))
        case .f64Min: return (.double, .min)
        case .f64Max: return (.double, .max)
        case .f64Copysign: return (.double, .copysign)
        default: return nil
        }
    }

    static func floatUnary(_ operation: Instruction.Unary) -> (FloatPrecision, FloatUnary)? {
        switch operation {
        case .f32Abs: return (.single, .abs)
        case .f32Neg: return (.single, .neg)
        case .f32Sqrt: return (.single, .sqrt)
        case .f32Ceil: return (.single, .round(.ceil))
        case .f32Floor: return (.single, .round(.floor))
        case .f32Trunc: return (.single, .round(.trunc))
        case .f32Nearest: return (.single, .round(.nearest))
        case .f64Abs: return (.double, .abs)
        case .f64Neg: return (.double, .neg)
        case .f64Sqrt: return (.double, .sqrt)
        case .f64Ceil: return (.double, .round(.ceil))
        case .f64Floor: return (.double, .round(.floor))
        case .f64Trunc: return (.double, .round(.trunc))
        case .f64Nearest: return (.double, .round(.nearest))
        default: return nil
        }
    }

    static func floatComparison(_ comparison: Instruction.Cmp) -> (FloatPrecision, FloatComparison)? {
        switch comparison {
        case .f32Eq: return (.single, .equal)
        case .f32Ne: return (.single, .notEqual)
        case .f32Lt: return (.single, .less)
        case .f32Gt: return (.single, .greater)
        case .f32Le: return (.single, .lessOrEqual)
        case .f32Ge: return (.single, .greaterOrEqual)
        case .f64Eq: return (.double, .equal)
        case .f64Ne: return (.double, .notEqual)
        case .f64Lt: return (.double, .less)
        case .f64Gt: return (.double, .greater)
        case .f64Le: return (.double, .lessOrEqual)
        case .f64Ge: return (.double, .greaterOrEqual)
        default: return nil
        }
    }

    static func integerBinary(_ operation: Instruction.Binary) -> (Width, IntegerBinary)? {
        switch operation {
        case .i32Add: return (.d, .arithmetic(.add))
        case .i32Sub: return (.d, .arithmetic(.sub))
        case .i32And: return (.d, .arithmetic(.and))
        case .i32Or: return (.d, .arithmetic(.or))
        case .i32Xor: return (.d, .arithmetic(.xor))
        case .i32Mul: return (.d, .multiply)
        case .i32Shl: return (.d, .shift(.shl))
        case .i32ShrS: return (.d, .shift(.sar))
        case .i32ShrU: return (.d, .shift(.shr))
        case .i32Rotl: return (.d, .shift(.rol))
        case .i32Rotr: return (.d, .shift(.ror))
        case .i32DivS: return (.d, .divideSigned)
        case .i32DivU: return (.d, .divideUnsigned)
        case .i32RemS: return (.d, .remainderSigned)
        case .i32RemU: return (.d, .remainderUnsigned)
        case .i64Add: return (.q, .arithmetic(.add))
        case .i64Sub: return (.q, .arithmetic(.sub))
        case .i64And: return (.q, .arithmetic(.and))
        case .i64Or: return (.q, .arithmetic(.or))
        case .i64Xor: return (.q, .arithmetic(.xor))
        case .i64Mul: return (.q, .multiply)
        case .i64Shl: return (.q, .shift(.shl))
        case .i64ShrS: return (.q, .shift(.sar))
        case .i64ShrU: return (.q, .shift(.shr))
        case .i64Rotl: return (.q, .shift(.rol))
        case .i64Rotr: return (.q, .shift(.ror))
        case .i64DivS: return (.q, .divideSigned)
        case .i64DivU: return (.q, .divideUnsigned)
        case .i64RemS: return (.q, .remainderSigned)
        case .i64RemU: return (.q, .remainderUnsigned)
        default: return nil
        }
    }

    static func integerComparison(_ comparison: Instruction.Cmp) -> (Width, Condition)? {
        switch comparison {
        case .i32Eq: return (.d, .equal)
        case .i32Ne: return (.d, .notEqual)
        case .i32LtS: return (.d, .less)
        case .i32LtU: return (.d, .below)
        case .i32GtS: return (.d, .greater)
        case .i32GtU: return (.d, .above)
        case .i32LeS: return (.d, .lessOrEqual)
        case .i32LeU: return (.d, .belowOrEqual)
        case .i32GeS: return (.d, .greaterOrEqual)
        case .i32GeU: return (.d, .aboveOrEqual)
        case .i64Eq: return (.q, .equal)
        case .i64Ne: return (.q, .notEqual)
        case .i64LtS: return (.q, .less)
        case .i64LtU: return (.q, .below)
        case .i64GtS: return (.q, .greater)
        case .i64GtU: return (.q, .above)
        case .i64LeS: return (.q, .lessOrEqual)
        case .i64LeU: return (.q, .belowOrEqual)
        case .i64GeS: return (.q, .greaterOrEqual)
        case .i64GeU: return (.q, .aboveOrEqual)
        default: return nil
        }
    }

    static func integerUnary(_ operation: Instruction.Unary) -> (Width, IntegerUnary)? {
        switch operation {
        case .i32Clz: return (.d, .countLeadingZeros)
        case .i32Ctz: return (.d, .countTrailingZeros)
        case .i32Popcnt: return (.d, .populationCount)
        case .i32Extend8S: return (.d, .extend8)
        case .i32Extend16S: return (.d, .extend16)
        case .i64Clz: return (.q, .countLeadingZeros)
        case .i64Ctz: return (.q, .countTrailingZeros)
        case .i64Popcnt: return (.q, .populationCount)
        case .i64Extend8S: return (.q, .extend8)
        case .i64Extend16S: return (.q, .extend16)
        case .i64Extend32S: return (.q, .extend32)
        default: return nil
        }
    }

    static func integerLoad(_ load: Instruction.Load) -> IntegerLoad? {
        switch load {
        case .i32Load: return IntegerLoad(kind: .i32, size: 4, signed: false)
        case .i64Load: return IntegerLoad(kind: .i64, size: 8, signed: false)
        case .i32Load8S: return IntegerLoad(kind: .i32, size: 1, signed: true)
        case .i32Load8U: return IntegerLoad(kind: .i32, size: 1, signed: false)
        case .i32Load16S: return IntegerLoad(kind: .i32, size: 2, signed: true)
        case .i32Load16U: return IntegerLoad(kind: .i32, size: 2, signed: false)
        case .i64Load8S: return IntegerLoad(kind: .i64, size: 1, signed: true)
        case .i64Load8U: return IntegerLoad(kind: .i64, size: 1, signed: false)
        case .i64Load16S: return IntegerLoad(kind: .i64, size: 2, signed: true)
        case .i64Load16U: return IntegerLoad(kind: .i64, size: 2, signed: false)
        case .i64Load32S: return IntegerLoad(kind: .i64, size: 4, signed: true)
        case .i64Load32U: return IntegerLoad(kind: .i64, size: 4, signed: false)
        case .f32Load: return IntegerLoad(kind: .f32, size: 4, signed: false)
        case .f64Load: return IntegerLoad(kind: .f64, size: 8, signed: false)
        default: return nil
        }
    }

    /// Value kind and access size in bytes.
    static func integerStore(_ store: Instruction.Store) -> (ValueKind, Int)? {
        switch store {
        case .i32Store: return (.i32, 4)
        case .i64Store: return (.i64, 8)
        case .i32Store8: return (.i32, 1)
        case .i32Store16: return (.i32, 2)
        case .i64Store8: return (.i64, 1)
        case .i64Store16: return (.i64, 2)
        case .i64Store32: return (.i64, 4)
        case .f32Store: return (.f32, 4)
        case .f64Store: return (.f64, 8)
        default: return nil
        }
    }
}
