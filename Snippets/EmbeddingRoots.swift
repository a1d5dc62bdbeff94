// Finding GC roots: each frame suspended at a call is looked up by its exact
// return address in its module's stack maps, and the slots the map names are
// read through the same kind of reader the walk used. Here, two frames in
// stack bytes copied from 0x7000.
import WasmUnwind

// snippet.show
// `caller` calls `callee` (return address 0x10034, with a reference live at
// fp - 8 of the caller's frame); `callee` called the host (return address
// 0x10010, no reference live).
var registry = CodeRegistry()
try registry.register(CodeModule(
    name: "gc", codeRange: 0x10000..<0x10080,
    functions: [
        CodeFunction(index: 1, name: "callee", codeRange: 0x00..<0x20, bodyOffset: 0x10, addressMap: []),
        CodeFunction(index: 2, name: "caller", codeRange: 0x20..<0x40, bodyOffset: 0x18, addressMap: []),
    ],
    stackMaps: StackMapTable(entries: [
        (offset: 0x10, map: StackMap(frameSize: 16, slotOffsets: [])),
        (offset: 0x34, map: StackMap(frameSize: 16, slotOffsets: [-8])),
    ])))
// The stack: callee's frame record at 0x7010 ([fp] = caller's fp 0x7030,
// [fp + 8] = 0x10034); caller's slot fp - 8 (0x7028) holds the reference
// 0xABCD; caller's record at 0x7030 links to the entry (0x7040).
func word(_ value: UInt) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
let stack = [UInt8](repeating: 0, count: 16) + word(0x7030) + word(0x10034) + [UInt8](repeating: 0, count: 8)
    + word(0xABCD) + word(0x7040) + word(0x12345)
let reader = CapturedMemoryReader(baseAddress: 0x7000, bytes: stack)
let walk = Backtrace(walking: FramePointerWalker(
    architecture: X86_64.self, reader: reader,
    activations: [ActivationBounds.exit(pc: 0x10010, fp: 0x7010, entryFP: 0x7040)].makeIterator()))
for root in try registry.roots(of: walk.frames, reader: reader) {
    print("frame \(root.frameIndex): slot 0x\(String(root.slotAddress, radix: 16)) holds 0x\(String(root.value, radix: 16))")
}
// At a live host call: `registry.roots(of: limits)` walks and reads the
// calling thread's own stack.
// snippet.end
