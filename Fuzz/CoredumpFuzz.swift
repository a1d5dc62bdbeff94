// libFuzzer target for the wasm coredump reader: any bytes, read as a
// coredump and as a module beside one (its code and name sections), must
// give a coredump or an error — never a crash, a hang or unbounded memory
// — and what is read must render as `dump` shows it, as text and JSON.
// Seeded with coredumps `run --coredump-on-trap` wrote. Built and run by
// `make fuzz` (scripts/fuzz.sh).
import UnwindReports
import WasmCoredumpFormat

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCoredump(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let symbols = try? ModuleSymbols(parsing: bytes)
    if let symbols {
        for function in 0..<min(symbols.bodyStarts.count, 64) {
            _ = symbols.moduleOffset(function: UInt32(function), codeOffset: 3)
        }
    }
    guard let coredump = try? WasmCoredump(parsing: bytes) else { return 0 }
    let report = CoredumpReport(file: "fuzz", dump: coredump, symbols: coredump.modules.map { _ in symbols })
    _ = TextFormatter().render(report).utf8.count
    _ = JSONFormatter().json(report).rendered().utf8.count
    return 0
}
