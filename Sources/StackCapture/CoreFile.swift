@_spi(Tools) import WasmUnwind

/// Memory of a process: a core file's, or a live process's. Reads are of
/// plain bytes at virtual addresses; what is not there is nil.
public protocol ProcessMemory {
    /// `count` bytes at `address`, or nil if the memory does not have all
    /// of them.
    func bytes(at address: UInt, count: Int) -> [UInt8]?
}

extension ProcessMemory {
    /// The 64-bit little-endian word at `address`.
    public func word(at address: UInt) -> UInt? {
        bytes(at: address, count: 8).map { $0.reversed().reduce(0) { $0 << 8 | UInt($1) } }
    }
}

/// A process as the post-mortem reader sees it: its memory, its threads'
/// registers, the files it had mapped, and the signal that stopped it.
public protocol ProcessImage: ProcessMemory {
    /// The crashing (or first) thread first.
    var threads: [ProcessThread] { get }
    var mappedFiles: [MappedFile] { get }
    var signal: ProcessSignal? { get }
    /// The stack of a thread from `sp` up to `end` (or what of it the
    /// process has), at most `maximumBytes`, as a captured segment.
    func stack(from sp: UInt, upTo end: UInt, maximumBytes: Int) -> CapturedMemoryReader.Segment?
}

extension ProcessImage {
    public func stack(from sp: UInt, upTo end: UInt, maximumBytes: Int) -> CapturedMemoryReader.Segment? {
        guard end > sp, let bytes = bytes(at: sp, count: Int(min(end - sp, UInt(maximumBytes)))) else { return nil }
        return CapturedMemoryReader.Segment(baseAddress: sp, bytes: bytes)
    }
}

/// A thread's registers, as far as the reader needs them.
public struct ProcessThread: Hashable, Sendable {
    public var tid: Int64
    /// rip, rbp, rsp.
    public var pc: UInt, fp: UInt, sp: UInt

    public init(tid: Int64, pc: UInt, fp: UInt, sp: UInt) {
        self.tid = tid
        self.pc = pc
        self.fp = fp
        self.sp = sp
    }
}

/// A file mapped into a process.
public struct MappedFile: Hashable, Sendable {
    public var range: Range<UInt>
    public var fileOffset: UInt
    public var path: String

    public init(range: Range<UInt>, fileOffset: UInt, path: String) {
        self.range = range
        self.fileOffset = fileOffset
        self.path = path
    }
}

/// How a process got a signal (a core's `NT_SIGINFO`).
public struct ProcessSignal: Hashable, Sendable {
    public var number: Int32
    /// `si_code`: > 0 the kernel raised it for a fault (then `address`
    /// is the fault address); <= 0 a process sent it (`kill`, `tgkill`,
    /// `sigqueue`: then `senderPID` is who).
    public var code: Int32
    public var address: UInt
    public var senderPID: Int32

    public init(number: Int32, code: Int32, address: UInt, senderPID: Int32) {
        self.number = number
        self.code = code
        self.address = address
        self.senderPID = senderPID
    }

    /// Whether a process sent it rather than the kernel raising it for a
    /// fault.
    public var wasSent: Bool { code <= 0 }

    /// `signal 11, fault address 0x8` or `signal 11 sent by pid 1234`.
    public var description: String {
        wasSent ? "signal \(number) sent by pid \(senderPID)" : "signal \(number), fault address \(hex(address))"
    }
}

/// An ELF core file of an x86_64 Linux process (written by the kernel or by
/// gdb's `gcore`), read as the post-mortem reader needs it: memory from
/// `PT_LOAD`, each thread's registers from `NT_PRSTATUS`, the mapped files
/// from `NT_FILE`, the signal from `NT_SIGINFO`. The file is read as far
/// as it is looked at (`InputBytes`): every header, note and segment is
/// checked against the file before it is used, so a truncated or crafted
/// core gives an error naming the byte and field.
public struct CoreFile: ProcessImage {
    /// `PT_LOAD` memory: address range and where its bytes are in the file
    /// (`fileSize` may be less than the range: the rest was not dumped).
    struct Load {
        var range: Range<UInt>
        var fileOffset: Int
        var fileSize: Int
    }

    public let input: InputBytes
    /// Threads in note order: the kernel writes the crashing thread first.
    public private(set) var threads: [ProcessThread] = []
    public private(set) var mappedFiles: [MappedFile] = []
    /// The signal that ended the process, if the core has `NT_SIGINFO`.
    public private(set) var signal: ProcessSignal?
    /// Sorted by start address.
    private(set) var loads: [Load] = []

    /// More notes than any core has: a notes segment past this is corrupt.
    static let maximumNotesBytes = 256 << 20
    /// NT_FILE entries past this are corrupt (a process has at most
    /// `vm.max_map_count`, 65,530 by default, mappings).
    static let maximumMappedFiles = 1 << 20

    public init(bytes: [UInt8]) throws(CoreFileError) {
        try self.init(InputBytes(bytes: bytes, name: "core"))
    }

    public init(_ input: InputBytes) throws(CoreFileError) {
        self.input = input
        let elf = try ELFFile(input, file: nil)
        guard elf.type == 4 else { throw CoreFileError(offset: 16, problem: "ELF type \(elf.type), not a core file (4)") }
        // The thread notes are read as x86_64's (prstatus registers).
        guard elf.machine == X86_64.elfMachine else {
            throw CoreFileError(offset: 18, problem: "a core of machine \(elf.machine), not x86_64 (\(X86_64.elfMachine))")
        }
        for (index, header) in elf.programHeaders.enumerated() {
            switch header.type {
            case 1:  // PT_LOAD; a truncated core keeps what it has
                let (end, overflow) = header.virtualAddress.addingReportingOverflow(header.memorySize)
                guard !overflow else {
                    throw CoreFileError(offset: header.headerOffset, problem: "program header \(index): p_vaddr \(hex(header.virtualAddress)) + p_memsz \(hex(header.memorySize)) wraps around")
                }
                let present = elf.presentBytes(of: header)
                loads.append(Load(range: header.virtualAddress..<end, fileOffset: present.offset,
                                  fileSize: min(present.size, Int(clamping: header.memorySize))))
            case 4:  // PT_NOTE
                guard header.fileOffset <= input.count, header.fileSize <= input.count - header.fileOffset else {
                    throw CoreFileError(offset: header.headerOffset, problem: "program header \(index): the notes segment runs past the end of the file (truncated core?)")
                }
                guard header.fileSize <= Self.maximumNotesBytes else {
                    throw CoreFileError(offset: header.headerOffset + 32, problem: "program header \(index): a notes segment of \(header.fileSize) bytes")
                }
                for note in try elf.notes(at: header.fileOffset, size: header.fileSize, what: "the notes segment") {
                    try read(note, elf.fields)
                }
            default: break
            }
        }
        loads.sort { $0.range.lowerBound < $1.range.lowerBound }
        guard !threads.isEmpty else { throw CoreFileError(offset: nil, problem: "no NT_PRSTATUS note: no thread's registers") }
    }

    private mutating func read(_ note: ELFFile.Note, _ fields: ELFFields) throws(CoreFileError) {
        let at = note.offset
        switch note.type {
        case 1 where note.size >= 112 + 27 * 8:  // NT_PRSTATUS: pr_pid at 32, pr_reg at 112
            let registers = at + 112
            threads.append(ProcessThread(tid: Int64(try fields.u32(at + 32, "pr_pid of NT_PRSTATUS")),
                                  pc: UInt(try fields.u64(registers + 16 * 8, "rip of NT_PRSTATUS")),
                                  fp: UInt(try fields.u64(registers + 4 * 8, "rbp of NT_PRSTATUS")),
                                  sp: UInt(try fields.u64(registers + 19 * 8, "rsp of NT_PRSTATUS"))))
        case 0x5349_4749 where note.size >= 24:  // NT_SIGINFO: si_signo, si_errno, si_code, pad, union
            signal = ProcessSignal(number: Int32(bitPattern: try fields.u32(at, "si_signo of NT_SIGINFO")),
                            code: Int32(bitPattern: try fields.u32(at + 8, "si_code of NT_SIGINFO")),
                            address: UInt(try fields.u64(at + 16, "si_addr of NT_SIGINFO")),
                            senderPID: Int32(bitPattern: try fields.u32(at + 16, "si_pid of NT_SIGINFO")))
        case 0x4649_4C45:  // NT_FILE: count, page size, (start, end, page offset) x count, names
            guard note.size >= 16 else { throw CoreFileError(offset: at, problem: "an NT_FILE note of \(note.size) bytes") }
            let count = try fields.u64(at, "the count of NT_FILE")
            let pageSize = try fields.u64(at + 8, "the page size of NT_FILE")
            guard count <= UInt64(Self.maximumMappedFiles), Int(count) * 24 <= note.size - 16 else {
                throw CoreFileError(offset: at, problem: "NT_FILE counts \(count) files, more than its \(note.size) bytes hold")
            }
            guard let names = input.bytes(at: at + 16 + Int(count) * 24, count: note.size - 16 - Int(count) * 24) else {
                throw CoreFileError(offset: at, problem: "NT_FILE's names lie past the end of the file")
            }
            var nameStart = 0
            for index in 0..<Int(count) {
                let entry = at + 16 + index * 24
                let start = UInt(try fields.u64(entry, "the start of NT_FILE entry \(index)"))
                let end = UInt(try fields.u64(entry + 8, "the end of NT_FILE entry \(index)"))
                let page = try fields.u64(entry + 16, "the page offset of NT_FILE entry \(index)")
                guard start <= end else {
                    throw CoreFileError(offset: entry, problem: "NT_FILE entry \(index) ends (\(hex(end))) before it starts (\(hex(start)))")
                }
                let (offset, overflow) = page.multipliedReportingOverflow(by: pageSize)
                guard !overflow else {
                    throw CoreFileError(offset: entry + 16, problem: "NT_FILE entry \(index): page offset \(page) x page size \(pageSize) overflows")
                }
                guard nameStart <= names.count else {
                    throw CoreFileError(offset: entry, problem: "NT_FILE has fewer names than its \(count) entries")
                }
                let end0 = names[nameStart...].firstIndex(of: 0) ?? names.count
                mappedFiles.append(MappedFile(range: start..<end, fileOffset: UInt(offset),
                                        path: String(decoding: names[nameStart..<end0], as: UTF8.self)))
                nameStart = end0 + 1
            }
        default: break
        }
    }

    /// The `PT_LOAD` segment that contains `address`.
    private func load(containing address: UInt) -> Load? {
        var low = 0, high = loads.count
        while low < high {
            let middle = (low + high) / 2
            if loads[middle].range.upperBound <= address { low = middle + 1 } else { high = middle }
        }
        guard low < loads.count, loads[low].range.contains(address) else { return nil }
        return loads[low]
    }

    /// `count` bytes of the process's memory at `address`, if the core has
    /// them (memory a truncated core lost, or never dumped, is nil).
    public func bytes(at address: UInt, count: Int) -> [UInt8]? {
        guard count >= 0, let load = load(containing: address) else { return nil }
        let start = Int(address - load.range.lowerBound)
        guard UInt(count) <= load.range.upperBound - address, start <= load.fileSize, count <= load.fileSize - start else {
            return nil
        }
        return input.bytes(at: load.fileOffset + start, count: count)
    }

    /// The stack from `sp` up to `end`, or to the end of what the core has
    /// of the segment `sp` lies in, at most `maximumBytes`.
    public func stack(from sp: UInt, upTo end: UInt, maximumBytes: Int) -> CapturedMemoryReader.Segment? {
        guard let load = load(containing: sp) else { return nil }
        let start = Int(sp - load.range.lowerBound)
        guard start < load.fileSize else { return nil }
        var length = load.fileSize - start
        if end > sp { length = Int(min(UInt(length), end - sp)) }
        length = min(length, maximumBytes)
        guard let bytes = input.bytes(at: load.fileOffset + start, count: length) else { return nil }
        return CapturedMemoryReader.Segment(baseAddress: sp, bytes: bytes)
    }
}
