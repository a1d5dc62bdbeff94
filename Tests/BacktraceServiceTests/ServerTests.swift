import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
import WasmDWARF

/// `wasm-unwind-server`, started for real on loopback (any free port).
final class ServerProcess {
    let process = Process()
    let output = Pipe()
    let port: Int
    let data: URL

    init(data: URL, tokens: [String] = ["test:secret"], extra: [String] = []) throws {
        self.data = data
        let bundle = Bundle.allBundles.first { $0.bundlePath.hasSuffix(".xctest") }?.bundleURL
            ?? URL(fileURLWithPath: CommandLine.arguments[0])
        process.executableURL = bundle.deletingLastPathComponent().appendingPathComponent("wasm-unwind-server")
        let port = extra.contains("--port") ? [] : ["--port", "0"]
        process.arguments = ["--data", data.path] + port + tokens.flatMap { ["--token", $0] } + extra
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        var text = ""
        let deadline = Date().addingTimeInterval(30)
        while !text.contains("listening on http://"), Date() < deadline {
            text += String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
        }
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("listening on http://") }),
              let port = Int(line.split(separator: ":").last ?? "") else { throw ServerError(output: text) }
        self.port = port
    }

    struct ServerError: Error { var output: String }

    var base: String { "http://127.0.0.1:\(port)" }

    func kill9() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning { kill9() }
    }
}

/// One HTTP request: status and body.
func http(_ method: String, _ url: String, body: [UInt8]? = nil, headers: [String: String] = [:]) async throws -> (status: Int, body: [String: Any]) {
    var request = URLRequest(url: URL(string: url)!)
    request.httpMethod = method
    for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
    if let body { request.httpBody = Data(body) }
    let (data, response) = try await URLSession.shared.data(for: request)
    let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, object)
}

@Suite("The backtrace service over HTTP: a real server on loopback", .serialized)
struct ServerTests {
    let authorized = ["Authorization": "Bearer secret"]

    @Test("uploads in parallel: 3 crash kinds x 100 captures give 3 groups of 100 over the API; tokens, bad input, size limit, reads and /metrics")
    func api() async throws {
        let work = try ServiceTestSupport.directory("api")
        defer { try? FileManager.default.removeItem(at: work) }
        let captures = try ServiceTestSupport.captures(count: 100, in: work)
        let server = try ServerProcess(data: work.appendingPathComponent("data"), extra: ["--maximum-upload-bytes", "65536"])
        let base = server.base
        let headers = authorized
        try await withThrowingTaskGroup(of: Int.self) { group in
            for (index, capture) in captures.enumerated() {
                let bytes = try ServiceTestSupport.bytes(capture.path)
                group.addTask {
                    try await http("POST", "\(base)/api/v1/events?host=h\(index % 3)", body: bytes, headers: headers).status
                }
            }
            for try await status in group { #expect(status == 201) }
        }
        let groups = try await http("GET", "\(base)/api/v1/groups")
        let list = groups.body["groups"] as? [[String: Any]] ?? []
        #expect(list.compactMap { $0["count"] as? Int } == [100, 100, 100], "\(groups.body)")
        #expect(list.allSatisfy { ($0["hosts"] as? [String]) == ["h0", "h1", "h2"] })
        let id = try #require(list.first?["id"] as? Int)
        let one = try await http("GET", "\(base)/api/v1/groups/\(id)")
        #expect((one.body["events"] as? [[String: Any]])?.count == 100)

        // Refused, and nothing stored.
        let sample = try ServiceTestSupport.bytes(captures[0].path)
        #expect(try await http("POST", "\(base)/api/v1/events", body: sample).status == 401)
        #expect(try await http("POST", "\(base)/api/v1/events", body: sample, headers: ["Authorization": "Bearer wrong"]).status == 401)
        let bad = try await http("POST", "\(base)/api/v1/events", body: Array(sample.prefix(100)), headers: headers)
        #expect(bad.status == 400 && (bad.body["error"] as? String)?.isEmpty == false, "\(bad)")
        #expect(try await http("POST", "\(base)/api/v1/events", body: [UInt8](repeating: 1, count: 70_000), headers: headers).status == 413)
        #expect(try await http("GET", "\(base)/api/v1/events/999999").status == 404)
        let after = try await http("GET", "\(base)/api/v1/groups")
        #expect((after.body["groups"] as? [[String: Any]])?.compactMap { $0["count"] as? Int } == [100, 100, 100])

        // Prometheus' text format: what came in, what was refused and why,
        // how long storing took, how many groups and events there are.
        let (text, _) = try await URLSession.shared.data(from: URL(string: "\(base)/metrics")!)
        let metrics = String(decoding: text, as: UTF8.self)
        for line in ["wasm_unwind_events_received_total 300", "wasm_unwind_events_rejected_total{reason=\"unauthorized\"} 2",
                     "wasm_unwind_events_rejected_total{reason=\"unreadable\"} 1", "wasm_unwind_events_rejected_total{reason=\"too_large\"} 1",
                     "wasm_unwind_ingest_duration_seconds_count 300", "wasm_unwind_groups 3.0", "wasm_unwind_events 300.0"] {
            #expect(metrics.split(separator: "\n").contains { $0 == line }, "\(line) not in:\n\(metrics)")
        }
    }

    @Test("kill -9 in the middle of 1,000 uploads: every upload answered 201 is there after a restart, none twice, and re-sending all stores the rest once")
    func durability() async throws {
        let work = try ServiceTestSupport.directory("durability")
        defer { try? FileManager.default.removeItem(at: work) }
        let capture = try #require(try ServiceTestSupport.captures(count: 1, in: work).first)
        let bytes = try ServiceTestSupport.bytes(capture.path)
        let data = work.appendingPathComponent("data")
        let server = try ServerProcess(data: data)
        let base = server.base
        let headers = authorized
        final class Acknowledged: @unchecked Sendable {
            let lock = NSLock()
            var ids: [Int: Int] = [:]
            func add(_ upload: Int, _ id: Int) { lock.lock(); ids[upload] = id; lock.unlock() }
        }
        let acknowledged = Acknowledged()
        let serverPID = server.process.processIdentifier
        // Four clients upload; the server is killed after 300 answers.
        await withTaskGroup(of: Void.self) { group in
            for client in 0..<4 {
                group.addTask {
                    for upload in stride(from: client, to: 1000, by: 4) {
                        guard let answer = try? await http("POST", "\(base)/api/v1/events", body: bytes,
                                                           headers: headers.merging(["Idempotency-Key": "upload-\(upload)"]) { $1 }),
                              answer.status == 201, let id = answer.body["id"] as? Int else { continue }
                        acknowledged.add(upload, id)
                    }
                }
            }
            group.addTask {
                while acknowledged.lock.withLock({ acknowledged.ids.count }) < 300 { try? await Task.sleep(nanoseconds: 1_000_000) }
                kill(serverPID, SIGKILL)
            }
        }
        server.kill9()
        let before = acknowledged.ids
        #expect(before.count >= 300 && before.count < 1000, "\(before.count) acknowledged")
        // Restarted on the same data: the client's spool sends everything again.
        let restarted = try ServerProcess(data: data)
        for upload in 0..<1000 {
            let answer = try await http("POST", "\(restarted.base)/api/v1/events", body: bytes,
                                        headers: headers.merging(["Idempotency-Key": "upload-\(upload)"]) { $1 })
            #expect(answer.status == 201 || answer.status == 200)
            if let id = before[upload] {
                #expect(answer.status == 200 && answer.body["id"] as? Int == id, "upload \(upload): \(answer)")
            }
        }
        let groups = try await http("GET", "\(restarted.base)/api/v1/groups")
        #expect((groups.body["groups"] as? [[String: Any]])?.first?["count"] as? Int == 1000, "\(groups.body)")
        print("durability: \(before.count) uploads acknowledged before kill -9, all found after the restart; 1,000 stored once each")
    }

    @Test("PUT /api/v1/modules/{build-id}: a capture taken without DWARF gets source lines and inlined functions from the module uploaded for it — one uploaded before the module too; one carrying DWARF has them before any module; bad module uploads refused")
    func moduleUploads() async throws {
        let work = try ServiceTestSupport.directory("modules")
        defer { try? FileManager.default.removeItem(at: work) }
        // fixtures/c-lines/crash.c with -g and a build id; run without
        // backtrace details, so its capture names the module but carries
        // no DWARF.
        let module = work.appendingPathComponent("crash.wasm").path
        let clang = try ServiceTestSupport.shell("\"$(dirname \"$(command -v swift)\")/clang\" --target=wasm32 -g -O1 -nostdlib "
            + "-Wl,--no-entry -Wl,--build-id -o \(module) \(ServiceTestSupport.root.path)/fixtures/c-lines/crash.c")
        #expect(clang == 0)
        let capture = work.appendingPathComponent("crash.capture").path
        try ServiceTestSupport.run(["run", module, "--invoke", "run", "9", "--capture", capture])
        let bytes = try ServiceTestSupport.bytes(module)
        let buildID = try #require(try DebugFile(bytes: bytes).sections.buildID).map { String(format: "%02x", $0) }.joined()

        let server = try ServerProcess(data: work.appendingPathComponent("data"))
        let headers = ["Authorization": "Bearer secret"]
        // A capture that carries the module's DWARF (run --backtrace-details)
        // has lines before any module is uploaded. (It had none while the
        // server had no modules directory.)
        let carrying = work.appendingPathComponent("carrying.capture").path
        try ServiceTestSupport.run(["run", module, "--backtrace-details", "--invoke", "run", "9", "--capture", carrying])
        let carried = try await http("POST", "\(server.base)/api/v1/events", body: try ServiceTestSupport.bytes(carrying), headers: headers)
        let carriedTop = (try await http("GET", "\(server.base)/api/v1/events/\(carried.body["id"] as? Int ?? 0)").body["frames"]
            as? [[String: Any]])?.first
        #expect(carriedTop?["line"] as? Int == 6 && carriedTop?["inlined"] as? [String] == ["pick"], "\(String(describing: carriedTop))")

        let before = try await http("POST", "\(server.base)/api/v1/events", body: try ServiceTestSupport.bytes(capture), headers: headers)
        let plain = try await http("GET", "\(server.base)/api/v1/events/\(before.body["id"] as? Int ?? 0)")
        let plainTop = (plain.body["frames"] as? [[String: Any]])?.first
        #expect(plainTop?["file"] == nil && plainTop?["function"] as? String == "middle", "\(plain.body)")

        // Refused: no token, an id that is not the module's, not a module.
        #expect(try await http("PUT", "\(server.base)/api/v1/modules/\(buildID)", body: bytes).status == 401)
        let wrong = try await http("PUT", "\(server.base)/api/v1/modules/abcdef", body: bytes, headers: headers)
        #expect(wrong.status == 400 && (wrong.body["error"] as? String)?.contains("neither is abcdef") == true, "\(wrong.body)")
        #expect(try await http("PUT", "\(server.base)/api/v1/modules/\(buildID)", body: Array("nope".utf8), headers: headers).status == 400)
        let stored = try await http("PUT", "\(server.base)/api/v1/modules/\(buildID)", body: bytes, headers: headers)
        // The event uploaded before its module waited for it: symbolicated now.
        #expect(stored.status == 201 && stored.body["module"] as? String == buildID && stored.body["resymbolicated"] as? Int == 1,
                "\(stored.body)")
        let waited = try await http("GET", "\(server.base)/api/v1/events/\(before.body["id"] as? Int ?? 0)")
        let waitedTop = (waited.body["frames"] as? [[String: Any]])?.first
        #expect(waitedTop?["line"] as? Int == 6 && waitedTop?["inlined"] as? [String] == ["pick"]
                && (waitedTop?["file"] as? String)?.hasSuffix("fixtures/c-lines/crash.c") == true, "\(waited.body)")
        // Stored again: nothing waits any more.
        let again = try await http("PUT", "\(server.base)/api/v1/modules/\(buildID)", body: bytes, headers: headers)
        #expect(again.status == 201 && again.body["resymbolicated"] as? Int == 0, "\(again.body)")

        // The same capture again: symbolicated by the module's DWARF.
        let after = try await http("POST", "\(server.base)/api/v1/events", body: try ServiceTestSupport.bytes(capture), headers: headers)
        let event = try await http("GET", "\(server.base)/api/v1/events/\(after.body["id"] as? Int ?? 0)")
        let frames = event.body["frames"] as? [[String: Any]] ?? []
        // pick (inlined into middle) traps at crash.c:6; run calls middle at line 12.
        #expect(frames.first?["function"] as? String == "middle" && frames.first?["inlined"] as? [String] == ["pick"]
                && (frames.first?["file"] as? String)?.hasSuffix("fixtures/c-lines/crash.c") == true && frames.first?["line"] as? Int == 6,
                "\(event.body)")
        #expect(frames.last?["function"] as? String == "run" && frames.last?["line"] as? Int == 12, "\(event.body)")
        // Same names: the same group.
        #expect(after.body["group"] as? Int == before.body["group"] as? Int)
    }

    @Test("serve --grouping-depth 1: a crash 1 and 9 calls deep is one group (5 frames deep by default: two); 0 is refused")
    func groupingDepth() async throws {
        let work = try ServiceTestSupport.directory("depth")
        defer { try? FileManager.default.removeItem(at: work) }
        var captures: [[UInt8]] = []
        for depth in [1, 9] {
            let program = work.appendingPathComponent("d\(depth).wat")
            try ServiceTestSupport.crashProgram(0, depth: depth, padding: 0).write(to: program, atomically: true, encoding: .utf8)
            let capture = work.appendingPathComponent("d\(depth).capture").path
            try ServiceTestSupport.run(["run", program.path, "--invoke", "run", String(depth), "--capture", capture])
            captures.append(try ServiceTestSupport.bytes(capture))
        }
        let headers = ["Authorization": "Bearer secret"]
        for (extra, groups) in [([String](), 2), (["--grouping-depth", "1"], 1)] {
            let server = try ServerProcess(data: work.appendingPathComponent("data\(groups)"), extra: extra)
            var ids: Set<Int> = []
            for capture in captures {
                ids.insert(try await http("POST", "\(server.base)/api/v1/events", body: capture, headers: headers).body["group"] as? Int ?? -1)
            }
            #expect(ids.count == groups, "\(extra): \(ids)")
        }
        #expect(try ServiceTestSupport.shell("\(URL(fileURLWithPath: ServiceTestSupport.cli).deletingLastPathComponent().path)/wasm-unwind-server "
                                             + "--grouping-depth 0 --data \(work.path)/x 2>/dev/null") != 0)
    }

    @Test("a sweep of 400 hostile uploads — truncated, bit-flipped, random bytes, wrong content types, bad tokens, over the limit, a cut connection — each answered 201, 400, 401 or 413; stored exactly for the 201s; the server keeps serving")
    func hostileSweep() async throws {
        let work = try ServiceTestSupport.directory("sweep")
        defer { try? FileManager.default.removeItem(at: work) }
        let capture = try #require(try ServiceTestSupport.captures(count: 1, in: work).first)
        let bytes = try ServiceTestSupport.bytes(capture.path)
        let server = try ServerProcess(data: work.appendingPathComponent("data"), extra: ["--maximum-upload-bytes", "200000"])
        var generator = SystemRandomNumberGenerator()
        var uploads: [(body: [UInt8], headers: [String: String])] = []
        let token = ["Authorization": "Bearer secret"]
        for length in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 150)) { uploads.append((Array(bytes.prefix(length)), token)) }
        for _ in 0..<230 {
            var flipped = bytes
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                flipped[Int.random(in: 0..<flipped.count, using: &generator)] ^= UInt8.random(in: 1...255, using: &generator)
            }
            uploads.append((flipped, token))
        }
        for size in [0, 1, 7, 8, 64, 4096, 150_000] {
            uploads.append(((0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }, token))
        }
        for type in ["text/plain", "application/json", "multipart/form-data; boundary=x", "image/png"] {
            uploads.append((bytes, token.merging(["Content-Type": type]) { $1 }))
            uploads.append((Array("{\"not\": \"a capture\"}".utf8), token.merging(["Content-Type": type]) { $1 }))
        }
        for bad in ["", "Bearer", "Bearer ", "Bearer secretx", "Basic c2VjcmV0", "Bearer Secret"] {
            uploads.append((bytes, ["Authorization": bad]))
        }
        // The scheme's name in any case is the same scheme.
        uploads.append((bytes, ["Authorization": "bearer secret"]))
        uploads.append(([UInt8](repeating: 0x41, count: 300_000), token))
        #expect(uploads.count >= 400)
        var statuses: [Int: Int] = [:]
        for upload in uploads {
            let answer = try await http("POST", "\(server.base)/api/v1/events", body: upload.body, headers: upload.headers)
            statuses[answer.status, default: 0] += 1
            #expect([200, 201, 400, 401, 413].contains(answer.status), "status \(answer.status) for \(upload.body.count) bytes")
        }
        // A connection cut in the middle of its body.
        let socket = try #require(try? ServiceTestSupport.shell("exec bash -c \"exec 3<>/dev/tcp/127.0.0.1/\(server.port); printf 'POST /api/v1/events HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Bearer secret\\r\\nContent-Length: 100000\\r\\n\\r\\nWU' >&3; exec 3>&-\""))
        #expect(socket == 0)
        let groups = try await http("GET", "\(server.base)/api/v1/groups")
        let stored = (groups.body["groups"] as? [[String: Any]])?.reduce(0) { $0 + ($1["count"] as? Int ?? 0) } ?? -1
        #expect(groups.status == 200 && stored == statuses[201, default: 0], "\(statuses), \(stored) stored")
        #expect(statuses[401] == 6 && statuses[413] == 1 && statuses[400, default: 0] > 150, "\(statuses)")
        print("hostile sweep: \(uploads.count) uploads + a cut connection: \(statuses.sorted { $0.key < $1.key }.map { "\($0.key) x\($0.value)" }.joined(separator: ", ")); \(stored) stored; still serving")
    }
}
