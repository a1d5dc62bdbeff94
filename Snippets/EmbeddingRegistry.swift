// Registering a module's code: its functions with their address maps, its
// trampolines, and the stack maps of its call sites.
import WasmUnwind

// snippet.show
// Code at 0x10000: one function `main` (wasm function 1, body at module
// offset 0x20) and an entry trampoline after it.
let main = CodeFunction(
    index: 1, name: "main", codeRange: 0x00..<0x40, bodyOffset: 0x20,
    addressMap: [
        AddressMapEntry(nativeOffset: 0x00, wasmOffset: AddressMapEntry.noWasmOffset),  // the prologue
        AddressMapEntry(nativeOffset: 0x18, wasmOffset: 0x22),  // local.get 0
        AddressMapEntry(nativeOffset: 0x20, wasmOffset: 0x24),  // call 0
    ])
// The call at module offset 0x24 returns to code offset 0x2a with a
// reference in the frame slot at fp - 16.
let stackMaps = try StackMapTable(entries: [(offset: 0x2a, map: StackMap(frameSize: 32, slotOffsets: [-16]))])
var registry = CodeRegistry()
try registry.register(CodeModule(
    name: "demo", codeRange: 0x10000..<0x10080, functions: [main],
    stubs: [CodeStub(kind: .entryTrampoline, codeRange: 0x40..<0x80, name: "entry trampoline () -> ()")],
    stackMaps: stackMaps))

// One answer to "what code is at this address":
print(registry.kind(at: 0x10010)!, registry.kind(at: 0x10050)!)
if let symbol = registry.symbol(for: .returnAddress(0x1002a)) {
    print(symbol.printedName, "0x" + String(symbol.moduleOffset!, radix: 16))
}
print(registry.stackMap(forReturnAddress: 0x1002a)!.slotOffsets)
// snippet.end
