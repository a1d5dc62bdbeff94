import WasmUnwind

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
    public static let magic: [UInt8] = [0x57, 0x55, 0x43, 0x41, 0x50, 0x0D, 0x0A, 0x1A]  // "WUCAP\r\n\x1a"
    public static let majorVersion: UInt16 = 1
    public static let minorVersion: UInt16 = 0
    static let headerSize = 16
    static let tableEntrySize = 16

    /// Section kinds.
    public enum Section: UInt32, CaseIterable, Sendable {
        case architecture = 1
        case registers = 2
        case activations = 3
        case stack = 4
        case module = 5
        case trap = 6
        case hostFrames = 7
        case note = 8

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
            writer.write(UInt8(8))
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
            for activation in activations {
                switch activation.start {
                case .returnAddress(let pc):
                    writer.write(UInt8(0))
                    writer.write(UInt64(pc))
                case .programCounter(let pc):
                    writer.write(UInt8(1))
                    writer.write(UInt64(pc))
                }
                writer.write(UInt64(activation.startFramePointer))
                writer.write(UInt64(activation.startStackPointer))
                writer.write(UInt64(activation.entryFramePointer))
            }
        }
        section(.stack) { writer in
            writer.writeULEB(UInt64(stack.count))
            for segment in stack { Self.write(segment, to: &writer) }
        }
        for module in modules {
            section(.module) { writer in module.write(to: &writer) }
        }
        if let trap {
            section(.trap) { writer in
                writer.write(trap.code)
                writer.writeString(trap.message)
            }
        }
        if let hostFrames {
            section(.hostFrames) { writer in
                writer.writeULEB(UInt64(hostFrames.count))
                for frame in hostFrames {
                    writer.write(UInt64(frame.pc))
                    writer.write(frame.kind.rawValue)
                    writer.writeString(frame.name)
                    writer.writeULEB(UInt64(frame.offset))
                }
            }
        }
        if let note {
            section(.note) { writer in writer.writeString(note) }
        }

        var file = ByteWriter()
        file.write(CaptureFormat.magic)
        file.write(CaptureFormat.majorVersion)
        file.write(CaptureFormat.minorVersion)
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

    static func write(_ segment: CapturedMemoryReader.Segment, to writer: inout ByteWriter) {
        writer.write(UInt64(segment.baseAddress))
        writer.writeULEB(UInt64(segment.bytes.count))
        writer.write(segment.bytes)
    }
}

extension CaptureFile.Module {
    func write(to writer: inout ByteWriter) {
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
        writer.writeULEB(UInt64(trampolines.count))
        for trampoline in trampolines {
            writer.write(trampoline.kind.rawValue)
            writer.writeULEB(UInt64(trampoline.codeRange.lowerBound))
            writer.writeULEB(UInt64(trampoline.codeRange.upperBound))
        }
        stackMaps.write(to: &writer)
        CaptureFile.write(ehFrame, to: &writer)
        CaptureFile.write(searchTable, to: &writer)
    }
}

// MARK: - Reading

extension CaptureFile {
    /// Parses a capture, checking every length, count, offset and rule
    /// before relying on it. Fails with the first problem: which section,
    /// which byte, what was expected there.
    public init(parsing bytes: [UInt8]) throws(CaptureFormatError) {
        var header = ByteReader(bytes)
        func headerError(_ error: ByteFormatError) -> CaptureFormatError { CaptureFormatError(section: nil, error) }
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
            var architecture: Architecture?
            var registers: [UInt8: UInt]?
            var activations: [Activation]?
            var stack: [CapturedMemoryReader.Segment]?
            var modules: [Module] = []
            var trap: Trap?
            var hostFrames: [HostFrame]?
            var note: String?
            for entry in entries {
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
                        let raw = try reader.readUInt8("the architecture")
                        guard let value = Architecture(rawValue: raw) else {
                            throw reader.error(at: reader.offset - 1, "architecture 1 (x86_64) or 2 (aarch64), found \(raw)")
                        }
                        let width = try reader.readUInt8("the word size")
                        guard width == 8 else { throw reader.error(at: reader.offset - 1, "8-byte words, found \(width)") }
                        architecture = value
                    case .registers:
                        try once(registers)
                        let count = try reader.readULEB("the register count", atMost: min(64, reader.remaining / 9))
                        var values: [UInt8: UInt] = [:]
                        for _ in 0..<count {
                            let number = try reader.readUInt8("a register number")
                            values[number] = UInt(try reader.readInteger("register \(number)", as: UInt64.self))
                        }
                        registers = values
                    case .activations:
                        try once(activations)
                        let count = try reader.readULEB("the activation count", atMost: reader.remaining / 33)
                        var list: [Activation] = []
                        for index in 0..<count {
                            let kindByte = try reader.readUInt8("activation \(index)'s start kind")
                            guard kindByte <= 1 else {
                                throw reader.error(at: reader.offset - 1, "activation \(index)'s start kind 0 (exit) or 1 (trap), found \(kindByte)")
                            }
                            let pc = UInt(try reader.readInteger("activation \(index)'s start pc", as: UInt64.self))
                            let fp = UInt(try reader.readInteger("activation \(index)'s start fp", as: UInt64.self))
                            let sp = UInt(try reader.readInteger("activation \(index)'s start sp", as: UInt64.self))
                            let entryFP = UInt(try reader.readInteger("activation \(index)'s entry fp", as: UInt64.self))
                            list.append(Activation(start: kindByte == 0 ? .returnAddress(pc) : .programCounter(pc),
                                                   startFramePointer: fp, startStackPointer: sp, entryFramePointer: entryFP))
                        }
                        activations = list
                    case .stack:
                        try once(stack)
                        let count = try reader.readULEB("the stack segment count", atMost: reader.remaining / 9)
                        var segments: [CapturedMemoryReader.Segment] = []
                        for index in 0..<count {
                            segments.append(try Self.readSegment(&reader, "stack segment \(index)"))
                        }
                        let ordered = segments.sorted { $0.baseAddress < $1.baseAddress }
                        for (a, b) in zip(ordered, ordered.dropFirst()) where a.range.overlaps(b.range) {
                            throw reader.error(at: entry.offset, "stack segments not to overlap, but \(hex(b.baseAddress)) is in two")
                        }
                        stack = segments
                    case .module:
                        modules.append(try Module(reading: &reader))
                    case .trap:
                        try once(trap)
                        let code = try reader.readUInt8("the trap code")
                        trap = Trap(code: code, message: try reader.readString("the trap message"))
                    case .hostFrames:
                        try once(hostFrames)
                        let count = try reader.readULEB("the host frame count", atMost: reader.remaining / 11)
                        var frames: [HostFrame] = []
                        for index in 0..<count {
                            let pc = UInt(try reader.readInteger("host frame \(index)'s pc", as: UInt64.self))
                            let raw = try reader.readUInt8("host frame \(index)'s kind")
                            guard let frameKind = HostFrame.Kind(rawValue: raw) else {
                                throw reader.error(at: reader.offset - 1, "host frame \(index)'s kind 0 to 3, found \(raw)")
                            }
                            let name = try reader.readString("host frame \(index)'s name")
                            let offset = UInt(try reader.readULEB("host frame \(index)'s offset"))
                            frames.append(HostFrame(pc: pc, kind: frameKind, name: name, offset: offset))
                        }
                        hostFrames = frames
                    case .note:
                        try once(note)
                        note = try reader.readString("the note")
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
            self.init(architecture: architecture, registers: registers ?? [:], activations: activations, stack: stack,
                      modules: modules, trap: trap, hostFrames: hostFrames, note: note)
        } catch let error as CaptureFormatError {
            throw error
        } catch let error as ByteFormatError {
            throw headerError(error)
        } catch {
            throw CaptureFormatError(section: nil, offset: 0, expected: "\(error)")
        }
    }

    static func readSegment(_ reader: inout ByteReader, _ what: String) throws(ByteFormatError) -> CapturedMemoryReader.Segment {
        let start = reader.offset
        let base = try reader.readInteger("\(what)'s address", as: UInt64.self)
        let length = try reader.readULEB("\(what)'s length", atMost: reader.remaining)
        guard base <= UInt64.max - UInt64(length) else {
            throw reader.error(at: start, "\(what) to fit in the address space, found \(length) bytes at \(hex(UInt(base)))")
        }
        let bytes = try reader.readBytes(length, "\(what)'s bytes")
        return CapturedMemoryReader.Segment(baseAddress: UInt(base), bytes: Array(bytes))
    }
}

extension CaptureFile.Module {
    init(reading reader: inout ByteReader) throws(ByteFormatError) {
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
        for position in 0..<functionCount {
            let index = try reader.readULEB("function \(position)'s index", atMost: Int(UInt32.max))
            let hasName = try reader.readUInt8("function \(position)'s name flag")
            let name = hasName != 0 ? try reader.readString("function \(position)'s name") : nil
            let rangeOffset = reader.offset
            let start = try reader.readULEB("function \(position)'s code start", atMost: Int(codeSize))
            let end = try reader.readULEB("function \(position)'s code end", atMost: Int(codeSize))
            guard start <= end else { throw reader.error(at: rangeOffset, "function \(position)'s code start \(start) not after its end \(end)") }
            let body = try reader.readULEB("function \(position)'s body offset", atMost: Int(UInt32.max))
            let mapCount = try reader.readULEB("function \(position)'s address map length", atMost: reader.remaining / 2)
            var map: [AddressMapEntry] = []
            for _ in 0..<mapCount {
                let native = try reader.readULEB("an address map native offset", atMost: Int(UInt32.max))
                let wasm = try reader.readULEB("an address map wasm offset", atMost: Int(UInt32.max))
                map.append(AddressMapEntry(nativeOffset: UInt32(native), wasmOffset: UInt32(wasm)))
            }
            functions.append(CodeFunction(index: UInt32(index), name: name, codeRange: UInt(start)..<UInt(end),
                                          bodyOffset: UInt32(body), addressMap: map))
        }
        self.functions = functions
        let trampolineCount = try reader.readULEB("the trampoline count", atMost: reader.remaining / 3)
        var trampolines: [CaptureFile.Trampoline] = []
        for position in 0..<trampolineCount {
            let raw = try reader.readUInt8("trampoline \(position)'s kind")
            guard let kind = CaptureFile.Trampoline.Kind(rawValue: raw) else {
                throw reader.error(at: reader.offset - 1, "trampoline \(position)'s kind 0 (entry) or 1 (exit), found \(raw)")
            }
            let start = try reader.readULEB("trampoline \(position)'s code start", atMost: Int(codeSize))
            let end = try reader.readULEB("trampoline \(position)'s code end", atMost: Int(codeSize))
            guard start <= end else { throw reader.error("trampoline \(position)'s code start not after its end") }
            trampolines.append(CaptureFile.Trampoline(kind: kind, codeRange: UInt(start)..<UInt(end)))
        }
        self.trampolines = trampolines
        stackMaps = try StackMapTable(reading: &reader, codeSize: UInt32(codeSize))
        ehFrame = try CaptureFile.readSegment(&reader, "the .eh_frame")
        searchTable = try CaptureFile.readSegment(&reader, "the CFI search table")
        guard searchTable.bytes.count % 8 == 0 else {
            throw reader.error("the CFI search table to be whole 8-byte pairs, found \(searchTable.bytes.count) bytes")
        }
    }
}

