import ArgumentParser
import Foundation

/// `wasm-unwind serve`: the backtrace service (docs/service.md). It runs
/// `wasm-unwind-server`, built next to this program, so that this one
/// builds without the server's dependencies.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the backtrace service: captures and coredumps in over HTTP, grouped crashes out (docs/service.md).",
        discussion: """
            Options go to wasm-unwind-server: --host (127.0.0.1), --port (8765; 0 for any free \\
            one), --data DIR (the SQLite database and the uploads), --token PROJECT:TOKEN \\
            (repeatable; without one a token is made and printed), --maximum-upload-bytes.
            """)

    @Argument(parsing: .captureForPassthrough, help: "Options for wasm-unwind-server.")
    var options: [String] = []

    func run() throws {
        let own = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
        let server = own.deletingLastPathComponent().appendingPathComponent("wasm-unwind-server").path
        guard FileManager.default.isExecutableFile(atPath: server) else {
            throw CommandError("\(server) is not there: build it with `swift build --package-path Tools --product wasm-unwind-server`")
        }
        let arguments = [server] + options
        var pointers = arguments.map { strdup($0) } + [nil]
        execv(server, &pointers)
        throw CommandError("cannot run \(server): \(String(cString: strerror(errno)))")
    }
}
