import Glibc
import Synchronization
import WasmUnwind

/// perf's map of JIT code, `/tmp/perf-PID.map`: a line `START SIZE name`
/// (hex, no `0x`) per function and stub, appended as modules are loaded.
/// `perf report` reads it to name samples in anonymous executable memory.
/// One file per process, shared by every engine that asks for it; lines are
/// never removed (the format has no unload: a reused address range is
/// named by its newest line).
public final class PerfMap: @unchecked Sendable {
    /// The process's map, opened (created, or appended to) on first use.
    public static func shared() throws -> PerfMap {
        try sharedMap.withLock { map in
            if let map { return map }
            let created = try PerfMap(path: "/tmp/perf-\(getpid()).map")
            map = created
            return created
        }
    }
    private static let sharedMap = Mutex<PerfMap?>(nil)

    public let path: String
    private let descriptor: Int32
    private let lock = Mutex(())

    init(path: String) throws {
        self.path = path
        descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw JITToolError.file(path: path, operation: "open", errno: errno) }
    }

    deinit { close(descriptor) }

    /// Appends a line per function and stub of `description`.
    public func record(_ description: JITCodeDescription) throws {
        var text = ""
        for routine in description.routines {
            text += String(routine.range.lowerBound, radix: 16) + " " + String(routine.range.count, radix: 16) + " "
                + routine.name.map { $0 == "\n" ? " " : $0 } + "\n"
        }
        try lock.withLock { _ in
            try writeAll(Array(text.utf8), to: descriptor, path: path)
        }
    }
}

/// Writes every byte or throws with the OS's reason.
func writeAll(_ bytes: [UInt8], to descriptor: Int32, path: String) throws {
    var written = 0
    while written < bytes.count {
        let result = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + written, $0.count - written) }
        if result < 0 {
            if errno == EINTR { continue }
            throw JITToolError.file(path: path, operation: "write", errno: errno)
        }
        written += result
    }
}
