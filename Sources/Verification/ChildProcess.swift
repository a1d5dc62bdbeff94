import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Running another program to its end and reading what it wrote: the
/// comparisons run `wasm-unwind run` and Wasmtime's helpers as children.
public enum ChildProcess {
    public struct Result: Sendable {
        /// The exit status, or the signal's number when one ended it.
        public var status: Int32
        public var signal: Int32?
        public var stdout: String
        public var stderr: String
    }

    /// Runs `path` with `arguments` (the environment merged over ours,
    /// standard input empty) to its end. With `standardOutput`, the child
    /// writes there instead of to a pipe (its `stdout` is then "").
    public static func run(_ path: String, _ arguments: [String], environment: [String: String] = [:],
                           directory: URL? = nil, standardOutput: FileHandle? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if let directory { process.currentDirectoryURL = directory }
        let out = Pipe(), err = Pipe()
        process.standardOutput = standardOutput ?? out
        process.standardError = err
        // Not our stdin: a debugger in the child would wait on it.
        process.standardInput = FileHandle.nullDevice
        // The child inherits this thread's signal mask, and a test runner's
        // threads block signals: gdb then never sees its inferior's SIGCHLD
        // and waits forever. Spawn with nothing blocked.
        var everything = sigset_t(), previous = sigset_t()
        sigemptyset(&everything)
        pthread_sigmask(SIG_SETMASK, &everything, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        try process.run()
        if standardOutput != nil { try? out.fileHandleForWriting.close() }
        // Both pipes drain at once: a child that fills one while we wait on
        // the other would never end.
        nonisolated(unsafe) var stderr = Data()
        let drained = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            stderr = err.fileHandleForReading.readDataToEndOfFile()
            drained.signal()
        }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        drained.wait()
        process.waitUntilExit()
        let signal = process.terminationReason == .uncaughtSignal ? process.terminationStatus : nil
        return Result(status: process.terminationStatus, signal: signal, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
    }
}
