import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// What a flush did, for a thread that waits for it.
public final class FlushResult: @unchecked Sendable {
    public var outcomes: [(file: String, outcome: ReportSpool.Outcome)] = []
    public init() {}
}

/// The runtime's side of the backtrace service (docs/service.md): a
/// capture of a trap or a crash is written to a spool directory first —
/// durably, before anything is sent — and uploaded from there with its
/// file name as the idempotency key, so a retried or repeated upload is
/// stored once. An upload that fails (the service down, the network gone)
/// leaves the file where it is, and the next flush sends it: nothing is
/// lost while the service is away. An upload the service refuses as
/// unreadable is moved to `rejected/` with the reason, not retried.
public final class ReportSpool: @unchecked Sendable {
    public let directory: URL
    /// The service, e.g. `http://127.0.0.1:8765`.
    public let service: URL
    public let token: String?
    /// Metadata sent with each upload.
    public var host: String?
    public var runtime: String?
    /// One flush at a time (a background flush of earlier reports, and
    /// the flush of a trap's): the files are theirs while they run.
    private let flushing = NSLock()

    public init(directory: URL, service: URL, token: String?) throws {
        self.directory = directory
        self.service = service
        self.token = token
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    /// The spool directory when none is given: `$XDG_CACHE_HOME/wasm-unwind/spool`,
    /// else `~/.cache/wasm-unwind/spool`.
    public static var defaultDirectory: URL {
        let environment = ProcessInfo.processInfo.environment
        let cache = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")
        return cache.appendingPathComponent("wasm-unwind/spool")
    }

    /// A new report's file name: unique, sorting by time.
    func newName(_ suffix: String) -> String {
        let time = UInt64(Date().timeIntervalSince1970 * 1_000_000)
        return String(format: "%016llx-", time) + UUID().uuidString.lowercased() + suffix
    }

    /// Spools `bytes` (a capture or a coredump): written, synced, then
    /// given its name. Returns where it is.
    @discardableResult
    public func add(_ bytes: [UInt8], suffix: String = ".capture") throws -> URL {
        let url = directory.appendingPathComponent(newName(suffix))
        let partial = url.appendingPathExtension("partial-\(getpid())")
        guard FileManager.default.createFile(atPath: partial.path, contents: Data(bytes)) else {
            throw SpoolError("cannot write \(partial.path)")
        }
        let handle = try FileHandle(forWritingTo: partial)
        try handle.synchronize()
        try handle.close()
        try FileManager.default.moveItem(at: partial, to: url)
        return url
    }

    /// Where a crash capture of this process should be written (the crash
    /// writer writes `PATH.partial-PID` and renames it when whole): the
    /// next flush uploads it.
    public func crashCapturePath() -> String { directory.appendingPathComponent(newName(".capture")).path }

    /// Spooled reports not yet uploaded, oldest first.
    public func pending() -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { ($0.hasSuffix(".capture") || $0.hasSuffix(".core")) && !$0.hasPrefix(".") }.sorted()
            .map { directory.appendingPathComponent($0) }
    }

    /// What became of one spooled report.
    public enum Outcome: Hashable, Sendable {
        /// Stored by the service (or stored before: `duplicate`), and removed here.
        case stored(event: Int, duplicate: Bool)
        /// Refused as unreadable or too large: moved to `rejected/`.
        case rejected(String)
        /// Not sent this time (the service away, or refused the token): kept.
        case kept(String)
    }

    /// Uploads every pending report, each tried up to `attempts` times
    /// (100 ms, 400 ms, ... between), each request at most `timeout`.
    public func flush(attempts: Int = 3, timeout: TimeInterval = 10) -> [(file: String, outcome: Outcome)] {
        flushing.lock()
        defer { flushing.unlock() }
        return pending().map { url in (url.lastPathComponent, upload(url, attempts: attempts, timeout: timeout)) }
    }

    func upload(_ url: URL, attempts: Int, timeout: TimeInterval) -> Outcome {
        guard let bytes = try? Data(contentsOf: url) else { return .kept("cannot read \(url.path)") }
        let key = url.deletingPathExtension().lastPathComponent
        var last = "not tried"
        for attempt in 0..<max(1, attempts) {
            if attempt > 0 { usleep(UInt32(100_000 << (2 * min(attempt - 1, 4)))) }
            var components = URLComponents(url: service.appendingPathComponent("api/v1/events"), resolvingAgainstBaseURL: false)!
            components.queryItems = [("host", host), ("runtime", runtime)].compactMap { name, value in
                value.map { URLQueryItem(name: name, value: $0) }
            }
            var request = URLRequest(url: components.url!, timeoutInterval: timeout)
            request.httpMethod = "POST"
            request.httpBody = bytes
            request.setValue("application/octet-stream", forHTTPHeaderField: "Content-Type")
            request.setValue(key, forHTTPHeaderField: "Idempotency-Key")
            if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
            let (status, body, error) = Self.send(request, timeout: timeout)
            if let error {
                last = error
                continue
            }
            let object = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
            switch status {
            case 200, 201:
                try? FileManager.default.removeItem(at: url)
                return .stored(event: object?["id"] as? Int ?? 0, duplicate: status == 200)
            case 400, 413:
                let reason = object?["error"] as? String ?? "status \(status)"
                let rejected = directory.appendingPathComponent("rejected")
                try? FileManager.default.createDirectory(at: rejected, withIntermediateDirectories: true)
                try? FileManager.default.moveItem(at: url, to: rejected.appendingPathComponent(url.lastPathComponent))
                try? Data((reason + "\n").utf8).write(to: rejected.appendingPathComponent(url.lastPathComponent + ".reason"))
                return .rejected(reason)
            case 401, 403:
                return .kept("the service refused the token (\(status)): \(object?["error"] as? String ?? "")")
            default:
                last = "status \(status)"
            }
        }
        return .kept(last)
    }

    /// One request, waited for: its status, body, or the transport error.
    static func send(_ request: URLRequest, timeout: TimeInterval) -> (Int, Data, String?) {
        final class Result: @unchecked Sendable {
            var status = 0
            var body = Data()
            var error: String?
        }
        let result = Result()
        let done = DispatchSemaphore(value: 0)
        let task = URLSession.shared.dataTask(with: request) { data, response, error in
            result.status = (response as? HTTPURLResponse)?.statusCode ?? 0
            result.body = data ?? Data()
            result.error = error.map { $0.localizedDescription }
            done.signal()
        }
        task.resume()
        if done.wait(timeout: .now() + timeout + 1) == .timedOut {
            task.cancel()
            return (0, Data(), "no answer within \(Int(timeout)) s")
        }
        return (result.status, result.body, result.error)
    }
}

public struct SpoolError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
