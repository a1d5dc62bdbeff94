import WasmParser
import WasmTypes

/// Validates one function body before it is compiled: the operand-stack
/// typing algorithm of the WebAssembly specification (its appendix
/// "Validation Algorithm"), over the same `Lowering` the compiler switches
/// on. Code after an unconditional branch is checked too, against a stack
/// that is polymorphic below the current block's base — the compiler
/// emits nothing there, so without this pass an ill-typed dead tail would
/// be accepted.
struct FunctionValidator: AnyInstructionVisitor {
    typealias VisitorError = CompileError
    var binaryOffset: Int = 0

    /// A value type, or "unknown": what popping past the base of an
    /// unreachable block yields, which matches any type.
    typealias Operand = ValueKind?

    struct Frame {
        var kind: Lowering.BlockKind
        var parameters: [ValueKind]
        var results: [ValueKind]
        var height: Int
        var unreachable = false
        /// The label's types as written, when known: catch clauses check
        /// the nullability of typed references against them.
        var writtenLabelTypes: [ValueType]?
        var labelTypes: [ValueKind] { kind == .loop ? parameters : results }
    }

    let module: ModuleDescription
    let signature: Signature
    let locals: [ValueKind]
    var operands: [Operand] = []
    var frames: [Frame] = []
    /// Module offset of the instruction being validated.
    var offset = 0
    /// Whether a block type was a typed function reference.
    var usesTypedReferences = false

    init(module: ModuleDescription, signature: Signature, locals: [ValueKind]) {
        self.module = module
        self.signature = signature
        self.locals = locals
        frames = [Frame(kind: .block, parameters: [], results: signature.results, height: 0)]
    }

    /// Validates `code`; throws the first error with its module offset.
    /// Returns whether the body uses a typed function reference type.
    @discardableResult
    static func validate(_ code: Code, module: ModuleDescription, signature: Signature,
                         locals: [ValueKind]) throws(CompileError) -> Bool {
        var validator = FunctionValidator(module: module, signature: signature, locals: locals)
        var parser = ExpressionParser(code: code)
        do {
            while let instruction = try parser.parse() {
                guard !validator.frames.isEmpty else {
                    throw CompileError.invalid("code after the function's final `end`", offset: parser.offset)
                }
                try instruction(visitor: &validator)
            }
        } catch let error as CompileError {
            throw error
        } catch {
            throw .malformed(parserError: error)
        }
        guard validator.frames.isEmpty else {
            throw .malformed("function body has no final `end`", offset: parser.offset)
        }
        return validator.usesTypedReferences
    }

    mutating func visit(_ instruction: Instruction) throws(CompileError) {
        offset = binaryOffset
        guard let lowering = Lowering(instruction) else {
            throw .unsupportedInstruction(name: InstructionNames.name(of: instruction), offset: binaryOffset)
        }
        try validate(lowering)
    }

    // MARK: The operand stack

    mutating func push(_ type: ValueKind) { operands.append(type) }
    mutating func push(_ types: [ValueKind]) { operands.append(contentsOf: types) }

    mutating func pop() throws(CompileError) -> Operand {
        let frame = frames[frames.count - 1]
        if operands.count == frame.height {
            if frame.unreachable { return nil }
            throw mismatch("the operand stack is empty")
        }
        return operands.removeLast()
    }

    @discardableResult
    mutating func pop(_ expected: ValueKind) throws(CompileError) -> Operand {
        let actual = try pop()
        if let actual, actual != expected {
            throw mismatch("expected \(expected), found \(actual)")
        }
        return actual ?? expected
    }

    mutating func pop(_ expected: [ValueKind]) throws(CompileError) {
        for type in expected.reversed() { try pop(type) }
    }

    func mismatch(_ detail: String) -> CompileError {
        .invalid("type mismatch: \(detail)", offset: offset)
    }

    mutating func pushFrame(_ kind: Lowering.BlockKind, _ parameters: [ValueKind], _ results: [ValueKind]) {
        frames.append(Frame(kind: kind, parameters: parameters, results: results, height: operands.count))
        push(parameters)
    }

    mutating func popFrame() throws(CompileError) -> Frame {
        guard let frame = frames.last else { throw .invalid("`end` without a block", offset: offset) }
        try pop(frame.results)
        guard operands.count == frame.height else {
            throw mismatch("values remain on the stack at the end of a block")
        }
        frames.removeLast()
        return frame
    }

    mutating func setUnreachable() {
        operands.removeSubrange(frames[frames.count - 1].height...)
        frames[frames.count - 1].unreachable = true
    }

    func label(_ depth: UInt32) throws(CompileError) -> Frame {
        guard Int(depth) < frames.count else { throw .invalid("unknown label: branch depth \(depth)", offset: offset) }
        return frames[frames.count - 1 - Int(depth)]
    }

    // MARK: Module context

    mutating func blockType(_ type: BlockType) throws(CompileError) -> ([ValueKind], [ValueKind]) {
        switch type {
        case .empty: return ([], [])
        case .type(let value):
            let (kind, typed) = try ValueKind.classify(value, offset: offset)
            if typed { usesTypedReferences = true }
            return ([], [kind])
        case .funcType(let index):
            let signature = try module.signature(atTypeIndex: index, offset: offset)
            return (signature.parameters, signature.results)
        }
    }

    func local(_ index: UInt32) throws(CompileError) -> ValueKind {
        guard Int(index) < locals.count else { throw .invalid("unknown local \(index)", offset: offset) }
        return locals[Int(index)]
    }

    func table(_ index: UInt32) throws(CompileError) -> ValueKind {
        guard Int(index) < module.tableCount else { throw .invalid("unknown table \(index)", offset: offset) }
        return try module.tableType(index, offset: offset).kind
    }

    func elementSegment(_ index: UInt32) throws(CompileError) -> ValueKind {
        guard Int(index) < module.elementSegments.count else {
            throw .invalid("unknown elem segment \(index)", offset: offset)
        }
        return module.elementSegments[Int(index)].kind
    }

    func requireMemory() throws(CompileError) {
        guard module.hasMemory else { throw .invalid("unknown memory 0", offset: offset) }
    }

    func requireDataSegment(_ index: UInt32) throws(CompileError) {
        guard module.hasDataCount else { throw .malformed("data count section required", offset: offset) }
        guard Int(index) < module.dataSegments.count else { throw .invalid("unknown data segment \(index)", offset: offset) }
    }

    func checkAlignment(_ memarg: MemArg, size: Int) throws(CompileError) {
        try requireMemory()
        // `align` is the exponent: 2^align bytes, at most the access size.
        guard memarg.align <= UInt64(size.trailingZeroBitCount) else {
            throw .invalid("alignment must not be larger than natural", offset: offset)
        }
        guard memarg.offset <= UInt64(UInt32.max) else {
            throw .invalid("offset out of range for a 32-bit memory", offset: offset)
        }
    }

    /// The block type as written, for labels' typed references.
    func writtenBlockType(_ type: BlockType) -> FunctionType? {
        switch type {
        case .empty: return FunctionType(parameters: [], results: [])
        case .type(let value): return FunctionType(parameters: [], results: [value])
        case .funcType(let index):
            return Int(index) < module.writtenTypes.count ? module.writtenTypes[Int(index)] : nil
        }
    }

    /// A nullable reference a catch clause passes cannot go to a label that
    /// takes a non-null one (the typed-references rule the kinds alone do
    /// not see; the clause's `exnref` itself is never null).
    func checkNullability(of clause: CatchClause, into target: Frame) throws(CompileError) {
        guard let written = target.writtenLabelTypes else { return }
        var carried: [ValueType] = []
        switch clause {
        case .catch(let tag, _), .catchRef(let tag, _):
            let typeIndex = try module.tagTypeIndex(tag, offset: offset)
            guard Int(typeIndex) < module.writtenTypes.count, let type = module.writtenTypes[Int(typeIndex)] else { return }
            carried = type.parameters
        case .catchAll, .catchAllRef:
            break
        }
        for (from, to) in zip(carried, written) {
            if case .ref(let source) = from, case .ref(let destination) = to, source.isNullable, !destination.isNullable {
                throw mismatch("catch clause passes a nullable reference to a label expecting a non-null one")
            }
        }
    }

    /// The values a catch clause passes to its label, and the label.
    func catchValues(_ clause: CatchClause) throws(CompileError) -> ([ValueKind], UInt32) {
        switch clause {
        case .catch(let tag, let depth): return (try module.tagPayload(tag, offset: offset), depth)
        case .catchRef(let tag, let depth): return (try module.tagPayload(tag, offset: offset) + [.exnref], depth)
        case .catchAll(let depth): return ([], depth)
        case .catchAllRef(let depth): return ([.exnref], depth)
        }
    }
}

extension Lowering {
    /// What kind of block a control frame is.
    enum BlockKind { case block, loop, `if`, `else` }
}

extension Width {
    /// The integer type of this width.
    var kind: ValueKind { self == .d ? .i32 : .i64 }
}

extension FloatPrecision {
    /// The float type of this precision.
    var kind: ValueKind { self == .single ? .f32 : .f64 }
}
