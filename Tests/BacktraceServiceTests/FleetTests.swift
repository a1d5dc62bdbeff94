import BacktraceService
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import PostgresScratch
import Testing

/// The fleet path: events and groups in PostgreSQL (a server of the
/// tests' own, started by initdb in a temporary directory on loopback),
/// several stores and several `wasm-unwind-server` processes sharing it.
@Suite("The backtrace service on PostgreSQL: several servers, one store", .serialized)
struct FleetTests {
    @Test("two stores on one PostgreSQL database, 300 uploads in parallel through both: 3 groups of 100, none twice; keys, search, days")
    func twoStores() async throws {
        let postgres = try PostgresScratch()
        defer { postgres.stop() }
        let work = try ServiceTestSupport.directory("fleet-stores")
        defer { try? FileManager.default.removeItem(at: work) }
        let captures = try ServiceTestSupport.captures(count: 100, in: work)
        let location = try PostgresIndex.Location(url: postgres.url())
        // Two stores, each its own connection pool, the same blob directory.
        let data = work.appendingPathComponent("data")
        let stores = [try EventStore(directory: data, index: try await PostgresIndex(location)),
                      try EventStore(directory: data, index: try await PostgresIndex(location))]
        let uploads = try captures.map { try ServiceTestSupport.bytes($0.path) }
        // 24 uploads in flight at once; the same key sent to both stores
        // for the first 30 (stored once).
        let results = try await withThrowingTaskGroup(of: [EventStore.Ingested].self) { group in
            var results: [EventStore.Ingested] = []
            for (index, bytes) in uploads.enumerated() {
                if index >= 24, let done = try await group.next() { results += done }
                group.addTask {
                    let key = index < 30 ? "key-\(index)" : nil
                    let metadata = EventStore.Metadata(host: "host-\(index % 2)")
                    guard key != nil else { return [try await stores[index % 2].ingest(bytes, metadata: metadata)] }
                    async let first = stores[0].ingest(bytes, metadata: metadata, idempotencyKey: key)
                    async let second = stores[1].ingest(bytes, metadata: metadata, idempotencyKey: key)
                    return try await [first, second]
                }
            }
            return try await group.reduce(into: results) { $0 += $1 }
        }
        #expect(results.count == 330 && results.filter(\.duplicate).count == 30)
        for store in stores {
            let groups = try await store.groups()
            #expect(groups.map(\.count) == [100, 100, 100], "\(groups)")
            #expect(Set(groups.map(\.title)) == ServiceTestSupport.titles)
            #expect(groups.allSatisfy { $0.hosts == ["host-0", "host-1"] })
            let totals = try await store.totals()
            #expect(totals.groups == 3 && totals.events == 300, "\(totals)")
        }
        // Idempotency across stores: both answers carry the first's ids.
        let pairs = Dictionary(grouping: results, by: \.event)
        #expect(pairs.values.filter { $0.count == 2 }.count == 30)
        // Search by function, daily counts, an event with its frames and blob.
        #expect(try await stores[0].groups(function: "leaf").count == 3)
        #expect(try await stores[0].groups(function: "no such function").isEmpty)
        let daily = try await stores[1].dailyCounts()
        #expect(daily.values.map { $0.last ?? 0 }.sorted() == [100, 100, 100])
        let group = try #require(try await stores[1].groups(order: .lastSeen).first)
        let event = try #require(try await stores[0].events(inGroup: group.id, limit: 1).first)
        #expect(event.frames.first?.function == "leaf" && event.host != nil)
        #expect(try Data(contentsOf: stores[1].blobURL(event.blob)).count == event.size)
        #expect(try await stores[1].event(event.id) == event)
        // A NUL (which PostgreSQL's text cannot hold) in what an upload
        // brings is stored as U+FFFD; it failed the upload's whole batch.
        let nul = try await stores[0].ingest(uploads[0], metadata: EventStore.Metadata(host: "nul\u{0}host", tags: ["a\u{0}"]))
        let stored = try #require(try await stores[1].event(nul.event))
        #expect(stored.host == "nul\u{FFFD}host" && stored.tags == ["a\u{FFFD}"], "\(stored)")
        for store in stores { await store.stop() }
    }

    @Test("two wasm-unwind-server processes on one PostgreSQL database: parallel uploads to both, one set of groups, retried keys stored once")
    func twoServers() async throws {
        let postgres = try PostgresScratch()
        defer { postgres.stop() }
        let work = try ServiceTestSupport.directory("fleet-servers")
        defer { try? FileManager.default.removeItem(at: work) }
        let captures = try ServiceTestSupport.captures(count: 100, in: work)
        let data = work.appendingPathComponent("data")
        let servers = [try ServerProcess(data: data, extra: ["--database", postgres.url()]),
                       try ServerProcess(data: data, extra: ["--database", postgres.url()])]
        let bases = servers.map(\.base)
        let headers = ["Authorization": "Bearer secret"]
        let uploads = try captures.map { try ServiceTestSupport.bytes($0.path) }
        let statuses = try await withThrowingTaskGroup(of: [Int].self) { group in
            var statuses: [Int] = []
            for (index, bytes) in uploads.enumerated() {
                if index >= 16, let done = try await group.next() { statuses += done }
                group.addTask {
                    guard index < 40 else {
                        return [try await http("POST", "\(bases[index % 2])/api/v1/events?host=h\(index % 2)", body: bytes,
                                               headers: headers).status]
                    }
                    var keyed = headers
                    keyed["Idempotency-Key"] = "retry-\(index)"
                    async let first = http("POST", "\(bases[0])/api/v1/events?host=h0", body: bytes, headers: keyed)
                    async let second = http("POST", "\(bases[1])/api/v1/events?host=h0", body: bytes, headers: keyed)
                    return try await [first.status, second.status]
                }
            }
            return try await group.reduce(into: statuses) { $0 += $1 }
        }
        #expect(statuses.filter { $0 == 201 }.count == 300 && statuses.filter { $0 == 200 }.count == 40,
                "\(Dictionary(grouping: statuses, by: { $0 }).mapValues(\.count))")
        for base in bases {
            let listed = try await http("GET", "\(base)/api/v1/groups")
            let groups = try #require(listed.body["groups"] as? [[String: Any]])
            #expect(groups.compactMap { $0["count"] as? Int } == [100, 100, 100], "\(groups)")
        }
        // The same group ids and counts from both servers.
        let first = try await http("GET", "\(bases[0])/api/v1/groups").body["groups"] as? [[String: Any]]
        let second = try await http("GET", "\(bases[1])/api/v1/groups").body["groups"] as? [[String: Any]]
        #expect(first?.compactMap { $0["id"] as? Int } == second?.compactMap { $0["id"] as? Int })
        // An event stored through one server is read, with its upload, through the other.
        let groupID = try #require(first?.first?["id"] as? Int)
        let group = try await http("GET", "\(bases[1])/api/v1/groups/\(groupID)")
        let eventID = try #require((group.body["events"] as? [[String: Any]])?.first?["id"] as? Int)
        let (raw, response) = try await URLSession.shared.data(from: URL(string: "\(bases[0])/api/v1/events/\(eventID)/raw")!)
        #expect((response as? HTTPURLResponse)?.statusCode == 200 && !raw.isEmpty)
    }

    @Test("a bad database URL, an unreachable database and a schema newer than the server's: a clear error, exit 1")
    func badDatabase() async throws {
        let work = try ServiceTestSupport.directory("fleet-bad")
        defer { try? FileManager.default.removeItem(at: work) }
        func serve(_ database: String) throws -> (status: Int32, error: String) {
            let server = URL(fileURLWithPath: ServiceTestSupport.cli).deletingLastPathComponent().appendingPathComponent("wasm-unwind-server")
            let result = try ServiceTestSupport.launch(server.path, ["--data", work.appendingPathComponent("data").path, "--port", "0",
                                                                     "--token", "t:t", "--database", database])
            return (result.status, result.stderr)
        }
        let notURL = try serve("mysql://somewhere/db")
        #expect(notURL.status != 0 && notURL.error.contains("postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"), "\(notURL)")
        let noDatabase = try serve("postgres://user@127.0.0.1:5432/")
        #expect(noDatabase.status != 0 && noDatabase.error.contains("names no database"), "\(noDatabase)")
        // Nothing listens on a port just found free.
        let closed = try serve("postgres://user@127.0.0.1:\(try PostgresScratch.freePort())/db")
        #expect(closed.status != 0 && closed.error.contains("cannot use the database at 127.0.0.1:"), "\(closed)")
        // A schema written by a newer server.
        let postgres = try PostgresScratch()
        defer { postgres.stop() }
        let store = try EventStore(directory: work.appendingPathComponent("data"),
                                   index: try await PostgresIndex(try PostgresIndex.Location(url: postgres.url())))
        await store.stop()
        let psql = try #require(PostgresScratch.binaries).appendingPathComponent("psql").path
        #expect(try ServiceTestSupport.shell("\(psql) -q -h 127.0.0.1 -p \(postgres.port) -U wasmunwind -d postgres "
                                             + "-c 'UPDATE wasm_unwind_schema SET version = 2'") == 0)
        let newer = try serve(postgres.url())
        #expect(newer.status != 0 && newer.error.contains("its schema is version 2; this server knows 1"), "\(newer)")
    }
}
