// libFuzzer target for what the backtrace service reads of an upload
// (`CrashEvent`): a capture, a wasm coredump or the JSON of a trap report,
// recognised by their first bytes. Any bytes must give an event or an
// error — never a crash, a hang or unbounded memory — and an event must
// group (signature, title) and encode its frames as the store does.
// Seeded with captures, coredumps and `run --format json` reports. Built
// and run by `make fuzz` (scripts/fuzz.sh), compiled together with
// Sources/BacktraceService/CrashEvent.swift and Grouping.swift (the
// service's readers, without its storage).
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzService(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let event = try? CrashEvent(reading: bytes) else { return 0 }
    let grouping = Grouping()
    _ = grouping.signature(of: event).utf8.count
    _ = grouping.title(of: event).utf8.count
    _ = try? JSONEncoder().encode(event.frames)
    return 0
}
