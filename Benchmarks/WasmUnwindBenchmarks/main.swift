// wasm-unwind-bench: every benchmark of the project in one process, each
// method side by side with its baselines. `make bench` builds it in release
// mode and runs it; `--json FILE` writes the results as JSON as well, and
// `--only TEXT` measures only the groups whose title contains TEXT.
import Foundation

import CMallocCounter

if let index = CommandLine.arguments.firstIndex(of: "--callgrind") {
    let iterations = Int(CommandLine.arguments.dropFirst(index + 1).first ?? "") ?? 10
    let frames = CommandLine.arguments.firstIndex(of: "--frames")
        .flatMap { Int(CommandLine.arguments.dropFirst($0 + 1).first ?? "") } ?? 1000
    do { try callgrindProbes(iterations: iterations, frames: frames) } catch {
        FileHandle.standardError.write(Data("benchmark failed: \(error)\n".utf8))
        exit(1)
    }
    exit(0)
}

if CommandLine.arguments.contains("--live-target") {
    do { try liveTarget() } catch {
        FileHandle.standardError.write(Data("live target failed: \(error)\n".utf8))
        exit(1)
    }
}

var harness = Harness()
harness.allocationCounter = { malloc_counter_total() }
let arguments = CommandLine.arguments.dropFirst()
harness.groupFilter = arguments.firstIndex(of: "--only").flatMap { arguments.index(after: $0) < arguments.endIndex ? arguments[arguments.index(after: $0)] : nil }
let jsonPath = arguments.firstIndex(of: "--json").flatMap { arguments.index(after: $0) < arguments.endIndex ? arguments[arguments.index(after: $0)] : nil }

let box = HarnessBox(harness)
do {
    try stackBenchmarks(box)
} catch {
    FileHandle.standardError.write(Data("benchmark failed: \(error)\n".utf8))
    exit(1)
}
harness = box.harness
stackMapBenchmarks(&harness)
var codeSizes: [String] = []
do {
    try hostCallBenchmarks(&harness)
    codeSizes = try codeSizeReport()
    try wasmtimeBenchmarks(&harness, notes: &box.notes)
    try toolBenchmarks(&harness)
    try interruptionBenchmarks(&harness, notes: &box.notes)
    if harness.groupFilter == nil || "sampling profiler".contains(harness.groupFilter!) {
        codeSizes += [""] + (try profilerReport())
    }
    if harness.groupFilter == nil || "coredump".contains(harness.groupFilter!) {
        codeSizes += [""] + (try coredumpReport())
    }
    if harness.groupFilter == nil || "backtrace service".contains(harness.groupFilter!) {
        codeSizes += [""] + (try serviceReport())
    }
    if harness.groupFilter == nil || "live processes".contains(harness.groupFilter!) {
        codeSizes += [""] + (try liveProcessReport())
    }
    if harness.groupFilter == nil || "traps on threads".contains(harness.groupFilter!) {
        codeSizes += [""] + (try threadTrapReport())
    }
} catch {
    FileHandle.standardError.write(Data("benchmark failed: \(error)\n".utf8))
    exit(1)
}
var groups: [String] = []
for result in harness.results where !groups.contains(result.group) { groups.append(result.group) }
for group in groups {
    let reference = harness.results.first { $0.group == group }!.name
    print(harness.table(group, reference: reference))
    print()
}
for line in codeSizes { print(line) }
print()
print("What the baselines saw:")
for note in box.notes { print("  " + note) }
if let jsonPath {
    guard FileManager.default.createFile(atPath: jsonPath, contents: Data(harness.json().utf8)) else {
        FileHandle.standardError.write(Data("cannot write \(jsonPath)\n".utf8))
        exit(1)
    }
}
