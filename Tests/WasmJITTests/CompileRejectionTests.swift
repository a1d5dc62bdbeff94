import Testing
import WasmJIT

/// Everything outside the compiler's subset is rejected when the module is
/// compiled, naming the instruction and its module offset (offsets from
/// `wasm-objdump -d` of the same modules) — never miscompiled.
@Suite("Unsupported input is rejected at compile time")
struct CompileRejectionTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let module: String
        let name: String
        let offset: Int
        var testDescription: String { name }
    }

    static let instructions: [Case] = [
        Case(module: #"(module (func (export "f") v128.const i32x4 1 2 3 4 drop))"#, name: "v128.const", offset: 0x1E),
        Case(module: #"(module (memory 1) (func (export "f") i32.const 0 i32.atomic.load drop))"#, name: "i32.atomic.load", offset: 0x25),
        Case(module: #"(module (func (export "f") unreachable v128.const i64x2 0 0 drop))"#, name: "v128.const", offset: 0x1F),
        Case(module: #"(module (func (export "f") i32.const 1 i32.const 2 i32.const 3 drop drop drop nop i64.const 7 i64.const 9 v128.const i32x4 0 0 0 0 drop drop drop))"#,
             name: "v128.const", offset: 0x2C),
    ]

    @Test("an unsupported instruction names itself and its offset", arguments: instructions)
    func instruction(_ rejected: Case) {
        #expect(throws: CompileError.unsupportedInstruction(name: rejected.name, offset: rejected.offset)) {
            try Module(engine: Engine(), text: rejected.module)
        }
    }

    @Test("unsupported module features are named")
    func features() {
        #expect(throws: CompileError.unsupportedFeature("value type v128", offset: nil)) {
            try Module(engine: Engine(), text: #"(module (func (export "f") (param v128)))"#)
        }
        #expect(throws: CompileError.self) {
            try Module(engine: Engine(), text: #"(module (memory 1 2 shared))"#)
        }
    }

    @Test("invalid modules are errors, not crashes")
    func invalid() {
        #expect(throws: CompileError.self) {
            try Module(engine: Engine(), binary: [0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00, 0x0A, 0xFF])
        }
        #expect(throws: CompileError.self) {
            try Module(engine: Engine(), binary: [1, 2, 3])
        }
        #expect(throws: CompileError.self) {
            try Module(engine: Engine(), text: "(module (func (result i32) i64.const 1))")
        }
    }

    @Test("an instruction's text name comes from WasmKit's case name")
    func names() {
        #expect(InstructionNamesProbe.textName("i32TruncSatF32S") == "i32.trunc_sat_f32_s")
        #expect(InstructionNamesProbe.textName("callIndirect") == "call_indirect")
        #expect(InstructionNamesProbe.textName("memoryGrow") == "memory.grow")
        #expect(InstructionNamesProbe.textName("refFunc") == "ref.func")
        #expect(InstructionNamesProbe.textName("i32AtomicLoad") == "i32.atomic.load")
        #expect(InstructionNamesProbe.textName("i64AtomicRmw16AddU") == "i64.atomic.rmw16.add_u")
        #expect(InstructionNamesProbe.textName("memoryAtomicWait32") == "memory.atomic.wait32")
    }
}
