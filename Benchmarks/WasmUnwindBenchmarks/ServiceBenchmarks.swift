// What the backtrace service's store takes per upload (issue 30): unique
// captures (a committed fixture with a counter appended, so every blob is
// new) read, grouped, symbolicated and stored durably by `EventStore`, one
// client and four at once; events per second, p50/p99 latency, and the
// resident memory before and after.
import BacktraceService
import Foundation

func serviceReport() throws -> [String] {
    let root = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let capture = [UInt8](try Data(contentsOf: root.appendingPathComponent("fixtures/captures/trap.capture")))
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wasm-unwind-bench-service-\(getpid())")
    defer { try? FileManager.default.removeItem(at: directory) }
    let store = try EventStore(directory: directory)
    var counter: UInt64 = 0
    func upload() -> [UInt8] {
        counter += 1
        return capture + withUnsafeBytes(of: counter.littleEndian) { Array($0) }
    }
    func percentile(_ sorted: [UInt64], _ p: Double) -> Double { Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1e6 }
    var lines = ["backtrace service store (SQLite WAL, synchronous=FULL; a blob fsync and a commit per upload), unique \(capture.count)-byte captures:"]
    let before = residentKiB().now
    for clients in [1, 4] {
        let count = 2000
        let uploads = (0..<count).map { _ in upload() }
        final class Latencies: @unchecked Sendable {
            let lock = NSLock()
            var values: [UInt64] = []
        }
        let latencies = Latencies()
        let start = Clock.nanoseconds()
        DispatchQueue.concurrentPerform(iterations: clients) { client in
            var mine: [UInt64] = []
            for index in stride(from: client, to: count, by: clients) {
                let began = Clock.nanoseconds()
                _ = try? store.ingest(uploads[index], metadata: EventStore.Metadata(host: "bench"))
                mine.append(Clock.nanoseconds() - began)
            }
            latencies.lock.lock()
            latencies.values += mine
            latencies.lock.unlock()
        }
        let seconds = Double(Clock.nanoseconds() - start) / 1e9
        let sorted = latencies.values.sorted()
        lines.append(String(format: "  %d client%@: %d uploads in %.2f s, %.0f events/s; latency p50 %.2f ms, p99 %.2f ms",
                            clients, clients == 1 ? "" : "s", count, seconds, Double(count) / seconds, percentile(sorted, 0.5),
                            percentile(sorted, 0.99)))
    }
    lines.append("  resident memory: \(before) KiB before, \(residentKiB().now) KiB after \(try store.eventCount()) events")
    return lines
}
