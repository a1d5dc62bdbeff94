// Registering a module's code: its functions with their address maps, its
// trampolines, and the stack maps of its call sites. Each table has its own
// offset base: the module's range is absolute; function and stub ranges are
// offsets from the module's base; address-map native offsets are offsets
// from the function's start; stack maps are keyed by return-address offsets
// from the module's base.
import WasmUnwind

// snippet.show
// Code at 0x10000: an entry trampoline first (offsets 0x00-0x40), then one
// function `main` (wasm function 1) at 0x40-0x80, whose body starts at
// module offset 0x20 of the wasm binary.
let main = CodeFunction(
    index: 1, name: "main", codeRange: 0x40..<0x80, bodyOffset: 0x20,
    addressMap: [  // native offsets from main's first byte (0x10040)
        AddressMapEntry(nativeOffset: 0x00, wasmOffset: AddressMapEntry.noWasmOffset),  // the prologue
        AddressMapEntry(nativeOffset: 0x18, wasmOffset: 0x22),  // local.get 0
        AddressMapEntry(nativeOffset: 0x20, wasmOffset: 0x24),  // call 0
    ])
// The call at wasm offset 0x24 returns to native offset 0x2a of main, which
// is module offset 0x6a; a reference lives in the frame slot at fp - 16.
let stackMaps = try StackMapTable(entries: [(offset: 0x6a, map: StackMap(frameSize: 32, slotOffsets: [-16]))])
var registry = CodeRegistry()
try registry.register(CodeModule(
    name: "demo", codeRange: 0x10000..<0x10080, functions: [main],
    stubs: [CodeStub(kind: .entryTrampoline, codeRange: 0x00..<0x40, name: "entry trampoline () -> ()")],
    stackMaps: stackMaps))

// One answer to "what code is at this address":
print(registry.kind(at: 0x10050)!, registry.kind(at: 0x10010)!)
if let symbol = registry.symbol(for: .returnAddress(0x1006a)) {
    print(symbol.printedName, "0x" + String(symbol.moduleOffset!, radix: 16))
}
print(registry.stackMap(forReturnAddress: 0x1006a)!.slotOffsets)
// snippet.end
