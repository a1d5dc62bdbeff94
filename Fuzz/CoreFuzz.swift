// libFuzzer target for every reader of a crashed process: the first byte of
// the input says which, the rest is the input.
//
//   0  an ELF core file: headers, notes, memory reads
//   1  an ELF executable: its program and section headers, symbol tables,
//      build id (what `dump CORE --exe` reads)
//   2  a recording of the memory a reader read of a real core
//      (`dump CORE --record-reads`): the post-mortem descriptor, its lists,
//      each thread's activation records, the module images, the stack —
//      then each thread walked, symbolicated and rendered
//
// Any bytes must give a reading or an error, without crashing, hanging or
// growing without bound. Built and run by `make fuzz` (scripts/fuzz.sh).
import StackCapture
import UnwindReports
import WasmUnwind

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCore(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    switch data[0] % 3 {
    case 0:
        guard let core = try? CoreFile(bytes: bytes) else { return 0 }
        for thread in core.threads.prefix(16) {
            _ = core.word(at: thread.sp)
            _ = core.stack(from: thread.sp, upTo: thread.sp &+ 4096, maximumBytes: 1 << 16)
        }
        for file in core.mappedFiles.prefix(16) { _ = core.bytes(at: file.range.lowerBound, count: 64) }
        _ = core.signal?.description
    case 1:
        guard let executable = try? ELFExecutable(InputBytes(bytes: bytes, name: "fuzz")) else { return 0 }
        _ = try? executable.symbol("wasm_unwind_debug_descriptor")
    default:
        guard let recording = try? ProcessRecording(parsing: bytes) else { return 0 }
        guard let threads = try? PostMortem.threads(of: recording, descriptorAt: recording.descriptorAddress, program: "fuzz") else {
            return 0
        }
        let limits = WalkLimits(maximumFrames: 100_000, maximumActivations: 10_000)
        for thread in threads {
            guard let stack = try? CapturedStack(thread.capture) else { continue }
            let dump = stack.dump(file: "fuzz", backtrace: stack.backtrace(limits: limits), roots: true)
            _ = TextFormatter().render(DumpReport(entries: [.dump(dump)]))
            _ = JSONFormatter().render(DumpReport(entries: [.dump(dump)]))
        }
        // What was read must write back to the same recording.
        guard (try? ProcessRecording(parsing: recording.serialized())) == recording else {
            fatalError("a recording did not round-trip")
        }
    }
    return 0
}
