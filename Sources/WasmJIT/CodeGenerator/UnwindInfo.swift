import CWasmUnwindABI
@_spi(Tools) import WasmUnwind
import CWasmRuntime
/// How a run of generated code changes its frame, instruction by
/// instruction, recorded by the code generator as it emits the code, so the
/// CFI describes exactly what the code does.
///
/// Offsets are from the start of the function or trampoline, and each event
/// takes effect at its offset (the first byte after the instruction that
/// caused it).
enum FrameEvent: Hashable, Sendable {
    /// `push rbp` executed: CFA = rsp + 16, rbp saved at CFA - 16.
    case pushedFramePointer
    /// `mov rbp, rsp` executed: CFA = rbp + 16 from here on.
    case establishedFramePointer
    /// A callee-saved register pushed at CFA - `cfaOffset`.
    case savedRegister(Register, cfaOffset: Int)
    /// A callee-saved register popped back.
    case restoredRegister(Register)
    /// The epilogue begins: remember the body's rules for code after `ret`.
    case rememberState
    /// `pop rbp` executed: CFA = rsp + 8, rbp holds the caller's value.
    case poppedFramePointer
    /// After `ret`: code reached by jumps from the body (trap stubs, failure
    /// paths) has the body's rules again.
    case restoreState
}

/// A run of code and how its frame evolves.
struct FrameDescription: Hashable, Sendable {
    var codeRange: Range<Int>
    var events: [(offset: Int, event: FrameEvent)]

    static func == (a: FrameDescription, b: FrameDescription) -> Bool {
        a.codeRange == b.codeRange && a.events.elementsEqual(b.events) { $0.offset == $1.offset && $0.event == $1.event }
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(codeRange)
        for (offset, event) in events {
            hasher.combine(offset)
            hasher.combine(event)
        }
    }
}

/// What CFI the code generator emits.
public enum UnwindInfoStyle: Hashable, Sendable {
    /// CFI that describes every instruction of every function and trampoline.
    case exact
    /// CFI that claims wasm functions never switch their CFA to rbp — wrong
    /// at every call site. It exists to prove that a comparison against
    /// libunwind really reads the CFI: with it, the comparison must fail.
    @_spi(Testing) case deliberatelyWrongForTesting
}

/// Where a module's unwind information lies in its code mapping (offsets
/// from the code base).
public struct UnwindInfoLayout: Hashable, Sendable {
    /// The `.eh_frame`-format CIE and FDEs, ending with a zero terminator.
    public var ehFrame: Range<Int>
    /// The search table: sorted pairs of int32 (code start - code base,
    /// FDE address - code base), padded to a multiple of 8 bytes.
    public var searchTable: Range<Int>
    /// Pairs in the search table that describe code (the padding pair, if
    /// any, is not counted).
    public var searchTableEntries: Int
    /// Offset of each FDE, in the order of the code they describe.
    public var fdeOffsets: [Int]
}

/// Encodes `.eh_frame` CIE and FDEs for generated code.
///
/// One CIE for everything: augmentation `zR` with FDE pointers encoded
/// `DW_EH_PE_pcrel | DW_EH_PE_sdata4` (position independent, so the CFI can
/// be laid out before the code's address is known), code alignment 1, data
/// alignment -8, return address in DWARF register 16, and the state at a
/// function's first instruction: CFA = rsp + 8, return address at CFA - 8.
enum UnwindInfoEncoder {
    // DWARF register numbers for x86_64.
    static func dwarfNumber(_ register: Register) -> UInt8 {
        switch register {
        case .rax: return 0
        case .rdx: return 1
        case .rcx: return 2
        case .rbx: return 3
        case .rsi: return 4
        case .rdi: return 5
        case .rbp: return 6
        case .rsp: return 7
        default: return register.rawValue  // r8-r15 are 8-15
        }
    }

    static let returnAddressRegister: UInt8 = 16

    /// Appends the CIE, one FDE per description and the search table to
    /// `bytes` (the code), 8-byte aligned. Descriptions must be sorted by
    /// code start.
    static func append(_ descriptions: [FrameDescription], style: UnwindInfoStyle, to bytes: inout [UInt8]) -> UnwindInfoLayout {
        align(&bytes, to: 8)
        let ehFrameStart = bytes.count

        // CIE
        let cieStart = bytes.count
        var cie: [UInt8] = []
        cie.appendLittleEndian(UInt32(0))               // CIE id
        cie.append(1)                                   // version
        cie.append(contentsOf: Array("zR".utf8) + [0])  // augmentation
        cie.appendULEB(1)                               // code alignment factor
        cie.appendSLEB(-8)                              // data alignment factor
        cie.appendULEB(UInt64(returnAddressRegister))
        cie.appendULEB(1)                               // augmentation data length
        cie.append(0x1B)                                // FDE pointers: pcrel | sdata4
        cie.append(contentsOf: [0x0C, dwarfNumber(.rsp), 8])          // DW_CFA_def_cfa rsp, 8
        cie.append(0x80 | returnAddressRegister); cie.append(1)       // DW_CFA_offset ra, CFA - 8
        appendRecord(cie, to: &bytes)

        var fdeOffsets: [Int] = []
        for description in descriptions {
            let fdeStart = bytes.count
            fdeOffsets.append(fdeStart)
            var fde: [UInt8] = []
            // CIE pointer: from this field back to the CIE.
            fde.appendLittleEndian(UInt32(fdeStart + 4 - cieStart))
            // pc_begin, pcrel: relative to the field's own offset.
            let pcBeginField = fdeStart + 4 + fde.count
            fde.appendLittleEndian(UInt32(bitPattern: Int32(description.codeRange.lowerBound - pcBeginField)))
            fde.appendLittleEndian(UInt32(description.codeRange.count))   // pc_range
            fde.appendULEB(0)                                             // augmentation data length
            fde.append(contentsOf: instructions(for: description, style: style))
            appendRecord(fde, to: &bytes)
        }
        bytes.appendLittleEndian(UInt32(0))  // zero-length terminator
        let ehFrameEnd = bytes.count

        align(&bytes, to: 8)
        let tableStart = bytes.count
        for (description, fde) in zip(descriptions, fdeOffsets) {
            bytes.appendLittleEndian(UInt32(description.codeRange.lowerBound))
            bytes.appendLittleEndian(UInt32(fde))
        }
        // libunwind counts the table in words: keep whole 8-byte units. One
        // pair is 8 bytes, so the table is always whole; nothing to pad.
        return UnwindInfoLayout(ehFrame: ehFrameStart..<ehFrameEnd, searchTable: tableStart..<bytes.count,
                                searchTableEntries: descriptions.count, fdeOffsets: fdeOffsets)
    }

    /// Bytes of the CIE `append` writes.
    static let cieSize = 24

    /// Bytes of the FDE `append` writes for `description`.
    static func fdeSize(for description: FrameDescription, style: UnwindInfoStyle) -> Int {
        let body = 4 + 4 + 4 + 1 + instructions(for: description, style: style).count
        return 4 + (body + 4 + 7) / 8 * 8 - 4
    }

    /// The room left after a routine for a profiler to map its unwinding
    /// data there (perf's jitdump: `perf inject` places the code at 0 of
    /// its ELF's text, the standalone `.eh_frame` 8-aligned after it, then
    /// the `.eh_frame_hdr`): padding to 8 bytes, the CIE, the FDE, the
    /// terminator and a one-entry header (version, encodings, the
    /// `.eh_frame` pointer, the count, one table entry: 20 bytes). Routines
    /// packed closer get no unwinding record (it would cover the next one).
    static func standaloneUnwindingRoom(after description: FrameDescription, style: UnwindInfoStyle) -> Int {
        let codeSize = description.codeRange.count
        return ((codeSize + 7) & ~7) - codeSize + cieSize + fdeSize(for: description, style: style) + 4 + 20
    }

    /// The call frame instructions of one FDE.
    static func instructions(for description: FrameDescription, style: UnwindInfoStyle) -> [UInt8] {
        var out: [UInt8] = []
        var location = 0
        for (offset, event) in description.events {
            advance(from: &location, to: offset, into: &out)
            switch event {
            case .pushedFramePointer:
                out.append(0x0E); out.appendULEB(16)                       // def_cfa_offset 16
                out.append(0x80 | dwarfNumber(.rbp)); out.appendULEB(2)     // rbp at CFA - 16
            case .establishedFramePointer:
                if style == .exact {
                    out.append(0x0D); out.appendULEB(UInt64(dwarfNumber(.rbp)))  // def_cfa_register rbp
                }
            case .savedRegister(let register, let cfaOffset):
                out.append(0x80 | dwarfNumber(register)); out.appendULEB(UInt64(cfaOffset / 8))
            case .restoredRegister(let register):
                out.append(0xC0 | dwarfNumber(register))                          // DW_CFA_restore
            case .rememberState:
                out.append(0x0A)
            case .poppedFramePointer:
                out.append(0x0C); out.append(dwarfNumber(.rsp)); out.appendULEB(8)  // def_cfa rsp, 8
                out.append(0xC0 | dwarfNumber(.rbp))                                    // restore rbp
            case .restoreState:
                out.append(0x0B)
            }
        }
        return out
    }

    static func advance(from location: inout Int, to offset: Int, into out: inout [UInt8]) {
        let delta = offset - location
        precondition(delta >= 0, "frame events out of order")
        if delta == 0 { return }
        if delta < 0x40 {
            out.append(0x40 | UInt8(delta))                                 // DW_CFA_advance_loc
        } else if delta <= 0xFF {
            out.append(0x02); out.append(UInt8(delta))                      // advance_loc1
        } else if delta <= 0xFFFF {
            out.append(0x03); out.appendLittleEndian(UInt16(delta))         // advance_loc2
        } else {
            out.append(0x04); out.appendLittleEndian(UInt32(delta))         // advance_loc4
        }
        location = offset
    }

    /// A length-prefixed record padded with DW_CFA_nop to a multiple of 8
    /// bytes (length included).
    static func appendRecord(_ body: [UInt8], to bytes: inout [UInt8]) {
        var body = body
        while (body.count + 4) % 8 != 0 { body.append(0) }
        bytes.appendLittleEndian(UInt32(body.count))
        bytes.append(contentsOf: body)
    }

    static func align(_ bytes: inout [UInt8], to alignment: Int) {
        while bytes.count % alignment != 0 { bytes.append(0xCC) }
    }
}

extension FrameDescription {
    /// Where the frame changes, as the sampling profiler reads it
    /// (`wu_frame_state`): module code offsets and the state from each on,
    /// ending with `WU_FRAME_NONE` after the routine. The same events the
    /// CFI is made of, so both describe every instruction alike.
    var stateTransitions: [(offset: Int, state: wu_frame_state)] {
        var transitions: [(offset: Int, state: wu_frame_state)] = [(codeRange.lowerBound, WU_FRAME_AT_ENTRY)]
        for (offset, event) in events {
            let state: wu_frame_state
            switch event {
            case .pushedFramePointer: state = WU_FRAME_PUSHED
            case .establishedFramePointer, .restoreState: state = WU_FRAME_ESTABLISHED
            case .poppedFramePointer: state = WU_FRAME_AT_RETURN
            case .savedRegister, .restoredRegister, .rememberState: continue
            }
            let at = codeRange.lowerBound + offset
            if transitions.last?.offset == at { transitions.removeLast() }
            transitions.append((at, state))
        }
        transitions.append((codeRange.upperBound, WU_FRAME_NONE))
        return transitions
    }
}
