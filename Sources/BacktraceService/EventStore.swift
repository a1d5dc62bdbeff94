import Foundation
import StackCapture
import WasmDWARF

/// The backtrace service's data: the uploads in one directory,
/// content-addressed (`blobs/ab/cdef...`, by SHA-256), uploaded modules
/// and debug files beside them (`modules/`), and the events and groups in
/// an index — SQLite in the same directory (`service.sqlite`, WAL) or
/// PostgreSQL for a fleet (`PostgresIndex`).
///
/// An upload is durable before `ingest` returns: its blob is written and
/// renamed into place, then its batch (every upload that arrived while the
/// previous batch was being committed) is made durable together — one
/// `syncfs` for the blobs, one transaction in the index (`GroupCommitter`).
public final class EventStore: Sendable {
    public let directory: URL
    public let index: any EventIndex
    public let grouping: Grouping
    /// Uploads larger than this are refused.
    public let maximumUploadBytes: Int
    let committer: GroupCommitter
    let modules: ModuleSearchCache

    /// A store in `directory`; its index is SQLite there unless `index`
    /// is given.
    public init(directory: URL, index: (any EventIndex)? = nil, grouping: Grouping = Grouping(),
                maximumUploadBytes: Int = 64 << 20) throws {
        self.directory = directory
        self.grouping = grouping
        self.maximumUploadBytes = maximumUploadBytes
        let blobs = directory.appendingPathComponent("blobs")
        try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
        let index = try index ?? SQLiteIndex(path: directory.appendingPathComponent("service.sqlite").path)
        self.index = index
        committer = GroupCommitter(index: index, blobs: blobs)
        modules = ModuleSearchCache(directory: directory.appendingPathComponent("modules"))
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
                       now: Date = Date()) async throws -> Ingested {
        guard bytes.count <= maximumUploadBytes else { throw IngestError.tooLarge(bytes.count, limit: maximumUploadBytes) }
        if let idempotencyKey, let known = try await index.existing(idempotencyKey: idempotencyKey) { return known }
        let event: CrashEvent
        do { event = try modules.read(bytes) } catch { throw IngestError.unreadable(error) }
        let frames = try Self.framesJSON(event)
        let pending = PendingEvent(
            signature: grouping.signature(of: event), title: grouping.title(of: event), receivedAt: now.timeIntervalSince1970,
            kind: event.kind.rawValue, reason: event.reason, host: metadata.host, runtime: metadata.runtime,
            tags: metadata.tags.isEmpty ? nil : metadata.tags.joined(separator: ","), blob: try storeBlob(bytes), size: bytes.count,
            idempotencyKey: idempotencyKey, frames: frames, awaiting: Self.awaitingColumn(event))
        return try await committer.commit(pending)
    }

    /// Batches committed so far, the events in them and the largest batch.
    public var commitStatistics: (batches: Int, events: Int, largest: Int) { committer.statistics }

    /// Stops using the index (its connections closed).
    public func stop() async { await index.close() }

    // MARK: Modules and debug files

    /// Where uploaded modules and debug files are: `modules/NAME.wasm`,
    /// found by a capture's module through its build id (the file name) or
    /// its content (`DebugFileSearch`).
    public var modulesDirectory: URL { directory.appendingPathComponent("modules") }

    /// What storing a module did.
    public struct StoredModule: Hashable, Sendable {
        /// The name it is stored under (lowercase hex).
        public var name: String
        /// Events stored before it that waited for it, symbolicated again.
        public var resymbolicated: Int
    }

    /// How many waiting events one module upload re-symbolicates at most
    /// (the newest).
    public static let maximumResymbolicated = 10_000

    /// Stores a module or debug file (a wasm binary with DWARF) under `name`
    /// — its build id in hex, or its SHA-256 — for the symbolication of
    /// events uploaded after it; events uploaded before it that waited for
    /// it (`CrashEvent.awaitingModules`) get their frames again, with the
    /// names and lines it gives. Their groups stay: a signature is made
    /// once, from what was known at ingest.
    @discardableResult
    public func storeModule(_ bytes: [UInt8], name: String) async throws -> StoredModule {
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
        try Self.writeFile(bytes, to: partial.path, sync: true)
        guard rename(partial.path, url.path) == 0 else { throw EventError("cannot store the module: \(String(cString: strerror(errno)))") }
        try Self.sync(directory: modulesDirectory.path)
        var resymbolicated = 0
        for (event, blob) in try await index.events(awaiting: Set([buildID, contentHash].compactMap { $0 }),
                                                    limit: Self.maximumResymbolicated) {
            guard let data = try? Data(contentsOf: blobURL(blob)), let read = try? modules.read([UInt8](data)) else { continue }
            try await index.update(event: event, frames: try Self.framesJSON(read), awaiting: Self.awaitingColumn(read))
            resymbolicated += 1
        }
        return StoredModule(name: name.lowercased(), resymbolicated: resymbolicated)
    }

    static func framesJSON(_ event: CrashEvent) throws -> String {
        String(decoding: try JSONEncoder().encode(event.frames), as: UTF8.self)
    }

    /// The `awaiting` column: `,id,id,` (each id found by `,id,`), or nil.
    static func awaitingColumn(_ event: CrashEvent) -> String? {
        event.awaitingModules.isEmpty ? nil : "," + event.awaitingModules.joined(separator: ",") + ","
    }

    // MARK: Blobs

    /// Where the blob with this SHA-256 (hex) is.
    public func blobURL(_ hash: String) -> URL {
        directory.appendingPathComponent("blobs").appendingPathComponent(String(hash.prefix(2)))
            .appendingPathComponent(String(hash.dropFirst(2)))
    }

    /// Writes `bytes` under their hash (once: the same bytes are one file).
    /// Not synced here: the batch's `syncfs` makes it durable before its
    /// event is committed.
    func storeBlob(_ bytes: [UInt8]) throws -> String {
        let hash = ContentHash.sha256(bytes).map { String($0, radix: 16).leftPadded(to: 2) }.joined()
        let url = blobURL(hash)
        if FileManager.default.fileExists(atPath: url.path) { return hash }
        let folder = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let partial = folder.appendingPathComponent(".\(url.lastPathComponent).\(getpid()).\(UInt64.random(in: 0...UInt64.max))")
        try Self.writeFile(bytes, to: partial.path, sync: false)
        guard rename(partial.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(partial.path)
            throw EventError("cannot store the upload: \(reason)")
        }
        return hash
    }

    /// Writes a new file (fsynced when `sync`).
    static func writeFile(_ bytes: [UInt8], to path: String, sync: Bool) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw EventError("cannot store the upload: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { throw EventError("cannot store the upload: \(String(cString: strerror(errno)))") }
            written += count
        }
        guard !sync || fsync(descriptor) == 0 else { throw EventError("cannot store the upload: \(String(cString: strerror(errno)))") }
    }

    static func sync(directory path: String) throws {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        fsync(descriptor)
    }

    // MARK: Reading

    /// Every group (or those with an event that has a frame of function
    /// `function`), most events first or most recent first.
    public func groups(order: GroupOrder = .count, function: String? = nil) async throws -> [Group] {
        try await index.groups(order: order, function: function)
    }

    /// Per group, its events on each of the `days` days up to `now`
    /// (UTC days, oldest first).
    public func dailyCounts(days: Int = 14, now: Date = Date()) async throws -> [Int64: [Int]] {
        try await index.dailyCounts(days: days, now: now)
    }

    public func group(_ id: Int64) async throws -> Group? { try await index.group(id) }

    public func event(_ id: Int64) async throws -> Event? { try await index.event(id) }

    /// A group's events, newest first.
    public func events(inGroup group: Int64, limit: Int = 100) async throws -> [Event] {
        try await index.events(inGroup: group, limit: limit)
    }

    /// How many groups and events there are.
    public func totals() async throws -> (groups: Int, events: Int) { try await index.totals() }

    public func eventCount() async throws -> Int { try await index.totals().events }
}

/// The uploaded modules as `DebugFileSearch`es, kept while the modules
/// directory is unchanged (its modification time: a module stored by this
/// server or another sharing the directory changes it). A search
/// remembers what it read and is not shareable, so each upload borrows one
/// of its own (at most `maximumIdle` are kept) and reads without a lock.
final class ModuleSearchCache: @unchecked Sendable {
    let directory: URL
    static let maximumIdle = 8
    // SAFETY of @unchecked Sendable: `idle` and `stamp` are read and
    // written only with `lock` held; a borrowed search is used by one
    // upload at a time.
    private let lock = NSLock()
    private var idle: [DebugFileSearch] = []
    private var stamp: timespec?

    init(directory: URL) { self.directory = directory }

    /// Reads an upload, symbolicated with the modules uploaded so far.
    func read(_ bytes: [UInt8]) throws(EventError) -> CrashEvent {
        var status = stat()
        guard stat(directory.path, &status) == 0 else { return try CrashEvent(reading: bytes) }
        let now = status.st_mtim
        let borrowed: DebugFileSearch? = lock.withLock {
            if stamp?.tv_sec != now.tv_sec || stamp?.tv_nsec != now.tv_nsec {
                idle.removeAll()
                stamp = now
            }
            return idle.popLast()
        } ?? (try? DebugFileSearch(files: [], directories: [directory.path]))
        defer {
            if let borrowed {
                lock.withLock {
                    if stamp?.tv_sec == now.tv_sec && stamp?.tv_nsec == now.tv_nsec && idle.count < Self.maximumIdle { idle.append(borrowed) }
                }
            }
        }
        return try CrashEvent(reading: bytes, search: borrowed)
    }
}
