// Walking wasm frames, printing them and reading their fields. The same walker reads live memory
// (`Backtrace.capture`), memory checked against the thread's stack, or bytes
// copied from a stack; here, two frames copied from a stack at 0x7000.
import WasmUnwind

var registry = CodeRegistry()
try registry.register(CodeModule(name: "demo", codeRange: 0x10000..<0x10100, functions: [
    CodeFunction(index: 1, name: "inner", codeRange: 0x00..<0x40, bodyOffset: 0x20,
                 addressMap: [AddressMapEntry(nativeOffset: 0x10, wasmOffset: 0x23)]),
    CodeFunction(index: 2, name: "outer", codeRange: 0x40..<0x80, bodyOffset: 0x30,
                 addressMap: [AddressMapEntry(nativeOffset: 0x10, wasmOffset: 0x35)]),
]))
// Frame records: [fp] = caller's fp, [fp + 8] = return address.
func word(_ value: UInt) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
let stack = word(0x7020) + word(0x10055) + [UInt8](repeating: 0, count: 16) + word(0x7040) + word(0x12345)

// snippet.show
// Where the walk starts and stops: the exit record (pc, fp) and the entry
// trampoline's fp, one `ActivationBounds` per activation, newest first.
let activations = [ActivationBounds.exit(pc: 0x10015, fp: 0x7000, entryFP: 0x7040)]
let walker = FramePointerWalker(architecture: X86_64.self,
                                reader: CapturedMemoryReader(baseAddress: 0x7000, bytes: stack),
                                activations: activations.makeIterator())
let backtrace = registry.symbolicate(Backtrace(walking: walker))
print(backtrace)  // Wasmtime's layout
for frame in backtrace.frames {
    let symbol = frame.symbol
    print(symbol?.functionName ?? "?", symbol?.functionIndex ?? 0, symbol?.moduleOffset ?? 0,
          frame.frame.address.rawValue)
}
// From a host function called by wasm, on live memory:
//   let trace = registry.symbolicate(Backtrace.capture(limits))
// snippet.end
