import CWasmUnwindABI
import Glibc

/// A capture written by the signal handler when a fault outside wasm kills
/// the process: the faulting thread's wasm activations, its stack from the
/// newest wasm frame up, and the modules listed in the post-mortem
/// descriptor (`Engine.Configuration.postMortem`). The handler then chains
/// to the previous handler as always, so the process still dies of its
/// signal (with Swift's crash report). `wasm-unwind dump` reads the file
/// like any capture (docs/post-mortem.md).
public enum CrashCapture {
    /// Opens (creates, truncates) `path` now — a signal handler cannot — and
    /// arms the handler to write it at a crash.
    public static func enable(path: String) throws(CompileError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw .toolInterface("cannot open the crash capture \(path): \(String(cString: strerror(errno)))")
        }
        wu_crash_capture_set_fd(fd)
    }

    /// Disarms it (the file stays, empty if nothing crashed).
    public static func disable() {
        wu_crash_capture_set_fd(-1)
    }
}
