@_spi(Tools) import WasmUnwind

/// A minimal ELF64 little-endian writer for the object files that describe
/// JIT code to debuggers: sections with their addresses and bytes, and a
/// symbol table. Section and symbol names go in string tables the writer
/// builds. No program headers, no relocations: every address is final.
struct ELFWriter {
    enum SectionType: UInt32 {
        case progbits = 1, symtab = 2, strtab = 3, nobits = 8
    }

    struct Section {
        var name: String
        var type: SectionType
        var flags: UInt64
        var address: UInt64
        /// The contents (empty for `.nobits`).
        var bytes: [UInt8]
        /// The size a `.nobits` section claims.
        var nobitsSize: UInt64 = 0
        var alignment: UInt64 = 1
        var link: UInt32 = 0
        var info: UInt32 = 0
        var entrySize: UInt64 = 0
    }

    struct Symbol {
        var name: String
        /// Relative to its section's address (an `ET_REL` file's rule).
        var value: UInt64
        var size: UInt64
        var section: Int
        var isFunction = true
        var isGlobal = true
    }

    static let alloc: UInt64 = 0x2, execute: UInt64 = 0x4

    private(set) var sections: [Section] = []
    var symbols: [Symbol] = []

    /// Adds a section; returns its index (the null section is 0).
    mutating func add(_ section: Section) -> Int {
        sections.append(section)
        return sections.count
    }

    /// The file: header, section contents, then the section headers.
    func bytes(type: UInt16 = 1 /* ET_REL */) -> [UInt8] {
        var all = sections
        // The symbol table: the null symbol, locals, then globals.
        var strtab: [UInt8] = [0]
        var symtab = [UInt8](repeating: 0, count: 24)
        let ordered = symbols.filter { !$0.isGlobal } + symbols.filter(\.isGlobal)
        for symbol in ordered {
            symtab.appendLittleEndian(UInt32(strtab.count))
            strtab.append(contentsOf: symbol.name.utf8)
            strtab.append(0)
            let binding: UInt8 = symbol.isGlobal ? 1 : 0
            symtab.append(binding << 4 | (symbol.isFunction ? 2 : 0))  // st_info
            symtab.append(0)                                            // st_other: default visibility
            symtab.appendLittleEndian(UInt16(symbol.section))
            symtab.appendLittleEndian(symbol.value)
            symtab.appendLittleEndian(symbol.size)
        }
        let strtabIndex = all.count + 2
        all.append(Section(name: ".symtab", type: .symtab, flags: 0, address: 0, bytes: symtab, alignment: 8,
                           link: UInt32(strtabIndex), info: UInt32(1 + ordered.filter { !$0.isGlobal }.count),
                           entrySize: 24))
        all.append(Section(name: ".strtab", type: .strtab, flags: 0, address: 0, bytes: strtab))
        var shstrtab: [UInt8] = [0]
        var nameOffsets: [UInt32] = []
        for section in all + [Section(name: ".shstrtab", type: .strtab, flags: 0, address: 0, bytes: [])] {
            nameOffsets.append(UInt32(shstrtab.count))
            shstrtab.append(contentsOf: section.name.utf8)
            shstrtab.append(0)
        }
        all.append(Section(name: ".shstrtab", type: .strtab, flags: 0, address: 0, bytes: shstrtab))

        var out = [UInt8](repeating: 0, count: 64)
        var offsets: [UInt64] = []
        for section in all {
            while UInt64(out.count) % max(1, section.alignment) != 0 { out.append(0) }
            offsets.append(UInt64(out.count))
            if section.type != .nobits { out.append(contentsOf: section.bytes) }
        }
        while out.count % 8 != 0 { out.append(0) }
        let sectionHeaders = UInt64(out.count)
        out.append(contentsOf: [UInt8](repeating: 0, count: 64))  // the null section
        for (index, section) in all.enumerated() {
            out.appendLittleEndian(nameOffsets[index])
            out.appendLittleEndian(section.type.rawValue)
            out.appendLittleEndian(section.flags)
            out.appendLittleEndian(section.address)
            out.appendLittleEndian(offsets[index])
            out.appendLittleEndian(section.type == .nobits ? section.nobitsSize : UInt64(section.bytes.count))
            out.appendLittleEndian(section.link)
            out.appendLittleEndian(section.info)
            out.appendLittleEndian(section.alignment)
            out.appendLittleEndian(section.entrySize)
        }

        // The header.
        var header: [UInt8] = [0x7F, 0x45, 0x4C, 0x46, 2 /* 64-bit */, 1 /* little-endian */, 1 /* version */, 0]
        header.append(contentsOf: [UInt8](repeating: 0, count: 8))
        header.appendLittleEndian(type)
        header.appendLittleEndian(NativeArchitecture.elfMachine)
        header.appendLittleEndian(UInt32(1))           // e_version
        header.appendLittleEndian(UInt64(0))           // e_entry
        header.appendLittleEndian(UInt64(0))           // e_phoff
        header.appendLittleEndian(sectionHeaders)      // e_shoff
        header.appendLittleEndian(UInt32(0))           // e_flags
        header.appendLittleEndian(UInt16(64))          // e_ehsize
        header.appendLittleEndian(UInt16(0))           // e_phentsize
        header.appendLittleEndian(UInt16(0))           // e_phnum
        header.appendLittleEndian(UInt16(64))          // e_shentsize
        header.appendLittleEndian(UInt16(all.count + 1))  // e_shnum
        header.appendLittleEndian(UInt16(all.count))   // e_shstrndx: the last
        out.replaceSubrange(0..<64, with: header)
        return out
    }
}
