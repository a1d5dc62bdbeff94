/// An attribute's value as read from `.debug_info`, before it is resolved
/// against other sections (strings, addresses, ranges).
enum AttributeValue {
    case address(UInt64)
    case addressIndex(UInt64)
    case unsigned(UInt64)
    case signed(Int64)
    /// An offset into `.debug_str`.
    case stringOffset(UInt64)
    /// An offset into `.debug_line_str`.
    case lineStringOffset(UInt64)
    /// An index into the unit's `.debug_str_offsets` entries.
    case stringIndex(UInt64)
    case string(String)
    /// An absolute offset into `.debug_info`.
    case reference(UInt64)
    case sectionOffset(UInt64)
    case rangeListIndex(UInt64)
    case locationListIndex(UInt64)
    /// A block or expression: its bytes' offsets in `.debug_info`.
    case block(Range<Int>)
    /// A value this reader does not use (signatures, 16-byte constants).
    case other

    var integer: UInt64? {
        switch self {
        case .unsigned(let value), .sectionOffset(let value): return value
        case .signed(let value): return value >= 0 ? UInt64(value) : nil
        default: return nil
        }
    }
}

extension DWARFCursor {
    /// Reads one attribute's value of `form` for a unit of the given
    /// version and sizes; `unitOffset` makes unit-relative references
    /// absolute.
    mutating func attribute(form: UInt64, implicitConstant: Int64, unit: UnitHeader) throws(DWARFError) -> AttributeValue {
        var form = form
        var indirections = 0
        while form == DW.FORM.indirect {
            indirections += 1
            guard indirections <= 4 else { throw error("a form, found DW_FORM_indirect nested \(indirections) deep") }
            form = try uleb("an indirect form")
        }
        switch form {
        case DW.FORM.addr: return .address(try unsigned(size: unit.addressSize, "an address"))
        case DW.FORM.block1: return try block(UInt64(try u8("a block length")))
        case DW.FORM.block2: return try block(UInt64(try u16("a block length")))
        case DW.FORM.block4: return try block(UInt64(try u32("a block length")))
        case DW.FORM.block, DW.FORM.exprloc: return try block(try uleb("a block length"))
        case DW.FORM.data1: return .unsigned(UInt64(try u8("a constant")))
        case DW.FORM.data2: return .unsigned(UInt64(try u16("a constant")))
        case DW.FORM.data4: return .unsigned(UInt64(try u32("a constant")))
        case DW.FORM.data8: return .unsigned(try u64("a constant"))
        case DW.FORM.data16: try skip(16, "a 16-byte constant"); return .other
        case DW.FORM.sdata: return .signed(try sleb("a constant"))
        case DW.FORM.udata: return .unsigned(try uleb("a constant"))
        case DW.FORM.implicitConst: return .signed(implicitConstant)
        case DW.FORM.string: return .string(try cString("a string"))
        case DW.FORM.flag: return .unsigned(UInt64(try u8("a flag")))
        case DW.FORM.flagPresent: return .unsigned(1)
        case DW.FORM.strp: return .stringOffset(try sectionOffset(size: unit.offsetSize, "a string offset"))
        case DW.FORM.lineStrp: return .lineStringOffset(try sectionOffset(size: unit.offsetSize, "a line string offset"))
        case DW.FORM.strpSup, DW.FORM.refSup4: try skip(4, "a supplementary reference"); return .other
        case DW.FORM.refSup8, DW.FORM.refSig8: try skip(8, "a reference"); return .other
        case DW.FORM.secOffset: return .sectionOffset(try sectionOffset(size: unit.offsetSize, "a section offset"))
        case DW.FORM.refAddr:
            return .reference(try unsigned(size: unit.version <= 2 ? unit.addressSize : unit.offsetSize, "a reference"))
        case DW.FORM.ref1: return .reference(UInt64(unit.offset) &+ UInt64(try u8("a reference")))
        case DW.FORM.ref2: return .reference(UInt64(unit.offset) &+ UInt64(try u16("a reference")))
        case DW.FORM.ref4: return .reference(UInt64(unit.offset) &+ UInt64(try u32("a reference")))
        case DW.FORM.ref8: return .reference(UInt64(unit.offset) &+ (try u64("a reference")))
        case DW.FORM.refUdata: return .reference(UInt64(unit.offset) &+ (try uleb("a reference")))
        case DW.FORM.strx: return .stringIndex(try uleb("a string index"))
        case DW.FORM.strx1: return .stringIndex(try unsigned(size: 1, "a string index"))
        case DW.FORM.strx2: return .stringIndex(try unsigned(size: 2, "a string index"))
        case DW.FORM.strx3: return .stringIndex(try unsigned(size: 3, "a string index"))
        case DW.FORM.strx4: return .stringIndex(try unsigned(size: 4, "a string index"))
        case DW.FORM.addrx: return .addressIndex(try uleb("an address index"))
        case DW.FORM.addrx1: return .addressIndex(try unsigned(size: 1, "an address index"))
        case DW.FORM.addrx2: return .addressIndex(try unsigned(size: 2, "an address index"))
        case DW.FORM.addrx3: return .addressIndex(try unsigned(size: 3, "an address index"))
        case DW.FORM.addrx4: return .addressIndex(try unsigned(size: 4, "an address index"))
        case DW.FORM.loclistx: return .locationListIndex(try uleb("a location list index"))
        case DW.FORM.rnglistx: return .rangeListIndex(try uleb("a range list index"))
        default:
            throw error("an attribute form this reader knows, found 0x\(String(form, radix: 16))")
        }
    }

    private mutating func block(_ length: UInt64) throws(DWARFError) -> AttributeValue {
        let start = offset
        try skip(length, "a block")
        return .block(start..<offset)
    }
}
