import CWasmTools
@_spi(Tools) import WasmUnwind
import UnwindReports

/// The binary form of `CaptureFile` (docs/capture-format.md).
///
/// ```
/// header   8 bytes magic "WUCAP\r\n\x1a", u16 major, u16 minor, u32 section count
/// table    per section: u32 kind, u32 reserved (0), u32 offset, u32 length
/// sections at their offsets, in any order, not overlapping
/// ```
///
/// Everything is little-endian. Unknown section kinds are skipped; an
/// unknown major version is rejected; a newer minor version may append
/// fields at the end of a section, which this reader ignores.
public enum CaptureFormat {
    // The numbers are the C header's (wasm_capture_format.h), which the
    // crash writer in the signal handler uses too.

    public static let magic: [UInt8] = (0..<8).map { UInt8(truncatingIfNeeded: UInt64(WU_CAPTURE_MAGIC) >> (8 * $0)) }  // "WUCAP\r\n\x1a"
    /// 2: code kinds are `CodeKind`'s numbers, trampolines and stubs one
    /// list (1 had its own numbering of trampoline and host-frame kinds).
    public static let majorVersion = UInt16(WU_CAPTURE_VERSION_MAJOR)
    /// 1: a module section ends with its call sites' exception handlers,
    /// one list per stack map; 2: with the `try_table` scopes they are made
    /// of, shared by nested call sites (`StackMapTable.writeHandlerScopes`).
    /// A 2.0 file has none. This reader reads all three.
    public static let minorVersion = UInt16(WU_CAPTURE_VERSION_MINOR)
    static let headerSize = Int(WU_CAPTURE_HEADER_SIZE)
    static let tableEntrySize = Int(WU_CAPTURE_TABLE_ENTRY_SIZE)
    /// Bytes of a row of the ACTIVATIONS section.
    static let activationRowSize = Int(WU_CAPTURE_ACTIVATION_ROW_SIZE)

    /// A section kind.
    public struct Section: RawRepresentable, Hashable, CaseIterable, Sendable {
        public let rawValue: UInt32

        /// A known kind, or nil.
        public init?(rawValue: UInt32) {
            guard Self.allCases.contains(where: { $0.rawValue == rawValue }) else { return nil }
            self.rawValue = rawValue
        }

        private init(_ value: Int32) { rawValue = UInt32(value) }

        public static let architecture = Section(WU_CAPTURE_SECTION_ARCHITECTURE)
        public static let registers = Section(WU_CAPTURE_SECTION_REGISTERS)
        public static let activations = Section(WU_CAPTURE_SECTION_ACTIVATIONS)
        public static let stack = Section(WU_CAPTURE_SECTION_STACK)
        public static let module = Section(WU_CAPTURE_SECTION_MODULE)
        public static let trap = Section(WU_CAPTURE_SECTION_TRAP)
        public static let hostFrames = Section(WU_CAPTURE_SECTION_HOST_FRAMES)
        public static let note = Section(WU_CAPTURE_SECTION_NOTE)
        /// Minor version 1: the exception of a capture taken at a throw.
        public static let thrown = Section(WU_CAPTURE_SECTION_THROWN)

        public static let allCases: [Section] = [.architecture, .registers, .activations, .stack, .module, .trap,
                                                 .hostFrames, .note, .thrown]

        public var name: String {
            switch self {
            case .architecture: return "ARCH"
            case .registers: return "REGISTERS"
            case .activations: return "ACTIVATIONS"
            case .stack: return "STACK"
            case .module: return "MODULE"
            case .trap: return "TRAP"
            case .hostFrames: return "HOST_FRAMES"
            case .note: return "NOTE"
            case .thrown: return "THROW"
            default: return "kind \(rawValue)"
            }
        }
    }
}

/// What is wrong with a capture file, and where.
public struct CaptureFormatError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The section being read, if the problem is inside one.
    public var section: String?
    /// Byte offset in the file.
    public var offset: Int
    public var expected: String

    public init(section: String?, offset: Int, expected: String) {
        self.section = section
        self.offset = offset
        self.expected = expected
    }

    init(section: String?, _ error: ByteFormatError) {
        self.init(section: section, offset: error.offset, expected: error.expected)
    }

    public var description: String {
        (section.map { "section \($0), " } ?? "") + "byte \(offset): expected \(expected)"
    }
}

// MARK: - Writing

extension CaptureFile {
    /// The file's bytes.
    public func serialized() -> [UInt8] {
        var sections: [(CaptureFormat.Section, [UInt8])] = []
        func section(_ kind: CaptureFormat.Section, _ body: (inout ByteWriter) -> Void) {
            var writer = ByteWriter()
            body(&writer)
            sections.append((kind, writer.bytes))
        }
        section(.architecture) { writer in
            writer.write(architecture.rawValue)
            writer.write(UInt8(WU_CAPTURE_WORD_SIZE))
        }
        section(.registers) { writer in
            writer.writeULEB(UInt64(registers.count))
            for (number, value) in registers.sorted(by: { $0.key < $1.key }) {
                writer.write(number)
                writer.write(UInt64(value))
            }
        }
        section(.activations) { writer in
            writer.writeULEB(UInt64(activations.count))
            for activation in activations { activation.write(to: &writer) }
        }
        section(.stack) { writer in
            writer.writeULEB(UInt64(stack.count))
            for segment in stack { segment.write(to: &writer) }
        }
        // The lowest version that holds the content: 2.0 readers read a
        // capture with no exception handlers, 2.1 readers one whose handler
        // lists are one per stack map.
        let withHandlers = modules.filter { $0.stackMaps.hasHandlers }
        let minor: UInt16 = withHandlers.contains { !$0.stackMaps.hasPerMapHandlers } ? 2
            : (thrown != nil || !withHandlers.isEmpty) ? 1 : 0
        for module in modules {
            section(.module) { writer in module.write(to: &writer, minor: minor) }
        }
        if let trap {
            section(.trap) { writer in trap.write(to: &writer) }
        }
        if let hostFrames {
            section(.hostFrames) { writer in
                writer.writeULEB(UInt64(hostFrames.count))
                for frame in hostFrames { frame.write(to: &writer) }
            }
        }
        if let note {
            section(.note) { writer in writer.writeString(note) }
        }
        if let thrown {
            section(.thrown) { writer in thrown.write(to: &writer) }
        }

        var file = ByteWriter()
        file.write(CaptureFormat.magic)
        file.write(CaptureFormat.majorVersion)
        file.write(minor)
        file.write(UInt32(sections.count))
        var offset = CaptureFormat.headerSize + CaptureFormat.tableEntrySize * sections.count
        for (kind, body) in sections {
            file.write(kind.rawValue)
            file.write(UInt32(0))
            file.write(UInt32(offset))
            file.write(UInt32(body.count))
            offset += body.count
        }
        for (_, body) in sections { file.write(body) }
        return file.bytes
    }
}

// MARK: - Reading

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
        var header = ByteReader(bytes)
        do {
            let magic = try header.readBytes(8, "the 8-byte magic")
            guard Array(magic) == CaptureFormat.magic else {
                throw CaptureFormatError(section: nil, offset: 0, expected: "the magic \"WUCAP\\r\\n\\x1a\" of a wasm-unwind capture")
            }
            let major = try header.readInteger("the major version", as: UInt16.self)
            let minor = try header.readInteger("the minor version", as: UInt16.self)
            guard major == CaptureFormat.majorVersion else {
                throw CaptureFormatError(section: nil, offset: 8, expected:
                    "major version \(CaptureFormat.majorVersion) (this reader reads \(CaptureFormat.majorVersion).\(CaptureFormat.minorVersion)), found \(major).\(minor)")
            }
            let count = Int(try header.readInteger("the section count", as: UInt32.self))
            let tableEnd = CaptureFormat.headerSize + CaptureFormat.tableEntrySize * count
            guard count <= (bytes.count - CaptureFormat.headerSize) / CaptureFormat.tableEntrySize else {
                throw CaptureFormatError(section: nil, offset: 12, expected:
                    "at most \((bytes.count - CaptureFormat.headerSize) / CaptureFormat.tableEntrySize) sections in \(bytes.count) bytes, found \(count)")
            }
            var entries: [(kind: UInt32, offset: Int, length: Int, tableOffset: Int)] = []
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
                entries.append((kind, offset, length, tableOffset))
            }
            let sorted = entries.sorted { $0.offset < $1.offset }
            for (a, b) in zip(sorted, sorted.dropFirst()) where a.offset + a.length > b.offset {
                throw CaptureFormatError(section: nil, offset: b.tableOffset, expected:
                    "sections not to overlap, but bytes \(b.offset)... are in two sections")
            }
            let end = max(tableEnd, entries.map { $0.offset + $0.length }.max() ?? 0)
            if end < bytes.count {
                warnings.append("\(bytes.count - end) bytes after the last section, from byte \(end), were ignored")
            }
            var architecture: Architecture?
            var registers: [UInt8: UInt]?
            var activations: [Activation]?
            var stack: [CapturedMemoryReader.Segment]?
            var modules: [Module] = []
            var trap: CapturedTrap?
            var hostFrames: [HostFrame]?
            var note: String?
            var thrown: Thrown?
            // ARCH first: a module's CFI is checked against its registers.
            let ordered = entries.filter { $0.kind == CaptureFormat.Section.architecture.rawValue }
                + entries.filter { $0.kind != CaptureFormat.Section.architecture.rawValue }
            for entry in ordered {
                guard let kind = CaptureFormat.Section(rawValue: entry.kind) else { continue }  // unknown: skipped
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
                        architecture = try Architecture(reading: &reader)
                    case .registers:
                        try once(registers)
                        registers = try Self.readRegisters(&reader, architecture: architecture ?? .x86_64)
                    case .activations:
                        try once(activations)
                        let count = try reader.readULEB("the activation count", atMost: reader.remaining / CaptureFormat.activationRowSize)
                        activations = try (0..<count).map { (index) throws(ByteFormatError) in
                            try Activation(reading: &reader, index: index)
                        }
                    case .stack:
                        try once(stack)
                        let count = try reader.readULEB("the stack segment count", atMost: reader.remaining / 9)
                        let segments = try (0..<count).map { (index) throws(ByteFormatError) in
                            try CapturedMemoryReader.Segment(reading: &reader, "stack segment \(index)")
                        }
                        let ordered = segments.sorted { $0.baseAddress < $1.baseAddress }
                        for (a, b) in zip(ordered, ordered.dropFirst()) where a.range.overlaps(b.range) {
                            throw reader.error(at: entry.offset, "stack segments not to overlap, but \(hex(b.baseAddress)) is in two")
                        }
                        stack = segments
                    case .module:
                        modules.append(try Module(reading: &reader, minor: minor, architecture: architecture ?? .x86_64))
                    case .trap:
                        try once(trap)
                        trap = try CapturedTrap(reading: &reader)
                    case .hostFrames:
                        try once(hostFrames)
                        let count = try reader.readULEB("the host frame count", atMost: reader.remaining / 11)
                        hostFrames = try (0..<count).map { (index) throws(ByteFormatError) in
                            try HostFrame(reading: &reader, index: index)
                        }
                    case .note:
                        try once(note)
                        note = try reader.readString("the note")
                    case .thrown:
                        try once(thrown)
                        thrown = try Thrown(reading: &reader)
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
            guard let architecture else { throw CaptureFormatError(section: nil, offset: 12, expected: "an ARCH section") }
            guard let activations else { throw CaptureFormatError(section: nil, offset: 12, expected: "an ACTIVATIONS section") }
            guard let stack else { throw CaptureFormatError(section: nil, offset: 12, expected: "a STACK section") }
            if let thrown, thrown.tags.count != modules.count {
                let offset = entries.first { $0.kind == CaptureFormat.Section.thrown.rawValue }?.offset ?? 12
                throw CaptureFormatError(section: "THROW", offset: offset, expected:
                    "tag lists for the \(modules.count) modules, found \(thrown.tags.count)")
            }
            self.init(architecture: architecture, registers: registers ?? [:], activations: activations, stack: stack,
                      modules: modules, trap: trap, hostFrames: hostFrames, note: note, thrown: thrown)
        } catch let error as CaptureFormatError {
            throw error
        } catch let error as ByteFormatError {
            throw CaptureFormatError(section: nil, error)
        } catch {
            throw CaptureFormatError(section: nil, offset: 0, expected: "\(error)")
        }
    }

    static func readRegisters(_ reader: inout ByteReader, architecture: Architecture) throws(ByteFormatError) -> [UInt8: UInt] {
        let maximum = architecture.frame.dwarfMaximumRegister
        let count = try reader.readULEB("the register count", atMost: Int(maximum) + 1)
        var values: [UInt8: UInt] = [:]
        for index in 0..<count {
            let start = reader.offset
            let number = try reader.readUInt8("register \(index)'s number")
            guard number <= maximum else {
                throw reader.error(at: start, "a DWARF register number of at most \(maximum), found \(number)")
            }
            guard values[number] == nil else { throw reader.error(at: start, "register \(number) once, found twice") }
            values[number] = UInt(try reader.readInteger("register \(number)'s value", as: UInt64.self))
        }
        return values
    }
}

// MARK: - Sections

extension CaptureFile.Architecture {
    /// ARCH: u8 architecture, u8 word size (8).
    init(reading reader: inout ByteReader) throws(ByteFormatError) {
        let raw = try reader.readUInt8("the architecture")
        guard let value = Self(rawValue: raw) else {
            let known = FrameArchitectures.all.map { "\($0.captureCode) (\($0.name))" }.joined(separator: " or ")
            throw reader.error(at: reader.offset - 1, "architecture \(known), found \(raw)")
        }
        let width = try reader.readUInt8("the word size")
        guard width == 8 else { throw reader.error(at: reader.offset - 1, "8-byte words, found \(width)") }
        self = value
    }
}

extension CaptureFile.Activation {
    /// u8 start kind (0 return address, 1 pc), u64 start, u64 fp, u64 sp, u64 entry fp.
    init(reading reader: inout ByteReader, index: Int) throws(ByteFormatError) {
        let kind = try reader.readUInt8("activation \(index)'s start kind")
        guard kind <= 1 else {
            throw reader.error(at: reader.offset - 1, "activation \(index)'s start kind 0 (exit) or 1 (trap), found \(kind)")
        }
        let pc = UInt(try reader.readInteger("activation \(index)'s start pc", as: UInt64.self))
        startFramePointer = UInt(try reader.readInteger("activation \(index)'s start fp", as: UInt64.self))
        startStackPointer = UInt(try reader.readInteger("activation \(index)'s start sp", as: UInt64.self))
        entryFramePointer = UInt(try reader.readInteger("activation \(index)'s entry fp", as: UInt64.self))
        start = kind == 0 ? .returnAddress(pc) : .programCounter(pc)
    }

    func write(to writer: inout ByteWriter) {
        switch start {
        case .returnAddress(let pc):
            writer.write(UInt8(WU_CAPTURE_START_RETURN_ADDRESS))
            writer.write(UInt64(pc))
        case .programCounter(let pc):
            writer.write(UInt8(WU_CAPTURE_START_PC))
            writer.write(UInt64(pc))
        }
        writer.write(UInt64(startFramePointer))
        writer.write(UInt64(startStackPointer))
        writer.write(UInt64(entryFramePointer))
    }
}

extension CapturedMemoryReader.Segment {
    /// u64 address, uleb length, the bytes.
    init(reading reader: inout ByteReader, _ what: String) throws(ByteFormatError) {
        let start = reader.offset
        let base = try reader.readInteger("\(what)'s address", as: UInt64.self)
        let length = try reader.readULEB("\(what)'s length", atMost: reader.remaining)
        guard base <= UInt64.max - UInt64(length) else {
            throw reader.error(at: start, "\(what) to fit in the address space, found \(length) bytes at \(hex(base))")
        }
        let bytes = try reader.readBytes(length, "\(what)'s bytes")
        self.init(baseAddress: UInt(base), bytes: Array(bytes))
    }

    func write(to writer: inout ByteWriter) {
        writer.write(UInt64(baseAddress))
        writer.writeULEB(UInt64(bytes.count))
        writer.write(bytes)
    }
}

extension CapturedTrap {
    /// TRAP: u8 code, string message.
    init(reading reader: inout ByteReader) throws(ByteFormatError) {
        let code = try reader.readUInt8("the trap code")
        self.init(code: code, message: try reader.readString("the trap message"))
    }

    func write(to writer: inout ByteWriter) {
        writer.write(code)
        writer.writeString(message)
    }
}

extension CaptureFile.Thrown {
    /// THROW: uleb module count M, M x { uleb n, n x uleb tag index },
    /// uleb payload count P, P x string.
    init(reading reader: inout ByteReader) throws(ByteFormatError) {
        let moduleCount = try reader.readULEB("the THROW module count", atMost: reader.remaining)
        tags = try (0..<moduleCount).map { (module) throws(ByteFormatError) in
            let count = try reader.readULEB("module \(module)'s count of thrown tags", atMost: reader.remaining)
            return try (0..<count).map { (index) throws(ByteFormatError) in
                UInt32(try reader.readULEB("module \(module)'s thrown tag \(index)", atMost: Int(UInt32.max)))
            }
        }
        let payloadCount = try reader.readULEB("the payload count", atMost: reader.remaining)
        payload = try (0..<payloadCount).map { (index) throws(ByteFormatError) in
            try reader.readString("payload value \(index)")
        }
    }

    func write(to writer: inout ByteWriter) {
        writer.writeULEB(UInt64(tags.count))
        for list in tags {
            writer.writeULEB(UInt64(list.count))
            for tag in list { writer.writeULEB(UInt64(tag)) }
        }
        writer.writeULEB(UInt64(payload.count))
        for value in payload { writer.writeString(value) }
    }
}

extension CaptureFile.HostFrame {
    /// u64 pc, u8 kind (0 host, else a `CodeKind`), string name, uleb offset.
    init(reading reader: inout ByteReader, index: Int) throws(ByteFormatError) {
        pc = UInt(try reader.readInteger("host frame \(index)'s pc", as: UInt64.self))
        kind = try Self.readKind(&reader, "host frame \(index)'s kind")
        name = try reader.readString("host frame \(index)'s name")
        offset = UInt(try reader.readULEB("host frame \(index)'s offset"))
    }

    static func readKind(_ reader: inout ByteReader, _ what: String) throws(ByteFormatError) -> CodeKind? {
        let raw = try reader.readUInt8(what)
        if raw == 0 { return nil }
        guard let kind = CodeKind(rawValue: raw) else {
            let known = CodeKind.allCases.map { "\($0.rawValue) (\($0))" }.joined(separator: ", ")
            throw reader.error(at: reader.offset - 1, "\(what): 0 (host) or \(known), found \(raw)")
        }
        return kind
    }

    func write(to writer: inout ByteWriter) {
        writer.write(UInt64(pc))
        writer.write(kind?.rawValue ?? 0)
        writer.writeString(name)
        writer.writeULEB(UInt64(offset))
    }
}

extension CaptureFile.Module {
    /// MODULE: the module's name, code range, functions (with address
    /// maps), trampolines and stubs, stack maps and CFI. Every range is
    /// checked here, where its offset is known: functions and stubs sorted,
    /// disjoint and inside the code; the CFI inside the code range after
    /// them; every search-table entry naming code and an FDE inside it;
    /// from minor version 1, the exception handlers.
    init(reading reader: inout ByteReader, minor: UInt16 = CaptureFormat.minorVersion,
         architecture: CaptureFile.Architecture = .x86_64) throws(ByteFormatError) {
        let flags = try reader.readUInt8("the module flags")
        name = flags & 1 != 0 ? try reader.readString("the module name") : nil
        let baseOffset = reader.offset
        codeBase = UInt(try reader.readInteger("the code base", as: UInt64.self))
        codeSize = UInt(try reader.readInteger("the code size", as: UInt64.self))
        guard codeSize <= UInt(UInt32.max), codeBase <= UInt.max - codeSize else {
            throw reader.error(at: baseOffset, "code of at most 4 GiB inside the address space, found \(codeSize) bytes at \(hex(codeBase))")
        }
        let functionCount = try reader.readULEB("the function count", atMost: reader.remaining / 6)
        var functions: [CodeFunction] = []
        var codeEnd: UInt = 0
        for position in 0..<functionCount {
            let index = try reader.readULEB("function \(position)'s index", atMost: Int(UInt32.max))
            let hasName = try reader.readUInt8("function \(position)'s name flag")
            let name = hasName != 0 ? try reader.readString("function \(position)'s name") : nil
            let rangeOffset = reader.offset
            let start = try reader.readULEB("function \(position)'s code start", atMost: Int(codeSize))
            let end = try reader.readULEB("function \(position)'s code end", atMost: Int(codeSize))
            guard start <= end else { throw reader.error(at: rangeOffset, "function \(position)'s code start \(start) not after its end \(end)") }
            guard UInt(start) >= codeEnd else {
                throw reader.error(at: rangeOffset, "function \(position) at \(start)..<\(end) to start after the previous one's end \(codeEnd) (sorted, disjoint)")
            }
            codeEnd = UInt(end)
            let body = try reader.readULEB("function \(position)'s body offset", atMost: Int(UInt32.max))
            let mapCount = try reader.readULEB("function \(position)'s address map length", atMost: reader.remaining / 2)
            var map: [AddressMapEntry] = []
            for entry in 0..<mapCount {
                let mapOffset = reader.offset
                let native = try reader.readULEB("an address map native offset", atMost: Int(UInt32.max))
                let wasm = try reader.readULEB("an address map wasm offset", atMost: Int(UInt32.max))
                if let last = map.last, UInt32(native) <= last.nativeOffset {
                    throw reader.error(at: mapOffset, "function \(position)'s address map entry \(entry) to follow native offset \(last.nativeOffset), found \(native)")
                }
                map.append(AddressMapEntry(nativeOffset: UInt32(native), wasmOffset: UInt32(wasm)))
            }
            functions.append(CodeFunction(index: UInt32(index), name: name, codeRange: UInt(start)..<UInt(end),
                                          bodyOffset: UInt32(body), addressMap: map))
        }
        self.functions = functions
        let stubCount = try reader.readULEB("the stub count", atMost: reader.remaining / 4)
        var stubs: [CodeStub] = []
        var stubEnd: UInt = 0
        for position in 0..<stubCount {
            let start = reader.offset
            guard let kind = try CaptureFile.HostFrame.readKind(&reader, "stub \(position)'s kind") else {
                throw reader.error(at: start, "stub \(position)'s kind to be JIT code, found 0 (host)")
            }
            let rangeOffset = reader.offset
            let lower = try reader.readULEB("stub \(position)'s code start", atMost: Int(codeSize))
            let upper = try reader.readULEB("stub \(position)'s code end", atMost: Int(codeSize))
            let range = UInt(lower)..<UInt(max(lower, upper))
            guard lower <= upper, range.lowerBound >= stubEnd,
                  !functions.contains(where: { $0.codeRange.overlaps(range) }) else {
                throw reader.error(at: rangeOffset, "stub \(position) at \(lower)..<\(upper) to be sorted and to overlap no function or stub")
            }
            stubEnd = range.upperBound
            let hasName = try reader.readUInt8("stub \(position)'s name flag")
            let name = hasName != 0 ? try reader.readString("stub \(position)'s name") : nil
            stubs.append(CodeStub(kind: kind, codeRange: range, name: name))
        }
        self.stubs = stubs
        stackMaps = try StackMapTable(reading: &reader, codeSize: UInt32(codeSize))
        let ehFrameOffset = reader.offset
        ehFrame = try CapturedMemoryReader.Segment(reading: &reader, "the .eh_frame")
        // What libunwind will parse when the capture is verified.
        let ehFrameData = reader.offset - ehFrame.bytes.count
        do {
            try CapturedCFI.validate(ehFrame.bytes, registers: CapturedCFI.registerCount(architecture))
        } catch {
            throw reader.error(at: ehFrameData + error.offset, "in the .eh_frame, \(error.expected)")
        }
        let code = codeBase..<(codeBase + codeSize)
        let lastCode = codeBase + max(codeEnd, stubEnd)
        guard ehFrame.baseAddress >= lastCode, ehFrame.range.upperBound <= code.upperBound else {
            throw reader.error(at: ehFrameOffset, "the .eh_frame at \(hex(ehFrame.range)) to lie in the module's code range \(hex(code)) after its last function or stub (\(hex(lastCode)))")
        }
        let tableOffset = reader.offset
        searchTable = try CapturedMemoryReader.Segment(reading: &reader, "the CFI search table")
        guard searchTable.bytes.count % 8 == 0 else {
            throw reader.error(at: tableOffset, "the CFI search table to be whole 8-byte pairs, found \(searchTable.bytes.count) bytes")
        }
        guard searchTable.baseAddress >= ehFrame.range.upperBound, searchTable.range.upperBound <= code.upperBound else {
            throw reader.error(at: tableOffset, "the CFI search table at \(hex(searchTable.range)) to lie in the module's code range \(hex(code)) after the .eh_frame")
        }
        // Each pair: code start and FDE, both relative to the code base.
        var previousStart: UInt32?
        for pair in 0..<(searchTable.bytes.count / 8) {
            let bytes = searchTable.bytes[(pair * 8)..<(pair * 8 + 8)]
            let start = bytes.prefix(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let fde = bytes.suffix(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let fdeAddress = codeBase + UInt(fde)
            guard UInt(start) < ehFrame.baseAddress - codeBase, previousStart.map({ start > $0 }) ?? true,
                  ehFrame.range.contains(fdeAddress), ehFrame.range.upperBound - fdeAddress >= 8 else {
                throw reader.error(at: tableOffset, "CFI search table entry \(pair) (code \(hex(start)), FDE \(hex(fde))) to name code before the .eh_frame, in order, and an FDE inside it")
            }
            previousStart = start
        }
        // Minor version 1: the call sites' exception handlers.
        if minor >= 2 && !reader.isAtEnd {
            stackMaps = try stackMaps.readingHandlerScopes(from: &reader, codeSize: UInt32(codeSize))
        } else if minor == 1 && !reader.isAtEnd {
            stackMaps = try stackMaps.readingHandlers(from: &reader, codeSize: UInt32(codeSize))
        }
    }

    /// The section as the file's minor version has it (how its handlers
    /// are written).
    func write(to writer: inout ByteWriter, minor: UInt16) {
        writer.write(UInt8(name == nil ? 0 : 1))
        if let name { writer.writeString(name) }
        writer.write(UInt64(codeBase))
        writer.write(UInt64(codeSize))
        writer.writeULEB(UInt64(functions.count))
        for function in functions {
            writer.writeULEB(UInt64(function.index))
            writer.write(UInt8(function.name == nil ? 0 : 1))
            if let name = function.name { writer.writeString(name) }
            writer.writeULEB(UInt64(function.codeRange.lowerBound))
            writer.writeULEB(UInt64(function.codeRange.upperBound))
            writer.writeULEB(UInt64(function.bodyOffset))
            writer.writeULEB(UInt64(function.addressMap.count))
            for entry in function.addressMap {
                writer.writeULEB(UInt64(entry.nativeOffset))
                writer.writeULEB(UInt64(entry.wasmOffset))
            }
        }
        writer.writeULEB(UInt64(stubs.count))
        for stub in stubs {
            writer.write(stub.kind.rawValue)
            writer.writeULEB(UInt64(stub.codeRange.lowerBound))
            writer.writeULEB(UInt64(stub.codeRange.upperBound))
            writer.write(UInt8(stub.name == nil ? 0 : 1))
            if let name = stub.name { writer.writeString(name) }
        }
        stackMaps.write(to: &writer)
        ehFrame.write(to: &writer)
        searchTable.write(to: &writer)
        if stackMaps.hasHandlers {
            if minor >= 2 { stackMaps.writeHandlerScopes(to: &writer) } else { stackMaps.writeHandlers(to: &writer) }
        }
    }
}
