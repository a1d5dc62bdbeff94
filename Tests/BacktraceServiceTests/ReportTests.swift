import Foundation
import Testing

/// `run --report`: the runtime's side of the service, against a real server.
@Suite("run --report: spooled, uploaded, nothing lost while the service is down", .serialized)
struct ReportTests {
    /// Runs the CLI with `--report`; its exit status and standard error.
    static func run(_ arguments: [String], service: String, spool: URL, directory: URL) throws -> (status: Int32, stderr: String) {
        let result = try ServiceTestSupport.launch(ServiceTestSupport.cli, ["run"] + arguments
            + ["--report", service, "--report-token", "secret", "--spool", spool.path],
            environment: ["SWIFT_BACKTRACE": "enable=no"], directory: directory)
        return (result.status, result.stderr)
    }

    static func spooled(_ spool: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: spool.path)) ?? []).filter { $0.hasSuffix(".capture") }
    }

    @Test("--report-token or --spool without --report is refused (it was accepted and ignored: a report silently not sent)")
    func optionsNeedReport() throws {
        for (option, value) in [("--report-token", "secret"), ("--spool", "/tmp/spool")] {
            let result = try ServiceTestSupport.launch(ServiceTestSupport.cli, [
                "run", ServiceTestSupport.root.appendingPathComponent("fixtures/programs/factorial.wat").path, option, value])
            #expect(result.status != 0 && result.stderr.contains("\(option) needs --report URL"), "\(result.stderr)")
        }
    }

    @Test("a trap and a host crash while the service is down stay in the spool; the next run sends them; a trap with the service up is sent at once; an unreadable report is set aside")
    func spoolAndUpload() async throws {
        let work = try ServiceTestSupport.directory("report")
        defer { try? FileManager.default.removeItem(at: work) }
        let spool = work.appendingPathComponent("spool")
        let traps = ServiceTestSupport.root.appendingPathComponent("fixtures/traps/traps.wat").path
        let crash = ServiceTestSupport.root.appendingPathComponent("fixtures/programs/crash.wat").path
        let factorial = ServiceTestSupport.root.appendingPathComponent("fixtures/programs/factorial.wat").path

        // Nothing listens on this port yet.
        let data = work.appendingPathComponent("data")
        let probe = try ServerProcess(data: data)
        let service = probe.base
        probe.kill9()
        let trapped = try Self.run([traps, "--invoke", "outer"], service: service, spool: spool, directory: work)
        #expect(trapped.status == 134 && trapped.stderr.contains("kept in the spool for the next run"), "\(trapped.stderr)")
        let crashed = try Self.run([crash, "--invoke", "outer", "0"], service: service, spool: spool, directory: work)
        #expect(crashed.status != 0 && crashed.status != 134, "status \(crashed.status)")
        #expect(Self.spooled(spool).count == 2, "\(Self.spooled(spool))")
        // A file no service can read, set aside (not retried for ever).
        try Data("not a capture".utf8).write(to: spool.appendingPathComponent("0000000000000000-garbage.capture"))

        // The service is back (same port): a clean run sends what waited.
        let server = try ServerProcess(data: data, extra: ["--port", String(probe.port)])
        #expect(server.port == probe.port)
        let clean = try Self.run([factorial, "--invoke", "fac", "5"], service: service, spool: spool, directory: work)
        #expect(clean.status == 0, "\(clean.stderr)")
        #expect(clean.stderr.components(separatedBy: "report of an earlier run").count - 1 == 3, "\(clean.stderr)")
        #expect(clean.stderr.contains("refused by the service") && Self.spooled(spool).isEmpty, "\(clean.stderr)")
        #expect(FileManager.default.fileExists(atPath: spool.appendingPathComponent("rejected/0000000000000000-garbage.capture.reason").path))

        // With the service up, a trap is sent at once.
        let again = try Self.run([traps, "--invoke", "outer"], service: service, spool: spool, directory: work)
        #expect(again.status == 134 && again.stderr.contains(": stored as event"), "\(again.stderr)")
        let groups = try await http("GET", "\(service)/api/v1/groups").body["groups"] as? [[String: Any]] ?? []
        let counts = Dictionary(uniqueKeysWithValues: groups.compactMap { group in
            (group["title"] as? String).map { ($0, group["count"] as? Int ?? 0) }
        })
        #expect(counts["wasm trap: wasm `unreachable` instruction executed in traps!inner"] == 2, "\(counts)")
        #expect(counts.count == 2 && counts.keys.contains { $0.contains("crash") || $0.contains("signal") }, "\(counts)")
    }
}
