import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif

@main
struct WasmUnwindCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wasm-unwind",
        abstract: "Backtraces of WebAssembly running as native JIT code.",
        discussion: """
            Runs wasm on a baseline JIT whose trampolines record every host <-> wasm \
            transition, and walks the frame-pointer chain between those records to \
            print exact wasm backtraces.
            """,
        subcommands: [RunCommand.self, DemoCommand.self, DumpCommand.self, CompileCommand.self, VerifyCommand.self,
                      WastCommand.self, VerifyWasmtimeCommand.self, ProfileCommand.self, VerifyProfilerCommand.self,
                      CoredumpCommand.self, ServeCommand.self])

    /// Runs the command, then makes sure its output was written: every
    /// error is reported as `error: ...` on standard error (usage errors
    /// with the usage), and a failure to write standard output is an error.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
            try flushStandardOutput()
        } catch let error as CommandError {
            try? flushStandardOutput()
            printError("error: \(error)")
            Glibc.exit(1)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                exit(withError: error)  // --help, --version: to standard output
            }
            if case .failure(let failure) = Result(catching: { try flushStandardOutput() }) {
                printError("error: \(failure)")
            }
            var message = fullMessage(for: error)
            if message.hasPrefix("Error: ") { message = "error: " + message.dropFirst("Error: ".count) }
            if !message.isEmpty { printError(message) }
            Glibc.exit(code.rawValue)
        }
    }
}
