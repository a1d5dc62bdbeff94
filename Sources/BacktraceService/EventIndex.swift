import Foundation

/// Where the service keeps its events and groups: SQLite on one machine
/// (`SQLiteIndex`), PostgreSQL for a fleet of servers sharing one store
/// (`PostgresIndex`). The uploads themselves stay files in the data
/// directory (`EventStore`); an index holds their hashes.
///
/// `commit` takes a batch (the group commit: every upload that arrived
/// while the previous batch was being committed) and stores it in one
/// transaction; grouping is by the signature's unique key, so servers
/// ingesting the same signature at once make one group.
public protocol EventIndex: Sendable {
    /// The ids of the event stored under this idempotency key, if any.
    func existing(idempotencyKey: String) async throws -> EventStore.Ingested?
    /// Stores a batch in one transaction; one result per pending event, in
    /// order. An event whose idempotency key is already stored (or earlier
    /// in the batch) is not stored again: its result is the first's ids.
    func commit(_ batch: [PendingEvent]) async throws -> [EventStore.Ingested]
    /// Every group, or those with an event that has a frame of `function`.
    func groups(order: EventStore.GroupOrder, function: String?) async throws -> [EventStore.Group]
    /// Per group, its events on each day of `days` days up to `now`
    /// (UTC days, oldest first).
    func dailyCounts(days: Int, now: Date) async throws -> [Int64: [Int]]
    func group(_ id: Int64) async throws -> EventStore.Group?
    func event(_ id: Int64) async throws -> EventStore.Event?
    /// A group's events, newest first.
    func events(inGroup group: Int64, limit: Int) async throws -> [EventStore.Event]
    /// Events that wait for a module with one of `modules`' ids (newest
    /// first, at most `limit`): their ids and blobs.
    func events(awaiting modules: Set<String>, limit: Int) async throws -> [(event: Int64, blob: String)]
    /// An event's frames and awaited modules after it is symbolicated again.
    func update(event: Int64, frames: String, awaiting: String?) async throws
    /// How many groups and events there are.
    func totals() async throws -> (groups: Int, events: Int)
    /// Stops using the database (connections closed).
    func close() async
    /// What the index is, for logs: "SQLite at PATH", "PostgreSQL at HOST:PORT/DB".
    var description: String { get }
}

/// An upload read and filed, waiting for its batch's commit.
public struct PendingEvent: Hashable, Sendable {
    public var signature: String
    public var title: String
    public var receivedAt: Double
    public var kind: String
    public var reason: String
    public var host: String?
    public var runtime: String?
    /// Comma-separated, or nil without tags.
    public var tags: String?
    /// The upload's SHA-256 in hex (its blob's name).
    public var blob: String
    public var size: Int
    public var idempotencyKey: String?
    /// The frames as JSON (`[CrashEvent.Frame]`).
    public var frames: String
    /// The modules it waits for (`,id,id,`), or nil.
    public var awaiting: String?
}

extension EventStore {
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

        public init(event: Int64, group: Int64, duplicate: Bool) {
            self.event = event
            self.group = group
            self.duplicate = duplicate
        }
    }

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

        /// A group from its columns (`hosts` comma-separated, as the
        /// indexes aggregate them).
        init(id: Int64, title: String, count: Int, firstSeen: Double, lastSeen: Double, signatureVersion: Int, hosts: String?) {
            self.id = id
            self.title = title
            self.count = count
            self.firstSeen = Date(timeIntervalSince1970: firstSeen)
            self.lastSeen = Date(timeIntervalSince1970: lastSeen)
            self.signatureVersion = signatureVersion
            self.hosts = hosts?.split(separator: ",").map(String.init).sorted() ?? []
        }
    }

    /// How a list of groups is ordered.
    public enum GroupOrder: String, Sendable, CaseIterable {
        case count, lastSeen = "last_seen"

        /// The SQL `ORDER BY` terms over `crash_group g` (both indexes).
        var orderBy: String { self == .count ? "g.count DESC, g.last_seen DESC" : "g.last_seen DESC, g.count DESC" }
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

        /// An event from its columns (`tags` comma-separated, `frames` JSON).
        init(id: Int64, group: Int64, receivedAt: Double, kind: String, reason: String, host: String?, runtime: String?,
             tags: String?, blob: String, size: Int, frames: String) {
            self.id = id
            self.group = group
            self.receivedAt = Date(timeIntervalSince1970: receivedAt)
            self.kind = kind
            self.reason = reason
            self.host = host
            self.runtime = runtime
            self.tags = tags?.split(separator: ",").map(String.init) ?? []
            self.blob = blob
            self.size = size
            self.frames = (try? JSONDecoder().decode([CrashEvent.Frame].self, from: Data(frames.utf8))) ?? []
        }
    }

    /// The text a function's frames contain in the stored JSON:
    /// `"function":"NAME"` (as JSONEncoder writes it, `"` and `\` escaped).
    static func functionNeedle(_ name: String) -> String {
        "\"function\":\"" + name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// Daily counts from `(group, day, events)` rows: `days` per group,
    /// oldest first, ending at `now`'s UTC day.
    static func dailyCounts(_ rows: [(group: Int64, day: Int, events: Int)], days: Int, now: Date) -> [Int64: [Int]] {
        let today = Int(now.timeIntervalSince1970 / 86_400)
        let first = today - days + 1
        var result: [Int64: [Int]] = [:]
        for row in rows where row.day >= first && row.day <= today {
            result[row.group, default: Array(repeating: 0, count: days)][row.day - first] += row.events
        }
        return result
    }

    /// The first second of the first of `days` days up to `now`.
    static func firstSecond(days: Int, now: Date) -> Double {
        Double(Int(now.timeIntervalSince1970 / 86_400) - days + 1) * 86_400
    }
}
