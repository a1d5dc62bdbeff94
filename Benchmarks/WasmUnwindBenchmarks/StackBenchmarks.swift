import CBenchmarkSupport
import JITCapture
import Runtime
import StackCapture
import Verification
import WasmJIT
import WasmUnwind
import UnwindReports

/// The benchmark module: `down(n, split, object)` recurses n more times,
/// re-entering through the host every `split` frames (a new activation),
/// and calls `host.measure` at the bottom. Every frame holds `object` (a GC
/// root per frame).
let benchmarkModule = """
    (module $bench
      (import "host" "measure" (func $measure))
      (import "host" "reenter" (func $reenter (param i32 i32 externref)))
      (func $down (export "down") (param $n i32) (param $split i32) (param $object externref)
        local.get $n
        i32.eqz
        if
          call $measure
          return
        end
        local.get $n
        local.get $split
        i32.rem_u
        i32.eqz
        if
          local.get $n
          i32.const 1
          i32.sub
          local.get $split
          local.get $object
          call $reenter
        else
          local.get $n
          i32.const 1
          i32.sub
          local.get $split
          local.get $object
          call $down
        end))
    """

final class HarnessBox {
    var harness: Harness
    var notes: [String] = []
    init(_ harness: Harness) { self.harness = harness }
}

final class Sample: @unchecked Sendable {}

/// Real JIT stacks of 10, 100 and 1,000 wasm frames in 1 and 4
/// activations; at the innermost host call, every way of getting the
/// backtrace, side by side.
func stackBenchmarks(_ box: HarnessBox) throws {
    let engine = OracleSession(observeTraps: false).engine  // JIT CFI registered with libunwind
    let images = ImageMap.capture()
    for activations in [1, 4] {
        for frames in [10, 100, 1000] {
            let store = Store(engine: engine)
            let split = activations == 1 ? frames + 1 : (frames + 3) / 4
            var imports = Imports()
            imports.define(module: "host", name: "measure", .host(HostFunction(signature: Signature(parameters: [], results: [])) { caller, _ in
                try measureAtHostCall(caller, frames: frames, activations: activations, images: images, box: box)
                return []
            }))
            imports.define(module: "host", name: "reenter", .host(HostFunction(
                signature: Signature(parameters: [.i32, .i32, .externref], results: [])) { caller, arguments in
                try caller.export("down")!.call(arguments)
            }))
            let instance = try Instance(store: store, module: Module(engine: engine, text: benchmarkModule), imports: imports)
            let object = store.externref(for: Sample())
            _ = try instance.export("down")!.call([.i32(Int32(frames - 1)), .i32(Int32(split)), .externref(object)])
        }
    }
    // The stacks above are one recursive function: every frame returns to
    // the same call site, which per-pc caches (libunwind's unw_backtrace
    // keeps one) turn into a single lookup. A chain of 1,000 distinct
    // functions has 1,000 distinct return addresses.
    let store = Store(engine: engine)
    var imports = Imports()
    imports.define(module: "host", name: "measure", .host(HostFunction(signature: Signature(parameters: [], results: [])) { caller, _ in
        try measureAtHostCall(caller, frames: 1000, activations: 1, shape: "distinct ", images: images, box: box)
        return []
    }))
    let instance = try Instance(store: store, module: Module(engine: engine, text: chainModule(functions: 1000)), imports: imports)
    _ = try instance.export("f0")!.call([.externref(store.externref(for: Sample()))])
}

/// `f0` calls `f1` ... calls `f(n-1)`, which calls the host; each keeps its
/// externref parameter, so every frame holds one root.
func chainModule(functions: Int) -> String {
    var text = "(module $chain\n  (import \"host\" \"measure\" (func $measure))\n"
    for index in 0..<functions {
        let call = index == functions - 1 ? "call $measure" : "local.get 0 call $f\(index + 1)"
        text += "  (func $f\(index) (export \"f\(index)\") (param externref) \(call))\n"
    }
    return text + ")"
}

func measureAtHostCall(_ caller: Caller, frames: Int, activations: Int, shape: String = "", images: ImageMap,
                       box: HarnessBox) throws {
    let store = caller.store
    let registry = store.registry
    let limits = store.limits.address
    let stack = "\(frames) \(shape)wasm frames, \(activations) activation\(activations == 1 ? "" : "s")"
    let group = "capture at a host call: \(stack)"
    let buffer = UnsafeMutableBufferPointer<Frame>.allocate(capacity: 1 << 16)
    let pcs = UnsafeMutablePointer<UInt64>.allocate(capacity: 1 << 16)
    let raw = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: 1 << 16)
    defer {
        buffer.deallocate()
        pcs.deallocate()
        raw.deallocate()
    }
    // The stack is what it claims to be.
    let walked = Backtrace.walk(limitsAddress: limits, into: buffer)
    precondition(walked.count == frames && walked.isComplete, "the benchmark stack has \(walked.count) frames")
    precondition(Set(buffer.prefix(frames).map(\.activation)).count == activations)
    let triples: [UInt64] = LiveActivations(limitsAddress: limits).flatMap {
        [UInt64($0.start.rawValue), UInt64($0.startFramePointer), UInt64($0.entryFramePointer)]
    }
    precondition(wu_floor_walk(triples, activations, pcs, 1 << 16) == frames)
    let stackBounds = ThreadStack.current()

    box.harness.measure(group, "ours: live walk into a buffer (unchecked reader)", items: frames) {
        consume(UInt(Backtrace.walk(limitsAddress: limits, into: buffer).count))
    }
    box.harness.measure(group, "ours: checked reader (thread stack bounds)", items: frames) {
        var walker = FramePointerWalker(architecture: X86_64.self, reader: CheckedMemoryReader(bounds: stackBounds),
                                        activations: LiveActivations(limitsAddress: limits))
        consume(UInt(walker.walk(into: buffer).count))
    }
    box.harness.measure(group, "ours: walk + symbolicate each frame", items: frames) {
        let count = Backtrace.walk(limitsAddress: limits, into: buffer).count
        consume(UInt(registry.symbolicate(UnsafeBufferPointer(rebasing: buffer.prefix(count))).frames.count))
    }
    box.harness.measure(group, "C floor: frame-pointer loop (-O2, no checks)", items: frames) {
        consume(UInt(wu_floor_walk(triples, activations, pcs, 1 << 16)))
    }
    box.harness.measure(group, "libunwind unw_backtrace (JIT CFI registered)", items: frames) {
        consume(UInt(wu_libunwind_backtrace(raw, 1 << 16)))
    }
    box.harness.measure(group, "libunwind unw_init_local + unw_step loop", items: frames) {
        consume(UInt(wu_libunwind_step_ips(pcs, 1 << 16)))
    }
    box.harness.measure(group, "Swift Runtime.Backtrace.capture(.fast, images:)", items: frames) {
        let backtrace = try! Runtime.Backtrace.capture(algorithm: .fast, limit: nil, images: images)
        consume(UInt(backtrace.frames.reduce(0) { count, _ in count + 1 }))
    }

    // What the baselines saw, for the notes.
    let jit = store.modules.map(\.code.range)
    func inJIT(_ address: UInt) -> Bool { jit.contains { $0.contains(address &- 1) || $0.contains(address) } }
    let swiftFrames = try Runtime.Backtrace.capture(algorithm: .fast, limit: nil, images: images).frames.map { frame -> UInt in
        switch frame {
        case .programCounter(let address), .returnAddress(let address), .asyncResumePoint(let address):
            return UInt(address) ?? 0
        default:
            return 0
        }
    }
    let unwound = Int(wu_libunwind_step_ips(pcs, 1 << 16))
    let libunwindJIT = (0..<unwound).filter { inJIT(UInt(pcs[$0])) }.count
    box.notes.append("\(group): libunwind unw_step saw \(unwound) frames, \(libunwindJIT) in JIT code; "
                     + "Swift's Runtime.Backtrace (.fast) returned \(swiftFrames.count) frames, \(swiftFrames.filter(inJIT).count) in JIT code")

    // GC roots: one per frame here.
    let frameList = Array(buffer.prefix(frames))
    let roots = try registry.roots(of: frameList, reader: UncheckedMemoryReader())
    precondition(roots.count == frames)
    box.harness.measure("gc roots: \(stack), a root per frame",
                        "ours: stack-map lookup + slot reads per frame", items: frames) {
        consume(UInt((try? registry.roots(of: frameList, reader: UncheckedMemoryReader()).count) ?? 0))
    }

    // Symbolication into a backtrace value (what a trap builds) and the
    // printed text, every frame on its own line (folding off: this stack
    // repeats one function).
    let symbolicated = registry.symbolicate(Backtrace(frames: frameList))
    let unfolded = TextFormatter(foldingThreshold: .max)
    let textGroup = "symbolicated backtrace and its text: \(stack), one line per frame"
    box.harness.measure(textGroup, "ours: symbolicate into a SymbolicatedBacktrace", items: frames) {
        frameList.withUnsafeBufferPointer { consume(UInt(registry.symbolicate($0).frames.count)) }
    }
    box.harness.measure(textGroup, "ours: render Wasmtime's text (TextFormatter)", items: frames) {
        consume(UInt(unfolded.render(symbolicated).utf8.count))
    }

    // Captures: write (capture + serialise) and dump (parse + walk).
    let bytes = LiveCapture.atHostCall(caller).serialized()
    let captureGroup = "capture file: \(stack) (\(bytes.count) bytes)"
    box.harness.measure(captureGroup, "write: capture at the host call + serialise", items: frames) {
        consume(UInt(LiveCapture.atHostCall(caller).serialized().count))
    }
    box.harness.measure(captureGroup, "dump: parse + walk", items: frames) {
        let stack = try! CapturedStack(CaptureFile(parsing: bytes))
        consume(UInt(stack.backtrace().frames.count))
    }
    // Now, while this stack (and the buffers above) still exist.
    box.harness.run()
}
