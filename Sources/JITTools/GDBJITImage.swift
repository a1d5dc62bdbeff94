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

    /// Builds the object for `description` and registers it.
    public init(_ description: JITCodeDescription) throws {
        objectFile = Self.objectFile(for: description)
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
    }

    /// How many images are registered in this process now.
    public static var registeredCount: Int { Int(wu_jit_debug_entry_count()) }

    /// The ELF object describing `description`.
    static func objectFile(for description: JITCodeDescription) -> [UInt8] {
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
                                         producer: "WasmUnwind JITTools")
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
