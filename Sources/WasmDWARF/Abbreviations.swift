/// One abbreviation of `.debug_abbrev`: a DIE's tag, whether it has
/// children, and its attributes' names and forms.
struct Abbreviation {
    struct Attribute {
        var name: UInt64
        var form: UInt64
        /// DW_FORM_implicit_const's value, kept in the abbreviation.
        var implicitConstant: Int64
    }

    var tag: UInt64
    var hasChildren: Bool
    var attributes: [Attribute]
}

/// The abbreviation table at one offset of `.debug_abbrev`, by code.
struct AbbreviationTable {
    /// Codes 1...n in order are the common case: kept in an array.
    private var dense: [Abbreviation?] = []
    private var sparse: [UInt64: Abbreviation] = [:]

    init(_ section: ArraySlice<UInt8>, at offset: UInt64) throws(DWARFError) {
        guard offset < UInt64(section.count) else {
            throw DWARFError(section: ".debug_abbrev", offset: Int(clamping: offset), expected: "an abbreviation table inside the section")
        }
        var cursor = DWARFCursor(section, section: ".debug_abbrev", offset: Int(offset))
        while true {
            let code = try cursor.uleb("an abbreviation code")
            if code == 0 { break }
            let tag = try cursor.uleb("a tag")
            let children = try cursor.u8("the children flag")
            var attributes: [Abbreviation.Attribute] = []
            while true {
                let name = try cursor.uleb("an attribute name")
                let form = try cursor.uleb("an attribute form")
                if name == 0 && form == 0 { break }
                let constant = form == DW.FORM.implicitConst ? try cursor.sleb("an implicit constant") : 0
                attributes.append(Abbreviation.Attribute(name: name, form: form, implicitConstant: constant))
            }
            let abbreviation = Abbreviation(tag: tag, hasChildren: children != 0, attributes: attributes)
            if code <= 4096 {
                let index = Int(code)
                if dense.count <= index { dense.append(contentsOf: repeatElement(nil, count: index + 1 - dense.count)) }
                dense[index] = abbreviation
            } else {
                sparse[code] = abbreviation
            }
        }
    }

    subscript(code: UInt64) -> Abbreviation? {
        if code < UInt64(dense.count) { return dense[Int(code)] }
        return sparse[code]
    }
}

/// The DWARF constants this reader uses (DWARF 5, section 7).
enum DW {
    enum TAG {
        static let compileUnit: UInt64 = 0x11
        static let partialUnit: UInt64 = 0x3c
        static let skeletonUnit: UInt64 = 0x4a
        static let subprogram: UInt64 = 0x2e
        static let inlinedSubroutine: UInt64 = 0x1d
        static let formalParameter: UInt64 = 0x05
        static let variable: UInt64 = 0x34
        static let lexicalBlock: UInt64 = 0x0b
    }

    enum AT {
        static let location: UInt64 = 0x02
        static let name: UInt64 = 0x03
        static let stmtList: UInt64 = 0x10
        static let lowPC: UInt64 = 0x11
        static let highPC: UInt64 = 0x12
        static let compDir: UInt64 = 0x1b
        static let abstractOrigin: UInt64 = 0x31
        static let specification: UInt64 = 0x47
        static let ranges: UInt64 = 0x55
        static let callColumn: UInt64 = 0x57
        static let callFile: UInt64 = 0x58
        static let callLine: UInt64 = 0x59
        static let linkageName: UInt64 = 0x6e
        static let mipsLinkageName: UInt64 = 0x2007
        static let strOffsetsBase: UInt64 = 0x72
        static let addrBase: UInt64 = 0x73
        static let rnglistsBase: UInt64 = 0x74
        static let loclistsBase: UInt64 = 0x8c
    }

    enum FORM {
        static let addr: UInt64 = 0x01
        static let block2: UInt64 = 0x03
        static let block4: UInt64 = 0x04
        static let data2: UInt64 = 0x05
        static let data4: UInt64 = 0x06
        static let data8: UInt64 = 0x07
        static let string: UInt64 = 0x08
        static let block: UInt64 = 0x09
        static let block1: UInt64 = 0x0a
        static let data1: UInt64 = 0x0b
        static let flag: UInt64 = 0x0c
        static let sdata: UInt64 = 0x0d
        static let strp: UInt64 = 0x0e
        static let udata: UInt64 = 0x0f
        static let refAddr: UInt64 = 0x10
        static let ref1: UInt64 = 0x11
        static let ref2: UInt64 = 0x12
        static let ref4: UInt64 = 0x13
        static let ref8: UInt64 = 0x14
        static let refUdata: UInt64 = 0x15
        static let indirect: UInt64 = 0x16
        static let secOffset: UInt64 = 0x17
        static let exprloc: UInt64 = 0x18
        static let flagPresent: UInt64 = 0x19
        static let strx: UInt64 = 0x1a
        static let addrx: UInt64 = 0x1b
        static let refSup4: UInt64 = 0x1c
        static let strpSup: UInt64 = 0x1d
        static let data16: UInt64 = 0x1e
        static let lineStrp: UInt64 = 0x1f
        static let refSig8: UInt64 = 0x20
        static let implicitConst: UInt64 = 0x21
        static let loclistx: UInt64 = 0x22
        static let rnglistx: UInt64 = 0x23
        static let refSup8: UInt64 = 0x24
        static let strx1: UInt64 = 0x25
        static let strx2: UInt64 = 0x26
        static let strx3: UInt64 = 0x27
        static let strx4: UInt64 = 0x28
        static let addrx1: UInt64 = 0x29
        static let addrx2: UInt64 = 0x2a
        static let addrx3: UInt64 = 0x2b
        static let addrx4: UInt64 = 0x2c
    }
}
