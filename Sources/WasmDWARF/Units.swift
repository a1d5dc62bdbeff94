/// A unit's header in `.debug_info` (DWARF 2 to 5): where it is, its
/// format and address size, its abbreviations.
struct UnitHeader {
    /// The header's first byte, in `.debug_info`.
    var offset: Int
    /// One past the unit's last byte.
    var end: Int
    var version: UInt16
    var offsetSize: Int
    var addressSize: Int
    var abbreviationOffset: UInt64
    /// The first DIE's offset.
    var firstEntry: Int

    /// Reads the header at `cursor`'s offset and moves past the unit.
    static func read(_ cursor: inout DWARFCursor) throws(DWARFError) -> UnitHeader {
        let offset = cursor.offset
        let (length, offsetSize) = try cursor.initialLength("a unit length")
        var unit = try cursor.sub(length, "the unit")
        let version = try unit.u16("the unit version")
        guard (2...5).contains(version) else { throw unit.error("DWARF version 2 to 5, found \(version)", at: offset) }
        var abbreviations: UInt64
        var addressSize: UInt8
        if version >= 5 {
            let type = try unit.u8("the unit type")
            addressSize = try unit.u8("the address size")
            abbreviations = try unit.sectionOffset(size: offsetSize, "the abbreviation offset")
            switch type {
            case 1, 3: break  // compile, partial
            case 2, 6: try unit.skip(UInt64(8 + offsetSize), "the type signature and offset")  // type, split type
            case 4, 5: try unit.skip(8, "the unit id")  // skeleton, split compile
            default: throw unit.error("a unit type 1 to 6, found \(type)", at: offset)
            }
        } else {
            abbreviations = try unit.sectionOffset(size: offsetSize, "the abbreviation offset")
            addressSize = try unit.u8("the address size")
        }
        guard addressSize == 4 || addressSize == 8 else {
            throw unit.error("an address size of 4 or 8, found \(addressSize)", at: offset)
        }
        return UnitHeader(offset: offset, end: cursor.offset, version: version, offsetSize: offsetSize,
                          addressSize: Int(addressSize), abbreviationOffset: abbreviations, firstEntry: unit.offset)
    }

    /// The address that marks dead code (wasm-ld and lld write all ones,
    /// or all ones but one in ranges).
    var tombstone: UInt64 { addressSize == 4 ? 0xffff_fffe : 0xffff_ffff_ffff_fffe }
}

/// One DIE's tag, whether children follow, and the attributes this reader
/// wants (the others are read past).
struct Entry {
    var offset: Int
    var tag: UInt64
    var hasChildren: Bool
    var attributes: [(name: UInt64, value: AttributeValue)]

    func value(_ name: UInt64) -> AttributeValue? {
        for attribute in attributes where attribute.name == name { return attribute.value }
        return nil
    }
}

extension DWARFCursor {
    /// The DIE here, or nil for a null entry (the end of a sibling list).
    /// Only the attributes in `wanted` are kept.
    mutating func entry(unit: UnitHeader, abbreviations: AbbreviationTable, wanted: Set<UInt64>) throws(DWARFError) -> Entry? {
        let offset = self.offset
        let code = try uleb("an abbreviation code")
        if code == 0 { return nil }
        guard let abbreviation = abbreviations[code] else {
            throw error("an abbreviation code of the unit's table, found \(code)", at: offset)
        }
        var attributes: [(name: UInt64, value: AttributeValue)] = []
        for attribute in abbreviation.attributes {
            let value = try self.attribute(form: attribute.form, implicitConstant: attribute.implicitConstant, unit: unit)
            if wanted.contains(attribute.name) { attributes.append((attribute.name, value)) }
        }
        return Entry(offset: offset, tag: abbreviation.tag, hasChildren: abbreviation.hasChildren, attributes: attributes)
    }
}
