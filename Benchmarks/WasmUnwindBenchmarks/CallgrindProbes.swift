import CBenchmarkSupport
import JITCapture
import StackCapture
import WasmJIT
import WasmUnwind

/// `--callgrind N`: each method N times from its own never-inlined
/// function, so `callgrind_annotate --inclusive=yes` attributes exact
/// instruction counts to each (scripts/callgrind.sh divides by N). Runs at
/// the innermost host call of a `frames`-deep stack in one activation; the
/// host-call probes make 1,000 calls.
func callgrindProbes(iterations: Int, frames: Int) throws {
    let engine = Engine()
    let store = Store(engine: engine)
    var imports = Imports()
    imports.define(module: "host", name: "measure", .host(HostFunction(signature: Signature(parameters: [], results: [])) { caller, _ in
        let limits = caller.store.limits.address
        let registry = caller.store.registry
        let buffer = UnsafeMutableBufferPointer<Frame>.allocate(capacity: 4096)
        let pcs = UnsafeMutablePointer<UInt64>.allocate(capacity: 4096)
        let raw = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: 4096)
        let triples: [UInt64] = LiveActivations(limitsAddress: limits).flatMap {
            [UInt64($0.start.rawValue), UInt64($0.startFramePointer), UInt64($0.entryFramePointer)]
        }
        let frames = Array(buffer.prefix(Backtrace.walk(limitsAddress: limits, into: buffer).count))
        let capture = LiveCapture.atHostCall(caller).serialized()
        for _ in 0..<iterations {
            probeOursWalk(limits, buffer)
            probeFloor(triples, pcs)
            probeUnwBacktrace(raw)
            probeUnwStep(pcs)
            probeSymbolicate(limits, buffer, registry)
            probeRoots(frames, registry)
            probeCaptureWrite(caller)
            probeDump(capture)
        }
        return []
    }))
    imports.define(module: "host", name: "reenter", .host(HostFunction(
        signature: Signature(parameters: [.i32, .i32, .externref], results: [])) { caller, arguments in
        try caller.export("down")!.call(arguments)
    }))
    let instance = try Instance(store: store, module: Module(engine: engine, text: benchmarkModule), imports: imports)
    _ = try instance.export("down")!.call([.i32(Int32(frames - 1)), .i32(Int32(frames + 1)),
                                           .externref(store.externref(for: Sample()))])

    // 1,000 host calls to a no-op host function on slots, in each mode.
    var hostLoops: [ExitRecording: Func] = [:]
    var instances: [Instance] = []
    for mode in [ExitRecording.trampoline, .inline] {
        let engine = Engine(configuration: Engine.Configuration(exitRecording: mode))
        var imports = Imports()
        imports.define(module: "host", name: "noop", .host(HostFunction.slots(
            signature: Signature(parameters: [.i32, .i32], results: [.i32])) { _, slots in slots[0] = slots[0] }))
        let instance = try Instance(store: Store(engine: engine), module: Module(engine: engine, text: hostCallModule),
                                    imports: imports)
        instances.append(instance)
        hostLoops[mode] = instance.export("host_calls")!
    }
    for _ in 0..<iterations {
        try probeHostCallsTrampoline(hostLoops[.trampoline]!)
        try probeHostCallsInline(hostLoops[.inline]!)
    }

    // A trap `frames` deep: raised, walked, symbolicated (and each frame
    // read, and the message rendered).
    var trapImports = Imports()
    let binary = Signature(parameters: [.i32, .i32], results: [.i32])
    trapImports.define(module: "host", name: "noop", .host(HostFunction.slots(signature: binary) { _, _ in }))
    trapImports.define(module: "host", name: "noop_typed", .host(HostFunction.slots(signature: binary) { _, _ in }))
    let trapInstance = try Instance(store: Store(engine: engine), module: Module(engine: engine, text: comparisonModule),
                                    imports: trapImports)
    let trapAt = trapInstance.export("trap_at")!
    let answer = try trapInstance.export("answer")!.typed(Int32.self, Int32.self)
    let untypedAnswer = trapInstance.export("answer")!
    for _ in 0..<iterations {
        probeTypedCalls(answer)
        probeUntypedCall(untypedAnswer)
        probeTrap(trapAt, frames)
        probeTrapRead(trapAt, frames)
        probeTrapMessage(trapAt, frames)
    }
}

/// 1,000 typed calls of an (i32) -> i32 identity.
@inline(never) func probeTypedCalls(_ function: TypedFunc<Int32, Int32>) {
    var sum: Int32 = 0
    for value in 0..<Int32(1000) { sum &+= try! function.call(value) }
    consume(UInt(bitPattern: Int(sum)))
}
/// One untyped call of the same function.
@inline(never) func probeUntypedCall(_ function: Func) {
    if case .i32(let value) = try! function.call([.i32(7)])[0] { consume(UInt(bitPattern: Int(value))) }
}
@inline(never) func probeTrap(_ function: Func, _ frames: Int) {
    do { _ = try function.call([.i32(Int32(frames - 1))]) } catch let trap as Trap {
        consume(UInt(trap.backtrace.frames.count))
    } catch {}
}
@inline(never) func probeTrapRead(_ function: Func, _ frames: Int) {
    do { _ = try function.call([.i32(Int32(frames - 1))]) } catch let trap as Trap {
        var sum: UInt = 0
        for frame in trap.backtrace.frames {
            sum &+= UInt(frame.symbol?.moduleOffset ?? 0) &+ UInt(frame.symbol?.functionName?.utf8.count ?? 0)
                &+ UInt(frame.symbol?.moduleName?.utf8.count ?? 0)
        }
        consume(sum)
    } catch {}
}
@inline(never) func probeTrapMessage(_ function: Func, _ frames: Int) {
    do { _ = try function.call([.i32(Int32(frames - 1))]) } catch let trap as Trap {
        consume(UInt(trap.description.utf8.count) &+ 2)
    } catch {}
}

@inline(never) func probeHostCallsTrampoline(_ loop: Func) throws {
    consume(UInt(try loop.call([.i32(1000)]).count))
}
@inline(never) func probeHostCallsInline(_ loop: Func) throws {
    // Differs from the trampoline probe so LLVM cannot merge the two.
    consume(UInt(try loop.call([.i32(1000)]).count) &+ 1)
}

@inline(never) func probeOursWalk(_ limits: UInt, _ buffer: UnsafeMutableBufferPointer<Frame>) {
    consume(UInt(Backtrace.walk(limitsAddress: limits, into: buffer).count))
}
@inline(never) func probeFloor(_ triples: [UInt64], _ pcs: UnsafeMutablePointer<UInt64>) {
    consume(UInt(wu_floor_walk(triples, 1, pcs, 4096)))
}
@inline(never) func probeUnwBacktrace(_ raw: UnsafeMutablePointer<UnsafeMutableRawPointer?>) {
    consume(UInt(wu_libunwind_backtrace(raw, 4096)))
}
@inline(never) func probeUnwStep(_ pcs: UnsafeMutablePointer<UInt64>) {
    // Also consumes the newest pc: otherwise LLVM merges this function with
    // probeUnwBacktrace (same machine code) and callgrind sees one of them.
    consume(UInt(wu_libunwind_step_ips(pcs, 4096)) &+ UInt(pcs[0]))
}
@inline(never) func probeSymbolicate(_ limits: UInt, _ buffer: UnsafeMutableBufferPointer<Frame>, _ registry: CodeRegistry) {
    let count = Backtrace.walk(limitsAddress: limits, into: buffer).count
    consume(UInt(registry.symbolicate(UnsafeBufferPointer(rebasing: buffer.prefix(count))).frames.count))
}
@inline(never) func probeRoots(_ frames: [Frame], _ registry: CodeRegistry) {
    consume(UInt((try? registry.roots(of: frames, reader: UncheckedMemoryReader()).count) ?? 0))
}
@inline(never) func probeCaptureWrite(_ caller: Caller) {
    consume(UInt(LiveCapture.atHostCall(caller).serialized().count))
}
@inline(never) func probeDump(_ bytes: [UInt8]) {
    consume(UInt((try? CapturedStack(CaptureFile(parsing: bytes)).backtrace().frames.count) ?? 0))
}
