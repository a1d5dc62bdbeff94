#if canImport(Glibc)
import Glibc
#endif

/// Why an input could not be read: which input, and what the system or
/// the check said.
public struct InputError: Error, CustomStringConvertible, Sendable {
    public var name: String
    /// A sentence that names the input.
    public var description: String
}

/// The bytes of an input, read once and only as far as they are needed.
///
/// A regular file is read with `pread(2)` as parts of it are asked for:
/// a core of several gigabytes costs what the reader looks at, and a file
/// truncated while it is read gives short reads (errors), never SIGBUS as
/// a mapping would. Anything else — a pipe, a FIFO, `/dev/stdin`, a
/// character device — is read to its end once, into memory, up to a
/// limit (`/dev/zero` is an error, not an endless read). Bytes handed in
/// (`init(bytes:name:)`) are read the same way.
public final class InputBytes: @unchecked Sendable {
    /// The path, or what the bytes were called.
    public let name: String
    /// How many bytes there are.
    public let count: Int
    /// The open file (regular files), or -1.
    private let descriptor: Int32
    private let memory: [UInt8]
    /// Bytes that read in place of the original ones (`patched`).
    private let patch: (offset: Int, bytes: [UInt8])?
    /// For a patched input: the input patched.
    private let base: InputBytes?

    /// At most this many bytes are read from an input that is not a regular
    /// file.
    public static let defaultStreamLimit = 256 << 20

    public init(bytes: [UInt8], name: String) {
        self.name = name
        count = bytes.count
        descriptor = -1
        memory = bytes
        patch = nil
        base = nil
    }

    private init(base: InputBytes, count: Int, patch: (offset: Int, bytes: [UInt8])?) {
        name = base.name
        self.count = count
        descriptor = -1
        memory = []
        self.patch = patch
        self.base = base
    }

    /// These bytes with `replacement` read at `offset` and, with
    /// `truncatedTo`, only that many bytes: a corrupt copy of an input that
    /// costs no copy of it (for tests and fuzzing of the readers).
    public func patched(_ replacement: [UInt8] = [], at offset: Int = 0, truncatedTo length: Int? = nil) -> InputBytes {
        precondition(offset >= 0 && offset <= count && replacement.count <= count - offset, "a patch inside the input")
        return InputBytes(base: self, count: min(length ?? count, count), patch: (offset, replacement))
    }

    /// Opens `path`: an error that says so for a directory, a missing or
    /// unreadable file, or a stream longer than `streamLimit` bytes.
    public init(path: String, streamLimit: Int = InputBytes.defaultStreamLimit) throws(InputError) {
        name = path
        let opened = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard opened >= 0 else {
            throw InputError(name: path, description: "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        var status = stat()
        guard fstat(opened, &status) == 0 else {
            let reason = String(cString: strerror(errno))
            close(opened)
            throw InputError(name: path, description: "cannot read \(path): \(reason)")
        }
        switch status.st_mode & S_IFMT {
        case S_IFDIR:
            close(opened)
            throw InputError(name: path, description: "\(path) is a directory, not a file")
        case S_IFREG:
            descriptor = opened
            count = Int(status.st_size)
            memory = []
            patch = nil
            base = nil
        default:
            defer { close(opened) }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let got = chunk.withUnsafeMutableBytes { Glibc.read(opened, $0.baseAddress, $0.count) }
                if got < 0 {
                    if errno == EINTR { continue }
                    throw InputError(name: path, description: "cannot read \(path): \(String(cString: strerror(errno)))")
                }
                if got == 0 { break }
                guard bytes.count + got <= streamLimit else {
                    throw InputError(name: path, description: "\(path) gives more than \(streamLimit) bytes (not a file: a stream without end?)")
                }
                bytes.append(contentsOf: chunk[0..<got])
            }
            descriptor = -1
            count = bytes.count
            memory = bytes
            patch = nil
            base = nil
        }
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    /// `length` bytes at `offset`, or nil if any of them lies past the end
    /// (or the file shrank).
    public func bytes(at offset: Int, count length: Int) -> [UInt8]? {
        guard offset >= 0, length >= 0, offset <= count, length <= count - offset else { return nil }
        if let base {
            guard var result = base.bytes(at: offset, count: length) else { return nil }
            if let patch {
                let from = max(offset, patch.offset), to = min(offset + length, patch.offset + patch.bytes.count)
                if from < to { result.replaceSubrange((from - offset)..<(to - offset), with: patch.bytes[(from - patch.offset)..<(to - patch.offset)]) }
            }
            return result
        }
        if descriptor < 0 { return Array(memory[offset..<(offset + length)]) }
        var result = [UInt8](repeating: 0, count: length)
        var done = 0
        let complete = result.withUnsafeMutableBytes { raw -> Bool in
            while done < length {
                let got = pread(descriptor, raw.baseAddress! + done, length - done, off_t(offset + done))
                if got < 0 && errno == EINTR { continue }
                if got <= 0 { return false }
                done += got
            }
            return true
        }
        return complete ? result : nil
    }

    /// All the bytes, if there are at most `limit`.
    public func all(limit: Int) throws(InputError) -> [UInt8] {
        guard count <= limit else { throw InputError(name: name, description: "\(name) has \(count) bytes, more than the \(limit) read at once") }
        guard let bytes = bytes(at: 0, count: count) else {
            throw InputError(name: name, description: "cannot read the \(count) bytes of \(name) (did it shrink?)")
        }
        return bytes
    }

    /// Whether the input starts with `prefix`.
    public func starts(with prefix: [UInt8]) -> Bool {
        bytes(at: 0, count: prefix.count) == prefix
    }
}
