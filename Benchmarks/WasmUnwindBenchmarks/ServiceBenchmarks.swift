// What the backtrace service takes per upload (issue 30). Unique captures
// (a committed fixture with a counter appended, so every blob is new) read,
// grouped, symbolicated and stored durably:
//  * by `EventStore` in this process, with SQLite and with PostgreSQL (a
//    server of the benchmark's own), 1, 4 and 16 uploads at once — events
//    per second, p50/p99 latency, the group commit's batches;
//  * over HTTP: `wasm-unwind-server` under wrk (Debian's), 16 connections,
//    then on to 100,000 events with the server's resident memory sampled.
import BacktraceService
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import PostgresScratch

/// A result handed from a task to the thread waiting for it.
final class ResultBox<T>: @unchecked Sendable {
    // SAFETY of @unchecked Sendable: written once by the task before it
    // signals, read by the waiter after.
    var result: Result<T, any Error>?
}

/// Runs `body` on Swift's concurrency threads and waits for it.
func waitFor<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        do { box.result = .success(try await body()) } catch { box.result = .failure(error) }
        done.signal()
    }
    done.wait()
    return try box.result!.get()
}

func serviceReport() throws -> [String] {
    let root = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let capture = [UInt8](try Data(contentsOf: root.appendingPathComponent("fixtures/captures/trap.capture")))
    var lines = ["backtrace service: unique \(capture.count)-byte captures read, grouped and stored durably "
                 + "(group commit: one syncfs and one transaction per batch)"]
    let counter = Counter()
    lines += try storeRuns("SQLite (WAL, synchronous=FULL)", capture: capture, counter: counter, index: nil)
    lines += try httpRun(capture: capture, root: root)
    if PostgresScratch.binaries != nil {
        let postgres = try PostgresScratch()
        defer { postgres.stop() }
        let location = try PostgresIndex.Location(url: postgres.url())
        lines += try storeRuns("PostgreSQL 15 on loopback (synchronous_commit on)", capture: capture, counter: counter,
                               index: { try await PostgresIndex(location) })
        lines += try httpRun(capture: capture, root: root, database: postgres.url())
    } else {
        lines.append("  PostgreSQL: not measured (no server under /usr/lib/postgresql; make tools installs it)")
    }
    return lines
}

/// A counter for unique uploads.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value: UInt64 = 0
    func next() -> UInt64 {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value
    }
}

func storeRuns(_ name: String, capture: [UInt8], counter: Counter, index: (@Sendable () async throws -> any EventIndex)?) throws -> [String] {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wasm-unwind-bench-service-\(getpid())")
    defer { try? FileManager.default.removeItem(at: directory) }
    let store = try waitFor { try EventStore(directory: directory, index: try await index?()) }
    var lines = ["  EventStore, \(name):"]
    for clients in [1, 4, 16] {
        let count = 3000
        let uploads = (0..<count).map { _ in capture + withUnsafeBytes(of: counter.next().littleEndian) { Array($0) } }
        let before = store.commitStatistics
        let start = Clock.nanoseconds()
        let latencies = try waitFor {
            try await withThrowingTaskGroup(of: [UInt64].self) { group in
                for client in 0..<clients {
                    group.addTask {
                        var mine: [UInt64] = []
                        for index in stride(from: client, to: count, by: clients) {
                            let began = Clock.nanoseconds()
                            _ = try await store.ingest(uploads[index], metadata: EventStore.Metadata(host: "bench"))
                            mine.append(Clock.nanoseconds() - began)
                        }
                        return mine
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
        }
        let seconds = Double(Clock.nanoseconds() - start) / 1e9
        let sorted = latencies.sorted()
        let after = store.commitStatistics
        lines.append(String(format: "    %2d at once: %d uploads in %.2f s, %.0f events/s; latency p50 %.2f ms, p99 %.2f ms; "
                            + "%d batches, %.1f events each on average", clients, count, seconds, Double(count) / seconds,
                            percentile(sorted, 0.5), percentile(sorted, 0.99), after.batches - before.batches,
                            Double(after.events - before.events) / Double(max(1, after.batches - before.batches))))
    }
    try waitFor { await store.stop() }
    return lines
}

func percentile(_ sorted: [UInt64], _ p: Double) -> Double {
    Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1e6
}

/// The server under wrk: 10 s at 16 connections, then (SQLite) on to
/// 100,000 events, the server's resident memory read along the way.
func httpRun(capture: [UInt8], root: URL, database: String? = nil) throws -> [String] {
    guard let wrk = ["/usr/bin/wrk", "/usr/local/bin/wrk"].first(where: FileManager.default.isExecutableFile) else {
        return ["  HTTP: not measured (no wrk; make bench installs Debian's)"]
    }
    let server = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("wasm-unwind-server")
    let work = FileManager.default.temporaryDirectory.appendingPathComponent("wasm-unwind-bench-http-\(getpid())")
    try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: work) }
    let process = Process()
    process.executableURL = server
    process.arguments = ["--port", "0", "--data", work.appendingPathComponent("data").path, "--token", "bench:secret"]
        + (database.map { ["--database", $0] } ?? [])
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    defer { process.terminate(); process.waitUntilExit() }
    var port = 0
    var text = ""
    while port == 0 {
        let chunk = output.fileHandleForReading.availableData
        guard !chunk.isEmpty else { return ["  HTTP: the server did not start: \(text)"] }
        text += String(decoding: chunk, as: UTF8.self)
        if let range = text.range(of: "listening on http://127.0.0.1:") {
            port = Int(text[range.upperBound...].prefix { $0.isNumber }) ?? 0
        }
    }
    // The capture's bytes as a Lua string; each request appends its
    // thread's id and a counter (a new blob every time), as the store runs
    // do. (wrk's Lua is LuaJIT: no string.pack.)
    let literal = capture.map { String(format: "\\%03d", $0) }.joined()
    let script = work.appendingPathComponent("upload.lua")
    try """
        local body = "\(literal)"
        local threads = 0
        setup = function(thread) threads = threads + 1; thread:set("id", threads) end
        local n = 0
        request = function()
          n = n + 1
          return wrk.format("POST", "/api/v1/events?host=wrk", {["Authorization"] = "Bearer secret",
            ["Content-Type"] = "application/octet-stream"}, body .. string.format("%02d%012d", id or 0, n))
        end
        """.write(to: script, atomically: true, encoding: .utf8)
    func rss() -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)) ?? ""
        return Int(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }?.split(separator: " ")[1] ?? "0") ?? 0
    }
    func events() -> Int {
        let url = URL(string: "http://127.0.0.1:\(port)/metrics")!
        guard let data = try? waitFor({ try await URLSession.shared.data(from: url).0 }),
              let line = String(decoding: data, as: UTF8.self).split(separator: "\n").first(where: { $0.hasPrefix("wasm_unwind_events ") }) else {
            return -1
        }
        return Int(Double(line.split(separator: " ")[1]) ?? -1)
    }
    func runWrk(_ seconds: Int) throws -> String {
        let run = Process()
        run.executableURL = URL(fileURLWithPath: wrk)
        run.arguments = ["-t2", "-c16", "-d\(seconds)s", "--latency", "-s", script.path, "http://127.0.0.1:\(port)/"]
        let pipe = Pipe()
        run.standardOutput = pipe
        try run.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        run.waitUntilExit()
        return text
    }
    let startRSS = rss()
    let first = try runWrk(10)
    func field(_ text: String, _ prefix: String) -> String {
        text.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix(prefix) }
            .map { $0.trimmingCharacters(in: .whitespaces).dropFirst(prefix.count).trimmingCharacters(in: .whitespaces) } ?? "?"
    }
    var lines = ["  HTTP (wasm-unwind-server, \(database == nil ? "SQLite" : "PostgreSQL"); wrk -t2 -c16 on the same 2 cores):",
                 "    \(field(first, "Requests/sec:")) requests/s; latency p50 \(field(first, "50%")), p99 \(field(first, "99%"))"
                 + "; non-2xx: \(field(first, "Non-2xx or 3xx responses:") == "?" ? "0" : field(first, "Non-2xx or 3xx responses:"))"]
    guard database == nil else { return lines }
    var samples = [(events(), rss())]
    while samples.last!.0 >= 0 && samples.last!.0 < 100_000 {
        _ = try runWrk(10)
        samples.append((events(), rss()))
    }
    lines.append("    resident memory: \(startRSS) KiB at start; " + samples.map { "\($0.1) KiB at \($0.0) events" }.joined(separator: ", "))
    return lines
}
