import CWasmRuntime

/// Interruption checks (`Engine.Configuration.epochInterruption`,
/// `.consumesFuel`): at every function entry and loop header the code
/// compares the engine's epoch with its store's deadline and the fuel it
/// has spent with what it was given, and traps (`.interrupt`,
/// `.outOfFuel`) when either is reached. Nothing runs between two checks
/// longer than one function body's straight-line code, so a runaway program
/// stops within that much of being asked, with no signal to it.
///
/// Fuel is counted as Wasmtime counts it, so both stop a program after the
/// same amount: entering a function costs 1, and each instruction 1 except
/// `nop`, `drop`, `block`, `loop`, `unreachable`, `return`, `else` and
/// `end` (0), bulk memory and table operations 1 more per byte or element
/// (grows: per page or element added), charged after they succeed.
/// The cost of a
/// straight-line run is added to the store's count where the run ends —
/// before a branch, `if`, `else`, `end`, `loop`, a call, a `return`, a
/// `throw` or `unreachable` — so a check sees every instruction before it.
extension FunctionCompiler {
    /// The checks of a function entry (after the prologue) or a loop
    /// header (after its label: each iteration), trapping with the wasm
    /// offset `wasmOffset` — the function body's start or the `loop`'s, as
    /// Wasmtime's do.
    mutating func emitInterruptionChecks(wasmOffset: Int) {
        if consumesFuel {
            //   mov rax, [r15 + store_context]
            //   cmp qword [rax + fuel_consumed], 0
            //   jge out_of_fuel
            flushFuel()
            assembler.mov(.q, .rax, MemoryOperand.at(.r15, Int32(WU_VMCTX_STORE_CONTEXT)))
            assembler.arithmetic(.cmp, .q, MemoryOperand.at(.rax, Int32(WU_STORE_CONTEXT_FUEL_CONSUMED)), immediate: 0)
            assembler.j(.greaterOrEqual, trapStub(.outOfFuel, wasmOffset: wasmOffset))
        }
        if epochInterruption {
            //   movabs rax, [epoch]              ; the engine's, at a fixed address
            //   cmp rax, [r15 + epoch_deadline]
            //   jae interrupt
            // (Code compiled by an engine runs only in its stores, which
            // keep the engine, and so its epoch, alive.)
            assembler.loadRAX(absolute: epochAddress)
            assembler.arithmetic(.cmp, .q, .rax, MemoryOperand.at(.r15, Int32(WU_VMCTX_EPOCH_DEADLINE)))
            assembler.j(.aboveOrEqual, trapStub(.interrupt, wasmOffset: wasmOffset))
        }
    }

    /// Counts the instruction about to be compiled, and adds the run's cost
    /// to the store's count if it ends the run. Emitted before the
    /// instruction's own code (which may branch or call).
    mutating func chargeFuel(for lowering: Lowering, constantCount: UInt64?) {
        guard consumesFuel else { return }
        pendingFuel += lowering.fuelCost
        // A bulk operation's constant count is known now: part of the run's
        // cost, charged whether or not the operation succeeds (Wasmtime's
        // compile-time charge; FunctionCompiler+FuelConstants).
        if let constantCount { pendingFuel += Int(min(constantCount, 1 << 40)) }
        if lowering.endsStraightLineRun { flushFuel() }
    }

    /// After a bulk memory or table operation that did its work: 1 more
    /// per byte or element (the pages or elements a grow added), added with
    /// the run so far and checked, trapping at the operation (Wasmtime's
    /// variable operator cost, charged as its runtime call does: after the
    /// work, only when it succeeded). `countSlot` is where the count
    /// operand was (its slot is intact: only grows write a result, and a
    /// table grow's goes to the slot below).
    ///
    ///   (grows: mov eax, [result]; cmp eax, -1; je done)
    ///   mov ecx, [count]            ; or: new pages - old pages
    ///   mov rax, [r15 + store_context]
    ///   add [rax + fuel_consumed], rcx
    ///   jge out_of_fuel
    /// done:
    mutating func chargeBulkFuel(for lowering: Lowering, countSlot: MemoryOperand, countKind: ValueKind) {
        guard consumesFuel, lowering.costsPerElement else { return }
        flushFuel()
        let done = assembler.newLabel()
        let grows: Bool
        switch lowering {
        case .memoryGrow, .tableGrow: grows = true
        default: grows = false
        }
        if grows {
            assembler.mov(.d, .rax, stackSlot(stack.count - 1))
            assembler.arithmetic(.cmp, .d, .rax, immediate: -1)
            assembler.j(.equal, done)
        }
        if case .memoryGrow = lowering {
            assembler.mov(.q, .rcx, MemoryOperand.at(.r15, Int32(WU_VMCTX_MEMORY_SIZE)))
            assembler.shift(.shr, .q, .rcx, by: 16)
            assembler.arithmetic(.sub, .q, .rcx, .rax)
        } else {
            assembler.mov(countKind == .i64 ? .q : .d, .rcx, countSlot)
        }
        assembler.mov(.q, .rax, MemoryOperand.at(.r15, Int32(WU_VMCTX_STORE_CONTEXT)))
        assembler.arithmetic(.add, .q, MemoryOperand.at(.rax, Int32(WU_STORE_CONTEXT_FUEL_CONSUMED)), .rcx)
        assembler.j(.greaterOrEqual, trapStub(.outOfFuel, wasmOffset: binaryOffset))
        assembler.bind(done)
    }

    /// `mov rax, [r15 + store_context]; add qword [rax + fuel_consumed], cost`
    mutating func flushFuel() {
        guard pendingFuel > 0 else { return }
        assembler.mov(.q, .rax, MemoryOperand.at(.r15, Int32(WU_VMCTX_STORE_CONTEXT)))
        // A run costs less than 2^31 unless constant counts make it more
        // (a 4 GiB memory.fill): then in 2^31 - 1 steps.
        while pendingFuel > 0 {
            let step = min(pendingFuel, Int(Int32.max))
            assembler.arithmetic(.add, .q, MemoryOperand.at(.rax, Int32(WU_STORE_CONTEXT_FUEL_CONSUMED)),
                                 immediate: Int32(step))
            pendingFuel -= step
        }
    }
}

extension Lowering {
    /// Wasmtime's default cost of the instruction.
    var fuelCost: Int {
        switch self {
        case .nop, .drop, .block, .loop, .unreachable, .return, .else, .end: return 0
        default: return 1
        }
    }

    /// Whether the instruction costs 1 more per byte or element it
    /// touches (its last operand) or adds: `memory.fill`, `.copy`, `.init`,
    /// `.grow` (per page) and `table.fill`, `.copy`, `.init`, `.grow`.
    var costsPerElement: Bool {
        switch self {
        case .memoryFill, .memoryCopy, .memoryInit, .memoryGrow, .tableFill, .tableCopy, .tableInit, .tableGrow:
            return true
        default: return false
        }
    }

    /// Whether the instruction ends a straight-line run: the count is
    /// brought up to date before it (where Wasmtime updates its count).
    var endsStraightLineRun: Bool {
        switch self {
        case .unreachable, .return, .call, .callIndirect, .returnCall, .returnCallIndirect, .throw, .throwRef,
             .loop, .if, .br, .brIf, .brTable, .end, .else:
            return true
        default:
            return false
        }
    }
}
