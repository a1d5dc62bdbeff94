import CWasmRuntime
import CWasmTools
import CWasmUnwindABI
import Glibc
import WasmJIT

/// A capture written by the signal handler when a fault outside wasm kills
/// the process: the faulting thread's wasm activations, its stack from the
/// newest wasm frame up, and the modules listed in the post-mortem
/// descriptor (`ToolPublishing.postMortem`). The handler then chains
/// to the previous handler as always, so the process still dies of its
/// signal (with Swift's crash report). `wasm-unwind dump` reads the file
/// like any capture (docs/post-mortem.md).
public enum CrashCapture {
    /// Arms the handler to write a capture to `path` at a crash. Nothing is
    /// created now: at the crash the capture is written beside it
    /// (`PATH.partial-PID`) and renamed to `path` when complete, so a run
    /// that does not crash leaves an earlier capture there untouched, and
    /// no one ever sees half a capture. The directory must be writable
    /// (checked here).
    public static func enable(path: String) throws(CompileError) {
        let directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        guard access(directory.isEmpty ? "/" : directory, W_OK) == 0 else {
            throw .toolInterface("cannot write a crash capture in \(directory): \(String(cString: strerror(errno)))")
        }
        let status = wu_crash_capture_set_path(path)
        guard status == 0 else { throw .toolInterface("the crash capture path \(path): \(String(cString: strerror(status)))") }
        TrapHandling.installHandler()
        wu_trap_handler_set_crash_hook(wu_crash_capture_write)
    }

    /// Disarms it.
    public static func disable() {
        _ = wu_crash_capture_set_path(nil)
    }
}
