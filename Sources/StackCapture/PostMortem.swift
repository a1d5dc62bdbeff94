@_spi(Tools) import WasmUnwind

/// A core file read through the runtime's post-mortem descriptor
/// (`wasm_unwind_debug_descriptor`, docs/post-mortem.md): each thread with
/// wasm activations as a capture — the stack its sp lies in, the
/// activations from its records, the modules from their images — so the
/// capture walker, renderers and libunwind check apply unchanged.
///
/// Everything read from the process's memory is hostile: a crashed
/// process can leave any value in it. Every address computed from one is
/// checked for overflow, every list is bounded by steps taken and stops
/// at the first revisited entry, and every image is parsed once.
public enum PostMortem {
    /// The descriptor's layout, version 1 (docs/post-mortem.md;
    /// `PostMortemTests` checks it against the C declarations).
    enum Layout {
        static let magic: UInt = 0x4353_4544_5757_4E55
        static let version: UInt = 1
        static let descriptorSize = 56
        /// Entries of a list, and activation records of a thread, past
        /// which the list is corrupt.
        static let limit = 100_000
        /// A module image larger than this is corrupt.
        static let maximumImageBytes = 1 << 30
        /// The stack of one thread is read up to this many bytes.
        static let maximumStackBytes = 256 << 20
    }

    /// One thread's wasm, as a capture.
    public struct ThreadCapture {
        public var tid: Int64
        public var crashed: Bool
        /// Whether the thread's own registers were in wasm code (it was
        /// interrupted there, rather than in a host call from wasm).
        public var interruptedInWasm: Bool
        public var capture: CaptureFile
    }

    /// The threads of `process` that were running wasm, the crashing one
    /// first. `executable` is the ELF file of the program (from `--exe`, or
    /// the first file the process had mapped).
    public static func threads(of process: some ProcessImage, executable: InputBytes) throws(CoreFileError) -> [ThreadCapture] {
        try threads(of: process, descriptorAt: try descriptorAddress(in: process, executable: executable),
                    program: executable.name)
    }

    /// Where the descriptor is in `process`: the symbol's value in
    /// `executable`, moved to where the process mapped it.
    public static func descriptorAddress(in process: some ProcessImage, executable: InputBytes) throws(CoreFileError) -> UInt {
        let program = try ELFExecutable(executable)
        let mapping = try self.mapping(of: program, in: process)
        guard let symbol = try program.symbol("wasm_unwind_debug_descriptor") else {
            throw CoreFileError(file: program.path, offset: nil, problem: "has no symbol wasm_unwind_debug_descriptor: "
                                + "the program did not link the WasmUnwind runtime (or was stripped)")
        }
        let memory = CheckedMemory(memory: process)
        return try memory.add(try memory.subtract(mapping.range.lowerBound, program.firstLoadAddress, "the load address"),
                              symbol, "the descriptor's address")
    }

    /// The threads of `process` that were running wasm, from the
    /// descriptor at `address`.
    public static func threads(of process: some ProcessImage, descriptorAt address: UInt,
                               program: String) throws(CoreFileError) -> [ThreadCapture] {
        let descriptor = try Descriptor(CheckedMemory(memory: process), at: address, program: program)
        return try threads(of: process, descriptor: descriptor)
    }

    /// The threads of `process` that were running wasm, from its
    /// descriptor, read already.
    static func threads(of process: some ProcessImage, descriptor: Descriptor) throws(CoreFileError) -> [ThreadCapture] {
        let core = process
        let memory = CheckedMemory(memory: process)
        var result: [ThreadCapture] = []
        for (index, thread) in core.threads.enumerated() {
            guard let headAddress = descriptor.threads[thread.tid] else { continue }
            let head = try memory.word(headAddress, "the activation head of thread \(thread.tid)")
            let activations = try self.activations(of: thread, head: head, modules: descriptor.modules, memory: memory)
            guard !activations.isEmpty else { continue }
            let outermost = activations.map(\.entryFramePointer).max() ?? thread.sp
            guard let stack = core.stack(from: thread.sp, upTo: outermost &+ 16, maximumBytes: Layout.maximumStackBytes) else { continue }
            let crashed = index == 0 && core.signal != nil
            let inWasm = descriptor.modules.contains { $0.contains(thread.pc) }
            var note = "thread \(thread.tid)"
            if crashed, let signal = core.signal { note += ", \(signal.description)" }
            if inWasm { note += ", pc \(hex(thread.pc))" }
            // As a capture at a host call: the registers are those of the
            // newest wasm frame (host frames have no CFI here), so `--verify`
            // unwinds the wasm frames with libunwind from there.
            let newest = activations[0]
            result.append(ThreadCapture(tid: thread.tid, crashed: crashed, interruptedInWasm: inWasm, capture: CaptureFile(
                registers: CaptureFile.Architecture.x86_64.startRegisters(
                    pc: newest.start.rawValue, fp: newest.startFramePointer, sp: newest.startStackPointer),
                activations: activations, stack: [stack], modules: descriptor.modules, note: note)))
        }
        return result
    }

    /// Where `program` was mapped in the crashed process: the `NT_FILE`
    /// entry at file offset 0 with its path, or — for a copy under another
    /// name — the one whose first page has the same build id. A program
    /// whose build id differs from the mapped one is a different build.
    static func mapping(of program: ELFExecutable, in core: some ProcessImage) throws(CoreFileError) -> MappedFile {
        let starts = core.mappedFiles.filter { $0.fileOffset == 0 }
        func mappedBuildID(_ file: MappedFile) -> [UInt8]? { buildID(inMemoryAt: file.range.lowerBound, of: core) }
        if let byPath = starts.first(where: { $0.path == program.path }) {
            if let ours = program.buildID, let theirs = mappedBuildID(byPath), ours != theirs {
                throw CoreFileError(file: program.path, offset: nil, problem: "is a different build than the program that crashed "
                                    + "(build id \(hexString(ours)); the core's is \(hexString(theirs)))")
            }
            return byPath
        }
        if let ours = program.buildID {
            if let same = starts.first(where: { mappedBuildID($0) == ours }) { return same }
            let named = starts.first { lastComponent($0.path) == lastComponent(program.path) }
            if let named, let theirs = mappedBuildID(named) {
                throw CoreFileError(file: program.path, offset: nil, problem: "is a different build than \(named.path), which crashed "
                                    + "(build id \(hexString(ours)); the core's is \(hexString(theirs)))")
            }
            if let named { return named }
        } else if let named = starts.first(where: { lastComponent($0.path) == lastComponent(program.path) }) {
            return named
        }
        throw CoreFileError(offset: nil, problem: "the core does not say where \(program.path) was mapped "
                            + "(no NT_FILE entry for it or for a file with its build id): is it the program that crashed?")
    }

    /// The build id of the ELF file whose first page the core has at
    /// `base` (the kernel dumps the first page of every mapped ELF file).
    static func buildID(inMemoryAt base: UInt, of core: some ProcessMemory) -> [UInt8]? {
        guard let header = core.bytes(at: base, count: 64), header.starts(with: [0x7F, 0x45, 0x4C, 0x46]) else { return nil }
        func field(_ bytes: [UInt8], _ at: Int, _ size: Int) -> UInt {
            bytes[at..<(at + size)].reversed().reduce(0) { $0 << 8 | UInt($1) }
        }
        let phoff = field(header, 32, 8), phentsize = Int(field(header, 54, 2)), phnum = Int(field(header, 56, 2))
        guard phentsize >= 56, phnum < 256, phoff < 1 << 20 else { return nil }
        var firstLoad: UInt?
        var notes: [(address: UInt, size: Int)] = []
        for index in 0..<phnum {
            guard let entry = core.bytes(at: base &+ phoff &+ UInt(index * phentsize), count: 56) else { return nil }
            let type = field(entry, 0, 4), offset = field(entry, 8, 8), address = field(entry, 16, 8), size = field(entry, 32, 8)
            if type == 1, offset == 0, firstLoad == nil { firstLoad = address }
            if type == 4, size <= 4096 { notes.append((address, Int(size))) }
        }
        for note in notes {
            let (relative, overflow) = note.address.subtractingReportingOverflow(firstLoad ?? 0)
            guard !overflow, let bytes = core.bytes(at: base &+ relative, count: note.size) else { continue }
            var at = 0
            while at + 12 <= bytes.count {
                let nameSize = Int(field(bytes, at, 4)), size = Int(field(bytes, at + 4, 4)), type = field(bytes, at + 8, 4)
                let description = at + 12 + (nameSize + 3) / 4 * 4
                guard description + size <= bytes.count else { break }
                if type == 3, nameSize == 4, bytes[(at + 12)..<(at + 15)].elementsEqual("GNU".utf8) {
                    return Array(bytes[description..<(description + size)])
                }
                at = description + (size + 3) / 4 * 4
            }
        }
        return nil
    }

    /// The thread's activations, newest first, from its records: the live
    /// limits record for the newest (its exit record, if a host call from
    /// wasm was running; the registers, if the thread stopped in wasm), the
    /// saved fields of each record for the older ones.
    static func activations(of thread: ProcessThread, head: UInt, modules: [CaptureFile.Module],
                            memory: CheckedMemory) throws(CoreFileError) -> [CaptureFile.Activation] {
        guard head != 0 else { return [] }
        let limits = try memory.word(try memory.add(head, 8, "an activation record"), "an activation record")
        var result: [CaptureFile.Activation] = []
        let exitFP = try memory.word(try memory.add(limits, 8, "the limits record"), "the limits record")
        let exitPC = try memory.word(try memory.add(limits, 16, "the limits record"), "the limits record")
        let entryFP = try memory.word(try memory.add(limits, 24, "the limits record"), "the limits record")
        if modules.contains(where: { $0.contains(thread.pc) }) {
            result.append(CaptureFile.Activation(start: .programCounter(thread.pc), startFramePointer: thread.fp,
                                                 startStackPointer: thread.sp, entryFramePointer: entryFP))
        } else if exitPC != 0, exitFP >= thread.sp {
            result.append(CaptureFile.Activation(start: .returnAddress(exitPC), startFramePointer: exitFP,
                                                 startStackPointer: stackPointer(returnAddress: exitPC, fp: exitFP, modules: modules),
                                                 entryFramePointer: entryFP))
        }
        var record = head, previous: UInt = 0, count = 0
        while record != 0 {
            count += 1
            guard count <= Layout.limit, record > previous else {
                throw CoreFileError(offset: nil, problem: "the activation records of thread \(thread.tid) are out of order at \(hex(record))")
            }
            let fields = try memory.words(record, 6, "an activation record of thread \(thread.tid)")
            if fields[1] == limits, fields[4] != 0 {
                result.append(CaptureFile.Activation(start: .returnAddress(fields[4]), startFramePointer: fields[3],
                                                     startStackPointer: 0, entryFramePointer: fields[5]))
            }
            previous = record
            record = fields[0]
        }
        return result
    }

    /// The sp of the frame a host call left, from its call site's stack map
    /// (the frame's size below its fp), as a capture at a host call records
    /// it; the fp when there is no map, or the map does not fit below it.
    static func stackPointer(returnAddress: UInt, fp: UInt, modules: [CaptureFile.Module]) -> UInt {
        guard let module = modules.first(where: { $0.contains(returnAddress) }),
              let offset = UInt32(exactly: returnAddress - module.codeBase),
              let map = module.stackMaps.map(atReturnOffset: offset), UInt(map.frameSize) <= fp else { return fp }
        return fp - UInt(map.frameSize)
    }

    static func lastComponent(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }
}

extension PostMortem {
    /// The descriptor and its two lists, read once: the modules (each
    /// image parsed once) and each listed thread's activation head.
    struct Descriptor {
        var modules: [CaptureFile.Module] = []
        /// Thread id -> the address of its activation head.
        var threads: [Int64: UInt] = [:]
        /// The generation the lists were read at.
        var generation: UInt = 0

        /// Reads the descriptor at `address`; `images`, when given, keeps
        /// the modules parsed from images by their entry, image address and
        /// size (a live process's images do not change while listed).
        init(_ memory: CheckedMemory, at address: UInt, program: String,
             images: ImageCache? = nil) throws(CoreFileError) {
            let header = try memory.words(address, 7, "the descriptor")
            guard header[0] == Layout.magic else {
                throw CoreFileError(offset: nil, problem: "no post-mortem descriptor at \(hex(address)) (wrong magic): is \(program) the program that crashed?")
            }
            guard header[1] & 0xFFFF_FFFF == Layout.version, header[1] >> 32 >= UInt(Layout.descriptorSize) else {
                throw CoreFileError(offset: nil, problem: "post-mortem descriptor version \(header[1] & 0xFFFF_FFFF), this reader knows \(Layout.version)")
            }
            guard header[2] % 2 == 0 else {
                throw CoreFileError(offset: nil, problem: "the process died while it changed its list of modules or threads (generation \(header[2]) is odd): the lists may be half-linked")
            }
            generation = header[2]
            var listed: Set<ImageCache.Key> = []
            defer { images?.trim(keeping: listed) }
            for entry in try Self.list(from: header[3], memory, "module") {
                let fields = try memory.words(entry, 6, "a module entry")
                let image = fields[4], size = fields[5]
                let key = ImageCache.Key(entry: entry, image: image, size: size)
                listed.insert(key)
                if let known = images?.modules[key] {
                    modules += known
                    continue
                }
                guard size <= UInt(Layout.maximumImageBytes), let bytes = memory.memory.bytes(at: image, count: Int(size)) else {
                    throw CoreFileError(offset: nil, problem: "the image of the module at \(hex(entry)) (\(size) bytes at \(hex(image))) is not in \(memory.source)")
                }
                do {
                    let parsed = try CaptureFile(parsing: bytes).modules
                    images?.modules[key] = parsed
                    modules += parsed
                } catch {
                    throw CoreFileError(offset: nil, problem: "the image of the module at \(hex(entry)) is not a valid capture: \(error)")
                }
            }
            for entry in try Self.list(from: header[5], memory, "thread") {
                let fields = try memory.words(entry, 4, "a thread entry")
                threads[Int64(bitPattern: UInt64(fields[2]))] = fields[3]
            }
        }

        /// The entries of a list from `head` through their `next` (the
        /// first word): bounded by steps, and a revisited entry is a cycle.
        static func list(from head: UInt, _ memory: CheckedMemory, _ what: String) throws(CoreFileError) -> [UInt] {
            var entries: [UInt] = []
            var seen: Set<UInt> = []
            var next = head
            while next != 0 {
                guard seen.insert(next).inserted else {
                    throw CoreFileError(offset: nil, problem: "the \(what) list has a cycle: it comes back to \(hex(next)) after \(entries.count) entries")
                }
                guard entries.count < Layout.limit else {
                    throw CoreFileError(offset: nil, problem: "the \(what) list does not end within \(Layout.limit) entries")
                }
                entries.append(next)
                next = try memory.word(next, "a \(what) entry")
            }
            return entries
        }
    }

    /// Reads of a process's memory for the post-mortem reader: an error
    /// naming what was read when it is not there, and address arithmetic
    /// that reports overflow instead of trapping.
    struct CheckedMemory {
        let memory: any ProcessMemory
        /// What the memory is, for errors: "the core", "process 1234".
        var source = "the core"

        func word(_ address: UInt, _ what: String) throws(CoreFileError) -> UInt {
            guard let value = memory.word(at: address) else {
                throw CoreFileError(offset: nil, problem: "\(what) at \(hex(address)) is not in \(source)\(source == "the core" ? " (truncated, or not dumped)" : "")")
            }
            return value
        }

        /// `count` consecutive words at `address`.
        func words(_ address: UInt, _ count: Int, _ what: String) throws(CoreFileError) -> [UInt] {
            guard address <= UInt.max - UInt(8 * count), let bytes = memory.bytes(at: address, count: 8 * count) else {
                throw CoreFileError(offset: nil, problem: "\(what) at \(hex(address)) is not in \(source)\(source == "the core" ? " (truncated, or not dumped)" : "")")
            }
            return (0..<count).map { index in bytes[(8 * index)..<(8 * index + 8)].reversed().reduce(0) { $0 << 8 | UInt($1) } }
        }

        func add(_ a: UInt, _ b: UInt, _ what: String) throws(CoreFileError) -> UInt {
            let (sum, overflow) = a.addingReportingOverflow(b)
            guard !overflow else { throw CoreFileError(offset: nil, problem: "\(what): \(hex(a)) + \(hex(b)) wraps around") }
            return sum
        }

        func subtract(_ a: UInt, _ b: UInt, _ what: String) throws(CoreFileError) -> UInt {
            let (difference, overflow) = a.subtractingReportingOverflow(b)
            guard !overflow else { throw CoreFileError(offset: nil, problem: "\(what): \(hex(a)) - \(hex(b)) wraps around") }
            return difference
        }
    }
}

extension PostMortem {
    /// Modules parsed from a live process's images, kept between reads
    /// (a profiler reads the descriptor at every sample).
    public final class ImageCache {
        struct Key: Hashable {
            var entry: UInt, image: UInt, size: UInt
        }
        var modules: [Key: [CaptureFile.Module]] = [:]

        public init() {}

        /// Forgets images no longer listed, once many are kept.
        func trim(keeping listed: Set<Key>) {
            if modules.count > 4 * max(listed.count, 64) { modules = modules.filter { listed.contains($0.key) } }
        }
    }
}

extension CaptureFile.Module {
    /// Whether `address` lies in the module's code (no overflow for any
    /// base and size a file can hold).
    func contains(_ address: UInt) -> Bool {
        address >= codeBase && address - codeBase < UInt(codeSize)
    }
}
