import CWasmUnwindABI
import Glibc
import Synchronization
@_spi(Tools) import WasmUnwind

/// A jitdump file (`jit-PID.dump`, Linux's
/// tools/perf/Documentation/jitdump-specification.txt, version 1): for
/// every function and stub, a `JIT_CODE_DEBUG_INFO` record (native address
/// -> wasm offset as the line, in the module's file), a
/// `JIT_CODE_UNWINDING_INFO` record (its CFI as an `.eh_frame` and
/// `.eh_frame_hdr`), then the `JIT_CODE_LOAD` record with its name and code;
/// `JIT_CODE_CLOSE` when the process exits.
///
/// `perf record -k 1` (timestamps from CLOCK_MONOTONIC, which the records
/// use) sees the file because it is mapped executable; `perf inject --jit`
/// then turns each load into an ELF file (`jitted-PID-N.so`) with the code,
/// the line table and the unwinding information, so `perf report` names the
/// code, `perf annotate` shows wasm offsets and `--call-graph dwarf`
/// unwinds through it.
public final class JitDump: @unchecked Sendable {
    /// The process's jitdump in `directory`, created on first use; later
    /// calls return the same file whatever directory they name.
    public static func shared(directory: String = ".") throws -> JitDump {
        try sharedDump.withLock { dump in
            if let dump { return dump }
            let created = try JitDump(path: directory + "/jit-\(getpid()).dump")
            dump = created
            atexit { try? JitDump.sharedDump.withLock { $0 }?.close() }
            return created
        }
    }
    private static let sharedDump = Mutex<JitDump?>(nil)

    // Record types.
    static let codeLoad: UInt32 = 0, debugInfo: UInt32 = 2, codeClose: UInt32 = 3, unwindingInfo: UInt32 = 4

    public let path: String
    private let descriptor: Int32
    private let mapping: UnsafeMutableRawPointer
    private let state = Mutex((codeIndex: UInt64(0), closed: false))

    init(path: String) throws {
        self.path = path
        descriptor = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw JITToolError.file(path: path, operation: "create", errno: errno) }
        var header: [UInt8] = []
        header.appendLittleEndian(UInt32(0x4A69_5444))   // "JiTD"
        header.appendLittleEndian(UInt32(1))             // version
        header.appendLittleEndian(UInt32(40))            // header size
        header.appendLittleEndian(UInt32(NativeArchitecture.elfMachine))  // e_machine
        header.appendLittleEndian(UInt32(0))             // pad
        header.appendLittleEndian(UInt32(getpid()))
        header.appendLittleEndian(Self.timestamp())
        header.appendLittleEndian(UInt64(0))             // flags: CLOCK_MONOTONIC timestamps
        do {
            try writeAll(header, to: descriptor, path: path)
        } catch {
            Glibc.close(descriptor)
            throw error
        }
        // perf record learns of the file from this executable mapping.
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard let mapped = mmap(nil, page, PROT_READ | PROT_EXEC, MAP_PRIVATE, descriptor, 0), mapped != MAP_FAILED else {
            let failure = errno
            Glibc.close(descriptor)
            throw JITToolError.file(path: path, operation: "map", errno: failure)
        }
        mapping = mapped
    }

    deinit {
        munmap(mapping, Int(sysconf(Int32(_SC_PAGESIZE))))
        Glibc.close(descriptor)
    }

    static func timestamp() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    /// The records of every function and stub of `description`.
    public func record(_ description: JITCodeDescription) throws {
        var ehFrame: EhFrame?
        if let memory = description.ehFrame {
            do {
                ehFrame = try EhFrame(bytes: Array(memory), address: UInt64(UInt(bitPattern: memory.baseAddress)))
            } catch let error as EhFrameError {
                throw JITToolError.unwindInfo(error)
            }
        }
        let pid = UInt32(getpid()), tid = UInt32(bitPattern: wu_gettid())
        try state.withLock { state in
            guard !state.closed else { return }
            var out: [UInt8] = []
            let (routines, sourceFiles) = description.lineTable
            let codeEnd = UInt64(description.module.codeRange.lowerBound) + UInt64(description.machineCode.count)
            for (position, routine) in routines.enumerated() {
                let room = (position + 1 < routines.count ? routines[position + 1].range.lowerBound : codeEnd)
                    - routine.range.lowerBound
                if !routine.lines.isEmpty {
                    var body: [UInt8] = []
                    body.appendLittleEndian(routine.range.lowerBound)
                    body.appendLittleEndian(UInt64(routine.lines.count))
                    for (address, file, line) in routine.lines {
                        body.appendLittleEndian(address)
                        body.appendLittleEndian(line)
                        body.appendLittleEndian(UInt32(0))   // discriminator
                        // The module (wasm offsets as lines) or a source file.
                        body.append(contentsOf: (file == 0 ? description.sourceName : sourceFiles[file - 1]).utf8)
                        body.append(0)
                    }
                    Self.appendRecord(Self.debugInfo, body, padded: true, to: &out)
                }
                if let ehFrame, let fde = ehFrame.fde(covering: routine.range.lowerBound) {
                    // perf inject places the code at 0 of its ELF's text,
                    // the .eh_frame 8-aligned after it and the header next,
                    // and maps them there, after the code: where the JIT
                    // left room for them (WasmJIT leaves it with
                    // `leavesUnwindingRoom`), or the record would cover the
                    // next routine and is left out.
                    let place = (UInt64(routine.range.count) + 7) & ~7
                    let unwinding: (ehFrame: [UInt8], header: [UInt8])
                    do {
                        unwinding = try ehFrame.standalone(fde, codeAddress: 0, ehFrameAddress: place)
                    } catch let error as EhFrameError {
                        throw JITToolError.unwindInfo(error)
                    }
                    if place + UInt64(unwinding.ehFrame.count + unwinding.header.count) <= room {
                    let size = UInt64(unwinding.ehFrame.count + unwinding.header.count)
                    var body: [UInt8] = []
                    body.appendLittleEndian(size)                              // unwinding_size
                    body.appendLittleEndian(UInt64(unwinding.header.count))    // eh_frame_hdr_size
                    body.appendLittleEndian(size)                              // mapped_size
                    body += unwinding.ehFrame
                    body += unwinding.header
                    Self.appendRecord(Self.unwindingInfo, body, padded: true, to: &out)
                    }
                }
                var body: [UInt8] = []
                body.appendLittleEndian(pid)
                body.appendLittleEndian(tid)
                body.appendLittleEndian(routine.range.lowerBound)           // vma
                body.appendLittleEndian(routine.range.lowerBound)           // code_addr
                body.appendLittleEndian(UInt64(routine.range.count))
                body.appendLittleEndian(state.codeIndex)
                state.codeIndex += 1
                body.append(contentsOf: routine.name.utf8)
                body.append(0)
                body += description.code(in: routine.range)
                // perf finds the code at the record's end: no padding.
                Self.appendRecord(Self.codeLoad, body, padded: false, to: &out)
            }
            try writeAll(out, to: descriptor, path: path)
        }
    }

    /// Writes `JIT_CODE_CLOSE`; later records are dropped.
    public func close() throws {
        try state.withLock { state in
            guard !state.closed else { return }
            state.closed = true
            var out: [UInt8] = []
            Self.appendRecord(Self.codeClose, [], padded: true, to: &out)
            try writeAll(out, to: descriptor, path: path)
        }
    }

    static func appendRecord(_ id: UInt32, _ body: [UInt8], padded: Bool, to out: inout [UInt8]) {
        let size = 16 + body.count
        let total = padded ? (size + 7) & ~7 : size
        out.appendLittleEndian(id)
        out.appendLittleEndian(UInt32(total))
        out.appendLittleEndian(timestamp())
        out += body
        out += [UInt8](repeating: 0, count: total - size)
    }
}
