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
        /// A module's identity (build id, content hash, code start,
        /// external debug file) and, when the capture carries it, its DWARF.
        public static let moduleDebug = Section(WU_CAPTURE_SECTION_MODULE_DEBUG)
        /// A module's frame layout: each function's local kinds and each
        /// call and trap site's operand kinds (for coredumps with values).
        public static let frameLayout = Section(WU_CAPTURE_SECTION_FRAME_LAYOUT)

        public static let allCases: [Section] = [.architecture, .registers, .activations, .stack, .module, .trap,
                                                 .hostFrames, .note, .thrown, .moduleDebug, .frameLayout]

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
            case .moduleDebug: return "MODULE_DEBUG"
            case .frameLayout: return "FRAME_LAYOUT"
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
        let withHandlers = modules.filter { $0.stackMaps.hasHandlerSection }
        let minor: UInt16 = withHandlers.contains { !$0.stackMaps.hasPerMapHandlers } ? 2
            : (thrown != nil || !withHandlers.isEmpty) ? 1 : 0
        for module in modules {
            section(.module) { writer in module.write(to: &writer, minor: minor) }
        }
        for (position, module) in modules.enumerated() {
            guard let debug = module.debug else { continue }
            section(.moduleDebug) { writer in debug.write(to: &writer, position: position) }
        }
        for (position, module) in modules.enumerated() {
            guard let layout = module.frameLayout else { continue }
            section(.frameLayout) { writer in layout.write(to: &writer, position: position) }
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

extension CaptureFile {
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
        if stackMaps.hasHandlerSection {
            if minor >= 2 { stackMaps.writeHandlerScopes(to: &writer) } else { stackMaps.writeHandlers(to: &writer) }
        }
    }
}
