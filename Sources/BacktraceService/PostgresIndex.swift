import Foundation
import Logging
import PostgresNIO

/// Events and groups in PostgreSQL (postgres-nio), for several servers
/// that take uploads for one store (`serve --database postgres://...`).
/// Groups are unique by signature and events by idempotency key: two
/// servers filing the same signature at once make one group
/// (`INSERT ... ON CONFLICT`), the same key twice is stored once (the
/// second insert does nothing and its group's count is rolled back to a
/// savepoint). A batch locks groups in signature order; a deadlock or
/// serialization failure retries the batch.
public final class PostgresIndex: EventIndex {
    /// Where the database is, from `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`.
    public struct Location: Hashable, Sendable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public var user: String
        public var password: String?
        public var database: String

        public init(host: String, port: Int = 5432, user: String, password: String? = nil, database: String) {
            self.host = host
            self.port = port
            self.user = user
            self.password = password
            self.database = database
        }

        /// Reads a `postgres://` (or `postgresql://`) URL; an error names
        /// what is missing.
        public init(url text: String) throws(EventError) {
            guard let url = URLComponents(string: text), url.scheme == "postgres" || url.scheme == "postgresql" else {
                throw EventError("a database is postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE, got \(text)")
            }
            guard let host = url.host, !host.isEmpty else { throw EventError("\(text) names no host") }
            guard let user = url.user, !user.isEmpty else { throw EventError("\(text) names no user") }
            let database = String(url.path.drop { $0 == "/" })
            guard !database.isEmpty, !database.contains("/") else { throw EventError("\(text) names no database (…/DATABASE)") }
            self.init(host: host, port: url.port ?? 5432, user: user, password: url.password, database: database)
        }

        public var description: String { "\(host):\(port)/\(database)" }
    }

    /// The schema's version in `wasm_unwind_schema`; a server refuses a
    /// database of a newer one.
    public static let schemaVersion = 1

    public let location: Location
    let client: PostgresClient
    let running: Task<Void, Never>
    let logger = Logger(label: "wasm-unwind.postgres")

    /// Connects and creates the tables if they are not there (under an
    /// advisory lock: servers starting together create them once). A
    /// database that cannot be reached is an error at once, naming why.
    public init(_ location: Location, maximumConnections: Int = 8) async throws {
        self.location = location
        // One connection first, for the migration: its failure is the
        // server's reason (the pool would keep retrying).
        let logger = Logger(label: "wasm-unwind.postgres")
        do {
            let connection = try await PostgresConnection.connect(
                configuration: PostgresConnection.Configuration(host: location.host, port: location.port, username: location.user,
                                                                password: location.password, database: location.database, tls: .disable),
                id: 0, logger: logger)
            do {
                try await connection.withTransaction(logger: logger) { try await Self.migrate($0, logger) }
            } catch {
                try? await connection.close()
                throw error
            }
            try await connection.close()
        } catch {
            throw EventError("cannot use the database at \(location): \(Self.describe(error))")
        }
        var configuration = PostgresClient.Configuration(host: location.host, port: location.port, username: location.user,
                                                         password: location.password, database: location.database, tls: .disable)
        configuration.options.maximumConnections = maximumConnections
        let client = PostgresClient(configuration: configuration)
        self.client = client
        running = Task { await client.run() }
    }

    public var description: String { "PostgreSQL at \(location)" }

    public func close() async {
        running.cancel()
    }

    static func migrate(_ connection: PostgresConnection, _ logger: Logger) async throws {
        try await connection.query("SELECT pg_advisory_xact_lock(7305262081)", logger: logger)
        try await connection.query("CREATE TABLE IF NOT EXISTS wasm_unwind_schema (version INTEGER NOT NULL)", logger: logger)
        let versions = try await connection.query("SELECT version FROM wasm_unwind_schema", logger: logger).collect()
        if let version = try versions.first?.decode(Int.self), version > Self.schemaVersion {
            throw EventError("its schema is version \(version); this server knows \(Self.schemaVersion)")
        }
        guard versions.isEmpty else { return }
        try await connection.query("""
            CREATE TABLE crash_group (
                id BIGSERIAL PRIMARY KEY, signature TEXT NOT NULL UNIQUE, signature_version INTEGER NOT NULL,
                title TEXT NOT NULL, count BIGINT NOT NULL, first_seen DOUBLE PRECISION NOT NULL,
                last_seen DOUBLE PRECISION NOT NULL)
            """, logger: logger)
        try await connection.query("""
            CREATE TABLE event (
                id BIGSERIAL PRIMARY KEY, group_id BIGINT NOT NULL REFERENCES crash_group (id),
                received_at DOUBLE PRECISION NOT NULL, kind TEXT NOT NULL, reason TEXT NOT NULL, host TEXT, runtime TEXT,
                tags TEXT, blob TEXT NOT NULL, size BIGINT NOT NULL, idempotency_key TEXT UNIQUE, frames TEXT NOT NULL,
                awaiting TEXT)
            """, logger: logger)
        try await connection.query("CREATE INDEX event_group ON event (group_id, received_at)", logger: logger)
        try await connection.query("INSERT INTO wasm_unwind_schema (version) VALUES (\(Self.schemaVersion))", logger: logger)
    }

    public func existing(idempotencyKey: String) async throws -> EventStore.Ingested? {
        let key = Self.text(idempotencyKey)
        return try await Self.existing(key, on: client.query("SELECT id, group_id FROM event WHERE idempotency_key = \(key)", logger: logger))
    }

    private static func existing(_ key: String, on rows: PostgresRowSequence) async throws -> EventStore.Ingested? {
        guard let row = try await rows.collect().first else { return nil }
        let (event, group) = try row.decode((Int64, Int64).self)
        return EventStore.Ingested(event: event, group: group, duplicate: true)
    }

    public func commit(_ batch: [PendingEvent]) async throws -> [EventStore.Ingested] {
        // Groups are locked in signature order, the same in every server.
        let order = batch.indices.sorted { batch[$0].signature < batch[$1].signature }
        let logger = self.logger
        var attempt = 0
        while true {
            do {
                return try await client.withTransaction(logger: logger) { connection in
                    var results = [EventStore.Ingested?](repeating: nil, count: batch.count)
                    for index in order {
                        results[index] = try await Self.insert(batch[index], connection, logger)
                    }
                    return results.map { $0! }
                }
            } catch where attempt < 8 && Self.isRetryable(error) {
                attempt += 1
            }
        }
    }

    /// PostgreSQL's text cannot hold NUL, which an upload may carry (a
    /// function name from a hostile module, a host name from the query):
    /// U+FFFD instead, so that one upload cannot fail its whole batch.
    static func text(_ value: String) -> String { value.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}") }
    static func text(_ value: String?) -> String? { value.map(text) }

    private static func insert(_ raw: PendingEvent, _ connection: PostgresConnection, _ logger: Logger) async throws -> EventStore.Ingested {
        var pending = raw
        pending.title = text(raw.title)
        pending.reason = text(raw.reason)
        pending.kind = text(raw.kind)
        pending.host = text(raw.host)
        pending.runtime = text(raw.runtime)
        pending.tags = text(raw.tags)
        pending.idempotencyKey = text(raw.idempotencyKey)
        if let key = pending.idempotencyKey {
            let sql: PostgresQuery = "SELECT id, group_id FROM event WHERE idempotency_key = \(key)"
            if let known = try await existing(key, on: connection.query(sql, logger: logger)) { return known }
            try await connection.query("SAVEPOINT pending_event", logger: logger)
        }
        let version = Grouping.version
        let group = try await connection.query("""
            INSERT INTO crash_group (signature, signature_version, title, count, first_seen, last_seen)
            VALUES (\(pending.signature), \(version), \(pending.title), 1, \(pending.receivedAt), \(pending.receivedAt))
            ON CONFLICT (signature) DO UPDATE
                SET count = crash_group.count + 1, last_seen = greatest(crash_group.last_seen, excluded.last_seen)
            RETURNING id
            """, logger: logger).collect().first!.decode(Int64.self)
        let size = Int64(pending.size)
        let inserted = try await connection.query("""
            INSERT INTO event (group_id, received_at, kind, reason, host, runtime, tags, blob, size, idempotency_key, frames, awaiting)
            VALUES (\(group), \(pending.receivedAt), \(pending.kind), \(pending.reason), \(pending.host), \(pending.runtime),
                    \(pending.tags), \(pending.blob), \(size), \(pending.idempotencyKey), \(pending.frames), \(pending.awaiting))
            ON CONFLICT (idempotency_key) DO NOTHING
            RETURNING id
            """, logger: logger).collect().first
        if let inserted {
            if pending.idempotencyKey != nil { try await connection.query("RELEASE SAVEPOINT pending_event", logger: logger) }
            return EventStore.Ingested(event: try inserted.decode(Int64.self), group: group, duplicate: false)
        }
        // Another server stored this key meanwhile: undo the count.
        try await connection.query("ROLLBACK TO SAVEPOINT pending_event", logger: logger)
        let key = pending.idempotencyKey!
        let sql: PostgresQuery = "SELECT id, group_id FROM event WHERE idempotency_key = \(key)"
        guard let known = try await existing(key, on: connection.query(sql, logger: logger)) else {
            throw EventError("the idempotency key \(key) conflicted but its event is not there")
        }
        return known
    }

    /// A deadlock or serialization failure: the batch can run again.
    static func isRetryable(_ error: any Error) -> Bool {
        let state = sqlState(error)
        return state == "40P01" || state == "40001"
    }

    static func sqlState(_ error: any Error) -> String? {
        if let error = error as? PSQLError { return error.serverInfo?[.sqlState] }
        if let error = error as? PostgresTransactionError {
            return error.closureError.flatMap(sqlState) ?? error.commitError.flatMap(sqlState)
        }
        return nil
    }

    /// An error's message: the server's, when it sent one.
    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            // A connection's failure: the system's reason ("connection refused").
            if let underlying = error.underlying { return "\(underlying)" }
            return "\(error.code)"
        }
        if let error = error as? PostgresTransactionError {
            if let inner = error.closureError ?? error.beginError ?? error.commitError { return describe(inner) }
        }
        return "\(error)"
    }

    static let groupColumns = """
        SELECT g.id, g.title, g.count, g.first_seen, g.last_seen, g.signature_version,
               (SELECT string_agg(DISTINCT host, ',') FROM event WHERE group_id = g.id AND host IS NOT NULL) AS hosts
        FROM crash_group g
        """

    static func group(_ row: PostgresRow) throws -> EventStore.Group {
        let (id, title, count, first, last, version, hosts) = try row.decode((Int64, String, Int64, Double, Double, Int32, String?).self)
        return EventStore.Group(id: id, title: title, count: Int(count), firstSeen: first, lastSeen: last, signatureVersion: Int(version),
                                hosts: hosts)
    }

    public func groups(order: EventStore.GroupOrder, function: String?) async throws -> [EventStore.Group] {
        var query: PostgresQuery = "\(unescaped: Self.groupColumns)"
        if let function {
            let needle = EventStore.functionNeedle(function)
            query = """
                \(unescaped: Self.groupColumns)
                WHERE EXISTS (SELECT 1 FROM event e WHERE e.group_id = g.id AND strpos(e.frames, \(needle)) > 0)
                """
        }
        query.sql += " ORDER BY \(order.orderBy)"
        return try await client.query(query, logger: logger).collect().map(Self.group)
    }

    public func dailyCounts(days: Int, now: Date) async throws -> [Int64: [Int]] {
        let since = EventStore.firstSecond(days: days, now: now)
        let rows = try await client.query("""
            SELECT group_id, floor(received_at / 86400)::bigint AS day, count(*) FROM event
            WHERE received_at >= \(since) GROUP BY group_id, day
            """, logger: logger).collect()
        return EventStore.dailyCounts(try rows.map { row in
            let (group, day, events) = try row.decode((Int64, Int64, Int64).self)
            return (group: group, day: Int(day), events: Int(events))
        }, days: days, now: now)
    }

    public func group(_ id: Int64) async throws -> EventStore.Group? {
        try await client.query("\(unescaped: Self.groupColumns) WHERE g.id = \(id)", logger: logger).collect().first.map(Self.group)
    }

    static let eventColumns = "SELECT id, group_id, received_at, kind, reason, host, runtime, tags, blob, size, frames FROM event"

    static func event(_ row: PostgresRow) throws -> EventStore.Event {
        let (id, group, received, kind, reason, host, runtime, tags, blob, size, frames) =
            try row.decode((Int64, Int64, Double, String, String, String?, String?, String?, String, Int64, String).self)
        return EventStore.Event(id: id, group: group, receivedAt: received, kind: kind, reason: reason, host: host, runtime: runtime,
                                tags: tags, blob: blob, size: Int(size), frames: frames)
    }

    public func event(_ id: Int64) async throws -> EventStore.Event? {
        try await client.query("\(unescaped: Self.eventColumns) WHERE id = \(id)", logger: logger).collect().first.map(Self.event)
    }

    public func events(inGroup group: Int64, limit: Int) async throws -> [EventStore.Event] {
        try await client.query("""
            \(unescaped: Self.eventColumns) WHERE group_id = \(group) ORDER BY received_at DESC, id DESC LIMIT \(limit)
            """, logger: logger).collect().map(Self.event)
    }

    public func events(awaiting modules: Set<String>, limit: Int) async throws -> [(event: Int64, blob: String)] {
        guard !modules.isEmpty else { return [] }
        let needles = modules.sorted().map { ",\($0)," }
        let rows = try await client.query("""
            SELECT id, blob FROM event WHERE awaiting IS NOT NULL
            AND EXISTS (SELECT 1 FROM unnest(\(needles)::text[]) AS needle WHERE strpos(awaiting, needle) > 0)
            ORDER BY id DESC LIMIT \(limit)
            """, logger: logger).collect()
        return try rows.map { row in
            let (event, blob) = try row.decode((Int64, String).self)
            return (event: event, blob: blob)
        }
    }

    public func update(event: Int64, frames: String, awaiting: String?) async throws {
        try await client.query("UPDATE event SET frames = \(frames), awaiting = \(awaiting) WHERE id = \(event)", logger: logger)
    }

    public func totals() async throws -> (groups: Int, events: Int) {
        let row = try await client.query("SELECT (SELECT count(*) FROM crash_group), (SELECT count(*) FROM event)", logger: logger)
            .collect().first!
        let (groups, events) = try row.decode((Int64, Int64).self)
        return (Int(groups), Int(events))
    }
}
