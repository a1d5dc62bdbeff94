#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Executable memory holding one module's machine code.
///
/// Pages are mapped read-write, filled, then switched to read-execute with
/// `mprotect`; they are never writable and executable at the same time
/// (W^X). The mapping is released when the last reference goes away. The
/// corresponding C functions are `mmap`, `mprotect` and `munmap`.
public final class CodeMemory: @unchecked Sendable {
    /// First byte of the code.
    public let baseAddress: UInt
    /// Bytes of code (the mapping is rounded up to whole pages).
    public let size: Int
    private let mappedSize: Int

    /// Maps `code` into fresh read-execute pages.
    public init(code: [UInt8]) throws(CodeMemoryError) {
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let mappedSize = max(pageSize, (code.count + pageSize - 1) / pageSize * pageSize)
        guard let mapping = mmap(nil, mappedSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              mapping != MAP_FAILED
        else { throw .mapFailed(size: mappedSize, errno: errno) }
        code.withUnsafeBytes { source in
            if let from = source.baseAddress { mapping.copyMemory(from: from, byteCount: source.count) }
        }
        // Fill the tail with ud2 (0f 0b) so a stray jump past the code traps.
        let tail = mapping.advanced(by: code.count)
        for index in stride(from: 0, to: mappedSize - code.count - 1, by: 2) {
            tail.storeBytes(of: 0x0F, toByteOffset: index, as: UInt8.self)
            tail.storeBytes(of: 0x0B, toByteOffset: index + 1, as: UInt8.self)
        }
        guard mprotect(mapping, mappedSize, PROT_READ | PROT_EXEC) == 0 else {
            let error = errno
            munmap(mapping, mappedSize)
            throw .protectFailed(errno: error)
        }
        self.baseAddress = UInt(bitPattern: mapping)
        self.size = code.count
        self.mappedSize = mappedSize
    }

    deinit {
        munmap(UnsafeMutableRawPointer(bitPattern: baseAddress), mappedSize)
    }

    /// The code's address range.
    public var range: Range<UInt> { baseAddress..<(baseAddress + UInt(size)) }

    /// The address of the code at `offset`.
    public func address(at offset: Int) -> UInt { baseAddress + UInt(offset) }

    /// A copy of the code bytes (for captures and disassembly).
    public var bytes: [UInt8] {
        // SAFETY: the mapping is readable and `size` bytes long while `self` lives.
        Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: baseAddress), count: size))
    }
}

/// Why code memory could not be set up.
public enum CodeMemoryError: Error, Hashable, Sendable {
    case mapFailed(size: Int, errno: Int32)
    case protectFailed(errno: Int32)
}
