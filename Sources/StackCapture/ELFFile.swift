@_spi(Tools) import WasmUnwind

/// Why an ELF file (a core, or the program that crashed) could not be
/// read: the file when it is not the one the caller names anyway, the byte
/// and field, and what was wrong.
public struct CoreFileError: Error, CustomStringConvertible, Sendable {
    /// The file the problem is in, when it is not the core being read (the
    /// executable given with `--exe`).
    public var file: String?
    public var offset: Int?
    public var problem: String

    public init(file: String? = nil, offset: Int?, problem: String) {
        self.file = file
        self.offset = offset
        self.problem = problem
    }

    public var description: String {
        (file.map { "\($0): " } ?? "") + (offset.map { "at byte \($0): \(problem)" } ?? problem)
    }
}

/// Little-endian fields of an ELF file, every one bounds-checked; values
/// that become offsets or sizes are checked to fit before they are used.
struct ELFFields {
    let input: InputBytes
    /// Named in errors (the executable); nil for the core being read.
    let file: String?

    func error(_ offset: Int?, _ problem: String) -> CoreFileError {
        CoreFileError(file: file, offset: offset, problem: problem)
    }

    func value(_ at: Int, _ size: Int, _ field: String) throws(CoreFileError) -> UInt64 {
        guard let bytes = input.bytes(at: at, count: size) else {
            throw error(at, "\(field) (\(size) bytes) lies past the end of the file (\(input.count) bytes; truncated?)")
        }
        var value: UInt64 = 0
        for byte in bytes.reversed() { value = value << 8 | UInt64(byte) }
        return value
    }

    func u8(_ at: Int, _ field: String) throws(CoreFileError) -> UInt8 { UInt8(try value(at, 1, field)) }
    func u16(_ at: Int, _ field: String) throws(CoreFileError) -> UInt16 { UInt16(try value(at, 2, field)) }
    func u32(_ at: Int, _ field: String) throws(CoreFileError) -> UInt32 { UInt32(try value(at, 4, field)) }
    func u64(_ at: Int, _ field: String) throws(CoreFileError) -> UInt64 { try value(at, 8, field) }

    /// A 64-bit field that is an offset into the file: it must lie in it.
    func offset(_ at: Int, _ field: String) throws(CoreFileError) -> Int {
        let value = try u64(at, field)
        guard value <= UInt64(input.count) else {
            throw error(at, "\(field) is \(hex(UInt(value))), past the end of the file (\(input.count) bytes)")
        }
        return Int(value)
    }

    /// `offset + index * stride`, or an error if that overflows.
    func position(_ offset: Int, _ index: Int, _ stride: Int, _ field: String) throws(CoreFileError) -> Int {
        let (scaled, o1) = index.multipliedReportingOverflow(by: stride)
        let (sum, o2) = offset.addingReportingOverflow(scaled)
        guard !o1, !o2 else { throw error(offset, "\(field) \(index) lies past any file") }
        return sum
    }
}

/// The headers of a 64-bit little-endian ELF file that a post-mortem
/// reader needs: program headers (with `PN_XNUM` extended numbering, as
/// cores of many mappings use), section headers, notes.
struct ELFFile {
    struct ProgramHeader {
        var type: UInt32
        var fileOffset: Int
        var virtualAddress: UInt
        var fileSize: Int
        var memorySize: UInt
        /// Where this header is in the file, for errors.
        var headerOffset: Int
    }

    struct SectionHeader {
        var type: UInt32
        var fileOffset: Int
        var size: Int
        var link: Int
        var headerOffset: Int
    }

    struct Note {
        var name: [UInt8]
        var type: UInt32
        /// Where the note's description starts, and its size.
        var offset: Int
        var size: Int
    }

    static let pointNumberExtended = 0xFFFF
    /// More program headers than any real core has (a core lists one per
    /// mapping): a count past this is corrupt.
    static let maximumProgramHeaders = 4_000_000
    static let maximumSectionHeaders = 4_000_000

    let fields: ELFFields
    let type: UInt16
    let machine: UInt16
    private(set) var programHeaders: [ProgramHeader] = []

    init(_ input: InputBytes, file: String?) throws(CoreFileError) {
        fields = ELFFields(input: input, file: file)
        guard input.starts(with: [0x7F, 0x45, 0x4C, 0x46]) else { throw fields.error(0, "not an ELF file") }
        let elfClass = try fields.u8(4, "e_ident[EI_CLASS]"), data = try fields.u8(5, "e_ident[EI_DATA]")
        guard elfClass == 2, data == 1 else {
            throw fields.error(4, "not a 64-bit little-endian ELF file (class \(elfClass), data \(data))")
        }
        type = try fields.u16(16, "e_type")
        machine = try fields.u16(18, "e_machine")
        let phoff = try fields.offset(32, "e_phoff")
        let phentsize = Int(try fields.u16(54, "e_phentsize"))
        var phnum = Int(try fields.u16(56, "e_phnum"))
        if phnum == Self.pointNumberExtended {
            // The real count is section header 0's sh_info.
            let shoff = try fields.offset(40, "e_shoff")
            phnum = Int(try fields.u32(try fields.position(shoff, 0, 1, "section header") + 44, "sh_info of section 0 (the program header count)"))
        }
        guard phnum == 0 || phentsize >= 56 else { throw fields.error(54, "e_phentsize is \(phentsize), less than 56") }
        guard phnum <= Self.maximumProgramHeaders else {
            throw fields.error(56, "\(phnum) program headers: more than any real file has")
        }
        let needed = phnum * phentsize
        guard needed <= input.count - phoff else {
            throw fields.error(32, "the \(phnum) program headers at \(phoff) run past the end of the file (\(input.count) bytes; truncated?)")
        }
        programHeaders.reserveCapacity(phnum)
        for index in 0..<phnum {
            let at = phoff + index * phentsize
            let header = ProgramHeader(
                type: try fields.u32(at, "p_type of program header \(index)"),
                fileOffset: Int(clamping: try fields.u64(at + 8, "p_offset of program header \(index)")),
                virtualAddress: UInt(try fields.u64(at + 16, "p_vaddr of program header \(index)")),
                fileSize: Int(clamping: try fields.u64(at + 32, "p_filesz of program header \(index)")),
                memorySize: UInt(try fields.u64(at + 40, "p_memsz of program header \(index)")),
                headerOffset: at)
            programHeaders.append(header)
        }
    }

    /// The part of a segment's file bytes that the file really has (a
    /// truncated core keeps a prefix): `(offset, size)`.
    func presentBytes(of header: ProgramHeader) -> (offset: Int, size: Int) {
        guard header.fileOffset <= fields.input.count else { return (header.fileOffset, 0) }
        return (header.fileOffset, min(header.fileSize, fields.input.count - header.fileOffset))
    }

    /// The section headers (none if the file has no table).
    func sectionHeaders() throws(CoreFileError) -> [SectionHeader] {
        let shoff = try fields.offset(40, "e_shoff")
        let shentsize = Int(try fields.u16(58, "e_shentsize"))
        var shnum = Int(try fields.u16(60, "e_shnum"))
        if shoff == 0 { return [] }
        if shnum == 0 { shnum = Int(clamping: try fields.u64(shoff + 32, "sh_size of section 0 (the section count)")) }
        guard shentsize >= 64 else { throw fields.error(58, "e_shentsize is \(shentsize), less than 64") }
        guard shnum <= Self.maximumSectionHeaders, shnum * shentsize <= fields.input.count - shoff else {
            throw fields.error(40, "the \(shnum) section headers at \(shoff) run past the end of the file (\(fields.input.count) bytes; truncated?)")
        }
        var headers: [SectionHeader] = []
        for index in 0..<shnum {
            let at = shoff + index * shentsize
            headers.append(SectionHeader(
                type: try fields.u32(at + 4, "sh_type of section \(index)"),
                fileOffset: Int(clamping: try fields.u64(at + 24, "sh_offset of section \(index)")),
                size: Int(clamping: try fields.u64(at + 32, "sh_size of section \(index)")),
                link: Int(try fields.u32(at + 40, "sh_link of section \(index)")),
                headerOffset: at))
        }
        return headers
    }

    /// The notes in `size` bytes at `offset` (a `PT_NOTE` segment or an
    /// `SHT_NOTE` section), each checked to lie inside it.
    func notes(at offset: Int, size: Int, what: String) throws(CoreFileError) -> [Note] {
        guard let bytes = fields.input.bytes(at: offset, count: size) else {
            throw fields.error(offset, "\(what) (\(size) bytes) runs past the end of the file (truncated?)")
        }
        var notes: [Note] = []
        var at = 0
        while at + 12 <= bytes.count {
            func word(_ position: Int) -> Int {
                Int(UInt32(bytes[position]) | UInt32(bytes[position + 1]) << 8 | UInt32(bytes[position + 2]) << 16
                    | UInt32(bytes[position + 3]) << 24)
            }
            let nameSize = word(at), descriptionSize = word(at + 4), type = UInt32(word(at + 8))
            let nameStart = at + 12
            let description = nameStart + (nameSize + 3) / 4 * 4
            guard description <= bytes.count, descriptionSize <= bytes.count - description else {
                throw fields.error(offset + at, "a note (type \(hex(UInt(type)))) runs past the end of \(what)")
            }
            let name = Array(bytes[nameStart..<(nameStart + nameSize)].prefix { $0 != 0 })
            notes.append(Note(name: name, type: type, offset: offset + description, size: descriptionSize))
            at = description + (descriptionSize + 3) / 4 * 4
        }
        return notes
    }

    /// The GNU build id (`NT_GNU_BUILD_ID`) from the file's `PT_NOTE`
    /// segments, if it has one.
    func buildID() -> [UInt8]? {
        for header in programHeaders where header.type == 4 {
            let (offset, size) = presentBytes(of: header)
            guard let notes = try? notes(at: offset, size: size, what: "a notes segment") else { continue }
            for note in notes where note.type == 3 && note.name == Array("GNU".utf8) && note.size <= 1024 {
                return fields.input.bytes(at: note.offset, count: note.size)
            }
        }
        return nil
    }
}

/// What the post-mortem reader needs of the program that crashed: where a
/// symbol is relative to where the program expects to be loaded, and its
/// build id. Every header and table is checked against the file; a
/// truncated or corrupt executable is an error that names it.
public struct ELFExecutable {
    public let path: String
    /// The virtual address of the segment that maps file offset 0 (0 for a
    /// position-independent executable).
    public let firstLoadAddress: UInt
    public let buildID: [UInt8]?
    private let file: ELFFile

    /// Symbol tables larger than this are not read.
    static let maximumSymbolTableBytes = 1 << 30

    public init(_ input: InputBytes) throws(CoreFileError) {
        path = input.name
        do {
            file = try ELFFile(input, file: input.name)
        } catch {
            if error.offset == 0 { throw CoreFileError(file: input.name, offset: nil, problem: "is not an ELF executable") }
            throw error
        }
        guard file.type == 2 || file.type == 3 else {
            throw CoreFileError(file: path, offset: 16, problem: "ELF type \(file.type), not an executable (2) or a position-independent one (3)")
        }
        firstLoadAddress = file.programHeaders.first { $0.type == 1 && $0.fileOffset == 0 }?.virtualAddress ?? 0
        buildID = file.buildID()
    }

    /// The value of the symbol `name` in `.symtab`, else `.dynsym`. Each
    /// table and its strings are read in one piece.
    public func symbol(_ name: String) throws(CoreFileError) -> UInt? {
        let fields = file.fields
        let sections = try file.sectionHeaders()
        let wanted = Array(name.utf8)
        for type: UInt32 in [2, 11] {  // SHT_SYMTAB, then SHT_DYNSYM
            for section in sections where section.type == type {
                guard section.link < sections.count else {
                    throw fields.error(section.headerOffset + 40, "sh_link \(section.link) names no section")
                }
                let stringSection = sections[section.link]
                guard section.size <= Self.maximumSymbolTableBytes, stringSection.size <= Self.maximumSymbolTableBytes,
                      let symbols = fields.input.bytes(at: section.fileOffset, count: section.size / 24 * 24) else {
                    throw fields.error(section.headerOffset + 24, "a symbol table runs past the end of the file (truncated?)")
                }
                guard let strings = fields.input.bytes(at: stringSection.fileOffset, count: stringSection.size) else {
                    throw fields.error(stringSection.headerOffset + 24, "a string table runs past the end of the file (truncated?)")
                }
                func integer(_ at: Int, _ size: Int) -> UInt {
                    symbols[at..<(at + size)].reversed().reduce(0) { $0 << 8 | UInt($1) }
                }
                for symbol in stride(from: 0, to: symbols.count, by: 24) {
                    let nameOffset = Int(integer(symbol, 4))
                    guard nameOffset <= strings.count - wanted.count - 1, strings[nameOffset + wanted.count] == 0,
                          strings[nameOffset..<(nameOffset + wanted.count)].elementsEqual(wanted) else { continue }
                    return integer(symbol + 8, 8)
                }
            }
        }
        return nil
    }
}

/// A build id as `readelf -n` prints it.
func hexString(_ bytes: [UInt8]) -> String {
    bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}
