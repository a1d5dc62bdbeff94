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
    /// Only groups whose title contains this are measured (`--only`).
    var groupFilter: String?

    private struct Method {
        var group: String
        var name: String
        var items: Int
        var operation: () -> Void
    }
    /// The methods of the group being declared, run by `run()`.
    private var pending: [Method] = []

    /// Declares a method of `group`: `operation` does one unit of work per
    /// call. Methods of one group run together, round by round (see
    /// `run()`); declaring a method of another group runs the pending ones.
    mutating func measure(_ group: String, _ name: String, items: Int = 1, _ operation: @escaping () -> Void) {
        if let groupFilter, !group.contains(groupFilter) { return }
        if let last = pending.last, last.group != group { run() }
        pending.append(Method(group: group, name: name, items: items, operation: operation))
    }

    /// Measures the pending methods. Each warms up and finds how many calls
    /// fill a round; then the rounds are interleaved — round 1 of every
    /// method, round 2 of every method, ... — so a burst of noise on a
    /// shared machine slows every method of the group alike, and the ratios
    /// between them hold.
    mutating func run() {
        let methods = pending
        pending = []
        var iterations: [Int] = []
        for method in methods {
            var count = 1
            while true {
                let start = Clock.nanoseconds()
                for _ in 0..<count { method.operation() }
                let elapsed = Clock.nanoseconds() - start
                if elapsed >= targetRoundNanoseconds / 4 || count >= 1 << 26 {
                    count = max(1, Int(Double(count) * Double(targetRoundNanoseconds) / Double(max(elapsed, 1))))
                    break
                }
                count *= 4
            }
            iterations.append(count)
        }
        var perOperation = [[Double]](repeating: [], count: methods.count)
        for _ in 0..<rounds {
            for (index, method) in methods.enumerated() {
                let start = Clock.nanoseconds()
                for _ in 0..<iterations[index] { method.operation() }
                perOperation[index].append(Double(Clock.nanoseconds() - start) / Double(iterations[index]))
            }
        }
        for (index, method) in methods.enumerated() {
            var allocations: Double?
            if let counter = allocationCounter {
                let before = counter()
                for _ in 0..<1000 { method.operation() }
                allocations = Double(counter() - before) / 1000
            }
            results.append(Measurement(group: method.group, name: method.name, rounds: perOperation[index],
                                       itemsPerOperation: method.items, allocationsPerOperation: allocations))
        }
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
