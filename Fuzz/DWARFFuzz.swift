// libFuzzer target for the DWARF reader: any bytes, read as a wasm module
// with debug sections, must give source lines or an error — never a crash,
// a hang or unbounded memory — for lookups of lines and of variables'
// locations (location lists too) across the whole code section.
// Seeded with the -g C fixtures (DWARF 4 and 5). Built and run by
// `make fuzz` (scripts/fuzz.sh).
import WasmDWARF

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDWARF(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let info = try? ModuleDebugInfo(module: bytes), let codeStart = info.codeStart else { return 0 }
    // Lookups spread over the code, the first one parsing the units.
    var offset = codeStart
    var lookups = 0
    while offset < bytes.count, lookups < 512 {
        for symbol in info.symbols(atModuleOffset: UInt32(clamping: offset)) {
            _ = symbol.name?.utf8.count
            _ = symbol.file?.utf8.count
        }
        if lookups % 4 == 0 {
            for (_, names) in info.variables(atModuleOffset: UInt32(clamping: offset)) { _ = names.count }
        }
        offset += 1 + offset % 7
        lookups += 1
    }
    _ = info.diagnostic?.description
    return 0
}
