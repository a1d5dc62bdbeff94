// What writing a wasm coredump costs with a 64 MiB memory (issue 28): the
// time to write it, and how much the process's resident memory grows
// while it is written (the memory is streamed from where it is, never
// copied whole).
import Foundation
import WasmCoredumpFormat
import WasmJIT

/// The process's resident set now and its peak since the last reset, in
/// KiB (/proc/self/status: VmRSS, VmHWM).
func residentKiB() -> (now: Int, peak: Int) {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (0, 0) }
    func field(_ name: String) -> Int {
        status.split(separator: "\n").first { $0.hasPrefix(name) }
            .flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") } ?? 0
    }
    return (field("VmRSS:"), field("VmHWM:"))
}

/// Resets VmHWM to the current resident set (Linux: clear_refs 5).
func resetPeakResident() {
    try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
}

func coredumpReport() throws -> [String] {
    let engine = Engine()
    let store = Store(engine: engine)
    store.coredumpOnTrap = true
    // 64 MiB of non-zero bytes (nothing to trim), then a trap.
    let text = """
        (module (memory 1024)
          (func (export "run") (memory.fill (i32.const 0) (i32.const 0xA5) (i32.const 0x4000000)) unreachable))
        """
    let instance = try Instance(store: store, module: Module(engine: engine, text: text))
    var coredump: CapturedCoredump?
    do { _ = try instance.export("run")!.call([]) } catch let trap as Trap { coredump = trap.coredump }
    guard let coredump else { return ["coredump: the workload did not trap"] }
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("wasm-unwind-bench-\(getpid()).core").path
    defer { try? FileManager.default.removeItem(atPath: path) }
    var times: [Double] = []
    var growth: [Int] = []
    for _ in 0..<5 {
        resetPeakResident()
        let before = residentKiB()
        let start = Clock.nanoseconds()
        try coredump.write(to: path)
        times.append(Double(Clock.nanoseconds() - start) / 1e6)
        growth.append(residentKiB().peak - before.now)
    }
    // The measurement's control: the same coredump made in memory (what a
    // writer that copies the memory does) grows the peak by the memory.
    resetPeakResident()
    let beforeCopy = residentKiB()
    let inMemory = CoredumpEncoder.encode(coredump.withMemoryBytes)
    let copyGrowth = residentKiB().peak - beforeCopy.now
    consume(UInt(inMemory.count))
    let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    times.sort()
    growth.sort()
    return [
        "coredump of a trap with a 64 MiB memory (all non-zero): \(size / 1024) KiB written in \(String(format: "%.1f", times[2])) ms "
            + "(median of 5; \(String(format: "%.1f", times[0]))-\(String(format: "%.1f", times[4])) ms); "
            + "peak resident memory +\(growth[2]) KiB while writing (the memory is streamed in 4 KiB segments, never copied; "
            + "the control, the same coredump built in memory: +\(copyGrowth) KiB)",
    ]
}
