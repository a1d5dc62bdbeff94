// What reading a process from outside costs the process (issue 29): the
// 3:1 workload (fixtures/programs/ratio.wat) runs in a child process —
// this benchmark re-executed with --live-target — alone, and while this
// process samples it with `LiveProfile` (what `profile --pid` runs) at
// 100 Hz and 1 kHz; the child times its own rounds. Alternated rounds,
// medians.
import Foundation
import StackCapture
import Synchronization
import WasmJIT
import WasmJITTools

/// The child: the workload, listed in the post-mortem descriptor; each
/// line `N` on standard input runs N rounds and prints their nanoseconds.
func liveTarget() throws -> Never {
    let engine = Engine(publishing: ToolPublishing(debugInfo: false, postMortem: true))
    let store = Store(engine: engine)
    let module = try Module(engine: engine, text: """
        (module $ratio
          (func $spin (param $n i32) (result i32) (local $i i32) (local $acc i32)
            (loop $next
              (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const 31)) (local.get $i)))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br_if $next (i32.lt_u (local.get $i) (local.get $n))))
            (local.get $acc))
          (func $three_parts (param $n i32) (result i32) (call $spin (i32.mul (local.get $n) (i32.const 3))))
          (func $one_part (param $n i32) (result i32) (call $spin (local.get $n)))
          (func $main (export "main") (param $rounds i32) (result i32) (local $acc i32)
            (loop $next
              (local.set $acc (i32.add (local.get $acc) (call $three_parts (i32.const 100000))))
              (local.set $acc (i32.add (local.get $acc) (call $one_part (i32.const 100000))))
              (local.set $rounds (i32.sub (local.get $rounds) (i32.const 1)))
              (br_if $next (local.get $rounds)))
            (local.get $acc)))
        """)
    let main = try Instance(store: store, module: module, imports: Imports()).export("main")!
    FileHandle.standardOutput.write(Data("ready\n".utf8))
    while let line = readLine(), let rounds = Int32(line) {
        let start = Clock.nanoseconds()
        _ = try main.call([.i32(rounds)])
        FileHandle.standardOutput.write(Data("\(Clock.nanoseconds() - start)\n".utf8))
    }
    exit(0)
}

func liveProcessReport() throws -> [String] {
    let child = Process()
    child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
    child.arguments = ["--live-target"]
    let input = Pipe(), output = Pipe()
    child.standardInput = input
    child.standardOutput = output
    try child.run()
    defer { child.terminate() }
    var buffered = ""
    func line() -> String? {
        while !buffered.contains("\n") {
            let data = output.fileHandleForReading.availableData
            if data.isEmpty { return nil }
            buffered += String(decoding: data, as: UTF8.self)
        }
        let end = buffered.firstIndex(of: "\n")!
        defer { buffered = String(buffered[buffered.index(after: end)...]) }
        return String(buffered[..<end])
    }
    guard line() == "ready" else { return ["live processes: the target did not start"] }
    let process = try LiveProcess(pid: child.processIdentifier)
    /// The sampler thread's state: the process is read by that thread
    /// only, while this one waits for the target's answer.
    final class Sampler: @unchecked Sendable {
        let process: LiveProcess
        let stop = Atomic<Bool>(false)
        var profile: LiveProfile?
        init(_ process: LiveProcess) { self.process = process }
    }
    /// One timed run of `rounds` rounds while sampling at `hz` (0: not sampled).
    func timed(_ rounds: Int, hz: Int) -> (nanoseconds: UInt64, profile: LiveProfile?) {
        let sampler = Sampler(process)
        let done = DispatchSemaphore(value: 0)
        if hz > 0 {
            Thread {
                sampler.profile = try? LiveProfile.sample(sampler.process, LiveProfile.Options(hz: hz, durationNanoseconds: 600_000_000_000)) {
                    sampler.stop.load(ordering: .relaxed)
                }
                done.signal()
            }.start()
        }
        input.fileHandleForWriting.write(Data("\(rounds)\n".utf8))
        let nanoseconds = UInt64(line() ?? "") ?? 0
        sampler.stop.store(true, ordering: .relaxed)
        if hz > 0 { done.wait() }
        return (nanoseconds, sampler.profile)
    }
    _ = timed(20, hz: 0)  // warm up
    let rates = [0, 100, 1000]
    var times: [Int: [UInt64]] = [:]
    var profiles: [Int: LiveProfile] = [:]
    for _ in 0..<5 {
        for hz in rates {
            let (nanoseconds, profile) = timed(1000, hz: hz)
            times[hz, default: []].append(nanoseconds)
            if let profile { profiles[hz] = profile }
        }
    }
    func median(_ values: [UInt64]) -> UInt64 { values.sorted()[values.count / 2] }
    let alone = median(times[0]!)
    var lines = ["live processes (profile --pid of the 3:1 workload in another process; the target times itself): alone "
                 + String(format: "%.0f ms", Double(alone) / 1e6) + " (median of 5, alternated)"]
    for hz in rates.dropFirst() {
        let sampled = median(times[hz]!)
        let profile = profiles[hz]
        let stops = (profile?.stops ?? []).sorted()
        let three = profile?.profile.share(of: "ratio!three_parts") ?? 0, one = profile?.profile.share(of: "ratio!one_part") ?? 0
        lines.append("  sampled at \(hz) Hz: " + String(format: "%.0f ms, x%.3f (%+.1f%%)", Double(sampled) / 1e6,
                                                           Double(sampled) / Double(alone), (Double(sampled) / Double(alone) - 1) * 100)
                     + "; \(profile?.reads ?? 0) reads"
                     + (stops.isEmpty ? "" : ", each stop median \(stops[stops.count / 2] / 1000) µs, longest \(stops.last! / 1000) µs")
                     + String(format: "; three_parts' share %.3f (truth 0.75)", three + one > 0 ? three / (three + one) : 0))
    }
    return lines
}
