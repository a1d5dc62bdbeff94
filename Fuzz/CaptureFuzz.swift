// libFuzzer target for every reader of a capture: any bytes must give a
// capture or a format error, and a capture must be dumped the way
// `wasm-unwind dump` dumps it — plain, with --roots, --hybrid and --verify
// (libunwind's offline unwind over the captured bytes and CFI), in text and
// as JSON, with the source lines of the DWARF it carries — without crashing, hanging or growing without bound. Built and
// run by `make fuzz` (scripts/fuzz.sh).
import StackCapture
import UnwindOracle
import UnwindReports
import WasmUnwind

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCapture(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var warnings: [String] = []
    guard let file = try? CaptureFile(parsing: bytes, warnings: &warnings), let stack = try? CapturedStack(file) else {
        return 0
    }
    // Bounded: a corrupt chain must end in an error, not run for ever.
    let limits = WalkLimits(maximumFrames: 100_000, maximumActivations: 10_000)
    for everything in [false, true] {
        let (dump, _) = stack.dump(file: "fuzz", roots: everything, hybrid: everything, verify: everything,
                                   warnings: warnings, limits: limits)
        var withLines = dump
        // Source lines from the DWARF the capture may carry (MODULE_DEBUG).
        if everything, let search = try? DebugFileSearch(files: [], directories: []) {
            withLines.sourceSymbols = stack.sourceSymbols(of: dump.backtrace, search: search, captureDirectory: nil).symbols
        }
        let report = DumpReport(entries: [.dump(withLines)])
        _ = TextFormatter().render(report)
        _ = JSONFormatter().render(report)
    }
    // What was read must write back to the same capture.
    guard (try? CaptureFile(parsing: file.serialized())) == file else { fatalError("a capture did not round-trip") }
    return 0
}
