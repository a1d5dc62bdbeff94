import Foundation
import GRDB

/// Events and groups in SQLite through GRDB, in WAL mode with
/// `synchronous = FULL`: a commit returns once its WAL frames are synced.
/// One writer (GRDB's), readers alongside.
public final class SQLiteIndex: EventIndex {
    let database: DatabasePool
    let path: String

    public init(path: String) throws {
        self.path = path
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
        }
        database = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(database)
    }

    public var description: String { "SQLite at \(path)" }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: events and groups") { db in
            try db.create(table: "crash_group") { table in
                table.autoIncrementedPrimaryKey("id")
                table.column("signature", .text).notNull().unique()
                table.column("signature_version", .integer).notNull()
                table.column("title", .text).notNull()
                table.column("count", .integer).notNull()
                table.column("first_seen", .double).notNull()
                table.column("last_seen", .double).notNull()
            }
            try db.create(table: "event") { table in
                table.autoIncrementedPrimaryKey("id")
                table.column("group_id", .integer).notNull().references("crash_group")
                table.column("received_at", .double).notNull()
                table.column("kind", .text).notNull()
                table.column("reason", .text).notNull()
                table.column("host", .text)
                table.column("runtime", .text)
                table.column("tags", .text)
                table.column("blob", .text).notNull()
                table.column("size", .integer).notNull()
                table.column("idempotency_key", .text).unique()
                table.column("frames", .text).notNull()
            }
            try db.create(index: "event_group", on: "event", columns: ["group_id", "received_at"])
        }
        migrator.registerMigration("v2: modules an event waits for") { db in
            try db.alter(table: "event") { table in table.add(column: "awaiting", .text) }
        }
        return migrator
    }

    public func existing(idempotencyKey: String) async throws -> EventStore.Ingested? {
        try await database.read { db in try Self.existing(idempotencyKey, db) }
    }

    private static func existing(_ key: String, _ db: Database) throws -> EventStore.Ingested? {
        guard let row = try Row.fetchOne(db, sql: "SELECT id, group_id FROM event WHERE idempotency_key = ?", arguments: [key]) else {
            return nil
        }
        return EventStore.Ingested(event: row["id"], group: row["group_id"], duplicate: true)
    }

    public func commit(_ batch: [PendingEvent]) async throws -> [EventStore.Ingested] {
        // One writer: the batch's transaction sees everything before it,
        // and its own earlier events (a key twice in one batch).
        try await database.write { db in
            try batch.map { pending in
                if let key = pending.idempotencyKey, let known = try Self.existing(key, db) { return known }
                let group = try Int64.fetchOne(db, sql: """
                    INSERT INTO crash_group (signature, signature_version, title, count, first_seen, last_seen)
                    VALUES (?, ?, ?, 1, ?, ?)
                    ON CONFLICT(signature) DO UPDATE SET count = count + 1, last_seen = max(last_seen, excluded.last_seen)
                    RETURNING id
                    """, arguments: [pending.signature, Grouping.version, pending.title, pending.receivedAt, pending.receivedAt])!
                try db.execute(sql: """
                    INSERT INTO event (group_id, received_at, kind, reason, host, runtime, tags, blob, size, idempotency_key, frames,
                                       awaiting)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [group, pending.receivedAt, pending.kind, pending.reason, pending.host, pending.runtime,
                                     pending.tags, pending.blob, pending.size, pending.idempotencyKey, pending.frames,
                                     pending.awaiting])
                return EventStore.Ingested(event: db.lastInsertedRowID, group: group, duplicate: false)
            }
        }
    }

    static let groupColumns = """
        SELECT g.id, g.title, g.count, g.first_seen, g.last_seen, g.signature_version,
               (SELECT group_concat(DISTINCT host) FROM event WHERE group_id = g.id AND host IS NOT NULL) AS hosts
        FROM crash_group g
        """

    public func groups(order: EventStore.GroupOrder, function: String?) async throws -> [EventStore.Group] {
        let needle = function.map(EventStore.functionNeedle)
        return try await database.read { db in
            try Row.fetchAll(db, sql: Self.groupColumns
                + (needle == nil ? "" : " WHERE EXISTS (SELECT 1 FROM event e WHERE e.group_id = g.id AND instr(e.frames, ?) > 0)")
                + " ORDER BY \(order.orderBy)", arguments: StatementArguments(needle.map { [$0] } ?? [])).map(Self.group)
        }
    }

    public func dailyCounts(days: Int, now: Date) async throws -> [Int64: [Int]] {
        let rows = try await database.read { db in
            try Row.fetchAll(db, sql: """
                SELECT group_id, CAST(received_at / 86400 AS INTEGER) AS day, count(*) AS n
                FROM event WHERE received_at >= ? GROUP BY group_id, day
                """, arguments: [EventStore.firstSecond(days: days, now: now)])
                .map { (group: $0["group_id"] as Int64, day: $0["day"] as Int, events: $0["n"] as Int) }
        }
        return EventStore.dailyCounts(rows, days: days, now: now)
    }

    public func group(_ id: Int64) async throws -> EventStore.Group? {
        try await database.read { db in try Row.fetchOne(db, sql: Self.groupColumns + " WHERE g.id = ?", arguments: [id]).map(Self.group) }
    }

    static func group(_ row: Row) -> EventStore.Group {
        EventStore.Group(id: row["id"], title: row["title"], count: row["count"], firstSeen: row["first_seen"], lastSeen: row["last_seen"],
                         signatureVersion: row["signature_version"], hosts: row["hosts"])
    }

    public func event(_ id: Int64) async throws -> EventStore.Event? {
        try await database.read { db in try Row.fetchOne(db, sql: "SELECT * FROM event WHERE id = ?", arguments: [id]).map(Self.event) }
    }

    public func events(inGroup group: Int64, limit: Int) async throws -> [EventStore.Event] {
        try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM event WHERE group_id = ? ORDER BY received_at DESC, id DESC LIMIT ?",
                             arguments: [group, limit]).map(Self.event)
        }
    }

    static func event(_ row: Row) -> EventStore.Event {
        EventStore.Event(id: row["id"], group: row["group_id"], receivedAt: row["received_at"], kind: row["kind"], reason: row["reason"],
                         host: row["host"], runtime: row["runtime"], tags: row["tags"], blob: row["blob"], size: row["size"],
                         frames: row["frames"])
    }

    public func events(awaiting modules: Set<String>, limit: Int) async throws -> [(event: Int64, blob: String)] {
        guard !modules.isEmpty else { return [] }
        let needles = modules.sorted().map { ",\($0)," }
        return try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT id, blob FROM event WHERE awaiting IS NOT NULL AND ("
                             + needles.map { _ in "instr(awaiting, ?) > 0" }.joined(separator: " OR ")
                             + ") ORDER BY id DESC LIMIT ?", arguments: StatementArguments(needles + [String(limit)]))
                .map { (event: $0["id"] as Int64, blob: $0["blob"] as String) }
        }
    }

    public func update(event: Int64, frames: String, awaiting: String?) async throws {
        try await database.write { db in
            try db.execute(sql: "UPDATE event SET frames = ?, awaiting = ? WHERE id = ?", arguments: [frames, awaiting, event])
        }
    }

    public func totals() async throws -> (groups: Int, events: Int) {
        try await database.read { db in
            (try Int.fetchOne(db, sql: "SELECT count(*) FROM crash_group") ?? 0, try Int.fetchOne(db, sql: "SELECT count(*) FROM event") ?? 0)
        }
    }

    public func close() async {
        try? database.close()
    }
}
