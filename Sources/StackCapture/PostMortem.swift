import WasmUnwind

/// A core file read through the runtime's post-mortem descriptor
/// (`wasm_unwind_debug_descriptor`, docs/post-mortem.md): each thread with
/// wasm activations as a capture — the stack segment the thread's sp lies
/// in, the activations from its records, the modules from their images —
/// so the capture walker, renderers and libunwind check apply unchanged.
public enum PostMortem {
    /// The descriptor's layout, version 1 (docs/post-mortem.md;
    /// `PostMortemTests` checks it against the C declarations).
    enum Layout {
        static let magic: UInt = 0x4353_4544_5757_4E55
        static let version: UInt = 1
        static let descriptorSize = 56
        static let limit = 100_000
    }

    /// One thread's wasm, as a capture.
    public struct ThreadCapture {
        public var tid: Int64
        public var crashed: Bool
        public var capture: CaptureFile
    }

    /// The threads of `core` that were running wasm, the crashing one first.
    /// `executable` is the ELF file of the crashed program (from `--exe`,
    /// or the first file the core says was mapped).
    public static func threads(of core: CoreFile, executable: [UInt8], executablePath: String) throws(CoreFileError) -> [ThreadCapture] {
        let symbols = try ELFSymbols(bytes: executable, path: executablePath, name: "wasm_unwind_debug_descriptor")
        guard let symbol = symbols.value else {
            throw CoreFileError(offset: nil, problem: "\(executablePath) has no symbol wasm_unwind_debug_descriptor: "
                                + "the program did not link the WasmUnwind runtime (or was stripped)")
        }
        // Where the executable was loaded: its file offset 0 in NT_FILE.
        guard let mapping = core.files.first(where: { $0.path == executablePath && $0.fileOffset == 0 })
                ?? core.files.first(where: { $0.fileOffset == 0 && $0.path.hasSuffix("/" + lastComponent(executablePath)) }) else {
            throw CoreFileError(offset: nil, problem: "the core does not say where \(executablePath) was mapped (no NT_FILE entry for it)")
        }
        let address = mapping.range.lowerBound &- symbols.firstLoadAddress &+ symbol
        func word(_ at: UInt, _ what: String) throws(CoreFileError) -> UInt {
            guard let value = core.word(at: at) else {
                throw CoreFileError(offset: nil, problem: "\(what) at \(hex(at)) is not in the core (truncated, or not dumped)")
            }
            return value
        }
        guard try word(address, "the descriptor") == Layout.magic else {
            throw CoreFileError(offset: nil, problem: "no post-mortem descriptor at \(hex(address)) (wrong magic): a different build of \(executablePath)?")
        }
        let versionAndSize = try word(address + 8, "the descriptor")
        guard versionAndSize & 0xFFFF_FFFF == Layout.version, versionAndSize >> 32 >= UInt(Layout.descriptorSize) else {
            throw CoreFileError(offset: nil, problem: "post-mortem descriptor version \(versionAndSize & 0xFFFF_FFFF), this reader knows \(Layout.version)")
        }
        let generation = try word(address + 16, "the descriptor")
        guard generation % 2 == 0 else {
            throw CoreFileError(offset: nil, problem: "the process died while it changed its list of modules or threads (generation \(generation) is odd): the lists may be half-linked")
        }
        // Modules: each image is a one-module capture.
        var modules: [CaptureFile.Module] = []
        var next = try word(address + 24, "the module list")
        while next != 0 {
            guard modules.count < Layout.limit else { throw CoreFileError(offset: nil, problem: "the module list does not end (a cycle?)") }
            let image = try word(next + 32, "a module entry"), size = try word(next + 40, "a module entry")
            guard size < 1 << 30, let bytes = core.memory(at: image, count: Int(size)) else {
                throw CoreFileError(offset: nil, problem: "the image of the module at \(hex(next)) is not in the core")
            }
            do {
                modules += try CaptureFile(parsing: bytes).modules
            } catch {
                throw CoreFileError(offset: nil, problem: "the image of the module at \(hex(next)) is not a valid capture: \(error)")
            }
            next = try word(next, "a module entry")
        }
        // Threads: the activation chain from each listed thread's head.
        var listed: [Int64: UInt] = [:]
        next = try word(address + 40, "the thread list")
        while next != 0 {
            guard listed.count < Layout.limit else { throw CoreFileError(offset: nil, problem: "the thread list does not end (a cycle?)") }
            listed[Int64(bitPattern: UInt64(try word(next + 16, "a thread entry")))] = try word(next + 24, "a thread entry")
            next = try word(next, "a thread entry")
        }
        var result: [ThreadCapture] = []
        for (index, thread) in core.threads.enumerated() {
            guard let headAddress = listed[thread.tid] else { continue }
            let activations = try self.activations(of: thread, head: try word(headAddress, "an activation head"), modules: modules, word: word)
            guard !activations.isEmpty, let stack = core.segment(containing: thread.sp) else { continue }
            let crashed = index == 0 && core.signal != nil
            let note = crashed ? "thread \(thread.tid), signal \(core.signal!.number), fault address \(hex(core.signal!.address))"
                : "thread \(thread.tid)"
            // As a capture at a host call: the registers are those of the
            // newest wasm frame (host frames have no CFI here), so `--verify`
            // unwinds the wasm frames with libunwind from there.
            let newest = activations[0]
            result.append(ThreadCapture(tid: thread.tid, crashed: crashed, capture: CaptureFile(
                registers: [16: newest.start.rawValue, 6: newest.startFramePointer, 7: newest.startStackPointer],
                activations: activations, stack: [stack], modules: modules, note: note)))
        }
        return result
    }

    /// The thread's activations, newest first, from its records: the live
    /// limits record for the newest (its exit record, if a host call from
    /// wasm was running; the registers, if the thread stopped in wasm), the
    /// saved fields of each record for the older ones.
    static func activations(of thread: CoreFile.Thread, head: UInt, modules: [CaptureFile.Module],
                            word: (UInt, String) throws(CoreFileError) -> UInt) throws(CoreFileError) -> [CaptureFile.Activation] {
        guard head != 0 else { return [] }
        let limits = try word(head + 8, "an activation record")
        var result: [CaptureFile.Activation] = []
        let exitFP = try word(limits + 8, "the limits record"), exitPC = try word(limits + 16, "the limits record")
        let entryFP = try word(limits + 24, "the limits record")
        if modules.contains(where: { (thread.pc >= $0.codeBase) && (thread.pc < $0.codeBase + $0.codeSize) }) {
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
            if try word(record + 8, "an activation record") == limits {
                let savedPC = try word(record + 32, "an activation record")
                if savedPC != 0 {
                    result.append(CaptureFile.Activation(
                        start: .returnAddress(savedPC), startFramePointer: try word(record + 24, "an activation record"),
                        startStackPointer: 0, entryFramePointer: try word(record + 40, "an activation record")))
                }
            }
            previous = record
            record = try word(record, "an activation record")
        }
        return result
    }

    /// The sp of the frame a host call left, from its call site's stack map
    /// (the frame's size below its fp), as a capture at a host call records
    /// it; the fp when there is no map.
    static func stackPointer(returnAddress: UInt, fp: UInt, modules: [CaptureFile.Module]) -> UInt {
        guard let module = modules.first(where: { returnAddress >= $0.codeBase && returnAddress < $0.codeBase + $0.codeSize }),
              let map = module.stackMaps.map(atReturnOffset: UInt32(returnAddress - module.codeBase)) else { return fp }
        return fp - UInt(map.frameSize)
    }

    static func lastComponent(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }
}

/// One symbol of an ELF executable (from `.symtab`, else `.dynsym`) and
/// where its first segment expects to be loaded.
struct ELFSymbols {
    let value: UInt?
    let firstLoadAddress: UInt

    init(bytes: [UInt8], path: String, name: String) throws(CoreFileError) {
        var fields = Fields(bytes: bytes)
        guard bytes.count >= 64, bytes.starts(with: [0x7F, 0x45, 0x4C, 0x46]), bytes[4] == 2 else {
            throw CoreFileError(offset: 0, problem: "\(path) is not a 64-bit ELF executable")
        }
        let phoff = Int(try fields.u64(32)), phentsize = Int(try fields.u16(54)), phnum = Int(try fields.u16(56))
        var first: UInt?
        for index in 0..<phnum where try fields.u32(phoff + index * phentsize) == 1 {
            let at = phoff + index * phentsize
            if try fields.u64(at + 8) == 0 { first = UInt(try fields.u64(at + 16)); break }
        }
        firstLoadAddress = first ?? 0
        let shoff = Int(try fields.u64(40)), shentsize = Int(try fields.u16(58)), shnum = Int(try fields.u16(60))
        let wantedName = Array(name.utf8)
        var found: UInt?
        for wanted: UInt32 in [2, 11] where found == nil {  // SHT_SYMTAB, then SHT_DYNSYM
            for index in 0..<shnum where try fields.u32(shoff + index * shentsize + 4) == wanted {
                let header = shoff + index * shentsize
                let offset = Int(try fields.u64(header + 24)), size = Int(try fields.u64(header + 32))
                let link = Int(try fields.u32(header + 40))
                let strings = Int(try fields.u64(shoff + link * shentsize + 24))
                for symbol in stride(from: offset, to: offset + size, by: 24) {
                    let nameOffset = strings + Int(try fields.u32(symbol))
                    guard nameOffset + wantedName.count < bytes.count,
                          bytes[nameOffset + wantedName.count] == 0,
                          bytes[nameOffset..<(nameOffset + wantedName.count)].elementsEqual(wantedName) else { continue }
                    found = UInt(try fields.u64(symbol + 8))
                    break
                }
            }
        }
        value = found
    }
}
