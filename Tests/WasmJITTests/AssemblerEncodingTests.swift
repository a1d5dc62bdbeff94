import Testing
@_spi(Tools) import WasmUnwind
@_spi(Testing) @testable import WasmJIT

/// Each vector: the instruction in Intel syntax, the bytes GNU `as` 2.40
/// produced for it (`as --64 -msyntax=intel -mnaked-reg`, then
/// `objdump -d`), and the assembler call that must produce the same bytes.
let encodingVectors: [(text: String, bytes: [UInt8], emit: @Sendable (inout Assembler) -> Void)] = [
    ("push rbp", [0x55], { $0.push(.rbp) }),
    ("push r15", [0x41, 0x57], { $0.push(.r15) }),
    ("pop rbx", [0x5B], { $0.pop(.rbx) }),
    ("pop r12", [0x41, 0x5C], { $0.pop(.r12) }),
    ("ret", [0xC3], { $0.ret() }),
    ("ud2", [0x0F, 0x0B], { $0.ud2() }),
    ("call rax", [0xFF, 0xD0], { $0.call(Register.rax) }),
    ("call r11", [0x41, 0xFF, 0xD3], { $0.call(Register.r11) }),
    ("call qword ptr [r15+0x20]", [0x41, 0xFF, 0x57, 0x20], { $0.call(MemoryOperand.at(.r15, 0x20)) }),
    ("jmp r10", [0x41, 0xFF, 0xE2], { $0.jmp(Register.r10) }),
    ("mov rbp, rsp", [0x48, 0x89, 0xE5], { $0.mov(.q, .rbp, .rsp) }),
    ("mov r15, rdi", [0x49, 0x89, 0xFF], { $0.mov(.q, .r15, .rdi) }),
    ("mov eax, r9d", [0x44, 0x89, 0xC8], { $0.mov(.d, .rax, .r9) }),
    ("mov rax, qword ptr [rbp-0x18]", [0x48, 0x8B, 0x45, 0xE8], { $0.mov(.q, .rax, MemoryOperand.at(.rbp, -0x18)) }),
    ("mov rax, qword ptr [rbp+0x0]", [0x48, 0x8B, 0x45, 0x00], { $0.mov(.q, .rax, MemoryOperand.at(.rbp, 0)) }),
    ("mov rcx, qword ptr [r13+0x0]", [0x49, 0x8B, 0x4D, 0x00], { $0.mov(.q, .rcx, MemoryOperand.at(.r13, 0)) }),
    ("mov rdx, qword ptr [rsp]", [0x48, 0x8B, 0x14, 0x24], { $0.mov(.q, .rdx, MemoryOperand.at(.rsp)) }),
    ("mov rdx, qword ptr [rsp+0x10]", [0x48, 0x8B, 0x54, 0x24, 0x10], { $0.mov(.q, .rdx, MemoryOperand.at(.rsp, 0x10)) }),
    ("mov rdx, qword ptr [r12+0x400]", [0x49, 0x8B, 0x94, 0x24, 0x00, 0x04, 0x00, 0x00], { $0.mov(.q, .rdx, MemoryOperand.at(.r12, 0x400)) }),
    ("mov r8, qword ptr [rax]", [0x4C, 0x8B, 0x00], { $0.mov(.q, .r8, MemoryOperand.at(.rax)) }),
    ("mov eax, dword ptr [rcx+rax*1+0x10]", [0x8B, 0x44, 0x01, 0x10], { $0.mov(.d, .rax, MemoryOperand.at(.rcx, index: .rax, 0x10)) }),
    ("mov rax, qword ptr [r13+r14*8]", [0x4B, 0x8B, 0x44, 0xF5, 0x00], { $0.mov(.q, .rax, MemoryOperand.at(.r13, index: .r14, scale: 8)) }),
    ("mov rax, qword ptr [rcx+rdx*1+0x12345678]", [0x48, 0x8B, 0x84, 0x11, 0x78, 0x56, 0x34, 0x12], { $0.mov(.q, .rax, MemoryOperand.at(.rcx, index: .rdx, 0x1234_5678)) }),
    ("mov qword ptr [rbp-0x400], rax", [0x48, 0x89, 0x85, 0x00, 0xFC, 0xFF, 0xFF], { $0.mov(.q, MemoryOperand.at(.rbp, -0x400), .rax) }),
    ("mov qword ptr [rax+0x18], rbp", [0x48, 0x89, 0x68, 0x18], { $0.mov(.q, MemoryOperand.at(.rax, 0x18), .rbp) }),
    ("mov qword ptr [rsp+0x8], r9", [0x4C, 0x89, 0x4C, 0x24, 0x08], { $0.mov(.q, MemoryOperand.at(.rsp, 8), .r9) }),
    ("mov dword ptr [rcx+rdx*1], eax", [0x89, 0x04, 0x11], { $0.mov(.d, MemoryOperand.at(.rcx, index: .rdx), .rax) }),
    ("mov qword ptr [rbp-0x8], 0x0", [0x48, 0xC7, 0x45, 0xF8, 0x00, 0x00, 0x00, 0x00], { $0.mov(.q, MemoryOperand.at(.rbp, -8), immediate: 0) }),
    ("mov eax, 0x2a", [0xB8, 0x2A, 0x00, 0x00, 0x00], { $0.mov(.rax, immediate: 42) }),
    ("mov r10d, 0xffffffff", [0x41, 0xBA, 0xFF, 0xFF, 0xFF, 0xFF], { $0.mov(.r10, immediate: 0xFFFF_FFFF) }),
    ("mov rax, 0xffffffffffffffff", [0x48, 0xC7, 0xC0, 0xFF, 0xFF, 0xFF, 0xFF], { $0.mov(.rax, immediate: -1) }),
    ("movabs rcx, 0x123456789abcdef0", [0x48, 0xB9, 0xF0, 0xDE, 0xBC, 0x9A, 0x78, 0x56, 0x34, 0x12], { $0.mov(.rcx, immediate: 0x1234_5678_9ABC_DEF0) }),
    ("movabs r11, 0x8000000000000000", [0x49, 0xBB, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80], { $0.mov(.r11, immediate: Int64.min) }),
    ("mov byte ptr [rcx+rdx*1], sil", [0x40, 0x88, 0x34, 0x11], { $0.mov8(MemoryOperand.at(.rcx, index: .rdx), .rsi) }),
    ("mov byte ptr [rcx+rdx*1], al", [0x88, 0x04, 0x11], { $0.mov8(MemoryOperand.at(.rcx, index: .rdx), .rax) }),
    ("mov word ptr [rcx+rdx*1+0x2], ax", [0x66, 0x89, 0x44, 0x11, 0x02], { $0.mov16(MemoryOperand.at(.rcx, index: .rdx, 2), .rax) }),
    ("movzx eax, byte ptr [rcx+rax*1]", [0x0F, 0xB6, 0x04, 0x01], { $0.movzx8(.rax, MemoryOperand.at(.rcx, index: .rax)) }),
    ("movzx eax, word ptr [rcx+rax*1]", [0x0F, 0xB7, 0x04, 0x01], { $0.movzx16(.rax, MemoryOperand.at(.rcx, index: .rax)) }),
    ("movsx eax, byte ptr [rcx+rax*1]", [0x0F, 0xBE, 0x04, 0x01], { $0.movsx8(.d, .rax, MemoryOperand.at(.rcx, index: .rax)) }),
    ("movsx rax, word ptr [rcx+rax*1]", [0x48, 0x0F, 0xBF, 0x04, 0x01], { $0.movsx16(.q, .rax, MemoryOperand.at(.rcx, index: .rax)) }),
    ("movsxd rax, dword ptr [rcx+rax*1]", [0x48, 0x63, 0x04, 0x01], { $0.movsxd(.rax, MemoryOperand.at(.rcx, index: .rax)) }),
    ("movzx eax, al", [0x0F, 0xB6, 0xC0], { $0.movzx8(.rax, Register.rax) }),
    ("movzx eax, sil", [0x40, 0x0F, 0xB6, 0xC6], { $0.movzx8(.rax, Register.rsi) }),
    ("movsx rax, al", [0x48, 0x0F, 0xBE, 0xC0], { $0.movsx8(.q, .rax, Register.rax) }),
    ("movsx eax, cx", [0x0F, 0xBF, 0xC1], { $0.movsx16(.d, .rax, Register.rcx) }),
    ("movsxd rax, eax", [0x48, 0x63, 0xC0], { $0.movsxd(.rax, Register.rax) }),
    ("lea rsp, [rbp-0x28]", [0x48, 0x8D, 0x65, 0xD8], { $0.lea(.rsp, MemoryOperand.at(.rbp, -0x28)) }),
    ("lea rdx, [rax+0x7]", [0x48, 0x8D, 0x50, 0x07], { $0.lea(.rdx, MemoryOperand.at(.rax, 7)) }),
    ("cmovne rax, rcx", [0x48, 0x0F, 0x45, 0xC1], { $0.cmov(.notEqual, .q, .rax, .rcx) }),
    ("cmove eax, edx", [0x0F, 0x44, 0xC2], { $0.cmov(.equal, .d, .rax, .rdx) }),
    ("sete al", [0x0F, 0x94, 0xC0], { $0.set(.equal, .rax) }),
    ("setl cl", [0x0F, 0x9C, 0xC1], { $0.set(.less, .rcx) }),
    ("setae sil", [0x40, 0x0F, 0x93, 0xC6], { $0.set(.aboveOrEqual, .rsi) }),
    ("add rax, rcx", [0x48, 0x01, 0xC8], { $0.arithmetic(.add, .q, .rax, .rcx) }),
    ("add eax, ecx", [0x01, 0xC8], { $0.arithmetic(.add, .d, .rax, .rcx) }),
    ("sub r9, r10", [0x4D, 0x29, 0xD1], { $0.arithmetic(.sub, .q, .r9, .r10) }),
    ("and eax, ecx", [0x21, 0xC8], { $0.arithmetic(.and, .d, .rax, .rcx) }),
    ("or rax, rcx", [0x48, 0x09, 0xC8], { $0.arithmetic(.or, .q, .rax, .rcx) }),
    ("xor eax, eax", [0x31, 0xC0], { $0.arithmetic(.xor, .d, .rax, .rax) }),
    ("cmp rax, rcx", [0x48, 0x39, 0xC8], { $0.arithmetic(.cmp, .q, .rax, .rcx) }),
    ("cmp rsp, qword ptr [rax]", [0x48, 0x3B, 0x20], { $0.arithmetic(.cmp, .q, .rsp, MemoryOperand.at(.rax)) }),
    ("cmp rdx, qword ptr [r15+0x10]", [0x49, 0x3B, 0x57, 0x10], { $0.arithmetic(.cmp, .q, .rdx, MemoryOperand.at(.r15, 0x10)) }),
    ("movabs rax, qword ptr ds:0x1122334455667788", [0x48, 0xA1, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11],
     { $0.loadRAX(absolute: 0x1122_3344_5566_7788) }),
    ("add qword ptr [rcx], rax", [0x48, 0x01, 0x01], { $0.arithmetic(.add, .q, MemoryOperand.at(.rcx), .rax) }),
    ("add qword ptr [r15+0x10], rdx", [0x49, 0x01, 0x57, 0x10], { $0.arithmetic(.add, .q, MemoryOperand.at(.r15, 0x10), .rdx) }),
    ("add qword ptr [rax], 0x7", [0x48, 0x83, 0x00, 0x07], { $0.arithmetic(.add, .q, MemoryOperand.at(.rax), immediate: 7) }),
    ("add rsp, 0x10", [0x48, 0x83, 0xC4, 0x10], { $0.arithmetic(.add, .q, .rsp, immediate: 16) }),
    ("sub rsp, 0x1000", [0x48, 0x81, 0xEC, 0x00, 0x10, 0x00, 0x00], { $0.arithmetic(.sub, .q, .rsp, immediate: 0x1000) }),
    ("cmp eax, 0xffffffff", [0x83, 0xF8, 0xFF], { $0.arithmetic(.cmp, .d, .rax, immediate: -1) }),
    ("cmp rax, 0xffffffff80000000", [0x48, 0x3D, 0x00, 0x00, 0x00, 0x80], { $0.arithmetic(.cmp, .q, .rax, immediate: Int32.min) }),
    ("and r8d, 0x1f", [0x41, 0x83, 0xE0, 0x1F], { $0.arithmetic(.and, .d, .r8, immediate: 0x1F) }),
    ("cmp qword ptr [rax+0x8], 0x0", [0x48, 0x83, 0x78, 0x08, 0x00], { $0.arithmetic(.cmp, .q, MemoryOperand.at(.rax, 8), immediate: 0) }),
    ("cmp qword ptr [rax+0x8], 0x1000", [0x48, 0x81, 0x78, 0x08, 0x00, 0x10, 0x00, 0x00], { $0.arithmetic(.cmp, .q, MemoryOperand.at(.rax, 8), immediate: 0x1000) }),
    ("cmp ecx, 0x12345678", [0x81, 0xF9, 0x78, 0x56, 0x34, 0x12], { $0.arithmetic(.cmp, .d, .rcx, immediate: 0x1234_5678) }),
    ("and eax, 0x12345", [0x25, 0x45, 0x23, 0x01, 0x00], { $0.arithmetic(.and, .d, .rax, immediate: 0x12345) }),
    ("test eax, eax", [0x85, 0xC0], { $0.test(.d, .rax, .rax) }),
    ("test rcx, rdx", [0x48, 0x85, 0xD1], { $0.test(.q, .rcx, .rdx) }),
    ("imul rax, rcx", [0x48, 0x0F, 0xAF, 0xC1], { $0.imul(.q, .rax, .rcx) }),
    ("imul eax, r8d", [0x41, 0x0F, 0xAF, 0xC0], { $0.imul(.d, .rax, .r8) }),
    ("shl eax, cl", [0xD3, 0xE0], { $0.shift(.shl, .d, .rax) }),
    ("shr rax, cl", [0x48, 0xD3, 0xE8], { $0.shift(.shr, .q, .rax) }),
    ("sar eax, cl", [0xD3, 0xF8], { $0.shift(.sar, .d, .rax) }),
    ("rol rax, cl", [0x48, 0xD3, 0xC0], { $0.shift(.rol, .q, .rax) }),
    ("ror eax, cl", [0xD3, 0xC8], { $0.shift(.ror, .d, .rax) }),
    ("shr rax, 0x10", [0x48, 0xC1, 0xE8, 0x10], { $0.shift(.shr, .q, .rax, by: 16) }),
    ("sar r9d, 0x3", [0x41, 0xC1, 0xF9, 0x03], { $0.shift(.sar, .d, .r9, by: 3) }),
    ("neg rax", [0x48, 0xF7, 0xD8], { $0.neg(.q, .rax) }),
    ("div ecx", [0xF7, 0xF1], { $0.div(.d, .rcx) }),
    ("div rcx", [0x48, 0xF7, 0xF1], { $0.div(.q, .rcx) }),
    ("idiv ecx", [0xF7, 0xF9], { $0.idiv(.d, .rcx) }),
    ("idiv r8", [0x49, 0xF7, 0xF8], { $0.idiv(.q, .r8) }),
    ("cdq", [0x99], { $0.signExtendAccumulator(.d) }),
    ("cqo", [0x48, 0x99], { $0.signExtendAccumulator(.q) }),
    ("bsr eax, ecx", [0x0F, 0xBD, 0xC1], { $0.bsr(.d, .rax, .rcx) }),
    ("bsf rax, rcx", [0x48, 0x0F, 0xBC, 0xC1], { $0.bsf(.q, .rax, .rcx) }),
    ("popcnt eax, ecx", [0xF3, 0x0F, 0xB8, 0xC1], { $0.popcnt(.d, .rax, .rcx) }),
    ("popcnt r8, r9", [0xF3, 0x4D, 0x0F, 0xB8, 0xC1], { $0.popcnt(.q, .r8, .r9) }),
    // Scalar SSE and SSE4.1 (floats).
    ("movd xmm0, eax", [0x66, 0x0F, 0x6E, 0xC0], { $0.movToXMM(.d, .xmm0, .rax) }),
    ("movd xmm9, r10d", [0x66, 0x45, 0x0F, 0x6E, 0xCA], { $0.movToXMM(.d, .xmm9, .r10) }),
    ("movq xmm1, rcx", [0x66, 0x48, 0x0F, 0x6E, 0xC9], { $0.movToXMM(.q, .xmm1, .rcx) }),
    ("movq xmm15, r8", [0x66, 0x4D, 0x0F, 0x6E, 0xF8], { $0.movToXMM(.q, .xmm15, .r8) }),
    ("movd eax, xmm0", [0x66, 0x0F, 0x7E, 0xC0], { $0.movFromXMM(.d, .rax, .xmm0) }),
    ("movd r11d, xmm2", [0x66, 0x41, 0x0F, 0x7E, 0xD3], { $0.movFromXMM(.d, .r11, .xmm2) }),
    ("movq rax, xmm1", [0x66, 0x48, 0x0F, 0x7E, 0xC8], { $0.movFromXMM(.q, .rax, .xmm1) }),
    ("movq r9, xmm12", [0x66, 0x4D, 0x0F, 0x7E, 0xE1], { $0.movFromXMM(.q, .r9, .xmm12) }),
    ("movss xmm0, dword ptr [rbp-0x18]", [0xF3, 0x0F, 0x10, 0x45, 0xE8], { $0.movScalar(.single, .xmm0, MemoryOperand.at(.rbp, -0x18)) }),
    ("movss xmm10, dword ptr [rcx+rax*1+0x4]", [0xF3, 0x44, 0x0F, 0x10, 0x54, 0x01, 0x04], { $0.movScalar(.single, .xmm10, MemoryOperand.at(.rcx, index: .rax, 4)) }),
    ("movsd xmm1, qword ptr [rbp-0x400]", [0xF2, 0x0F, 0x10, 0x8D, 0x00, 0xFC, 0xFF, 0xFF], { $0.movScalar(.double, .xmm1, MemoryOperand.at(.rbp, -0x400)) }),
    ("movss dword ptr [rbp-0x18], xmm0", [0xF3, 0x0F, 0x11, 0x45, 0xE8], { $0.movScalar(.single, MemoryOperand.at(.rbp, -0x18), .xmm0) }),
    ("movsd qword ptr [r15+0x8], xmm3", [0xF2, 0x41, 0x0F, 0x11, 0x5F, 0x08], { $0.movScalar(.double, MemoryOperand.at(.r15, 8), .xmm3) }),
    ("addss xmm0, xmm1", [0xF3, 0x0F, 0x58, 0xC1], { $0.floatArithmetic(.add, .single, .xmm0, .xmm1) }),
    ("subsd xmm2, xmm3", [0xF2, 0x0F, 0x5C, 0xD3], { $0.floatArithmetic(.sub, .double, .xmm2, .xmm3) }),
    ("mulss xmm8, xmm9", [0xF3, 0x45, 0x0F, 0x59, 0xC1], { $0.floatArithmetic(.mul, .single, .xmm8, .xmm9) }),
    ("divsd xmm0, xmm15", [0xF2, 0x41, 0x0F, 0x5E, 0xC7], { $0.floatArithmetic(.div, .double, .xmm0, .xmm15) }),
    ("minss xmm0, xmm1", [0xF3, 0x0F, 0x5D, 0xC1], { $0.floatArithmetic(.min, .single, .xmm0, .xmm1) }),
    ("maxsd xmm1, xmm0", [0xF2, 0x0F, 0x5F, 0xC8], { $0.floatArithmetic(.max, .double, .xmm1, .xmm0) }),
    ("sqrtss xmm0, xmm0", [0xF3, 0x0F, 0x51, 0xC0], { $0.floatArithmetic(.sqrt, .single, .xmm0, .xmm0) }),
    ("sqrtsd xmm1, xmm2", [0xF2, 0x0F, 0x51, 0xCA], { $0.floatArithmetic(.sqrt, .double, .xmm1, .xmm2) }),
    ("andps xmm0, xmm1", [0x0F, 0x54, 0xC1], { $0.floatBitwise(.and, .single, .xmm0, .xmm1) }),
    ("orpd xmm2, xmm3", [0x66, 0x0F, 0x56, 0xD3], { $0.floatBitwise(.or, .double, .xmm2, .xmm3) }),
    ("xorps xmm8, xmm1", [0x44, 0x0F, 0x57, 0xC1], { $0.floatBitwise(.xor, .single, .xmm8, .xmm1) }),
    ("andnpd xmm0, xmm9", [0x66, 0x41, 0x0F, 0x55, 0xC1], { $0.floatBitwise(.andNot, .double, .xmm0, .xmm9) }),
    ("ucomiss xmm0, xmm1", [0x0F, 0x2E, 0xC1], { $0.unorderedCompare(.single, .xmm0, .xmm1) }),
    ("ucomisd xmm9, xmm0", [0x66, 0x44, 0x0F, 0x2E, 0xC8], { $0.unorderedCompare(.double, .xmm9, .xmm0) }),
    ("cvtsi2ss xmm0, eax", [0xF3, 0x0F, 0x2A, 0xC0], { $0.convertIntegerToFloat(.single, .xmm0, .d, .rax) }),
    ("cvtsi2ss xmm1, rcx", [0xF3, 0x48, 0x0F, 0x2A, 0xC9], { $0.convertIntegerToFloat(.single, .xmm1, .q, .rcx) }),
    ("cvtsi2sd xmm0, r8d", [0xF2, 0x41, 0x0F, 0x2A, 0xC0], { $0.convertIntegerToFloat(.double, .xmm0, .d, .r8) }),
    ("cvtsi2sd xmm10, rax", [0xF2, 0x4C, 0x0F, 0x2A, 0xD0], { $0.convertIntegerToFloat(.double, .xmm10, .q, .rax) }),
    ("cvttss2si eax, xmm0", [0xF3, 0x0F, 0x2C, 0xC0], { $0.truncateFloatToInteger(.d, .rax, .single, .xmm0) }),
    ("cvttss2si rax, xmm1", [0xF3, 0x48, 0x0F, 0x2C, 0xC1], { $0.truncateFloatToInteger(.q, .rax, .single, .xmm1) }),
    ("cvttsd2si ecx, xmm9", [0xF2, 0x41, 0x0F, 0x2C, 0xC9], { $0.truncateFloatToInteger(.d, .rcx, .double, .xmm9) }),
    ("cvttsd2si r11, xmm2", [0xF2, 0x4C, 0x0F, 0x2C, 0xDA], { $0.truncateFloatToInteger(.q, .r11, .double, .xmm2) }),
    ("cvtss2sd xmm0, xmm1", [0xF3, 0x0F, 0x5A, 0xC1], { $0.convertPrecision(to: .double, .xmm0, .xmm1) }),
    ("cvtsd2ss xmm2, xmm0", [0xF2, 0x0F, 0x5A, 0xD0], { $0.convertPrecision(to: .single, .xmm2, .xmm0) }),
    ("roundss xmm0, xmm0, 0x8", [0x66, 0x0F, 0x3A, 0x0A, 0xC0, 0x08], { $0.round(.single, .xmm0, .xmm0, .nearest) }),
    ("roundss xmm1, xmm2, 0x9", [0x66, 0x0F, 0x3A, 0x0A, 0xCA, 0x09], { $0.round(.single, .xmm1, .xmm2, .floor) }),
    ("roundsd xmm0, xmm1, 0xa", [0x66, 0x0F, 0x3A, 0x0B, 0xC1, 0x0A], { $0.round(.double, .xmm0, .xmm1, .ceil) }),
    ("roundsd xmm8, xmm0, 0xb", [0x66, 0x44, 0x0F, 0x3A, 0x0B, 0xC0, 0x0B], { $0.round(.double, .xmm8, .xmm0, .trunc) }),
]

@Suite("x86_64 encodings match GNU as")
struct AssemblerEncodingTests {
    @Test("every instruction form encodes as `as` encodes it", arguments: encodingVectors.indices)
    func vector(_ index: Int) {
        let vector = encodingVectors[index]
        var assembler = Assembler()
        vector.emit(&assembler)
        #expect(assembler.bytes == vector.bytes, "\(vector.text)")
    }

    @Test("forward and backward branches resolve relative to the next instruction")
    func branches() throws {
        // 0: jmp forward (e9 rel32) ; 5: back: nop ; 6: jne back ; 12: forward: call back
        var a = Assembler()
        let forward = a.newLabel(), back = a.newLabel()
        a.jmp(forward)
        a.bind(back)
        a.nop()
        a.j(.notEqual, back)
        a.bind(forward)
        a.call(back)
        let code = try a.finish()
        // objdump of the same sequence assembled by `as` with `{disp32}` on the branches:
        //   e9 07 00 00 00 | 90 | 0f 85 f9 ff ff ff | e8 f4 ff ff ff
        #expect(code == [0xE9, 0x07, 0, 0, 0, 0x90, 0x0F, 0x85, 0xF9, 0xFF, 0xFF, 0xFF, 0xE8, 0xF4, 0xFF, 0xFF, 0xFF])
    }

    @Test("lea of a label is rip-relative to the end of the lea")
    func ripRelativeLabel() throws {
        // 0: lea rax, [rip+label] (48 8d 05 rel32, 7 bytes) ; 7: call r11 ; 10: label:
        var a = Assembler()
        let label = a.newLabel()
        a.lea(.rax, MemoryOperand.label(label))
        a.call(Register.r11)
        a.bind(label)
        #expect(try a.finish() == [0x48, 0x8D, 0x05, 0x03, 0, 0, 0, 0x41, 0xFF, 0xD3])
    }

    @Test("a rip-relative store with an immediate is relative to the end of the immediate")
    func ripRelativeWithImmediate() throws {
        // mov dword ptr [rip+label], 7 : c7 05 rel32 imm32 (10 bytes); label right after.
        var a = Assembler()
        let label = a.newLabel()
        a.mov(.d, MemoryOperand.label(label), immediate: 7)
        a.bind(label)
        #expect(try a.finish() == [0xC7, 0x05, 0, 0, 0, 0, 7, 0, 0, 0])
    }

    @Test("an unbound label is an error, not garbage code")
    func unboundLabel() {
        var a = Assembler()
        let label = a.newLabel()
        a.jmp(label)
        #expect(throws: AssemblerError.unboundLabel(0)) { try a.finish() }
    }

    @Test("a patchable immediate can be filled in after the body is known")
    func patchableSub() throws {
        var a = Assembler()
        let position = a.arithmeticWithPatchableImmediate(.sub, .rsp)
        a.patch32(at: position, 0x30)
        let added = a.arithmeticWithPatchableImmediate(.add, .rax)
        a.patch32(at: added, 0x50_010)
        // sub rsp, 0x30 and add rax, 0x50010 in their imm32 forms (GNU as
        // picks the same for a value that needs it)
        #expect(try a.finish() == [0x48, 0x81, 0xEC, 0x30, 0, 0, 0, 0x48, 0x81, 0xC0, 0x10, 0x00, 0x05, 0x00])
    }
}

@Suite("DWARF CFI encoding")
struct UnwindInfoEncodingTests {
    @Test("LEB128 encodings (examples from the DWARF 5 standard, section 7.6)")
    func leb128() {
        var unsigned: [UInt8] = []
        unsigned.appendULEB(624_485)
        #expect(unsigned == [0xE5, 0x8E, 0x26])
        var small: [UInt8] = []
        small.appendULEB(127)
        small.appendULEB(128)
        #expect(small == [0x7F, 0x80, 0x01])
        var signed: [UInt8] = []
        signed.appendSLEB(-8)
        signed.appendSLEB(-123_456)
        signed.appendSLEB(63)
        signed.appendSLEB(64)
        #expect(signed == [0x78, 0xC0, 0xBB, 0x78, 0x3F, 0xC0, 0x00])
    }

    @Test("advances pick the short forms: advance_loc, advance_loc1, advance_loc2, advance_loc4")
    func advances() {
        var out: [UInt8] = []
        var location = 0
        UnwindInfoEncoder.advance(from: &location, to: 0x3F, into: &out)
        UnwindInfoEncoder.advance(from: &location, to: 0x3F + 0x40, into: &out)
        UnwindInfoEncoder.advance(from: &location, to: 0x7F + 0x100, into: &out)
        UnwindInfoEncoder.advance(from: &location, to: 0x17F + 0x10000, into: &out)
        #expect(out == [0x7F, 0x02, 0x40, 0x03, 0x00, 0x01, 0x04, 0x00, 0x00, 0x01, 0x00])
        #expect(location == 0x1017F)
    }

    @Test("a wasm function's FDE: push rbp, mov rbp rsp, and the epilogue with remember/restore state")
    func functionInstructions() {
        let description = FrameDescription(codeRange: 0..<0xB5, events: [
            (1, .pushedFramePointer), (4, .establishedFramePointer),
            (0xB1, .rememberState), (0xB2, .poppedFramePointer), (0xB3, .restoreState),
        ])
        // readelf --debug-dump=frames of the same FDE (fixtures/programs/factorial.wat, function 1):
        //   advance_loc 1; def_cfa_offset 16; offset r6 at cfa-16; advance_loc 3;
        //   def_cfa_register r6; advance_loc1 173; remember_state; advance_loc 1;
        //   def_cfa r7 ofs 8; restore r6; advance_loc 1; restore_state
        #expect(UnwindInfoEncoder.instructions(for: description, style: .exact) == [
            0x41, 0x0E, 0x10, 0x86, 0x02, 0x43, 0x0D, 0x06, 0x02, 0xAD, 0x0A, 0x41, 0x0C, 0x07, 0x08, 0xC6, 0x41, 0x0B,
        ])
        // The deliberately wrong style never moves the CFA to rbp.
        #expect(!UnwindInfoEncoder.instructions(for: description, style: .deliberatelyWrongForTesting).contains(0x0D))
    }
}
