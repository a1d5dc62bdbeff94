import BacktraceService
import Foundation
import Testing

/// The service's files: the CLI next to this test bundle, and a fresh
/// directory per test.
enum ServiceTestSupport {
    static let root = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var cli: String {
        let bundle = Bundle.allBundles.first { $0.bundlePath.hasSuffix(".xctest") }?.bundleURL
            ?? URL(fileURLWithPath: CommandLine.arguments[0])
        return bundle.deletingLastPathComponent().appendingPathComponent("wasm-unwind").path
    }

    static func directory(_ name: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("wasm-unwind-service-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Runs a program to its end: its exit status, standard output and
    /// standard error (read at once, so neither pipe fills).
    @discardableResult
    static func launch(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                       directory: URL? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        if let directory { process.currentDirectoryURL = directory }
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        final class Box: @unchecked Sendable { var data = Data() }
        let errorText = Box()
        let reader = Thread { errorText.data = errors.fileHandleForReading.readDataToEndOfFile() }
        reader.start()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        while reader.isExecuting || !reader.isFinished { usleep(1000) }
        return (process.terminationStatus, text, String(decoding: errorText.data, as: UTF8.self))
    }

    /// Runs the CLI; its exit status.
    @discardableResult
    static func run(_ arguments: [String]) throws -> Int32 { try launch(cli, arguments).status }

    /// The group titles of the three crash kinds of `captures`.
    static let titles: Set<String> = [
        "wasm trap: wasm `unreachable` instruction executed in abort!leaf",
        "wasm trap: integer divide by zero in divide!leaf",
        "wasm trap: out of bounds memory access in load!leaf",
    ]

    /// A program that crashes `depth` calls deep, in one of three ways,
    /// its crashing code `padding` instructions further into its function
    /// (other offsets, the same names).
    static func crashProgram(_ kind: Int, depth: Int, padding: Int) -> String {
        let nops = String(repeating: "nop ", count: padding)
        let crash: String
        switch kind {
        case 0: crash = "(func $leaf (param i32) \(nops) unreachable)"
        case 1: crash = "(func $leaf (param i32) \(nops) (drop (i32.div_s (i32.const 1) (i32.sub (local.get 0) (local.get 0)))))"
        default: crash = "(func $leaf (param i32) \(nops) (drop (i32.load (i32.add (local.get 0) (i32.const 0x7fff0000)))))"
        }
        let name = ["abort", "divide", "load"][kind]
        return """
            (module $\(name)
              (memory 1)
              \(crash)
              (func $step (param i32)
                (if (i32.eqz (local.get 0)) (then (call $leaf (local.get 0))) (else (call $step (i32.sub (local.get 0) (i32.const 1))))))
              (func (export "run") (param i32) (call $step (local.get 0))))
            """
    }

    /// Captures of `count` crashes of each kind, at depths 4 to count + 3
    /// (deeper than the signature's five frames: the shallowest crash is
    /// leaf <- step x 5 <- run).
    static func captures(count: Int, in directory: URL) throws -> [(kind: Int, path: String)] {
        var result: [(Int, String)] = []
        for kind in 0..<3 {
            for depth in 4..<(count + 4) {
                let module = directory.appendingPathComponent("k\(kind)-\(depth).wat")
                try crashProgram(kind, depth: depth, padding: depth % 7).write(to: module, atomically: true, encoding: .utf8)
                let capture = directory.appendingPathComponent("k\(kind)-\(depth).capture").path
                try run(["run", module.path, "--invoke", "run", String(depth), "--capture", capture])
                result.append((kind, capture))
            }
        }
        return result
    }

    /// Runs the CLI; its standard output.
    static func output(_ arguments: [String]) throws -> String { try launch(cli, arguments).stdout }

    static func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    /// Runs a shell command line; its exit status.
    static func shell(_ command: String) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}

@Suite("The backtrace service's store: uploads read, grouped and kept", .serialized)
struct EventStoreTests {
    @Test("3 crash kinds x 100 captures at depths 4 to 103 and 7 different offsets: exactly 3 groups of 100, named by how they end and where")
    func grouping() async throws {
        let work = try ServiceTestSupport.directory("grouping")
        defer { try? FileManager.default.removeItem(at: work) }
        let captures = try ServiceTestSupport.captures(count: 100, in: work)
        let store = try EventStore(directory: work.appendingPathComponent("data"))
        for (index, capture) in captures.enumerated() {
            try await store.ingest(try ServiceTestSupport.bytes(capture.path),
                             metadata: EventStore.Metadata(host: "host-\(index % 4)", runtime: "wasm-unwind test"))
        }
        let groups = try await store.groups()
        #expect(groups.map(\.count) == [100, 100, 100], "\(groups)")
        #expect(Set(groups.map(\.title)) == ServiceTestSupport.titles, "\(groups.map(\.title))")
        #expect(groups.allSatisfy { $0.hosts == ["host-0", "host-1", "host-2", "host-3"] && $0.signatureVersion == Grouping.version })
        #expect(try await store.eventCount() == 300)
        // An event keeps its frames, newest first, and its upload.
        let group = try #require(groups.first)
        let event = try #require(try await store.events(inGroup: group.id, limit: 1).first)
        #expect(event.frames.first?.function == "leaf" && event.frames.filter(\.isProgram).last?.function == "<wasm function 2>",
                "\(event.frames)")
        // Shallower than the signature: another group (its top five frames differ).
        let shallow = work.appendingPathComponent("shallow.wat")
        try ServiceTestSupport.crashProgram(0, depth: 1, padding: 0).write(to: shallow, atomically: true, encoding: .utf8)
        let shallowCapture = work.appendingPathComponent("shallow.capture").path
        try ServiceTestSupport.run(["run", shallow.path, "--invoke", "run", "1", "--capture", shallowCapture])
        let separate = try await store.ingest(try ServiceTestSupport.bytes(shallowCapture))
        #expect(!groups.map(\.id).contains(separate.group))
        #expect(try Data(contentsOf: store.blobURL(event.blob)).count == event.size)
    }

    @Test("a retried upload (the same idempotency key) is stored once; the same bytes under two keys are two events and one blob")
    func idempotency() async throws {
        let work = try ServiceTestSupport.directory("idempotency")
        defer { try? FileManager.default.removeItem(at: work) }
        let capture = try #require(try ServiceTestSupport.captures(count: 1, in: work).first)
        let store = try EventStore(directory: work.appendingPathComponent("data"))
        let bytes = try ServiceTestSupport.bytes(capture.path)
        let first = try await store.ingest(bytes, idempotencyKey: "upload-1")
        let again = try await store.ingest(bytes, idempotencyKey: "upload-1")
        #expect(!first.duplicate && again.duplicate && again.event == first.event)
        let other = try await store.ingest(bytes, idempotencyKey: "upload-2")
        #expect(!other.duplicate && other.event != first.event && other.group == first.group)
        #expect(try await store.eventCount() == 2)
        let blobs = try FileManager.default.subpathsOfDirectory(atPath: work.appendingPathComponent("data/blobs").path)
            .filter { !$0.contains("/.") && $0.contains("/") }
        #expect(blobs.count == 1, "\(blobs)")
    }

    @Test("bad uploads — truncated, bit-flipped, not a capture, too large — are refused with the reason, and nothing is stored")
    func badInput() async throws {
        let work = try ServiceTestSupport.directory("bad")
        defer { try? FileManager.default.removeItem(at: work) }
        let capture = try #require(try ServiceTestSupport.captures(count: 3, in: work).last)
        let store = try EventStore(directory: work.appendingPathComponent("data"), maximumUploadBytes: 1 << 20)
        let bytes = try ServiceTestSupport.bytes(capture.path)
        var refused = 0, read = 0
        var generator = SystemRandomNumberGenerator()
        var inputs: [[UInt8]] = stride(from: 0, to: bytes.count, by: max(1, bytes.count / 100)).map { Array(bytes.prefix($0)) }
        for _ in 0..<300 {
            var flipped = bytes
            let at = Int.random(in: 0..<flipped.count, using: &generator)
            flipped[at] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &generator)
            inputs.append(flipped)
        }
        inputs += [Array("not a capture".utf8), [], [0x00, 0x61, 0x73, 0x6D, 1, 0, 0, 0]]
        for input in inputs {
            do {
                _ = try await store.ingest(input)
                read += 1
            } catch let error as EventStore.IngestError {
                guard case .unreadable(let reason) = error else { Issue.record("\(error)"); continue }
                #expect(!reason.description.isEmpty)
                refused += 1
            }
        }
        // A flipped bit in a name or a padding byte may still read: those
        // are events; every other input is refused and leaves nothing.
        #expect(try await store.eventCount() == read && refused > 100, "\(read) read, \(refused) refused")
        let big = [UInt8](repeating: 0, count: (1 << 20) + 1)
        await #expect(throws: EventStore.IngestError.self) { try await store.ingest(big) }
        print("bad uploads: \(inputs.count) tried, \(refused) refused, \(read) read as events")
    }

    @Test("the JSON of a trap report (run --format json) is an event in the same group as the capture of the same crash; lines and inlined functions from its symbols; bad JSON refused")
    func jsonReports() async throws {
        let work = try ServiceTestSupport.directory("json")
        defer { try? FileManager.default.removeItem(at: work) }
        let store = try EventStore(directory: work.appendingPathComponent("data"))
        // The same crash as a capture and as a JSON report.
        let program = work.appendingPathComponent("divide.wat")
        try ServiceTestSupport.crashProgram(1, depth: 8, padding: 2).write(to: program, atomically: true, encoding: .utf8)
        let capture = work.appendingPathComponent("divide.capture").path
        try ServiceTestSupport.run(["run", program.path, "--invoke", "run", "8", "--capture", capture])
        let report = try ServiceTestSupport.output(["run", program.path, "--invoke", "run", "8", "--format", "json"])
        let fromCapture = try await store.ingest(try ServiceTestSupport.bytes(capture))
        let fromReport = try await store.ingest(Array(report.utf8), metadata: EventStore.Metadata(host: "json"))
        #expect(fromReport.group == fromCapture.group)
        let event = try #require(try await store.event(fromReport.event))
        let captured = try #require(try await store.event(fromCapture.event))
        #expect(event.kind == "report" && event.reason == "wasm trap: integer divide by zero", "\(event)")
        #expect(event.frames.filter(\.isProgram).map(\.function) == captured.frames.filter(\.isProgram).map(\.function))
        #expect(event.frames.first?.moduleOffset == captured.frames.first?.moduleOffset && event.frames.first?.moduleOffset != nil)

        // With source symbols (a C program run with backtrace details).
        let module = work.appendingPathComponent("crash.wasm").path
        #expect(try ServiceTestSupport.shell("\"$(dirname \"$(command -v swift)\")/clang\" --target=wasm32 -g -O1 -nostdlib "
            + "-Wl,--no-entry -Wl,--export-all -o \(module) \(ServiceTestSupport.root.path)/fixtures/c-lines/crash.c") == 0)
        let detailed = try ServiceTestSupport.output(["run", module, "--backtrace-details", "--invoke", "run", "9", "--format", "json"])
        let lines = try #require(try await store.event(try await store.ingest(Array(detailed.utf8)).event))
        #expect(lines.frames.first?.function == "middle" && lines.frames.first?.line == 6 && lines.frames.first?.inlined == ["pick"]
                && lines.frames.first?.file?.hasSuffix("fixtures/c-lines/crash.c") == true, "\(lines.frames)")

        // Refused, with the reason, nothing stored.
        let before = try await store.eventCount()
        let returned = try ServiceTestSupport.output(["run", ServiceTestSupport.root.appendingPathComponent("fixtures/programs/factorial.wat").path,
                                                      "--invoke", "fac", "5", "--format", "json"])
        let bad: [(String, String)] = [
            (returned, "without a trap"),
            ("{\"schema\": \"other\", \"trap\": {}}", "schema other"),
            ("{\"trap\": {\"message\": \"x\"}}", "without frames"),
            ("{\"trap\": {\"backtrace\": {\"frames\": []}}}", "without a message"),
            ("{\"trap\": ", "not valid JSON"),
            ("{\"a\": " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}", "nested more than 32"),
        ]
        for (text, reason) in bad {
            do {
                _ = try await store.ingest(Array(text.utf8))
                Issue.record("stored: \(text.prefix(80))")
            } catch let error as EventStore.IngestError {
                #expect(error.description.contains(reason), "\(error) for \(text.prefix(80))")
            }
        }
        #expect(try await store.eventCount() == before)
    }

    @Test("what was stored is there after the store is closed and opened again; wasm coredumps are events too")
    func reopen() async throws {
        let work = try ServiceTestSupport.directory("reopen")
        defer { try? FileManager.default.removeItem(at: work) }
        let data = work.appendingPathComponent("data")
        let coredump = ServiceTestSupport.root.appendingPathComponent("fixtures/coredumps/values.core").path
        var ids: [Int64] = []
        do {
            let store = try EventStore(directory: data)
            ids.append(try await store.ingest(try ServiceTestSupport.bytes(coredump), idempotencyKey: "a").event)
            ids.append(try await store.ingest(try ServiceTestSupport.bytes(coredump), idempotencyKey: "b").event)
        }
        let reopened = try EventStore(directory: data)
        #expect(try await reopened.eventCount() == 2)
        let event = try #require(try await reopened.event(ids[0]))
        #expect(event.kind == "coredump" && event.frames.map(\.function) == ["<wasm function 0>", "<wasm function 1>", "<wasm function 2>"],
                "\(event)")
        #expect(try await reopened.ingest(try ServiceTestSupport.bytes(coredump), idempotencyKey: "a").duplicate)
        #expect(try await reopened.groups().map(\.count) == [2])
    }
}
