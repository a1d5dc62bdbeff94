@_spi(Tools) import WasmUnwind
import UnwindReports

// Reading a capture: the header and section table first (every section
// inside the file, none overlapping), then each section by kind, then the
// rules between sections. Every error names the section, the byte and what
// was expected there.

extension CaptureFile {
    /// Parses a capture, checking every length, count, offset and rule
    /// before relying on it. Fails with the first problem: which section,
    /// which byte, what was expected there.
    public init(parsing bytes: [UInt8]) throws(CaptureFormatError) {
        var warnings: [String] = []
        try self.init(parsing: bytes, warnings: &warnings)
    }

    /// Parses a capture as `init(parsing:)` does, and adds to `warnings`
    /// what is odd but harmless (bytes after the last section).
    public init(parsing bytes: [UInt8], warnings: inout [String]) throws(CaptureFormatError) {
        do {
            let table = try SectionTable(bytes)
            if table.end < bytes.count {
                warnings.append("\(bytes.count - table.end) bytes after the last section, from byte \(table.end), were ignored")
            }
            var contents = SectionContents()
            // ARCH first: a module's CFI is checked against its registers.
            for entry in table.entries.filter({ $0.kind == CaptureFormat.Section.architecture.rawValue })
                + table.entries.filter({ $0.kind != CaptureFormat.Section.architecture.rawValue }) {
                guard let kind = CaptureFormat.Section(rawValue: entry.kind) else { continue }  // unknown: skipped
                try contents.read(kind, at: entry, of: bytes, minor: table.minor)
            }
            self = try contents.file(table)
        } catch let error as CaptureFormatError {
            throw error
        } catch let error as ByteFormatError {
            throw CaptureFormatError(section: nil, error)
        } catch {
            throw CaptureFormatError(section: nil, offset: 0, expected: "\(error)")
        }
    }
}

/// The header and the section table, checked: the magic, a major version
/// this reader reads, every section inside the file after the table, no two
/// overlapping.
struct SectionTable {
    struct Entry {
        var kind: UInt32
        var offset: Int
        var length: Int
        /// Where the entry itself is, for errors about it.
        var tableOffset: Int
    }

    var minor: UInt16
    var entries: [Entry]
    /// The end of the last section (or of the table).
    var end: Int

    init(_ bytes: [UInt8]) throws {
        var header = ByteReader(bytes)
        let magic = try header.readBytes(8, "the 8-byte magic")
        guard Array(magic) == CaptureFormat.magic else {
            throw CaptureFormatError(section: nil, offset: 0, expected: "the magic \"WUCAP\\r\\n\\x1a\" of a wasm-unwind capture")
        }
        let major = try header.readInteger("the major version", as: UInt16.self)
        minor = try header.readInteger("the minor version", as: UInt16.self)
        guard major == CaptureFormat.majorVersion else {
            throw CaptureFormatError(section: nil, offset: 8, expected:
                "major version \(CaptureFormat.majorVersion) (this reader reads \(CaptureFormat.majorVersion).\(CaptureFormat.minorVersion)), found \(major).\(minor)")
        }
        let count = Int(try header.readInteger("the section count", as: UInt32.self))
        let most = (bytes.count - CaptureFormat.headerSize) / CaptureFormat.tableEntrySize
        guard count <= most else {
            throw CaptureFormatError(section: nil, offset: 12, expected: "at most \(most) sections in \(bytes.count) bytes, found \(count)")
        }
        let tableEnd = CaptureFormat.headerSize + CaptureFormat.tableEntrySize * count
        entries = []
        for _ in 0..<count {
            let tableOffset = header.offset
            let kind = try header.readInteger("a section kind", as: UInt32.self)
            _ = try header.readInteger("reserved", as: UInt32.self)
            let offset = Int(try header.readInteger("a section offset", as: UInt32.self))
            let length = Int(try header.readInteger("a section length", as: UInt32.self))
            guard offset >= tableEnd, offset <= bytes.count, length <= bytes.count - offset else {
                throw CaptureFormatError(section: nil, offset: tableOffset, expected:
                    "section \(CaptureFormat.Section(rawValue: kind)?.name ?? "kind \(kind)") to lie between the section table's end (\(tableEnd)) and the file's end (\(bytes.count)), found bytes \(offset)..<\(offset + length)")
            }
            entries.append(Entry(kind: kind, offset: offset, length: length, tableOffset: tableOffset))
        }
        let sorted = entries.sorted { $0.offset < $1.offset }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.offset + a.length > b.offset {
            throw CaptureFormatError(section: nil, offset: b.tableOffset, expected:
                "sections not to overlap, but bytes \(b.offset)... are in two sections")
        }
        end = max(tableEnd, entries.map { $0.offset + $0.length }.max() ?? 0)
    }
}

/// The sections read so far; each kind but MODULE at most once.
struct SectionContents {
    var architecture: CaptureFile.Architecture?
    var registers: [UInt8: UInt]?
    var activations: [CaptureFile.Activation]?
    var stack: [CapturedMemoryReader.Segment]?
    var modules: [CaptureFile.Module] = []
    var trap: CapturedTrap?
    var hostFrames: [CaptureFile.HostFrame]?
    var note: String?
    var thrown: CaptureFile.Thrown?
    /// MODULE_DEBUG sections: the module's position, what they say, and
    /// where the section is (modules may come after them in the file).
    var moduleDebug: [(position: Int, debug: CaptureFile.ModuleDebug, offset: Int)] = []
    var frameLayouts: [(position: Int, layout: CaptureFile.FrameLayout, offset: Int)] = []

    /// Reads the section `entry` of `kind`; a section must end where its
    /// last field does unless the file's minor version is newer.
    mutating func read(_ kind: CaptureFormat.Section, at entry: SectionTable.Entry, of bytes: [UInt8],
                       minor: UInt16) throws(CaptureFormatError) {
        var reader = ByteReader(bytes, offset: entry.offset, end: entry.offset + entry.length)
        func once<T>(_ value: T?) throws(CaptureFormatError) {
            if value != nil {
                throw CaptureFormatError(section: kind.name, offset: entry.tableOffset, expected: "one \(kind.name) section, found a second")
            }
        }
        do {
            switch kind {
            case .architecture:
                try once(architecture)
                architecture = try CaptureFile.Architecture(reading: &reader)
            case .registers:
                try once(registers)
                registers = try CaptureFile.readRegisters(&reader, architecture: architecture ?? .x86_64)
            case .activations:
                try once(activations)
                let count = try reader.readULEB("the activation count", atMost: reader.remaining / CaptureFormat.activationRowSize)
                activations = try (0..<count).map { (index) throws(ByteFormatError) in
                    try CaptureFile.Activation(reading: &reader, index: index)
                }
            case .stack:
                try once(stack)
                stack = try Self.readStack(&reader, at: entry)
            case .module:
                modules.append(try CaptureFile.Module(reading: &reader, minor: minor, architecture: architecture ?? .x86_64))
            case .trap:
                try once(trap)
                trap = try CapturedTrap(reading: &reader)
            case .hostFrames:
                try once(hostFrames)
                let count = try reader.readULEB("the host frame count", atMost: reader.remaining / 11)
                hostFrames = try (0..<count).map { (index) throws(ByteFormatError) in
                    try CaptureFile.HostFrame(reading: &reader, index: index)
                }
            case .note:
                try once(note)
                note = try reader.readString("the note")
            case .thrown:
                try once(thrown)
                thrown = try CaptureFile.Thrown(reading: &reader)
            case .moduleDebug:
                let (position, debug) = try CaptureFile.ModuleDebug.read(&reader)
                moduleDebug.append((position, debug, entry.offset))
            case .frameLayout:
                let (position, layout) = try CaptureFile.FrameLayout.read(&reader)
                frameLayouts.append((position, layout, entry.offset))
            default:
                break
            }
            // A newer minor version may append fields; this one may not.
            if minor <= CaptureFormat.minorVersion && !reader.isAtEnd {
                throw reader.error("the section to end here (\(reader.remaining) bytes left over)")
            }
        } catch let error as CaptureFormatError {
            throw error
        } catch let error as ByteFormatError {
            throw CaptureFormatError(section: kind.name, error)
        } catch {
            throw CaptureFormatError(section: kind.name, offset: entry.offset, expected: "\(error)")
        }
    }

    /// STACK: segments of stack bytes, no two overlapping.
    static func readStack(_ reader: inout ByteReader, at entry: SectionTable.Entry) throws(ByteFormatError) -> [CapturedMemoryReader.Segment] {
        let count = try reader.readULEB("the stack segment count", atMost: reader.remaining / 9)
        let segments = try (0..<count).map { (index) throws(ByteFormatError) in
            try CapturedMemoryReader.Segment(reading: &reader, "stack segment \(index)")
        }
        let ordered = segments.sorted { $0.baseAddress < $1.baseAddress }
        for (a, b) in zip(ordered, ordered.dropFirst()) where a.range.overlaps(b.range) {
            throw reader.error(at: entry.offset, "stack segments not to overlap, but \(hex(b.baseAddress)) is in two")
        }
        return segments
    }

    /// The capture, once the required sections are there and agree.
    func file(_ table: SectionTable) throws(CaptureFormatError) -> CaptureFile {
        guard let architecture else { throw CaptureFormatError(section: nil, offset: 12, expected: "an ARCH section") }
        guard let activations else { throw CaptureFormatError(section: nil, offset: 12, expected: "an ACTIVATIONS section") }
        guard let stack else { throw CaptureFormatError(section: nil, offset: 12, expected: "a STACK section") }
        if let thrown, thrown.tags.count != modules.count {
            let offset = table.entries.first { $0.kind == CaptureFormat.Section.thrown.rawValue }?.offset ?? 12
            throw CaptureFormatError(section: "THROW", offset: offset, expected:
                "tag lists for the \(modules.count) modules, found \(thrown.tags.count)")
        }
        var modules = modules
        for (position, debug, offset) in moduleDebug {
            guard position < modules.count, modules[position].debug == nil else {
                throw CaptureFormatError(section: "MODULE_DEBUG", offset: offset, expected:
                    "one MODULE_DEBUG section per module of the \(modules.count), found one for module \(position)"
                    + (position < modules.count ? " twice" : ""))
            }
            modules[position].debug = debug
        }
        for (position, layout, offset) in frameLayouts {
            guard position < modules.count, modules[position].frameLayout == nil,
                  layout.locals.count == modules[position].functions.count else {
                throw CaptureFormatError(section: "FRAME_LAYOUT", offset: offset, expected:
                    "one FRAME_LAYOUT section per module of the \(modules.count), with a list of locals per function, "
                    + "found one for module \(position)" + (position < modules.count
                        ? " (\(layout.locals.count) lists for \(modules[position].functions.count) functions, or a second one)" : ""))
            }
            modules[position].frameLayout = layout
        }
        return CaptureFile(architecture: architecture, registers: registers ?? [:], activations: activations, stack: stack,
                           modules: modules, trap: trap, hostFrames: hostFrames, note: note, thrown: thrown)
    }
}
