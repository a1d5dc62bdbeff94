// wasm-unwind-server: the backtrace service (docs/service.md). `wasm-unwind
// serve` runs it; it is a program of its own so that the CLI's core builds
// without the server's dependencies.
import ArgumentParser
import BacktraceServer
import BacktraceService
import Foundation

@main
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wasm-unwind serve",
        abstract: "Collect captures and coredumps over HTTP, group them, and serve the groups (docs/service.md).")

    @Option(name: .long, help: "The address to listen on (reads need no token on loopback only).")
    var host = "127.0.0.1"

    @Option(name: .long, help: "The port (0: any free one; the line `listening on URL` says which).")
    var port = 8765

    @Option(name: .long, help: ArgumentHelp("The directory of the service's data (SQLite database and uploads).", valueName: "DIR"))
    var data = "wasm-unwind-service"

    @Option(name: .long, help: ArgumentHelp("An upload token of a project (PROJECT:TOKEN); repeatable. Without one, a token is made for project `default` and printed.", valueName: "PROJECT:TOKEN"))
    var token: [String] = []

    @Option(name: .long, help: ArgumentHelp("Keep events and groups in PostgreSQL (shared by several servers) instead of SQLite in --data; uploads stay files in --data.", valueName: "postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"))
    var database: String?

    @Option(name: .long, help: "How many of the program's newest frames make a crash's signature (its depth is part of the signature: groups made with another depth stay apart).")
    var groupingDepth = 5

    @Option(name: .long, help: "Uploads larger than this many bytes are refused (413).")
    var maximumUploadBytes = 64 << 20

    func validate() throws {
        guard (1...64).contains(groupingDepth) else { throw ValidationError("--grouping-depth must be 1 to 64, got \(groupingDepth)") }
    }

    func run() async throws {
        var tokens: [String: String] = [:]
        for entry in token {
            guard let colon = entry.firstIndex(of: ":"), colon != entry.startIndex, entry.index(after: colon) != entry.endIndex else {
                throw ValidationError("--token takes PROJECT:TOKEN, got \(entry)")
            }
            tokens[String(entry[..<colon])] = String(entry[entry.index(after: colon)...])
        }
        if tokens.isEmpty {
            let made = (0..<24).map { _ in String("abcdefghijklmnopqrstuvwxyz0123456789".randomElement()!) }.joined()
            tokens["default"] = made
            FileHandle.standardOutput.write(Data("upload token for project default: \(made)\n".utf8))
        }
        let location: PostgresIndex.Location?
        do { location = try database.map { (url) throws(EventError) in try PostgresIndex.Location(url: url) } } catch {
            throw ValidationError(error.description)
        }
        let server = try await BacktraceServer(BacktraceServer.Options(
            host: host, port: port, data: URL(fileURLWithPath: data), tokens: tokens, maximumUploadBytes: maximumUploadBytes,
            database: location, grouping: Grouping(depth: groupingDepth)))
        FileHandle.standardOutput.write(Data("events and groups in \(server.store.index.description)\n".utf8))
        let host = self.host
        try await server.run { port in
            FileHandle.standardOutput.write(Data("listening on http://\(host):\(port)\n".utf8))
        }
    }
}


