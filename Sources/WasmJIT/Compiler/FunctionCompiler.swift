import CWasmUnwindABI
import WasmParser
import WasmTypes
import WasmUnwind

/// A single-pass baseline compiler from one wasm function body to x86_64.
///
/// Every function gets a standard frame and keeps rbp as its frame pointer
/// from the second instruction to the `ret`, so the frame-pointer walker and
/// the CFI can describe it with one rule:
///
/// ```
///   [rbp + 16 + 8k]        stack argument k (parameters 6, 7, ...)
///   [rbp + 8]              return address
///   [rbp]                  caller's rbp                     <- rbp
///   [rbp - 8]              the instance context (r15) saved at entry
///   [rbp - 16 - 8i]        local i (parameters first)
///   [rbp - 16 - 8L - 8j]   operand-stack slot j (L = number of locals)
///   [rsp ...]              outgoing stack arguments
/// ```
///
/// Every wasm value lives in a frame slot between instructions; registers
/// (rax, rcx, rdx, rsi, rdi, r8-r11) hold values only within one
/// instruction. So at every call, each live reference is in a slot whose
/// rbp-relative offset is known at compile time: that is the stack map.
///
/// Calling convention between wasm functions: the first six arguments in
/// rdi, rsi, rdx, rcx, r8, r9, the rest on the stack; the result in rax;
/// r15 holds the callee's instance context; rbx and r12-r15 are preserved.
///
/// The compiler is split by concern: this file holds its state, the
/// operand stack and the dispatch; `Lowering` says what each instruction
/// becomes; FunctionCompiler+Frame (prologue, epilogue, stubs), +Control,
/// +Calls, +Values, +Integer, +Float and +Memory emit it; +Interruption
/// adds the epoch and fuel checks.
struct FunctionCompiler: AnyInstructionVisitor {
    typealias VisitorError = CompileError

    var binaryOffset: Int = 0
    var assembler = Assembler()

    let module: ModuleDescription
    let index: UInt32
    let signature: Signature
    let locals: [ValueKind]
    let bodyOffset: Int
    /// Labels of the defined functions, by defined index.
    let functionLabels: [Label]
    let exitRecording: ExitRecording
    /// The engine-wide id of each type's signature, by type index (0 for a
    /// type that is no function type of this subset): `call_indirect`
    /// compares a reference's id with one of these.
    let typeIDs: [UInt32]
    let trapInstructions: TrapInstructions
    let boundsChecks: BoundsChecks
    /// Epoch and fuel checks at function entries and loop headers
    /// (FunctionCompiler+Interruption).
    let epochInterruption: Bool
    let consumesFuel: Bool
    /// The address of the engine's epoch, which epoch checks load.
    let epochAddress: UInt64
    /// `int3` before each trap's runtime call (`stopsDebuggerAtTraps`).
    var stopsDebugger = false
    /// The fuel cost of the straight-line run so far, not yet added.
    var pendingFuel = 0
    /// Which values are constants as Wasmtime sees them (with fuel).
    var constants = ConstantValues()
    /// The wasm offset of a function entry's checks: its last group of
    /// locals, or the body's start (Wasmtime's).
    let entryCheckOffset: Int

    var stack: [ValueKind] = []
    /// The operand stack as the instruction being compiled found it (what
    /// its call and trap sites record).
    var instructionStack: [ValueKind] = []
    var maxDepth = 0
    var maxOutgoingBytes = 0
    var control: [ControlFrame] = []
    /// Code after an unconditional branch, until the enclosing block ends.
    var unreachable = false
    /// Blocks opened inside unreachable code, whose `end`s are skipped.
    var deadNesting = 0

    var start = 0
    var frame = FrameEmitter(start: 0)
    /// Where the prologue's two frame-size immediates are, patched when the
    /// frame size is known.
    var frameSizePositions: [Int] = []
    var addressMap: [AddressMapEntry] = []
    var callSites: [CallSite] = []
    var trapSites: [TrapSite] = []
    /// Out-of-line trap stubs. `wasmOffset` is nil for a trap in the
    /// prologue (no wasm instruction runs there); `addressOffset` is the
    /// memarg offset of an out-of-bounds access, which the stub adds to the
    /// address in rax so the handler can say where the access went.
    var trapStubs: [(label: Label, wasmOffset: Int?, code: TrapCode, addressOffset: UInt64?, operands: [ValueKind]?)] = []
    /// Out-of-line `raise` calls after a failed inline host call.
    var raiseStubs: [(label: Label, wasmOffset: Int)] = []
    /// The function's `try_table` scopes (each with its clauses and the
    /// enclosing scope), until the landing pads are bound.
    var handlerScopes: [(clauses: [PendingHandler], parent: Int?)] = []
    /// The innermost scope in force (nil: no catch clause is).
    var activeScope: Int?
    /// Landing pads of catch clauses: where each branches to.
    var landingPads: [(label: Label, target: Label, wasmOffset: Int)] = []
    var finished = false
    var frameSize = 0
    /// How the frame changes, for the CFI.
    var frameEvents: [(offset: Int, event: FrameEvent)] { frame.events }

    struct ControlFrame {
        enum Kind { case function, block, loop, `if`, `else`, tryTable }
        var kind: Kind
        /// Where a branch to this frame goes: the end, or a loop's header.
        var branchTarget: Label
        var end: Label
        var elseLabel: Label?
        /// The operand-stack height below the block's parameters.
        var height: Int
        var parameters: [ValueKind] = []
        var results: [ValueKind]
        /// For an `if` with parameters: where the parameters were before
        /// the `if` copied them for its `then` arm; `else` copies them again.
        var savedParameters: Int?
        /// For a `try_table`: the scope in force before it.
        var enclosingScope: Int?
        /// Values a branch to this frame carries: a loop's parameters (its
        /// header takes them), any other block's results.
        var branchArity: [ValueKind] { kind == .loop ? parameters : results }
    }

    init(module: ModuleDescription, index: UInt32, signature: Signature, declaredLocals: [ValueKind],
         bodyOffset: Int, functionLabels: [Label], exitRecording: ExitRecording, typeIDs: [UInt32],
         trapInstructions: TrapInstructions = .runtimeCall, boundsChecks: BoundsChecks = .guardPages,
         epochInterruption: Bool = false, consumesFuel: Bool = false, epochAddress: UInt64 = 0, lastLocalsOffset: Int? = nil) {
        self.entryCheckOffset = lastLocalsOffset ?? bodyOffset
        self.epochAddress = epochAddress
        self.epochInterruption = epochInterruption
        self.consumesFuel = consumesFuel
        self.exitRecording = exitRecording
        self.typeIDs = typeIDs
        self.trapInstructions = trapInstructions
        self.boundsChecks = boundsChecks
        self.module = module
        self.index = index
        self.signature = signature
        self.locals = signature.parameters + declaredLocals
        self.bodyOffset = bodyOffset
        self.functionLabels = functionLabels
    }

    /// Compiles the body at the assembler's current offset and returns the
    /// function's tables. The function's own label must already be bound.
    mutating func compile(_ code: Code) throws(CompileError) -> CompiledFunction {
        emitPrologue()
        startConstantValues(code)
        var parser = ExpressionParser(code: code)
        do {
            while let instruction = try parser.parse() {
                guard !finished else { throw CompileError.invalid("code after the function's final `end`", offset: parser.offset) }
                try instruction(visitor: &self)
            }
        } catch let error as CompileError {
            throw error
        } catch {
            throw .malformed(parserError: error)
        }
        guard finished else { throw .invalid("function \(index) has no final `end`", offset: parser.offset) }
        return CompiledFunction(
            index: index, name: module.functionNames[index], codeRange: start..<assembler.offset,
            bodyOffset: bodyOffset, addressMap: addressMap, callSites: callSites, trapSites: trapSites,
            frameSize: frameSize,
            handlerScopes: handlerScopes.map { HandlerScope(clauses: resolvedHandlers($0.clauses), parent: $0.parent) },
            localKinds: locals)
    }

    // MARK: Dispatch

    mutating func visit(_ instruction: Instruction) throws(CompileError) {
        guard let lowering = Lowering(instruction) else {
            throw .unsupportedInstruction(name: InstructionNames.name(of: instruction), offset: binaryOffset)
        }
        if unreachable {
            // An `else` or `end` that ends the dead code joins paths.
            let joins: Bool
            switch lowering {
            case .else, .end: joins = deadNesting == 0
            default: joins = false
            }
            if joins { trackValuesBefore(lowering, reachable: false) }
            try skipUnreachable(lowering)
            if joins { trackValuesAfter(lowering) }
            return
        }
        recordAddress(wasmOffset: binaryOffset)
        instructionStack = stack
        trackValuesBefore(lowering, reachable: true)
        let constantCount = lowering.costsPerElement ? self.constantCount : nil
        chargeFuel(for: lowering, constantCount: constantCount)
        let countSlot = stackSlot(stack.count - 1), countKind = stack.last ?? .i32
        defer {
            if constantCount == nil { chargeBulkFuel(for: lowering, countSlot: countSlot, countKind: countKind) }
            trackValuesAfter(lowering)
        }
        switch lowering {
        case .unreachable: compileUnreachable()
        case .nop: break
        case .block(let type): try openBlock(.block, type)
        case .loop(let type):
            try openBlock(.loop, type)
            emitInterruptionChecks(wasmOffset: binaryOffset)
        case .if(let type): try compileIf(type)
        case .else: try compileElse()
        case .end: try compileEnd()
        case .br(let depth):
            try branch(depth: depth)
            unreachable = true
        case .brIf(let depth): try branchIf(depth: depth)
        case .brTable(let table):
            try branchTable(table)
            unreachable = true
        case .return:
            try branch(depth: UInt32(control.count - 1))
            unreachable = true
        case .tryTable(let type, let clauses): try openTryTable(type, clauses)
        case .throw(let tag): try compileThrow(tag)
        case .throwRef: try compileThrowRef()
        case .call(let function): try call(function)
        case .callIndirect(let type, let table): try callIndirect(type: type, table: table)
        case .returnCall(let function): try returnCall(function)
        case .returnCallIndirect(let type, let table): try returnCallIndirect(type: type, table: table)
        case .drop: _ = try pop()
        case .select(let typed): try select(typed: typed)
        case .localGet(let local): try localGet(local)
        case .localSet(let local): try localSet(local)
        case .localTee(let local): try localTee(local)
        case .globalGet(let global): try globalGet(global)
        case .globalSet(let global): try globalSet(global)
        case .constant(let kind, let bits): constant(kind, bits)
        case .refNull(let kind): refNull(kind)
        case .refIsNull: try refIsNull()
        case .refFunc(let function): try refFunc(function)
        case .tableGet(let table): try tableGet(table)
        case .tableSet(let table): try tableSet(table)
        case .tableSize(let table): try tableSize(table)
        case .tableGrow(let table): try tableGrow(table)
        case .tableFill(let table): try tableFill(table)
        case .tableCopy(let destination, let source): try tableCopy(destination: destination, source: source)
        case .tableInit(let segment, let table): try tableInit(segment: segment, table: table)
        case .elemDrop(let segment): try elemDrop(segment)
        case .equalsZero(let width): try equalsZero(width)
        case .integerCompare(let width, let condition): try compare(width, condition)
        case .integerBinary(let width, let operation): try binary(width, operation)
        case .integerUnary(let width, let operation): try unary(width, operation)
        case .floatBinary(let precision, let operation): try floatBinary(precision, operation)
        case .floatUnary(let precision, let operation): try floatUnary(precision, operation)
        case .floatCompare(let precision, let comparison): try floatCompare(precision, comparison)
        case .truncate(let width, let precision, let signed, let saturating):
            try truncate(width, precision, signed: signed, saturating: saturating)
        case .convert(let precision, let width, let signed): try convert(precision, width, signed: signed)
        case .demote: try changePrecision(to: .single)
        case .promote: try changePrecision(to: .double)
        case .reinterpret(let source, let destination): try reinterpret(from: source, to: destination)
        case .wrap: try wrap()
        case .extend(let signed): try extend(signed: signed)
        case .load(let load, let memarg): try self.load(load, memarg)
        case .store(let kind, let size, let memarg): try store(kind, size: size, memarg)
        case .memorySize: try memorySize()
        case .memoryGrow: try memoryGrow()
        case .memoryFill: try memoryFill()
        case .memoryCopy: try memoryCopy()
        case .memoryInit(let segment): try memoryInit(segment)
        case .dataDrop(let segment): try dataDrop(segment)
        }
    }

    // MARK: Operand stack

    @discardableResult
    mutating func push(_ kind: ValueKind) -> MemoryOperand {
        stack.append(kind)
        maxDepth = max(maxDepth, stack.count)
        if consumesFuel {
            // A value this instruction makes: no known constant (unless
            // `trackValuesAfter` says so).
            syncOperands()
            constants.operands[stack.count - 1] = nil
        }
        return stackSlot(stack.count - 1)
    }

    mutating func pop(_ expected: ValueKind? = nil) throws(CompileError) -> (slot: MemoryOperand, kind: ValueKind) {
        guard stack.count > control[control.count - 1].height else {
            throw .invalid("operand stack underflow", offset: binaryOffset)
        }
        let kind = stack.removeLast()
        if let expected, kind != expected {
            throw .invalid("expected \(expected) on the operand stack, found \(kind)", offset: binaryOffset)
        }
        return (stackSlot(stack.count), kind)
    }

    func localSlot(_ local: Int) -> MemoryOperand { .at(.rbp, Int32(-16 - 8 * local)) }
    func stackSlot(_ depth: Int) -> MemoryOperand { .at(.rbp, Int32(-16 - 8 * locals.count - 8 * depth)) }
    static let savedContextSlot = MemoryOperand.at(.rbp, -8)
}
