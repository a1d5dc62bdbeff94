// libFuzzer target for the capture reader and the walker: any bytes must
// give a capture or a format error, and a capture must walk, symbolicate,
// enumerate roots and render without crashing, hanging or growing without
// bound. Built and run by `make fuzz` (scripts/fuzz.sh).
import StackCapture
import WasmUnwind

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCapture(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let file = try? CaptureFile(parsing: bytes), let stack = try? CapturedStack(file) else { return 0 }
    // Bounded: a corrupt chain must end in an error, not run for ever.
    let backtrace = stack.backtrace(limits: WalkLimits(maximumFrames: 100_000, maximumActivations: 10_000))
    let roots = try? stack.roots(of: backtrace)
    _ = stack.text(roots: roots)
    _ = stack.json(file: "fuzz", roots: roots).rendered()
    // What was read must write back to the same capture.
    guard (try? CaptureFile(parsing: file.serialized())) == file else { fatalError("a capture did not round-trip") }
    return 0
}
