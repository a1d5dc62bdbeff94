import Foundation
import GRDB
import StackCapture
import WasmDWARF

/// The backtrace service's data in one directory: SQLite through GRDB in
/// WAL mode (`service.sqlite`: events and groups) and the uploads,
/// content-addressed (`blobs/ab/cdef...`, by SHA-256). An upload is stored
/// durably before `ingest` returns: its blob written, synced and renamed
/// into place, then its event and group committed in one transaction with
/// `synchronous = FULL`.
public final class EventStore: Sendable {
    public let directory: URL
    let database: DatabasePool
    public let grouping: Grouping
    /// Uploads larger than this are refused.
    public let maximumUploadBytes: Int

    public init(directory: URL, grouping: Grouping = Grouping(), maximumUploadBytes: Int = 64 << 20) throws {
        self.directory = directory
        self.grouping = grouping
        self.maximumUploadBytes = maximumUploadBytes
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("blobs"), withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
        }
        database = try DatabasePool(path: directory.appendingPathComponent("service.sqlite").path, configuration: configuration)
        try Self.migrator.migrate(database)
    }

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
        return migrator
    }

    /// Who sent an upload, and how to file it.
    public struct Metadata: Hashable, Sendable {
        public var host: String?
        public var runtime: String?
        public var tags: [String]
        public init(host: String? = nil, runtime: String? = nil, tags: [String] = []) {
            self.host = host
            self.runtime = runtime
            self.tags = tags
        }
    }

    /// What ingesting an upload did.
    public struct Ingested: Hashable, Sendable {
        public var event: Int64
        public var group: Int64
        /// The idempotency key was seen before: nothing new was stored.
        public var duplicate: Bool
    }

    /// Why an upload was refused; nothing of it is stored.
    public enum IngestError: Error, CustomStringConvertible {
        case tooLarge(Int, limit: Int)
        case unreadable(EventError)

        public var description: String {
            switch self {
            case .tooLarge(let size, let limit): return "the upload has \(size) bytes; at most \(limit) are taken"
            case .unreadable(let error): return error.description
            }
        }
    }

    /// Reads, files and stores an upload. A retried upload (the same
    /// `idempotencyKey`) is stored once: the first one's ids come back.
    public func ingest(_ bytes: [UInt8], metadata: Metadata = Metadata(), idempotencyKey: String? = nil,
                       now: Date = Date()) throws -> Ingested {
        guard bytes.count <= maximumUploadBytes else { throw IngestError.tooLarge(bytes.count, limit: maximumUploadBytes) }
        if let idempotencyKey, let known = try existing(idempotencyKey) { return known }
        let event: CrashEvent
        do { event = try CrashEvent(reading: bytes, search: try? debugFileSearch()) } catch { throw IngestError.unreadable(error) }
        let blob = try storeBlob(bytes)
        let signature = grouping.signature(of: event)
        let frames = String(decoding: try JSONEncoder().encode(event.frames), as: UTF8.self)
        let time = now.timeIntervalSince1970
        return try database.write { db -> Ingested in
            if let idempotencyKey, let known = try Self.existing(idempotencyKey, db) { return known }
            try db.execute(sql: """
                INSERT INTO crash_group (signature, signature_version, title, count, first_seen, last_seen)
                VALUES (?, ?, ?, 1, ?, ?)
                ON CONFLICT(signature) DO UPDATE SET count = count + 1, last_seen = max(last_seen, excluded.last_seen)
                """, arguments: [signature, Grouping.version, grouping.title(of: event), time, time])
            let group = try Int64.fetchOne(db, sql: "SELECT id FROM crash_group WHERE signature = ?", arguments: [signature])!
            try db.execute(sql: """
                INSERT INTO event (group_id, received_at, kind, reason, host, runtime, tags, blob, size, idempotency_key, frames)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [group, time, event.kind.rawValue, event.reason, metadata.host, metadata.runtime,
                                 metadata.tags.isEmpty ? nil : metadata.tags.joined(separator: ","), blob, bytes.count,
                                 idempotencyKey, frames])
            return Ingested(event: db.lastInsertedRowID, group: group, duplicate: false)
        }
    }

    private func existing(_ key: String) throws -> Ingested? {
        try database.read { db in try Self.existing(key, db) }
    }

    private static func existing(_ key: String, _ db: Database) throws -> Ingested? {
        guard let row = try Row.fetchOne(db, sql: "SELECT id, group_id FROM event WHERE idempotency_key = ?", arguments: [key]) else {
            return nil
        }
        return Ingested(event: row["id"], group: row["group_id"], duplicate: true)
    }

    // MARK: Modules and debug files

    /// Where uploaded modules and debug files are: `modules/NAME.wasm`,
    /// found by a capture's module through its build id (the file name) or
    /// its content (`DebugFileSearch`).
    public var modulesDirectory: URL { directory.appendingPathComponent("modules") }

    /// Stores a module or debug file (a wasm binary with DWARF) under `name`
    /// — its build id in hex, or its SHA-256 — for the symbolication of
    /// events uploaded after it. Returns the name it is stored under.
    @discardableResult
    public func storeModule(_ bytes: [UInt8], name: String) throws -> String {
        guard bytes.count <= maximumUploadBytes else { throw IngestError.tooLarge(bytes.count, limit: maximumUploadBytes) }
        guard !name.isEmpty, name.count <= 128, name.allSatisfy({ $0.isHexDigit || $0 == "-" }) else {
            throw IngestError.unreadable(EventError("a module's id is its build id or SHA-256 in hex, got \(name.prefix(64))"))
        }
        let file: DebugFile
        do { file = try DebugFile(bytes: bytes) } catch {
            throw IngestError.unreadable(EventError("not a wasm module or debug file: \(error)"))
        }
        let contentHash = ContentHash.sha256(bytes).map { String($0, radix: 16).leftPadded(to: 2) }.joined()
        let buildID = file.sections.buildID.map { $0.map { String($0, radix: 16).leftPadded(to: 2) }.joined() }
        guard name.lowercased() == buildID || name.lowercased() == contentHash else {
            throw IngestError.unreadable(EventError("the module's build id is \(buildID ?? "none") and its SHA-256 \(contentHash): "
                                                    + "neither is \(name)"))
        }
        try FileManager.default.createDirectory(at: modulesDirectory, withIntermediateDirectories: true)
        let url = modulesDirectory.appendingPathComponent(name.lowercased() + ".wasm")
        let partial = modulesDirectory.appendingPathComponent(".\(name).\(getpid()).partial")
        try? FileManager.default.removeItem(at: partial)
        try Self.writeSynced(bytes, to: partial.path)
        guard rename(partial.path, url.path) == 0 else { throw EventError("cannot store the module: \(String(cString: strerror(errno)))") }
        try Self.sync(directory: modulesDirectory.path)
        return name.lowercased()
    }

    /// A search of the uploaded modules.
    func debugFileSearch() throws -> DebugFileSearch? {
        guard FileManager.default.fileExists(atPath: modulesDirectory.path) else { return nil }
        return try DebugFileSearch(files: [], directories: [modulesDirectory.path])
    }

    // MARK: Blobs

    /// Where the blob with this SHA-256 (hex) is.
    public func blobURL(_ hash: String) -> URL {
        directory.appendingPathComponent("blobs").appendingPathComponent(String(hash.prefix(2)))
            .appendingPathComponent(String(hash.dropFirst(2)))
    }

    /// Writes `bytes` under their hash (once: the same bytes are one file),
    /// synced before it gets its name.
    func storeBlob(_ bytes: [UInt8]) throws -> String {
        let hash = ContentHash.sha256(bytes).map { String($0, radix: 16).leftPadded(to: 2) }.joined()
        let url = blobURL(hash)
        if FileManager.default.fileExists(atPath: url.path) { return hash }
        let folder = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let partial = folder.appendingPathComponent(".\(url.lastPathComponent).\(getpid()).\(UInt64.random(in: 0...UInt64.max))")
        try Self.writeSynced(bytes, to: partial.path)
        guard rename(partial.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(partial.path)
            throw EventError("cannot store the upload: \(reason)")
        }
        try Self.sync(directory: folder.path)
        return hash
    }

    static func writeSynced(_ bytes: [UInt8], to path: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw EventError("cannot store the upload: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { throw EventError("cannot store the upload: \(String(cString: strerror(errno)))") }
            written += count
        }
        guard fsync(descriptor) == 0 else { throw EventError("cannot store the upload: \(String(cString: strerror(errno)))") }
    }

    static func sync(directory path: String) throws {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        fsync(descriptor)
    }

    // MARK: Reading

    /// A group of events with one signature.
    public struct Group: Hashable, Sendable {
        public var id: Int64
        public var title: String
        public var count: Int
        public var firstSeen: Date
        public var lastSeen: Date
        public var signatureVersion: Int
        /// The hosts its events came from.
        public var hosts: [String]
    }

    /// How a list of groups is ordered.
    public enum GroupOrder: String, Sendable, CaseIterable {
        case count, lastSeen = "last_seen"
    }

    /// Every group (or those with an event that has a frame of function
    /// `function`), most events first or most recent first.
    public func groups(order: GroupOrder = .count, function: String? = nil) throws -> [Group] {
        let orderBy = order == .count ? "g.count DESC, g.last_seen DESC" : "g.last_seen DESC, g.count DESC"
        // Frames are stored as JSON: a function is the text `"function":"NAME"`
        // (as JSONEncoder writes it, with `"` and `\` escaped).
        let needle = function.map { name in
            "\"function\":\"" + name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        return try database.read { db in
            try Row.fetchAll(db, sql: """
                SELECT g.id, g.title, g.count, g.first_seen, g.last_seen, g.signature_version,
                       (SELECT group_concat(DISTINCT host) FROM event WHERE group_id = g.id AND host IS NOT NULL) AS hosts
                FROM crash_group g
                """ + (needle == nil ? "" : " WHERE EXISTS (SELECT 1 FROM event e WHERE e.group_id = g.id AND instr(e.frames, ?) > 0)")
                + " ORDER BY \(orderBy)", arguments: StatementArguments(needle.map { [$0] } ?? [])).map(Self.group)
        }
    }

    /// Per group, its events on each of the `days` days up to `now`
    /// (UTC days, oldest first).
    public func dailyCounts(days: Int = 14, now: Date = Date()) throws -> [Int64: [Int]] {
        let today = Int(now.timeIntervalSince1970 / 86_400)
        let first = today - days + 1
        return try database.read { db in
            var result: [Int64: [Int]] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT group_id, CAST(received_at / 86400 AS INTEGER) AS day, count(*) AS n
                FROM event WHERE received_at >= ? GROUP BY group_id, day
                """, arguments: [Double(first) * 86_400]) {
                let day: Int = row["day"]
                guard day >= first, day <= today else { continue }
                result[row["group_id"], default: Array(repeating: 0, count: days)][day - first] += row["n"] as Int
            }
            return result
        }
    }

    public func group(_ id: Int64) throws -> Group? {
        try database.read { db in
            try Row.fetchOne(db, sql: """
                SELECT g.id, g.title, g.count, g.first_seen, g.last_seen, g.signature_version,
                       (SELECT group_concat(DISTINCT host) FROM event WHERE group_id = g.id AND host IS NOT NULL) AS hosts
                FROM crash_group g WHERE g.id = ?
                """, arguments: [id]).map(Self.group)
        }
    }

    static func group(_ row: Row) -> Group {
        Group(id: row["id"], title: row["title"], count: row["count"], firstSeen: Date(timeIntervalSince1970: row["first_seen"]),
              lastSeen: Date(timeIntervalSince1970: row["last_seen"]), signatureVersion: row["signature_version"],
              hosts: (row["hosts"] as String?)?.split(separator: ",").map(String.init).sorted() ?? [])
    }

    /// A stored event.
    public struct Event: Hashable, Sendable {
        public var id: Int64
        public var group: Int64
        public var receivedAt: Date
        public var kind: String
        public var reason: String
        public var host: String?
        public var runtime: String?
        public var tags: [String]
        public var blob: String
        public var size: Int
        public var frames: [CrashEvent.Frame]
    }

    public func event(_ id: Int64) throws -> Event? {
        try database.read { db in try Row.fetchOne(db, sql: "SELECT * FROM event WHERE id = ?", arguments: [id]).map(Self.event) }
    }

    /// A group's events, newest first.
    public func events(inGroup group: Int64, limit: Int = 100) throws -> [Event] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM event WHERE group_id = ? ORDER BY received_at DESC, id DESC LIMIT ?",
                             arguments: [group, limit]).map(Self.event)
        }
    }

    /// How many groups and events there are.
    public func totals() throws -> (groups: Int, events: Int) {
        try database.read { db in
            (try Int.fetchOne(db, sql: "SELECT count(*) FROM crash_group") ?? 0, try Int.fetchOne(db, sql: "SELECT count(*) FROM event") ?? 0)
        }
    }

    public func eventCount() throws -> Int {
        try database.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM event") ?? 0 }
    }

    static func event(_ row: Row) -> Event {
        let frames = (try? JSONDecoder().decode([CrashEvent.Frame].self, from: Data((row["frames"] as String).utf8))) ?? []
        return Event(id: row["id"], group: row["group_id"], receivedAt: Date(timeIntervalSince1970: row["received_at"]),
                     kind: row["kind"], reason: row["reason"], host: row["host"], runtime: row["runtime"],
                     tags: (row["tags"] as String?)?.split(separator: ",").map(String.init) ?? [], blob: row["blob"],
                     size: row["size"], frames: frames)
    }
}
