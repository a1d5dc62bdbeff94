#if canImport(Glibc)
import Glibc
#endif

/// A small side-by-side benchmark harness: every measurement runs in the
/// same process, warms up, repeats, and reports the median with the spread,
/// so ratios between methods compare like with like.
struct Measurement {
    var group: String
    var name: String
    /// Nanoseconds per operation, one value per round.
    var rounds: [Double]
    /// Work items per operation (frames per capture), for per-item figures.
    var itemsPerOperation: Int
    /// Heap allocations per operation, when counted.
    var allocationsPerOperation: Double?

    var median: Double { rounds.sorted()[rounds.count / 2] }
    var low: Double { rounds.min() ?? 0 }
    var high: Double { rounds.max() ?? 0 }
    var perItem: Double { median / Double(max(1, itemsPerOperation)) }
}

enum Clock {
    static func nanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC_RAW, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}

/// Keeps results alive so the optimiser cannot delete the work.
nonisolated(unsafe) var benchmarkSink: UInt = 0

@inline(never)
func consume(_ value: UInt) { benchmarkSink &+= value }

struct Harness {
    var rounds = 15
    var targetRoundNanoseconds: UInt64 = 20_000_000
    var results: [Measurement] = []
    var allocationCounter: (() -> UInt64)?

    /// Measures `operation` (which does one unit of work per call).
    mutating func measure(_ group: String, _ name: String, items: Int = 1, _ operation: () -> Void) {
        // Warm up, and find how many calls fill a round.
        var iterations = 1
        while true {
            let start = Clock.nanoseconds()
            for _ in 0..<iterations { operation() }
            let elapsed = Clock.nanoseconds() - start
            if elapsed >= targetRoundNanoseconds / 4 || iterations >= 1 << 26 {
                iterations = max(1, Int(Double(iterations) * Double(targetRoundNanoseconds) / Double(max(elapsed, 1))))
                break
            }
            iterations *= 4
        }
        var perOperation: [Double] = []
        for _ in 0..<rounds {
            let start = Clock.nanoseconds()
            for _ in 0..<iterations { operation() }
            perOperation.append(Double(Clock.nanoseconds() - start) / Double(iterations))
        }
        var allocations: Double?
        if let counter = allocationCounter {
            let before = counter()
            for _ in 0..<1000 { operation() }
            allocations = Double(counter() - before) / 1000
        }
        results.append(Measurement(group: group, name: name, rounds: perOperation, itemsPerOperation: items,
                                   allocationsPerOperation: allocations))
    }

    /// The results of one group as a table, with each method's ratio to
    /// `reference` (ratio = method's time / reference's time).
    func table(_ group: String, reference: String) -> String {
        let rows = results.filter { $0.group == group }
        guard let base = rows.first(where: { $0.name == reference }) else { return "" }
        let width = max(46, (rows.map(\.name.count).max() ?? 0) + 4)
        var lines = ["\(group)",
                     pad("  method", width) + pad("ns/op", 12, right: true) + pad("ns/item", 10, right: true)
                     + pad("spread (ns/op)", 24, right: true) + pad("x ours", 9, right: true) + pad("allocs/op", 11, right: true)]
        for row in rows {
            let ratio = row.median / base.median
            lines.append(pad("  " + row.name, width) + pad(format(row.median), 12, right: true)
                         + pad(format(row.perItem), 10, right: true)
                         + pad("\(format(row.low))-\(format(row.high))", 24, right: true)
                         + pad(String(format: "%.2f", ratio), 9, right: true)
                         + pad(row.allocationsPerOperation.map { String(format: "%.1f", $0) } ?? "-", 11, right: true))
        }
        return lines.joined(separator: "\n")
    }

    func json() -> String {
        let entries = results.map { row in
            "    {\"group\": \"\(row.group)\", \"name\": \"\(row.name)\", \"median_ns\": \(format(row.median)), "
                + "\"min_ns\": \(format(row.low)), \"max_ns\": \(format(row.high)), \"items\": \(row.itemsPerOperation), "
                + "\"ns_per_item\": \(format(row.perItem)), \"allocations\": \(row.allocationsPerOperation.map { format($0) } ?? "null")}"
        }
        return "{\n  \"schema\": \"wasm-unwind.benchmarks\",\n  \"version\": 1,\n  \"results\": [\n"
            + entries.joined(separator: ",\n") + "\n  ]\n}"
    }
}

func format(_ value: Double) -> String {
    value >= 100 ? String(format: "%.0f", value) : value >= 10 ? String(format: "%.1f", value) : String(format: "%.2f", value)
}

func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
    guard text.count < width else { return text }
    let padding = String(repeating: " ", count: width - text.count)
    return right ? padding + text : text + padding
}

import Foundation
