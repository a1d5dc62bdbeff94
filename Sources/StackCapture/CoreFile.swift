import WasmUnwind

/// Why a core file could not be read: the file, where, and what.
public struct CoreFileError: Error, CustomStringConvertible {
    public var offset: Int?
    public var problem: String

    public var description: String { offset.map { "at byte \($0): \(problem)" } ?? problem }
}

/// An ELF core file of an x86_64 Linux process (written by the kernel or by
/// gdb's `gcore`), read as the post-mortem reader needs it: memory from
/// `PT_LOAD`, each thread's registers from `NT_PRSTATUS`, the mapped files
/// from `NT_FILE`, the signal from `NT_SIGINFO`.
public struct CoreFile {
    public struct Thread: Hashable, Sendable {
        public var tid: Int64
        /// rip, rbp, rsp.
        public var pc: UInt, fp: UInt, sp: UInt
    }

    public struct MappedFile: Hashable, Sendable {
        public var range: Range<UInt>
        public var fileOffset: UInt
        public var path: String
    }

    /// `PT_LOAD` memory: address range and where its bytes are in the file
    /// (`fileSize` may be less than the range: the rest reads as zero).
    struct Load {
        var range: Range<UInt>
        var fileOffset: Int
        var fileSize: Int
    }

    public let bytes: [UInt8]
    /// Threads in note order: the kernel writes the crashing thread first.
    public private(set) var threads: [Thread] = []
    public private(set) var files: [MappedFile] = []
    /// The signal that ended the process and its fault address, if the core
    /// has `NT_SIGINFO`.
    public private(set) var signal: (number: Int32, address: UInt)?
    var loads: [Load] = []

    public init(bytes: [UInt8]) throws(CoreFileError) {
        self.bytes = bytes
        var reader = Fields(bytes: bytes)
        guard bytes.count >= 64, bytes.starts(with: [0x7F, 0x45, 0x4C, 0x46]) else {
            throw CoreFileError(offset: 0, problem: "not an ELF file")
        }
        guard bytes[4] == 2, bytes[5] == 1 else {
            throw CoreFileError(offset: 4, problem: "not a 64-bit little-endian ELF file (class \(bytes[4]), data \(bytes[5]))")
        }
        let type = try reader.u16(16), machine = try reader.u16(18)
        guard type == 4 else { throw CoreFileError(offset: 16, problem: "ELF type \(type), not a core file (4)") }
        guard machine == 62 else {
            throw CoreFileError(offset: 18, problem: "a core of machine \(machine), not x86_64 (62)")
        }
        let phoff = Int(try reader.u64(32)), phentsize = Int(try reader.u16(54)), phnum = Int(try reader.u16(56))
        guard phentsize >= 56 else { throw CoreFileError(offset: 54, problem: "program header size \(phentsize)") }
        for index in 0..<phnum {
            let at = phoff + index * phentsize
            let kind = try reader.u32(at)
            let offset = Int(try reader.u64(at + 8)), address = UInt(try reader.u64(at + 16))
            let fileSize = Int(try reader.u64(at + 32)), memorySize = UInt(try reader.u64(at + 40))
            guard offset >= 0, fileSize >= 0, offset <= bytes.count else {
                throw CoreFileError(offset: at, problem: "program header \(index) points past the end of the file")
            }
            switch kind {
            case 1:  // PT_LOAD; a truncated core keeps what it has
                loads.append(Load(range: address..<(address + memorySize), fileOffset: offset,
                                  fileSize: min(fileSize, bytes.count - offset)))
            case 4:  // PT_NOTE
                guard offset + fileSize <= bytes.count else {
                    throw CoreFileError(offset: at, problem: "the notes segment runs past the end of the file (truncated core?)")
                }
                try readNotes(offset..<(offset + fileSize))
            default: break
            }
        }
        guard !threads.isEmpty else { throw CoreFileError(offset: nil, problem: "no NT_PRSTATUS note: no thread's registers") }
    }

    private mutating func readNotes(_ range: Range<Int>) throws(CoreFileError) {
        var reader = Fields(bytes: bytes)
        var at = range.lowerBound
        while at + 12 <= range.upperBound {
            let nameSize = Int(try reader.u32(at)), descSize = Int(try reader.u32(at + 4)), type = try reader.u32(at + 8)
            let desc = at + 12 + (nameSize + 3) / 4 * 4
            guard desc + descSize <= range.upperBound else { throw CoreFileError(offset: at, problem: "a note runs past its segment") }
            switch type {
            case 1 where descSize >= 112 + 27 * 8:  // NT_PRSTATUS: pr_pid at 32, pr_reg at 112
                let registers = desc + 112
                threads.append(Thread(tid: Int64(try reader.u32(desc + 32)), pc: UInt(try reader.u64(registers + 16 * 8)),
                                      fp: UInt(try reader.u64(registers + 4 * 8)), sp: UInt(try reader.u64(registers + 19 * 8))))
            case 0x5349_4749 where descSize >= 24:  // NT_SIGINFO: si_signo, si_errno, si_code, pad, si_addr
                signal = (Int32(bitPattern: try reader.u32(desc)), UInt(try reader.u64(desc + 16)))
            case 0x4649_4C45:  // NT_FILE: count, page size, (start, end, page offset) x count, names
                let count = Int(try reader.u64(desc)), pageSize = UInt(try reader.u64(desc + 8))
                var name = desc + 16 + count * 24
                for index in 0..<count {
                    let entry = desc + 16 + index * 24
                    let end = bytes[name..<(desc + descSize)].firstIndex(of: 0) ?? (desc + descSize)
                    files.append(MappedFile(range: UInt(try reader.u64(entry))..<UInt(try reader.u64(entry + 8)),
                                            fileOffset: UInt(try reader.u64(entry + 16)) * pageSize,
                                            path: String(decoding: bytes[name..<end], as: UTF8.self)))
                    name = end + 1
                }
            default: break
            }
            at = desc + (descSize + 3) / 4 * 4
        }
    }

    /// `count` bytes of the process's memory at `address`, if the core has
    /// them (memory a truncated core lost, or never dumped, is nil).
    public func memory(at address: UInt, count: Int) -> [UInt8]? {
        guard let load = loads.first(where: { $0.range.contains(address) }),
              address + UInt(count) <= load.range.upperBound else { return nil }
        let start = Int(address - load.range.lowerBound)
        guard start + count <= load.fileSize else { return nil }
        return Array(bytes[(load.fileOffset + start)..<(load.fileOffset + start + count)])
    }

    public func word(at address: UInt) -> UInt? {
        memory(at: address, count: 8).map { $0.reversed().reduce(0) { $0 << 8 | UInt($1) } }
    }

    /// The whole `PT_LOAD` segment containing `address`, as a captured
    /// segment (a thread's stack).
    public func segment(containing address: UInt) -> CapturedMemoryReader.Segment? {
        guard let load = loads.first(where: { $0.range.contains(address) }), load.fileSize > 0 else { return nil }
        return CapturedMemoryReader.Segment(baseAddress: load.range.lowerBound,
                                            bytes: Array(bytes[load.fileOffset..<(load.fileOffset + load.fileSize)]))
    }
}

/// Little-endian fields of a byte array, bounds-checked.
struct Fields {
    let bytes: [UInt8]

    func value(_ at: Int, _ size: Int) throws(CoreFileError) -> UInt64 {
        guard at >= 0, at + size <= bytes.count else {
            throw CoreFileError(offset: at, problem: "a \(size)-byte field past the end of the file (\(bytes.count) bytes; truncated?)")
        }
        var value: UInt64 = 0
        for index in (0..<size).reversed() { value = value << 8 | UInt64(bytes[at + index]) }
        return value
    }

    mutating func u16(_ at: Int) throws(CoreFileError) -> UInt16 { UInt16(try value(at, 2)) }
    mutating func u32(_ at: Int) throws(CoreFileError) -> UInt32 { UInt32(try value(at, 4)) }
    mutating func u64(_ at: Int) throws(CoreFileError) -> UInt64 { try value(at, 8) }
}
