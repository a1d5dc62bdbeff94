import BacktraceService
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Prometheus

/// The backtrace service over HTTP (docs/service.md): uploads in, groups
/// and events out, as JSON. Writes need an upload token
/// (`Authorization: Bearer TOKEN`); reads need one only when the server
/// listens beyond the loopback interface.
public struct BacktraceServer: Sendable {
    public struct Options: Sendable {
        public var host: String
        public var port: Int
        public var data: URL
        /// Upload tokens by project.
        public var tokens: [String: String]
        public var maximumUploadBytes: Int
        /// Where events and groups are kept: nil for SQLite in `data`, or
        /// a PostgreSQL database shared by several servers.
        public var database: PostgresIndex.Location?
        /// How events are grouped (the signature's depth).
        public var grouping: Grouping

        public init(host: String = "127.0.0.1", port: Int = 8765, data: URL, tokens: [String: String] = [:],
                    maximumUploadBytes: Int = 64 << 20, database: PostgresIndex.Location? = nil, grouping: Grouping = Grouping()) {
            self.host = host
            self.port = port
            self.data = data
            self.tokens = tokens
            self.maximumUploadBytes = maximumUploadBytes
            self.database = database
            self.grouping = grouping
        }

        /// Whether reads are open without a token: only on loopback.
        var readsAreOpen: Bool { host == "127.0.0.1" || host == "::1" || host == "localhost" }
    }

    public let options: Options
    public let store: EventStore
    let metrics: Metrics
    let pages: Pages

    /// What `/metrics` reports, in Prometheus' text format.
    struct Metrics: Sendable {
        let registry = PrometheusCollectorRegistry()
        let received: Counter
        let duplicates: Counter
        let rejected: [String: Counter]
        let ingest: DurationHistogram
        let groups: Gauge
        let events: Gauge

        init() {
            /// A `wasm_unwind_...` metric's name: its base name and unit.
            func named(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
                MetricNameDescriptor(namespace: "wasm_unwind", metricName: name, unitName: unit, helpText: help)
            }
            received = registry.makeCounter(descriptor: named("events_received", "total", "Uploads stored as new events."))
            duplicates = registry.makeCounter(descriptor: named("events_duplicate", "total",
                                                                "Uploads whose idempotency key was seen before (stored once)."))
            let registry = self.registry
            rejected = Dictionary(uniqueKeysWithValues: ["unreadable", "too_large", "unauthorized"].map { reason in
                (reason, registry.makeCounter(descriptor: named("events_rejected", "total", "Uploads refused, by reason."),
                                              labels: [("reason", reason)]))
            })
            ingest = registry.makeDurationHistogram(
                descriptor: named("ingest_duration", "seconds", "Time to read, group and store an upload durably."),
                buckets: [.microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
                          .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1)])
            groups = registry.makeGauge(descriptor: MetricNameDescriptor(namespace: "wasm_unwind", metricName: "groups", unitName: "",
                                                                         helpText: "Groups of events."))
            events = registry.makeGauge(descriptor: MetricNameDescriptor(namespace: "wasm_unwind", metricName: "events", unitName: "",
                                                                         helpText: "Events stored."))
        }
    }

    public init(_ options: Options) async throws {
        self.options = options
        let index: (any EventIndex)? = if let database = options.database { try await PostgresIndex(database) } else { nil }
        store = try EventStore(directory: options.data, index: index, grouping: options.grouping,
                               maximumUploadBytes: options.maximumUploadBytes)
        metrics = Metrics()
        pages = try Pages()
    }

    /// The project a request's token belongs to, if any.
    func project(_ request: Request) -> String? {
        // The scheme's name is case-insensitive (RFC 9110, 11.1).
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else { return nil }
        let token = header.dropFirst("Bearer ".count).drop { $0 == " " }
        return options.tokens.first { $0.value == token }?.key
    }

    /// An upload refused before it is read: the answer to send.
    struct Refusal: Error {
        var response: Response
    }

    /// An upload's body, once its token is checked and its size is within
    /// the limit (refusals are counted in the metrics).
    func uploadBody(_ request: inout Request) async -> Result<ByteBuffer, Refusal> {
        guard project(request) != nil else {
            metrics.rejected["unauthorized"]?.increment()
            return .failure(Refusal(response: Self.problem(.unauthorized, "an upload needs a project's token: Authorization: Bearer TOKEN")))
        }
        do {
            return .success(try await request.collectBody(upTo: options.maximumUploadBytes))
        } catch {
            metrics.rejected["too_large"]?.increment()
            return .failure(Refusal(response: Self.problem(.contentTooLarge, "the upload is larger than \(options.maximumUploadBytes) bytes")))
        }
    }

    /// Why a read is refused: no token when the server listens beyond loopback.
    func readRefusal(_ request: Request) -> Response? {
        options.readsAreOpen || project(request) != nil
            ? nil : Self.problem(.unauthorized, "reads need a token when the service listens beyond loopback")
    }

    static func json(_ status: HTTPResponse.Status, _ object: Any) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func problem(_ status: HTTPResponse.Status, _ message: String) -> Response {
        json(status, ["error": message])
    }

    static func iso(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }

    static func json(_ group: EventStore.Group) -> [String: Any] {
        ["id": group.id, "title": group.title, "count": group.count, "first_seen": iso(group.firstSeen),
         "last_seen": iso(group.lastSeen), "hosts": group.hosts, "signature_version": group.signatureVersion]
    }

    static func json(_ event: EventStore.Event) -> [String: Any] {
        ["id": event.id, "group": event.group, "received_at": iso(event.receivedAt), "kind": event.kind, "reason": event.reason,
         "host": event.host as Any, "runtime": event.runtime as Any, "tags": event.tags, "sha256": event.blob, "size": event.size,
         "frames": event.frames.map { frame in
             var object: [String: Any] = ["module": frame.module as Any, "function": frame.function,
                                          "function_index": frame.functionIndex as Any,
                                          "module_offset": frame.moduleOffset as Any, "program": frame.isProgram]
             if let file = frame.file { object["file"] = file }
             if let line = frame.line { object["line"] = line }
             if let column = frame.column { object["column"] = column }
             if let inlined = frame.inlined { object["inlined"] = inlined }
             return object
         }]
    }

    /// The routes.
    public func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        let store = self.store
        let server = self
        router.post("/api/v1/events") { request, _ -> Response in
            let metrics = server.metrics
            var request = request
            let body: ByteBuffer
            switch await server.uploadBody(&request) {
            case .success(let bytes): body = bytes
            case .failure(let refusal): return refusal.response
            }
            let query = request.uri.queryParameters
            let metadata = EventStore.Metadata(host: query["host"].map(String.init), runtime: query["runtime"].map(String.init),
                                               tags: query["tags"].map { $0.split(separator: ",").map(String.init) } ?? [])
            let key = request.headers[HTTPField.Name("Idempotency-Key")!]
            do {
                let start = ContinuousClock.now
                let ingested = try await store.ingest(Array(buffer: body), metadata: metadata, idempotencyKey: key)
                metrics.ingest.record(ContinuousClock.now - start)
                (ingested.duplicate ? metrics.duplicates : metrics.received).increment()
                return Self.json(ingested.duplicate ? .ok : .created,
                                 ["id": ingested.event, "group": ingested.group, "duplicate": ingested.duplicate])
            } catch let error as EventStore.IngestError {
                switch error {
                case .tooLarge:
                    metrics.rejected["too_large"]?.increment()
                    return Self.problem(.contentTooLarge, error.description)
                case .unreadable:
                    metrics.rejected["unreadable"]?.increment()
                    return Self.problem(.badRequest, error.description)
                }
            } catch {
                return Self.problem(.internalServerError, "the upload could not be stored: \(error)")
            }
        }
        router.put("/api/v1/modules/:id") { request, context -> Response in
            var request = request
            let body: ByteBuffer
            switch await server.uploadBody(&request) {
            case .success(let bytes): body = bytes
            case .failure(let refusal): return refusal.response
            }
            do {
                let stored = try await store.storeModule(Array(buffer: body), name: context.parameters.get("id") ?? "")
                return Self.json(.created, ["module": stored.name, "resymbolicated": stored.resymbolicated])
            } catch let error as EventStore.IngestError {
                if case .tooLarge = error { return Self.problem(.contentTooLarge, error.description) }
                return Self.problem(.badRequest, error.description)
            }
        }
        router.get("/") { request, _ -> Response in
            if let refused = server.readRefusal(request) { return refused }
            let query = request.uri.queryParameters
            let order = query["sort"].flatMap { EventStore.GroupOrder(rawValue: String($0)) } ?? .count
            let function = query["function"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
            return Pages.html(try await server.pages.groups(store, order: order, function: function))
        }
        router.get("/groups/:id") { request, context -> Response in
            if let refused = server.readRefusal(request) { return refused }
            guard let id = context.parameters.get("id", as: Int64.self), let page = try await server.pages.group(store, id: id) else {
                return Self.problem(.notFound, "no such group")
            }
            return Pages.html(page)
        }
        router.get("/metrics") { request, _ -> Response in
            if let refused = server.readRefusal(request) { return refused }
            let (groups, events) = try await store.totals()
            server.metrics.groups.set(Double(groups))
            server.metrics.events.set(Double(events))
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                            body: ResponseBody(byteBuffer: ByteBuffer(bytes: server.metrics.registry.emitToBuffer())))
        }
        router.get("/api/v1/groups") { request, _ -> Response in
            if let refused = server.readRefusal(request) { return refused }
            return Self.json(.ok, ["groups": try await store.groups().map(Self.json)])
        }
        router.get("/api/v1/groups/:id") { request, context -> Response in
            if let refused = server.readRefusal(request) { return refused }
            guard let id = context.parameters.get("id", as: Int64.self), let group = try await store.group(id) else {
                return Self.problem(.notFound, "no such group")
            }
            var object = Self.json(group)
            object["events"] = try await store.events(inGroup: id, limit: 100).map(Self.json)
            return Self.json(.ok, object)
        }
        router.get("/api/v1/events/:id") { request, context -> Response in
            if let refused = server.readRefusal(request) { return refused }
            guard let id = context.parameters.get("id", as: Int64.self), let event = try await store.event(id) else {
                return Self.problem(.notFound, "no such event")
            }
            return Self.json(.ok, Self.json(event))
        }
        router.get("/api/v1/events/:id/raw") { request, context -> Response in
            if let refused = server.readRefusal(request) { return refused }
            guard let id = context.parameters.get("id", as: Int64.self), let event = try await store.event(id),
                  let data = try? Data(contentsOf: store.blobURL(event.blob)) else {
                return Self.problem(.notFound, "no such event")
            }
            return Response(status: .ok, headers: [.contentType: "application/octet-stream"],
                            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
        }
        return router
    }

    /// Serves until SIGINT or SIGTERM; `running` gets the port it listens on.
    public func run(running: @escaping @Sendable (Int) -> Void) async throws {
        let app = Application(router: router(), configuration: .init(address: .hostname(options.host, port: options.port)),
                              onServerRunning: { channel in running(channel.localAddress?.port ?? 0) })
        try await app.runService()
    }
}
