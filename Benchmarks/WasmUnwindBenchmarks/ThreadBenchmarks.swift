import Foundation
import Verification
import WasmJIT

/// Traps on one thread and on two at once (the machine has two cores):
/// each thread with its own store and instance trapping 10 frames deep,
/// every trap's frames symbolicated. Throughput is traps per second of
/// wall time; the trap path takes no lock, so two threads should give
/// nearly twice one. Beside it, the same traps with libunwind unwinding
/// each from its context (the oracle's observer, which serialises on
/// libunwind's lock).
func threadTrapReport() throws -> [String] {
    let depth: Int32 = 9
    let trapsPerThread = 20_000

    @Sendable func instance(_ engine: Engine) throws -> Func {
        var imports = Imports()
        let signature = Signature(parameters: [.i32, .i32], results: [.i32])
        imports.define(module: "host", name: "noop", .host(HostFunction.slots(signature: signature) { _, _ in }))
        imports.define(module: "host", name: "noop_typed", .host(HostFunction.slots(signature: signature) { _, _ in }))
        return try Instance(store: Store(engine: engine), module: Module(engine: engine, text: comparisonModule),
                            imports: imports).export("trap_at")!
    }

    /// Wall-clock seconds for `threads` threads to trap `trapsPerThread`
    /// times each, all starting together.
    func run(threads: Int, engine: @escaping @Sendable () -> Engine) throws -> Double {
        final class Shared: @unchecked Sendable {
            var start = DispatchSemaphore(value: 0)
            var done = DispatchSemaphore(value: 0)
            var frames = 0
        }
        let shared = Shared()
        for _ in 0..<threads {
            let thread = Thread {
                guard let function = try? instance(engine()) else { return }
                var frames = 0
                _ = try? function.call([.i32(depth)])  // warm up on this thread
                shared.start.wait()
                for _ in 0..<trapsPerThread {
                    do { _ = try function.call([.i32(depth)]) } catch let trap as Trap {
                        frames &+= trap.backtrace.frames.count
                    } catch {}
                }
                consume(UInt(frames))
                shared.done.signal()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        Thread.sleep(forTimeInterval: 0.2)
        let begin = Clock.nanoseconds()
        for _ in 0..<threads { shared.start.signal() }
        for _ in 0..<threads { shared.done.wait() }
        return Double(Clock.nanoseconds() - begin) / 1e9
    }

    var lines = ["traps on threads: each thread its own store, \(trapsPerThread) traps of \(depth + 1) frames, frames symbolicated"]
    let plain: @Sendable () -> Engine = { Engine() }
    let observed: @Sendable () -> Engine = { OracleSession().engine }
    for (name, engine) in [("ours", plain), ("ours + libunwind unwinding each trap (the oracle's observer)", observed)] {
        let one = try run(threads: 1, engine: engine)
        let two = try run(threads: 2, engine: engine)
        let single = Double(trapsPerThread) / one, double = Double(2 * trapsPerThread) / two
        lines.append("  \(name): 1 thread \(Int(single)) traps/s, 2 threads \(Int(double)) traps/s, "
                     + String(format: "%.2fx", double / single))
    }
    return lines
}
