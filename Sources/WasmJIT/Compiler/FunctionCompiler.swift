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

    private var stack: [ValueKind] = []
    private var maxDepth = 0
    private var maxOutgoingBytes = 0
    private var control: [ControlFrame] = []
    private var unreachable = false
    /// Blocks opened inside unreachable code, whose `end`s are skipped.
    private var deadNesting = 0

    private var start = 0
    private var frameSizePosition = 0
    private var addressMap: [AddressMapEntry] = []
    private var callSites: [CallSite] = []
    private var trapSites: [TrapSite] = []
    /// Out-of-line trap stubs. `wasmOffset` is nil for a trap in the
    /// prologue (no wasm instruction runs there); `addressOffset` is the
    /// memarg offset of an out-of-bounds access, which the stub adds to the
    /// address in rax so the handler can say where the access went.
    private var trapStubs: [(label: Label, wasmOffset: Int?, code: TrapCode, addressOffset: UInt64?)] = []
    /// Out-of-line `raise` calls after a failed inline host call.
    private var raiseStubs: [(label: Label, wasmOffset: Int)] = []
    private var finished = false
    private(set) var frameSize = 0
    /// How the frame changes, for the CFI.
    private(set) var frameEvents: [(offset: Int, event: FrameEvent)] = []

    struct ControlFrame {
        enum Kind { case function, block, loop, `if`, `else` }
        var kind: Kind
        /// Where a branch to this frame goes: the end, or a loop's header.
        var branchTarget: Label
        var end: Label
        var elseLabel: Label?
        var height: Int
        var results: [ValueKind]
        /// Values a branch to this frame carries.
        var branchArity: [ValueKind] { kind == .loop ? [] : results }
    }

    init(module: ModuleDescription, index: UInt32, signature: Signature, declaredLocals: [ValueKind],
         bodyOffset: Int, functionLabels: [Label], exitRecording: ExitRecording) {
        self.exitRecording = exitRecording
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
            frameSize: frameSize)
    }

    // MARK: Frame

    private func localSlot(_ local: Int) -> Memory { .at(.rbp, Int32(-16 - 8 * local)) }
    private func stackSlot(_ depth: Int) -> Memory { .at(.rbp, Int32(-16 - 8 * locals.count - 8 * depth)) }
    private static let savedContextSlot = Memory.at(.rbp, -8)

    private mutating func emitPrologue() {
        start = assembler.offset
        // The prologue runs no wasm instruction: like Wasmtime, a pc there
        // (a stack-exhaustion trap) has no module offset.
        addressMap.append(AddressMapEntry(nativeOffset: 0, wasmOffset: AddressMapEntry.noWasmOffset))
        assembler.push(.rbp)
        frameEvents.append((assembler.offset - start, .pushedFramePointer))
        assembler.mov(.q, .rbp, .rsp)
        frameEvents.append((assembler.offset - start, .establishedFramePointer))
        frameSizePosition = assembler.subWithPatchableImmediate(.rsp)
        // Stack check: the whole frame is reserved, nothing stored yet.
        assembler.mov(.q, .rax, Memory.at(.r15, Int32(WU_VMCTX_LIMITS)))
        assembler.arithmetic(.cmp, .q, .rsp, Memory.at(.rax, Int32(RuntimeLimits.Offsets.stackLimit)))
        assembler.j(.below, trapStub(.stackOverflow, wasmOffset: nil))
        assembler.mov(.q, Self.savedContextSlot, .r15)
        for (parameter, _) in signature.parameters.enumerated() {
            if parameter < 6 {
                assembler.mov(.q, localSlot(parameter), Register.integerArguments[parameter])
            } else {
                assembler.mov(.q, .rax, Memory.at(.rbp, Int32(16 + 8 * (parameter - 6))))
                assembler.mov(.q, localSlot(parameter), .rax)
            }
        }
        if locals.count > signature.parameters.count {
            assembler.arithmetic(.xor, .d, .rax, .rax)
            for local in signature.parameters.count..<locals.count {
                assembler.mov(.q, localSlot(local), .rax)
            }
        }
        control.append(ControlFrame(kind: .function, branchTarget: assembler.newLabel(), end: assembler.newLabel(),
                                    height: 0, results: signature.results))
        control[0].end = control[0].branchTarget
    }

    private mutating func emitEpilogueAndStubs() {
        if !signature.results.isEmpty {
            assembler.mov(.q, .rax, stackSlot(0))
        }
        assembler.mov(.q, .rsp, .rbp)
        frameEvents.append((assembler.offset - start, .rememberState))
        assembler.pop(.rbp)
        frameEvents.append((assembler.offset - start, .poppedFramePointer))
        assembler.ret()
        frameEvents.append((assembler.offset - start, .restoreState))
        // Out-of-line trap stubs, one per trap site so the pc says which
        // wasm instruction trapped.
        for stub in trapStubs {
            recordAddress(wasmOffset: stub.wasmOffset)
            assembler.bind(stub.label)
            if let offset = stub.addressOffset, offset != 0 {
                if offset <= UInt64(Int32.max) {
                    assembler.lea(.rax, Memory.at(.rax, Int32(offset)))
                } else {
                    assembler.mov(.rdx, immediate: Int64(offset))
                    assembler.arithmetic(.add, .q, .rax, .rdx)
                }
            }
            trapSites.append(TrapSite(codeOffset: assembler.offset, wasmOffset: stub.wasmOffset, code: stub.code))
            assembler.ud2()
        }
        // A failed inline host call leaves through `raise`, which jumps to the
        // activation's entry and never returns.
        for stub in raiseStubs {
            recordAddress(wasmOffset: stub.wasmOffset)
            assembler.bind(stub.label)
            assembler.mov(.q, .rdi, .r15)
            assembler.call(Memory.at(.r15, Int32(WU_VMCTX_RAISE)))
            assembler.ud2()
        }
        let bytes = 8 + 8 * locals.count + 8 * maxDepth + (maxOutgoingBytes + 15) / 16 * 16
        frameSize = (bytes + 15) / 16 * 16
        assembler.patch32(at: frameSizePosition, Int32(frameSize))
        finished = true
    }

    private mutating func trapStub(_ code: TrapCode, wasmOffset: Int?, addressOffset: UInt64? = nil) -> Label {
        let label = assembler.newLabel()
        trapStubs.append((label, wasmOffset, code, addressOffset))
        return label
    }

    /// Maps the code from here on to the wasm instruction at `wasmOffset`
    /// (nil: to no instruction).
    private mutating func recordAddress(wasmOffset: Int?) {
        let native = UInt32(assembler.offset - start)
        let wasm = wasmOffset.map(UInt32.init) ?? AddressMapEntry.noWasmOffset
        if let last = addressMap.last, last.nativeOffset == native {
            addressMap[addressMap.count - 1].wasmOffset = wasm
        } else {
            addressMap.append(AddressMapEntry(nativeOffset: native, wasmOffset: wasm))
        }
    }

    // MARK: Operand stack

    @discardableResult
    private mutating func push(_ kind: ValueKind) -> Memory {
        stack.append(kind)
        maxDepth = max(maxDepth, stack.count)
        return stackSlot(stack.count - 1)
    }

    private mutating func pop(_ expected: ValueKind? = nil) throws(CompileError) -> (slot: Memory, kind: ValueKind) {
        guard stack.count > control[control.count - 1].height else {
            throw .invalid("operand stack underflow", offset: binaryOffset)
        }
        let kind = stack.removeLast()
        if let expected, kind != expected {
            throw .invalid("expected \(expected) on the operand stack, found \(kind)", offset: binaryOffset)
        }
        return (stackSlot(stack.count), kind)
    }

    // MARK: Dispatch

    mutating func visit(_ instruction: Instruction) throws(CompileError) {
        if unreachable {
            try skipUnreachable(instruction)
            return
        }
        recordAddress(wasmOffset: binaryOffset)
        switch instruction {
        case .unreachable:
            trapSites.append(TrapSite(codeOffset: assembler.offset, wasmOffset: binaryOffset, code: .unreachable))
            assembler.ud2()
            unreachable = true
        case .nop:
            break
        case .block(let type):
            try openBlock(.block, type)
        case .loop(let type):
            try openBlock(.loop, type)
        case .if(let type):
            let condition = try pop(.i32)
            assembler.mov(.d, .rax, condition.slot)
            assembler.test(.d, .rax, .rax)
            try openBlock(.if, type)
            assembler.j(.equal, control[control.count - 1].elseLabel!)
        case .else:
            try compileElse()
        case .end:
            try compileEnd()
        case .br(let depth):
            try branch(depth: depth)
            unreachable = true
        case .brIf(let depth):
            try branchIf(depth: depth)
        case .return:
            try branch(depth: UInt32(control.count - 1))
            unreachable = true
        case .call(let function):
            try call(function)
        case .drop:
            _ = try pop()
        case .select, .typedSelect:
            try select()
        case .localGet(let local):
            let kind = try localKind(local)
            assembler.mov(.q, .rax, localSlot(Int(local)))
            assembler.mov(.q, push(kind), .rax)
        case .localSet(let local):
            let value = try pop(try localKind(local))
            assembler.mov(.q, .rax, value.slot)
            assembler.mov(.q, localSlot(Int(local)), .rax)
        case .localTee(let local):
            let value = try pop(try localKind(local))
            push(value.kind)
            assembler.mov(.q, .rax, value.slot)
            assembler.mov(.q, localSlot(Int(local)), .rax)
        case .globalGet(let global):
            let definition = try globalDefinition(global)
            assembler.mov(.q, .rcx, Memory.at(.r15, Int32(WU_VMCTX_GLOBALS)))
            assembler.mov(.q, .rax, Memory.at(.rcx, Int32(8 * global)))
            assembler.mov(.q, push(definition.kind), .rax)
        case .globalSet(let global):
            let definition = try globalDefinition(global)
            guard definition.mutable else { throw .invalid("global.set of immutable global \(global)", offset: binaryOffset) }
            let value = try pop(definition.kind)
            assembler.mov(.q, .rax, value.slot)
            assembler.mov(.q, .rcx, Memory.at(.r15, Int32(WU_VMCTX_GLOBALS)))
            assembler.mov(.q, Memory.at(.rcx, Int32(8 * global)), .rax)
        case .i32Const(let value):
            assembler.mov(.rax, immediate: Int64(UInt32(bitPattern: value)))
            assembler.mov(.q, push(.i32), .rax)
        case .i64Const(let value):
            assembler.mov(.rax, immediate: value)
            assembler.mov(.q, push(.i64), .rax)
        case .refNull(let type):
            guard type == .externRef else { throw unsupported(instruction) }
            assembler.mov(.q, push(.externref), immediate: 0)
        case .refIsNull:
            let value = try pop(.externref)
            assembler.mov(.q, .rax, value.slot)
            assembler.test(.q, .rax, .rax)
            assembler.set(.equal, .rax)
            assembler.movzx8(.rax, Register.rax)
            assembler.mov(.q, push(.i32), .rax)
        case .i32Eqz, .i64Eqz:
            let width: Width = instruction == .i32Eqz ? .d : .q
            let value = try pop(width == .d ? .i32 : .i64)
            assembler.mov(width, .rax, value.slot)
            assembler.test(width, .rax, .rax)
            assembler.set(.equal, .rax)
            assembler.movzx8(.rax, Register.rax)
            assembler.mov(.q, push(.i32), .rax)
        case .cmp(let comparison):
            try compare(comparison, instruction)
        case .binary(let operation):
            try binary(operation, instruction)
        case .unary(let operation):
            try unary(operation, instruction)
        case .conversion(let conversion):
            try convert(conversion, instruction)
        case .load(let load, let memarg):
            try self.load(load, memarg, instruction)
        case .store(let store, let memarg):
            try self.store(store, memarg, instruction)
        case .memorySize(let memory):
            guard memory == 0, module.memoryPages != nil else { throw .invalid("memory.size without a memory", offset: binaryOffset) }
            assembler.mov(.q, .rax, Memory.at(.r15, Int32(WU_VMCTX_MEMORY_SIZE)))
            assembler.shift(.shr, .q, .rax, by: 16)
            assembler.mov(.q, push(.i32), .rax)
        default:
            throw unsupported(instruction)
        }
    }

    /// In unreachable code nothing is emitted, but block structure is
    /// followed to find where code becomes reachable again, and unsupported
    /// instructions are still rejected.
    private mutating func skipUnreachable(_ instruction: Instruction) throws(CompileError) {
        switch instruction {
        case .block, .loop, .if:
            deadNesting += 1
        case .end where deadNesting > 0:
            deadNesting -= 1
        case .else where deadNesting > 0:
            break
        case .else:
            try compileElse()
        case .end:
            try compileEnd()
        default:
            if !Self.isSupported(instruction) { throw unsupported(instruction) }
        }
    }

    private func unsupported(_ instruction: Instruction) -> CompileError {
        .unsupportedInstruction(name: InstructionNames.name(of: instruction), offset: binaryOffset)
    }

    static func isSupported(_ instruction: Instruction) -> Bool {
        switch instruction {
        case .unreachable, .nop, .block, .loop, .if, .else, .end, .br, .brIf, .return, .call, .drop, .select,
             .typedSelect, .localGet, .localSet, .localTee, .globalGet, .globalSet, .i32Const, .i64Const,
             .refIsNull, .i32Eqz, .i64Eqz, .memorySize:
            return true
        case .refNull(let type):
            return type == .externRef
        case .cmp(let c):
            return InstructionNames.integerComparison(c) != nil
        case .binary(let b):
            return InstructionNames.integerBinary(b) != nil
        case .unary(let u):
            return InstructionNames.integerUnary(u) != nil
        case .conversion(let c):
            return [.i32WrapI64, .i64ExtendI32S, .i64ExtendI32U].contains(c)
        case .load(let l, _):
            return InstructionNames.integerLoad(l) != nil
        case .store(let s, _):
            return InstructionNames.integerStore(s) != nil
        default:
            return false
        }
    }

    // MARK: Control

    private mutating func blockResults(_ type: BlockType) throws(CompileError) -> [ValueKind] {
        switch type {
        case .empty: return []
        case .type(let value): return [try ValueKind(value, offset: binaryOffset)]
        case .funcType(let index):
            let signature = try module.signature(atTypeIndex: index, offset: binaryOffset)
            guard signature.parameters.isEmpty, signature.results.count <= 1 else {
                throw .unsupportedFeature("multi-value block type \(signature)", offset: binaryOffset)
            }
            return signature.results
        }
    }

    private mutating func openBlock(_ kind: ControlFrame.Kind, _ type: BlockType) throws(CompileError) {
        let results = try blockResults(type)
        let end = assembler.newLabel()
        var frame = ControlFrame(kind: kind, branchTarget: end, end: end, height: stack.count, results: results)
        if kind == .loop {
            frame.branchTarget = assembler.newLabel()
            assembler.bind(frame.branchTarget)
        }
        if kind == .if { frame.elseLabel = assembler.newLabel() }
        control.append(frame)
    }

    private mutating func checkFrameResults(_ frame: ControlFrame) throws(CompileError) {
        guard stack.count == frame.height + frame.results.count,
              Array(stack[frame.height...]) == frame.results
        else {
            throw .invalid("block ends with operand stack \(stack[min(frame.height, stack.count)...]) but its type is \(frame.results)",
                           offset: binaryOffset)
        }
    }

    private mutating func compileElse() throws(CompileError) {
        guard let frame = control.last, frame.kind == .if else { throw .invalid("`else` outside `if`", offset: binaryOffset) }
        if !unreachable {
            recordAddress(wasmOffset: binaryOffset)
            try checkFrameResults(frame)
            assembler.jmp(frame.end)
        }
        assembler.bind(frame.elseLabel!)
        control[control.count - 1].kind = .else
        control[control.count - 1].elseLabel = nil
        stack.removeSubrange(frame.height...)
        unreachable = false
    }

    private mutating func compileEnd() throws(CompileError) {
        let frame = control[control.count - 1]
        if unreachable {
            recordAddress(wasmOffset: binaryOffset)
        } else {
            try checkFrameResults(frame)
        }
        if let elseLabel = frame.elseLabel {
            // `if` without `else`: the false branch falls through to the end.
            guard frame.results.isEmpty else {
                throw .invalid("`if` with a result needs an `else`", offset: binaryOffset)
            }
            assembler.bind(elseLabel)
        }
        control.removeLast()
        stack.removeSubrange(min(frame.height, stack.count)...)
        stack.append(contentsOf: frame.results)
        maxDepth = max(maxDepth, stack.count)
        unreachable = false
        assembler.bind(frame.end)
        if frame.kind == .function {
            emitEpilogueAndStubs()
        }
    }

    private func target(depth: UInt32) throws(CompileError) -> ControlFrame {
        guard Int(depth) < control.count else { throw .invalid("branch depth \(depth) out of range", offset: binaryOffset) }
        return control[control.count - 1 - Int(depth)]
    }

    /// Moves the values a branch carries to where the target expects them.
    private mutating func emitBranchValues(to frame: ControlFrame) throws(CompileError) {
        let arity = frame.branchArity
        guard stack.count >= arity.count + control[control.count - 1].height,
              Array(stack.suffix(arity.count)) == arity
        else { throw .invalid("branch carries \(stack.suffix(arity.count)) but its target expects \(arity)", offset: binaryOffset) }
        for (i, _) in arity.enumerated() {
            let from = stack.count - arity.count + i
            let to = frame.height + i
            if from != to {
                assembler.mov(.q, .rax, stackSlot(from))
                assembler.mov(.q, stackSlot(to), .rax)
            }
        }
    }

    private mutating func branch(depth: UInt32) throws(CompileError) {
        let frame = try target(depth: depth)
        try emitBranchValues(to: frame)
        assembler.jmp(frame.branchTarget)
    }

    private mutating func branchIf(depth: UInt32) throws(CompileError) {
        let condition = try pop(.i32)
        let frame = try target(depth: depth)
        assembler.mov(.d, .rax, condition.slot)
        assembler.test(.d, .rax, .rax)
        let needsMoves = !frame.branchArity.isEmpty && stack.count - frame.branchArity.count != frame.height
        if needsMoves {
            let skip = assembler.newLabel()
            assembler.j(.equal, skip)
            try emitBranchValues(to: frame)
            assembler.jmp(frame.branchTarget)
            assembler.bind(skip)
        } else {
            try emitBranchValues(to: frame)
            assembler.j(.notEqual, frame.branchTarget)
        }
    }

    // MARK: Calls

    private mutating func call(_ function: UInt32) throws(CompileError) {
        let callee = try module.signature(ofFunction: function, offset: binaryOffset)
        guard callee.results.count <= 1 else {
            throw .unsupportedFeature("calls to functions with more than one result", offset: binaryOffset)
        }
        for parameter in callee.parameters.reversed() { _ = try pop(parameter) }
        let base = stack.count
        // The stack map: every reference-typed slot still live below the
        // arguments, plus reference-typed locals.
        var liveReferences: [Int32] = []
        for (local, kind) in locals.enumerated() where kind == .externref {
            liveReferences.append(localSlot(local).displacement)
        }
        for depth in 0..<base where stack[depth] == .externref {
            liveReferences.append(stackSlot(depth).displacement)
        }
        let isImport = Int(function) < module.imports.count
        func record(_ returnOffset: Int) {
            callSites.append(CallSite(
                returnAddressOffset: returnOffset, wasmOffset: binaryOffset,
                callee: isImport ? .imported(function) : .function(function),
                liveReferenceSlots: liveReferences))
        }

        if !isImport {
            emitWasmArguments(callee, base: base)
            let label = functionLabels[Int(function) - module.imports.count]
            record(assembler.call(.label(label), providing: assembler.newCallReturnAddressLabel()))
        } else if exitRecording == .trampoline {
            emitWasmArguments(callee, base: base)
            record(emitImportCall(function))
        } else {
            // Inline exit recording: a host import is called right here;
            // another instance's function like any wasm import. Which one it
            // is is known only at instantiation, so the import table says.
            let hostPath = assembler.newLabel(), done = assembler.newLabel()
            assembler.mov(.q, .rax, Memory.at(.r15, Int32(WU_VMCTX_IMPORTS)))
            assembler.arithmetic(.cmp, .q, Memory.at(.rax, Int32(Int(function) * Int(WU_IMPORT_SIZE) + Int(WU_IMPORT_IS_HOST))),
                                 immediate: 0)
            assembler.j(.notEqual, hostPath)
            emitWasmArguments(callee, base: base)
            record(emitImportCall(function))
            assembler.jmp(done)
            assembler.bind(hostPath)
            record(emitInlineHostCall(function, callee, base: base))
            assembler.bind(done)
        }
        if let result = callee.results.first {
            assembler.mov(.q, push(result), .rax)
        }
    }

    /// Arguments in rdi, rsi, rdx, rcx, r8, r9, then at [rsp], [rsp + 8] ...
    private mutating func emitWasmArguments(_ callee: Signature, base: Int) {
        // Stack arguments first: they go through rax, which is no argument register.
        for argument in callee.parameters.indices where argument >= 6 {
            assembler.mov(.q, .rax, stackSlot(base + argument))
            assembler.mov(.q, Memory.at(.rsp, Int32(8 * (argument - 6))), .rax)
        }
        maxOutgoingBytes = max(maxOutgoingBytes, 8 * max(0, callee.parameters.count - 6))
        for argument in callee.parameters.indices where argument < 6 {
            assembler.mov(.q, Register.integerArguments[argument], stackSlot(base + argument))
        }
    }

    /// A call through the import table: another instance's function with
    /// its own context, or this module's exit trampoline for a host import.
    /// Returns the return address's code offset.
    private mutating func emitImportCall(_ function: UInt32) -> Int {
        assembler.mov(.q, .rax, Memory.at(.r15, Int32(WU_VMCTX_IMPORTS)))
        assembler.mov(.q, .r11, Memory.at(.rax, Int32(Int(function) * Int(WU_IMPORT_SIZE) + 8)))
        assembler.mov(.q, .rax, Memory.at(.rax, Int32(Int(function) * Int(WU_IMPORT_SIZE))))
        assembler.mov(.q, .r15, .r11)
        let returnOffset = assembler.call(.register(.rax), providing: assembler.newCallReturnAddressLabel())
        assembler.mov(.q, .r15, Self.savedContextSlot)
        return returnOffset
    }

    /// The seed's proposal: record the exit at the call site — this frame's
    /// fp, and the address of a label bound after the call, taken before it
    /// — then call the host through the one C signature, with the arguments
    /// in this frame's outgoing area. No trampoline frame in between.
    ///
    /// ```
    ///   mov rax, [r15 + limits]
    ///   mov rcx, rbp                        ; get_frame_pointer
    ///   mov [rax + last_wasm_exit_fp], rcx
    ///   lea rcx, [rip + return]             ; get_call_return_address
    ///   mov [rax + last_wasm_exit_pc], rcx
    ///   mov rax, [argument slot k]; mov [rsp + 8k], rax ...
    ///   mov rdi, r15; mov esi, import; mov rdx, rsp
    ///   call [r15 + host_call]              ; call_and_provide_return_address
    /// return:
    ///   test eax, eax; jne raise_stub
    ///   mov rax, [rsp]                      ; the result, if any
    /// ```
    private mutating func emitInlineHostCall(_ function: UInt32, _ callee: Signature, base: Int) -> Int {
        let returnAddress = assembler.newCallReturnAddressLabel()
        assembler.mov(.q, .rax, Memory.at(.r15, Int32(WU_VMCTX_LIMITS)))
        assembler.loadFramePointer(into: .rcx)
        assembler.mov(.q, Memory.at(.rax, Int32(RuntimeLimits.Offsets.lastWasmExitFP)), .rcx)
        if exitRecording == .inlineWithImprecisePCForTesting {
            // The end of this function's first instruction (`push rbp`), so
            // that pc - 1 is the function's first byte.
            assembler.lea(.rcx, Memory.label(functionLabels[Int(index) - module.imports.count]))
            assembler.lea(.rcx, Memory.at(.rcx, 1))
        } else {
            assembler.loadAddress(of: returnAddress, into: .rcx)
        }
        assembler.mov(.q, Memory.at(.rax, Int32(RuntimeLimits.Offsets.lastWasmExitPC)), .rcx)
        for argument in callee.parameters.indices {
            assembler.mov(.q, .rax, stackSlot(base + argument))
            assembler.mov(.q, Memory.at(.rsp, Int32(8 * argument)), .rax)
        }
        maxOutgoingBytes = max(maxOutgoingBytes, 8 * max(1, callee.parameters.count, callee.results.count))
        assembler.mov(.q, .rdi, .r15)
        assembler.mov(.rsi, immediate: Int64(function))
        assembler.mov(.q, .rdx, .rsp)
        let returnOffset = assembler.call(.memory(Memory.at(.r15, Int32(WU_VMCTX_HOST_CALL))), providing: returnAddress)
        assembler.test(.d, .rax, .rax)
        let raise = assembler.newLabel()
        raiseStubs.append((raise, binaryOffset))
        assembler.j(.notEqual, raise)
        if !callee.results.isEmpty {
            assembler.mov(.q, .rax, Memory.at(.rsp))
        }
        return returnOffset
    }

    // MARK: Values

    private func localKind(_ local: UInt32) throws(CompileError) -> ValueKind {
        guard Int(local) < locals.count else { throw .invalid("local \(local) out of range", offset: binaryOffset) }
        return locals[Int(local)]
    }

    private func globalDefinition(_ global: UInt32) throws(CompileError) -> ModuleDescription.GlobalDefinition {
        guard Int(global) < module.globals.count else { throw .invalid("global \(global) out of range", offset: binaryOffset) }
        return module.globals[Int(global)]
    }

    private mutating func select() throws(CompileError) {
        let condition = try pop(.i32)
        let second = try pop()
        let first = try pop(second.kind)
        assembler.mov(.q, .rax, first.slot)
        assembler.mov(.q, .rcx, second.slot)
        assembler.mov(.d, .rdx, condition.slot)
        assembler.test(.d, .rdx, .rdx)
        assembler.cmov(.equal, .q, .rax, .rcx)
        assembler.mov(.q, push(first.kind), .rax)
    }

    private mutating func compare(_ comparison: Instruction.Cmp, _ instruction: Instruction) throws(CompileError) {
        guard let (width, condition) = InstructionNames.integerComparison(comparison) else { throw unsupported(instruction) }
        let kind: ValueKind = width == .d ? .i32 : .i64
        let right = try pop(kind)
        let left = try pop(kind)
        assembler.mov(width, .rax, left.slot)
        assembler.mov(width, .rcx, right.slot)
        assembler.arithmetic(.cmp, width, .rax, .rcx)
        assembler.set(condition, .rax)
        assembler.movzx8(.rax, Register.rax)
        assembler.mov(.q, push(.i32), .rax)
    }

    private mutating func binary(_ operation: Instruction.Binary, _ instruction: Instruction) throws(CompileError) {
        guard let (width, op) = InstructionNames.integerBinary(operation) else { throw unsupported(instruction) }
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
    private mutating func emitCompareWithMinimum(_ width: Width, _ register: Register) {
        if width == .d {
            assembler.arithmetic(.cmp, .d, register, immediate: Int32.min)
        } else {
            assembler.mov(.rdx, immediate: Int64.min)
            assembler.arithmetic(.cmp, .q, register, .rdx)
        }
    }

    private mutating func unary(_ operation: Instruction.Unary, _ instruction: Instruction) throws(CompileError) {
        guard let width = InstructionNames.integerUnary(operation) else { throw unsupported(instruction) }
        let kind: ValueKind = width == .d ? .i32 : .i64
        let value = try pop(kind)
        let bits: Int64 = width == .d ? 32 : 64
        switch operation {
        case .i32Clz, .i64Clz:
            // bsr leaves ZF set for 0; -1 then gives bits - 1 - (-1) = bits.
            assembler.mov(width, .rcx, value.slot)
            assembler.bsr(width, .rax, .rcx)
            assembler.mov(.rdx, immediate: -1)
            assembler.cmov(.equal, width, .rax, .rdx)
            assembler.mov(.rcx, immediate: bits - 1)
            assembler.arithmetic(.sub, width, .rcx, .rax)
            assembler.mov(.q, push(kind), .rcx)
            return
        case .i32Ctz, .i64Ctz:
            assembler.mov(width, .rcx, value.slot)
            assembler.bsf(width, .rax, .rcx)
            assembler.mov(.rdx, immediate: bits)
            assembler.cmov(.equal, width, .rax, .rdx)
        case .i32Popcnt, .i64Popcnt:
            assembler.mov(width, .rcx, value.slot)
            assembler.popcnt(width, .rax, .rcx)
        case .i32Extend8S, .i64Extend8S:
            assembler.movsx8(width, .rax, value.slot)
        case .i32Extend16S, .i64Extend16S:
            assembler.movsx16(width, .rax, value.slot)
        case .i64Extend32S:
            assembler.movsxd(.rax, value.slot)
        default:
            throw unsupported(instruction)
        }
        if width == .d { assembler.mov(.d, .rax, .rax) }
        assembler.mov(.q, push(kind), .rax)
    }

    private mutating func convert(_ conversion: Instruction.Conversion, _ instruction: Instruction) throws(CompileError) {
        switch conversion {
        case .i32WrapI64:
            let value = try pop(.i64)
            assembler.mov(.d, .rax, value.slot)
            assembler.mov(.q, push(.i32), .rax)
        case .i64ExtendI32S:
            let value = try pop(.i32)
            assembler.movsxd(.rax, value.slot)
            assembler.mov(.q, push(.i64), .rax)
        case .i64ExtendI32U:
            let value = try pop(.i32)
            assembler.mov(.d, .rax, value.slot)
            assembler.mov(.q, push(.i64), .rax)
        default:
            throw unsupported(instruction)
        }
    }

    // MARK: Memory

    /// Leaves the effective address's operand for `[rcx + rax + disp]`
    /// after checking `address + offset + size <= memory size`, trapping
    /// otherwise. Clobbers rax, rcx, rdx.
    private mutating func boundsCheckedAddress(_ address: Memory, _ memarg: MemArg, size: Int) throws(CompileError) -> Memory {
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

    private mutating func load(_ load: Instruction.Load, _ memarg: MemArg, _ instruction: Instruction) throws(CompileError) {
        guard let (kind, size) = InstructionNames.integerLoad(load) else { throw unsupported(instruction) }
        let address = try pop(.i32)
        let memory = try boundsCheckedAddress(address.slot, memarg, size: size)
        switch load {
        case .i32Load: assembler.mov(.d, .rax, memory)
        case .i64Load: assembler.mov(.q, .rax, memory)
        case .i32Load8S: assembler.movsx8(.d, .rax, memory)
        case .i32Load8U, .i64Load8U: assembler.movzx8(.rax, memory)
        case .i32Load16S: assembler.movsx16(.d, .rax, memory)
        case .i32Load16U, .i64Load16U: assembler.movzx16(.rax, memory)
        case .i64Load8S: assembler.movsx8(.q, .rax, memory)
        case .i64Load16S: assembler.movsx16(.q, .rax, memory)
        case .i64Load32S: assembler.movsxd(.rax, memory)
        case .i64Load32U: assembler.mov(.d, .rax, memory)
        default: throw unsupported(instruction)
        }
        assembler.mov(.q, push(kind), .rax)
    }

    private mutating func store(_ store: Instruction.Store, _ memarg: MemArg, _ instruction: Instruction) throws(CompileError) {
        guard let (kind, size) = InstructionNames.integerStore(store) else { throw unsupported(instruction) }
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
}
