import CWasmUnwindABI
import Glibc
import WasmUnwind
import CWasmTools

/// JIT code made visible to gdb through its JIT interface: an in-memory ELF
/// object file with a symbol per function and stub, the code's CFI, and
/// DWARF line and subprogram information, registered with
/// `__jit_debug_register_code` for as long as the image lives.
///
/// The object (`ET_REL`, every address final, so nothing is relocated):
/// * `.text` — `NOBITS` at the code's address and size (the code stays
///   where it runs; gdb reads it from the process or core);
/// * `.eh_frame` — a copy of the CFI with the address it has in memory, so
///   its pc-relative pointers resolve as they do there;
/// * `.debug_abbrev`, `.debug_info`, `.debug_line` — see `DWARFWriter`;
/// * `.symtab` — `module!function`, `module!<entry trampoline ...>`.
///
/// gdb reads the list of images from the process, or from a core file
/// (the images are in the process's heap), so a crashed process's wasm
/// frames are named too.
public final class GDBJITImage: @unchecked Sendable {
    /// The object file gdb reads.
    public let objectFile: [UInt8]
    private let storage: UnsafeMutableRawBufferPointer
    private let entry: UnsafeMutablePointer<wu_jit_code_entry>
    /// The listing gdb shows as the source of code whose lines are wasm
    /// offsets (`Listing`), removed with the image; nil when there is none.
    public let listing: Listing?

    /// Builds the object for `description` and registers it.
    public init(_ description: JITCodeDescription) throws {
        listing = Listing(description)
        objectFile = Self.objectFile(for: description, directory: listing?.directory ?? "")
        storage = .allocate(byteCount: objectFile.count, alignment: 16)
        storage.copyBytes(from: objectFile)
        guard let entry = wu_jit_debug_register(storage.baseAddress!.assumingMemoryBound(to: CChar.self),
                                                UInt64(objectFile.count)) else {
            storage.deallocate()
            throw JITToolError.outOfMemory("the GDB JIT interface entry")
        }
        self.entry = entry
    }

    deinit {
        wu_jit_debug_unregister(entry)
        storage.deallocate()
        listing?.remove()
    }

    /// How many images are registered in this process now.
    public static var registeredCount: Int { Int(wu_jit_debug_entry_count()) }

    /// The ELF object describing `description`.
    static func objectFile(for description: JITCodeDescription, directory: String = "") -> [UInt8] {
        let (routines, sourceFiles) = description.lineTable
        let base = UInt64(description.module.codeRange.lowerBound)
        var elf = ELFWriter()
        let text = elf.add(.init(name: ".text", type: .nobits, flags: ELFWriter.alloc | ELFWriter.execute, address: base,
                                 bytes: [], nobitsSize: UInt64(description.machineCode.count), alignment: 16))
        if let ehFrame = description.ehFrame, let start = ehFrame.baseAddress {
            _ = elf.add(.init(name: ".eh_frame", type: .progbits, flags: ELFWriter.alloc,
                              address: UInt64(UInt(bitPattern: start)), bytes: Array(ehFrame), alignment: 8))
        }
        let dwarf = DWARFWriter.sections(for: routines, fileName: description.sourceName, sourceFiles: sourceFiles,
                                         compilationDirectory: directory, producer: "WasmUnwind JITTools")
        _ = elf.add(.init(name: ".debug_abbrev", type: .progbits, flags: 0, address: 0, bytes: dwarf.abbrev))
        _ = elf.add(.init(name: ".debug_info", type: .progbits, flags: 0, address: 0, bytes: dwarf.info))
        _ = elf.add(.init(name: ".debug_line", type: .progbits, flags: 0, address: 0, bytes: dwarf.line))
        elf.symbols = routines.map { routine in
            ELFWriter.Symbol(name: routine.name, value: routine.range.lowerBound - base, size: UInt64(routine.range.count),
                             section: text, isGlobal: !routine.isStub)
        }
        return elf.bytes()
    }
}

/// Why a tool interface could not describe or publish JIT code.
public enum JITToolError: Error, CustomStringConvertible {
    case outOfMemory(String)
    case file(path: String, operation: String, errno: Int32)
    case unwindInfo(EhFrameError)

    public var description: String {
        switch self {
        case .outOfMemory(let what): return "out of memory for \(what)"
        case .file(let path, let operation, let errno): return "\(path): cannot \(operation): \(String(cString: strerror(errno)))"
        case .unwindInfo(let error): return "unwind info: \(error)"
        }
    }
}

extension GDBJITImage {
    /// A text file standing in for the source of code whose "lines" are
    /// wasm module offsets: line N reads `0x71  nested!leaf` when byte N
    /// (here 113) of the module starts an instruction with code of its own,
    /// so gdb's stops and `list` show the offset in hex, as every other
    /// output does (a DWARF line number can only be decimal). Written to
    /// `$TMPDIR/wasm-unwind-gdb-PID/CODEBASE/` under the module's file name
    /// (the image's compilation directory), removed with the image. Modules
    /// over `maximumLines` bytes get none.
    public struct Listing: Sendable {
        public let directory: String
        public let path: String
        public static let maximumLines = 16 << 20

        init?(_ description: JITCodeDescription) {
            let routines = description.lineTable.routines
            var named: [UInt32: String] = [:]
            for routine in routines {
                for row in routine.lines where row.file == 0 && named[row.line] == nil { named[row.line] = routine.name }
            }
            // Only code with wasm offsets as lines; nothing to show otherwise.
            guard let last = named.keys.max(), last <= UInt32(Self.maximumLines) else { return nil }
            let temporary = getenv("TMPDIR").flatMap { String(validatingCString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
            let parent = temporary + "/wasm-unwind-gdb-\(getpid())"
            directory = parent + "/" + String(description.module.codeRange.lowerBound, radix: 16)
            path = directory + "/" + description.sourceName
            // (Another image's `remove` may take the parent away between
            // the two: then once more.)
            var made = false
            for _ in 0..<2 where !made {
                if mkdir(parent, 0o700) == 0 {
                    Self.removeListings(in: temporary, ofDeadProcessesOtherThan: getpid())
                } else if errno != EEXIST {
                    return nil
                }
                made = mkdir(directory, 0o700) == 0 || errno == EEXIST
            }
            guard made else { return nil }
            var text: [UInt8] = []
            text.reserveCapacity(Int(last) + named.count * 32)
            for line in 1...last {
                if let name = named[line] { text += Array("0x\(String(line, radix: 16))  \(name)".utf8) }
                text.append(UInt8(ascii: "\n"))
            }
            let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else { return nil }
            defer { close(descriptor) }
            var written = 0
            while written < text.count {
                let count = text[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
                guard count > 0 else {
                    unlink(path)
                    return nil
                }
                written += count
            }
        }

        func remove() {
            unlink(path)
            rmdir(directory)
            rmdir(String(directory[..<directory.lastIndex(of: "/")!]))
        }

        /// The listings a process left when it was killed (under gdb, the
        /// usual end): `wasm-unwind-gdb-PID` directories of processes that
        /// are gone, removed when a process makes its own.
        static func removeListings(in temporary: String, ofDeadProcessesOtherThan me: pid_t) {
            func names(_ directory: String) -> [String] {
                guard let handle = opendir(directory) else { return [] }
                defer { closedir(handle) }
                var names: [String] = []
                while names.count < 10_000, let entry = readdir(handle) {
                    let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                    if name != "." && name != ".." { names.append(name) }
                }
                return names
            }
            let prefix = "wasm-unwind-gdb-"
            for name in names(temporary) where name.hasPrefix(prefix) {
                guard let pid = pid_t(name.dropFirst(prefix.count)), pid != me, kill(pid, 0) == -1, errno == ESRCH else { continue }
                let parent = temporary + "/" + name
                for image in names(parent) {
                    for file in names(parent + "/" + image) { unlink(parent + "/" + image + "/" + file) }
                    rmdir(parent + "/" + image)
                }
                rmdir(parent)
            }
        }
    }
}
