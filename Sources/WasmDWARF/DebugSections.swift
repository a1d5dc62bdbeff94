/// The debug sections of one module, as slices of its binary (or of a
/// separate debug file); a missing section is empty.
struct DebugSections: Sendable {
    var info: ArraySlice<UInt8> = []
    var abbrev: ArraySlice<UInt8> = []
    var line: ArraySlice<UInt8> = []
    var str: ArraySlice<UInt8> = []
    var lineStr: ArraySlice<UInt8> = []
    var ranges: ArraySlice<UInt8> = []
    var rnglists: ArraySlice<UInt8> = []
    var addr: ArraySlice<UInt8> = []
    var strOffsets: ArraySlice<UInt8> = []
    var loc: ArraySlice<UInt8> = []
    var loclists: ArraySlice<UInt8> = []

    init(bytes: [UInt8], sections: WasmSections) {
        func slice(_ name: String) -> ArraySlice<UInt8> {
            guard let range = sections.custom[name] else { return [] }
            return bytes[range]
        }
        info = slice(".debug_info")
        abbrev = slice(".debug_abbrev")
        line = slice(".debug_line")
        str = slice(".debug_str")
        lineStr = slice(".debug_line_str")
        ranges = slice(".debug_ranges")
        rnglists = slice(".debug_rnglists")
        addr = slice(".debug_addr")
        strOffsets = slice(".debug_str_offsets")
        loc = slice(".debug_loc")
        loclists = slice(".debug_loclists")
    }
}

/// What a unit's root DIE says about the whole unit.
struct UnitRoot {
    var name: String?
    var compilationDirectory: String?
    var lineProgram: UInt64?
    var lowPC: UInt64 = 0
    var strOffsetsBase: UInt64 = 0
    var addrBase: UInt64 = 0
    var rnglistsBase: UInt64 = 0
    var loclistsBase: UInt64 = 0
    var ranges: [Range<UInt64>] = []
}

extension DebugSections {
    /// A string attribute's text.
    func string(_ value: AttributeValue, unit: UnitHeader, root: UnitRoot) throws(DWARFError) -> String? {
        switch value {
        case .string(let text): return text
        case .stringOffset(let offset): return try WasmDWARF.string(in: str, at: offset, name: ".debug_str")
        case .lineStringOffset(let offset): return try WasmDWARF.string(in: lineStr, at: offset, name: ".debug_line_str")
        case .stringIndex(let index):
            let offset = try offsetTableEntry(index, of: strOffsets, ".debug_str_offsets", base: root.strOffsetsBase, unit: unit,
                                              "string index \(index) inside the section", "a string offset")
            return try WasmDWARF.string(in: str, at: offset, name: ".debug_str")
        default:
            return nil
        }
    }

    /// Entry `index` of the offsets table at `base` in `section` (DWARF 5's
    /// `.debug_str_offsets`, and the tables at the start of
    /// `.debug_rnglists` and `.debug_loclists`): an offset of the unit's
    /// offset size, every step checked.
    func offsetTableEntry(_ index: UInt64, of section: ArraySlice<UInt8>, _ name: String, base: UInt64, unit: UnitHeader,
                          _ expected: String, _ what: String) throws(DWARFError) -> UInt64 {
        let (position, overflow) = index.multipliedReportingOverflow(by: UInt64(unit.offsetSize))
        let (at, overflow2) = base.addingReportingOverflow(position)
        guard !overflow, !overflow2, at < UInt64(section.count) else {
            throw DWARFError(section: name, offset: Int(clamping: base), expected: expected)
        }
        var cursor = DWARFCursor(section, section: name, offset: Int(at))
        return try cursor.sectionOffset(size: unit.offsetSize, what)
    }

    /// An address attribute's address (indexed ones through `.debug_addr`).
    func address(_ value: AttributeValue, unit: UnitHeader, root: UnitRoot) throws(DWARFError) -> UInt64? {
        switch value {
        case .address(let address): return address
        case .addressIndex(let index): return try indexedAddress(index, unit: unit, root: root)
        default: return nil
        }
    }

    func indexedAddress(_ index: UInt64, unit: UnitHeader, root: UnitRoot) throws(DWARFError) -> UInt64 {
        let (position, overflow) = index.multipliedReportingOverflow(by: UInt64(unit.addressSize))
        let (at, overflow2) = root.addrBase.addingReportingOverflow(position)
        guard !overflow, !overflow2, at < UInt64(addr.count) else {
            throw DWARFError(section: ".debug_addr", offset: Int(clamping: root.addrBase), expected: "address index \(index) inside the section")
        }
        var cursor = DWARFCursor(addr, section: ".debug_addr", offset: Int(at))
        return try cursor.unsigned(size: unit.addressSize, "an address")
    }

    /// The address ranges of a DIE: `DW_AT_low_pc`/`high_pc` or
    /// `DW_AT_ranges` (`.debug_ranges` before DWARF 5, `.debug_rnglists`
    /// since). Empty and dead (tombstone) ranges are left out.
    func ranges(of entry: Entry, unit: UnitHeader, root: UnitRoot) throws(DWARFError) -> [Range<UInt64>] {
        if let value = entry.value(DW.AT.ranges) {
            return try rangeList(value, unit: unit, root: root)
        }
        guard let lowValue = entry.value(DW.AT.lowPC), let low = try address(lowValue, unit: unit, root: root),
              let highValue = entry.value(DW.AT.highPC) else { return [] }
        var high: UInt64
        switch highValue {
        case .address, .addressIndex: high = try address(highValue, unit: unit, root: root) ?? low
        default: high = low &+ (highValue.integer ?? 0)
        }
        guard low < high, low < unit.tombstone else { return [] }
        return [low..<high]
    }

    private func rangeList(_ value: AttributeValue, unit: UnitHeader, root: UnitRoot) throws(DWARFError) -> [Range<UInt64>] {
        var result: [Range<UInt64>] = []
        func add(_ low: UInt64, _ high: UInt64) {
            if low < high, low < unit.tombstone { result.append(low..<high) }
        }
        if unit.version < 5 {
            guard let offset = value.integer, offset < UInt64(ranges.count) else {
                throw DWARFError(section: ".debug_ranges", offset: 0, expected: "a range list offset inside the section")
            }
            var cursor = DWARFCursor(ranges, section: ".debug_ranges", offset: Int(offset))
            let largest: UInt64 = unit.addressSize == 4 ? 0xffff_ffff : .max
            var base = root.lowPC
            while true {
                let begin = try cursor.unsigned(size: unit.addressSize, "a range's start")
                let end = try cursor.unsigned(size: unit.addressSize, "a range's end")
                if begin == 0 && end == 0 { break }
                if begin == largest { base = end; continue }
                add(base &+ begin, base &+ end)
            }
            return result
        }
        var offset: UInt64
        switch value {
        case .rangeListIndex(let index):
            offset = root.rnglistsBase &+ (try offsetTableEntry(index, of: rnglists, ".debug_rnglists", base: root.rnglistsBase, unit: unit,
                                                                "range list index \(index) inside the offsets table", "a range list offset"))
        default:
            offset = value.integer ?? .max
        }
        guard offset < UInt64(rnglists.count) else {
            throw DWARFError(section: ".debug_rnglists", offset: Int(clamping: offset), expected: "a range list inside the section")
        }
        var cursor = DWARFCursor(rnglists, section: ".debug_rnglists", offset: Int(offset))
        var base = root.lowPC
        while true {
            switch try cursor.u8("a range list entry kind") {
            case 0: return result
            case 1: base = try indexedAddress(try cursor.uleb("a base address index"), unit: unit, root: root)
            case 2:
                let low = try indexedAddress(try cursor.uleb("a start index"), unit: unit, root: root)
                add(low, try indexedAddress(try cursor.uleb("an end index"), unit: unit, root: root))
            case 3:
                let low = try indexedAddress(try cursor.uleb("a start index"), unit: unit, root: root)
                add(low, low &+ (try cursor.uleb("a length")))
            case 4:
                let low = try cursor.uleb("a start offset"), high = try cursor.uleb("an end offset")
                add(base &+ low, base &+ high)
            case 5: base = try cursor.unsigned(size: unit.addressSize, "a base address")
            case 6:
                let low = try cursor.unsigned(size: unit.addressSize, "a start"), high = try cursor.unsigned(size: unit.addressSize, "an end")
                add(low, high)
            case 7:
                let low = try cursor.unsigned(size: unit.addressSize, "a start")
                add(low, low &+ (try cursor.uleb("a length")))
            case let kind:
                throw cursor.error("a range list entry kind 0 to 7, found \(kind)")
            }
        }
    }
}
