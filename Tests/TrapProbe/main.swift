// A child process for the trap tests: runs wasm, then faults in host code or
// traps in wasm in a chosen way, so a test can check how the process ends.
// A fault outside wasm must end the process exactly as it would end a
// process without WasmJIT: killed by the original signal, after Swift's
// crash report.
//
//   trap-probe null-dereference   host code reads address 8        -> SIGSEGV
//   trap-probe fatal-error        host code calls fatalError (ud2) -> SIGILL
//   trap-probe wasm-trap          wasm executes `unreachable`      -> caught, exit 0
//   trap-probe trap-loop N        N traps after a warm-up; prints resident bytes before and after
//   trap-probe crash SIGNAL PLACE a real fault in host code: SIGNAL is segv, bus,
//                                 ill or fpe; PLACE is
//                                   before        the handler installed, no wasm run yet on this thread
//                                   host          in a host function called from wasm
//                                   after         after the outermost call returned
//                                   after-trap    after a wasm trap was caught on this thread
//                                   other-thread  on a thread that never ran wasm, while this
//                                                 one is inside wasm
//   trap-probe chain-siginfo-default  SIGILL's previous handler is SIG_DFL with
//                                 SA_SIGINFO; host code executes ud2 -> SIGILL
//   trap-probe thread-exit N      N threads that each trap once with snapshots on;
//                                 prints resident and virtual bytes before and after
//   trap-probe alternate-stack    prints the alternate signal stack before, while
//                                 and after this thread can take traps
//   trap-probe two-threads        a second thread waits inside wasm at a host call
//                                 while this one faults (SIGSEGV) in a host function
//                                 called from wasm under two activations: a core with
//                                 two threads in wasm; each writes `recorded LABEL:
//                                 frames` to stderr first
//   trap-probe two-crashes FILE   a crash capture to FILE; two threads fault (SIGSEGV) at the
//                                 same moment in host functions called from wasm
//   trap-probe crash-while-unloading FILE
//                                 a crash capture to FILE; one thread compiles and drops
//                                 modules listed in the post-mortem descriptor without
//                                 pause while this one faults in a host function
//   trap-probe foreign-fault      a memory load in wasm faults outside every memory (the
//                                 instance's memory base replaced, as a runtime bug
//                                 would): a crash, not an out-of-bounds trap
//   trap-probe two-profilers ORDER
//                                 two threads, each with its own SamplingProfiler over its
//                                 own wasm loop (spin_a, spin_b), overlapping in time; ORDER
//                                 says which stops first (a-first, b-first). Prints each
//                                 profile's sample count and the wasm functions it saw
//   trap-probe live MODE [churn]  runs until killed, read from outside (`dump --pid`,
//                                 `profile --pid`): one thread blocks in a host call
//                                 (`recorded waiting: ...` first), the main thread spins
//                                 in wasm under two activations (main -> middle -> host
//                                 -> inner -> spin), MODE the exit recording (trampoline,
//                                 inline); prints `ready` when both are in place; each
//                                 SIGUSR1 makes the spinning thread write `recorded
//                                 spinning: ...` at its next host tick. With churn, a
//                                 third thread compiles and drops modules without pause;
//                                 with foreign-version, the post-mortem descriptor says
//                                 it is of layout version 2
//   trap-probe huge-frames LOCALS WHERE...
//                                 a function with LOCALS i64 locals recurses until the
//                                 stack runs out, on the main thread (WHERE = main) or on
//                                 a new thread with a stack of WHERE KiB; prints
//                                 `WHERE: MESSAGE` for each
import CMallocCounter
import CWasmRuntime
import CWasmTools
import CrashSupport
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
@_spi(Testing) import WasmJIT
import WasmJITTools
import WasmUnwind

let arguments = Array(CommandLine.arguments.dropFirst())
let mode = arguments.first ?? ""

/// Faults with `signal` (by name) in host code.
func fault(_ signal: String) {
    switch signal {
    case "segv": crash_segv()
    case "bus": crash_bus()
    case "ill": crash_ill()
    case "fpe": print(crash_fpe())
    default:
        print("unknown signal \(signal)")
        exit(2)
    }
}

if mode == "chain-siginfo-default" {
    // A previous "handler" that is SIG_DFL but flagged SA_SIGINFO: its
    // sa_sigaction field is the null pointer and must never be called.
    var action = sigaction()
    action.sa_flags = SA_SIGINFO
    action.__sigaction_handler.sa_handler = SIG_DFL
    sigaction(SIGILL, &action, nil)
}

var hostAction: () -> Void = {}

/// The `live` mode's host functions and counters.
enum LiveProbe {
    /// SIGUSR1s received (counted in the handler: async-signal-safe).
    static let requests = Atomic<Int>(0)
    static let answered = Atomic<Int>(0)
    static let ready = Atomic<Bool>(false)

    static func imports(_ block: @escaping @Sendable (Caller) -> Void, tick: @escaping @Sendable (Caller) -> Void) -> Imports {
        var imports = Imports()
        let none = Signature(parameters: [], results: [])
        imports.define(module: "host", name: "block", .host(HostFunction(signature: none) { caller, _ in block(caller); return [] }))
        imports.define(module: "host", name: "reenter", .host(HostFunction(signature: none) { caller, _ in
            _ = try caller.export("inner")!.call([])
            return []
        }))
        imports.define(module: "host", name: "tick", .host(HostFunction(signature: none) { caller, _ in tick(caller); return [] }))
        return imports
    }
}
/// The caller of the host function running now (for `recorded`).
var currentCaller: Caller?
// Listed in the post-mortem descriptor, so a core of the probe leads to its
// wasm; registered with gdb, so gdb names it too.
let engine = Engine(publishing: ToolPublishing(debugInfo: true, postMortem: true))
let store = Store(engine: engine)
var imports = Imports()
imports.define(module: "host", name: "crash", .host(HostFunction(signature: Signature(parameters: [], results: [])) { caller, _ in
    currentCaller = caller
    hostAction()
    return []
}))

/// Writes `caller`'s wasm backtrace to standard error, unbuffered (the
/// process is about to die): `recorded LABEL: name name ...`.
func record(_ label: String, _ caller: Caller) {
    let names = caller.backtrace().frames.map { $0.symbol?.printedName ?? "?" }
    let line = Array("recorded \(label): \(names.joined(separator: " "))\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}
let module = try Module(engine: engine, text: """
    (module $probe
      (import "host" "crash" (func $crash))
      (func $call_host (export "call_host") call $crash)
      (func $die (export "die") unreachable))
    """)
let instance = try Instance(store: store, module: module, imports: imports)

/// A module exporting `big(n)`: `n == 0 ? 0 : big(n - 1) + 1`, with
/// `locals` i64 locals (in one declaration, which text format cannot say).
func recursionWithLocals(_ locals: Int) -> [UInt8] {
    func leb(_ value: Int) -> [UInt8] {
        var value = value, bytes: [UInt8] = []
        repeat {
            var byte = UInt8(value & 0x7F)
            value >>= 7
            if value != 0 { byte |= 0x80 }
            bytes.append(byte)
        } while value != 0
        return bytes
    }
    func section(_ id: UInt8, _ body: [UInt8]) -> [UInt8] { [id] + leb(body.count) + body }
    let code: [UInt8] = [0x01] + leb(locals) + [0x7E,  // locals: n x i64
        0x20, 0x00, 0x45, 0x04, 0x7F, 0x41, 0x00,  // local.get 0; i32.eqz; if (result i32) i32.const 0
        0x05, 0x20, 0x00, 0x41, 0x01, 0x6B, 0x10, 0x00, 0x41, 0x01, 0x6A,  // else big(n - 1) + 1
        0x0B, 0x0B]
    return [0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00]
        + section(1, [0x01, 0x60, 0x01, 0x7F, 0x01, 0x7F])
        + section(3, [0x01, 0x00])
        + section(7, [0x01, 0x03] + Array("big".utf8) + [0x00, 0x00])
        + section(10, [0x01] + leb(code.count) + code)
}

/// Resident set size, from /proc/self/statm.
func memoryUse() -> (resident: Int, virtual: Int) {
    guard let file = fopen("/proc/self/statm", "r") else { return (0, 0) }
    defer { fclose(file) }
    var size = 0, resident = 0
    withUnsafeMutablePointer(to: &size) { sizePointer in
        withUnsafeMutablePointer(to: &resident) { residentPointer in
            _ = withVaList([sizePointer, residentPointer]) { vfscanf(file, "%ld %ld", $0) }
        }
    }
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    return (resident * page, size * page)
}

/// Runs `body` on a new thread (with a stack of `stackSize` bytes, or the
/// default) and waits for it to end.
func onNewThread(stackSize: Int? = nil, _ body: @escaping () -> Void) {
    final class Box { let body: () -> Void; init(_ body: @escaping () -> Void) { self.body = body } }
    var thread = pthread_t()
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    if let stackSize { pthread_attr_setstacksize(&attributes, stackSize) }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    pthread_create(&thread, &attributes, { context in
        let box = Unmanaged<Box>.fromOpaque(context!).takeRetainedValue()
        box.body()
        return nil
    }, box)
    pthread_join(thread, nil)
}

func describeAlternateStack() -> String {
    var current = stack_t()
    sigaltstack(nil, &current)
    if current.ss_flags & Int32(SS_DISABLE) != 0 { return "disabled" }
    return "\(UInt(bitPattern: current.ss_sp)) \(current.ss_size)"
}

switch mode {
case "foreign-fault":
    let loads = try Instance(store: store, module: Module(engine: engine, text: """
        (module (memory 1) (func (export "load") (param i32) (result i32) (i32.load (local.get 0))))
        """))
    // Host memory no wasm memory reserves: a page that faults.
    let page = mmap(nil, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
    loads.replaceMemoryBaseForTesting(UInt(bitPattern: page))
    do {
        print("returned \(try loads.export("load")!.call([.i32(0)]))")
    } catch {
        print("\(error)")
    }
    exit(0)
case "two-crashes":
    try CrashCapture.enable(path: arguments.dropFirst().first ?? "crash.capture")
    let ready = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var go = false
    // Both threads wait inside a host call from wasm, then fault together.
    func crasher() -> Thread {
        Thread {
            let otherStore = Store(engine: engine)
            var otherImports = Imports()
            otherImports.define(module: "host", name: "crash", .host(HostFunction(signature: Signature(parameters: [], results: [])) { _, _ in
                ready.signal()
                while !go {}
                crash_segv()
                return []
            }))
            let other = try! Instance(store: otherStore, module: module, imports: otherImports)
            _ = try? other.export("call_host")!.call([])
        }
    }
    crasher().start()
    crasher().start()
    ready.wait()
    ready.wait()
    go = true
    // (A signal, such as the crash reporter stopping threads, cuts a sleep short.)
    for _ in 0..<600 { usleep(200_000) }
    print("survived")
    exit(0)
case "crash-while-unloading":
    try CrashCapture.enable(path: arguments.dropFirst().first ?? "crash.capture")
    let churn = Thread {
        while true {
            _ = try? Module(engine: engine, text: "(module (func (export \"f\") (result i32) i32.const 1))")
        }
    }
    churn.start()
    usleep(200_000)
    hostAction = { fault("segv") }
    _ = try? instance.export("call_host")!.call([])
    print("survived")
    exit(0)
case "two-profilers":
    let order = arguments.dropFirst().first ?? "a-first"
    let spinning = """
        (module
          (func $spin_a (export "spin_a") (param i32) (result i32)
            (loop $l (local.set 0 (i32.sub (local.get 0) (i32.const 1))) (br_if $l (local.get 0))) (local.get 0))
          (func $spin_b (export "spin_b") (param i32) (result i32)
            (loop $l (local.set 0 (i32.sub (local.get 0) (i32.const 1))) (br_if $l (local.get 0))) (local.get 0)))
        """
    let spinModule = try Module(engine: engine, text: spinning)
    final class Run: @unchecked Sendable {
        var report = ""
        var running = true
        /// The thread's CPU time so far, in milliseconds (the profiler's
        /// clock): each thread is stopped only after it has run long enough
        /// to be sampled, however loaded the machine is.
        var cpuMilliseconds = 0
    }
    let threadCPUMilliseconds: @Sendable () -> Int = {
        var now = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
        return now.tv_sec * 1000 + now.tv_nsec / 1_000_000
    }
    let a = Run(), b = Run()
    // Each thread profiles its own store; `stop` ends its loop of calls.
    func profile(_ name: String, _ run: Run, started: DispatchSemaphore) -> Thread {
        Thread {
            let store = Store(engine: engine)
            let function = try! Instance(store: store, module: spinModule).export(name)!
            let profiler = SamplingProfiler(store: store)
            do {
                try profiler.run(intervalNanoseconds: 200_000) {
                    started.signal()
                    while run.running {
                        _ = try function.call([.i32(200_000)])
                        run.cpuMilliseconds = threadCPUMilliseconds()
                    }
                }
            } catch {
                run.report = "\(error)"
                return
            }
            let names = Set(profiler.profile.stacks.flatMap { $0.frames.map(\.name) }).sorted()
            run.report = "\(profiler.sampleCount) samples: \(names.joined(separator: " "))"
        }
    }
    let startedA = DispatchSemaphore(value: 0), startedB = DispatchSemaphore(value: 0)
    let threadA = profile("spin_a", a, started: startedA), threadB = profile("spin_b", b, started: startedB)
    /// Waits until `run`'s thread has had `milliseconds` more of CPU.
    func waitForCPU(_ run: Run, _ milliseconds: Int) {
        let start = run.cpuMilliseconds
        while run.cpuMilliseconds - start < milliseconds { usleep(5_000) }
    }
    threadA.start()
    startedA.wait()
    waitForCPU(a, 50)
    threadB.start()
    startedB.wait()
    // Both sample at once for at least 150 ms of each one's CPU; then one
    // stops while the other goes on.
    waitForCPU(a, 150)
    waitForCPU(b, 150)
    let (first, second) = order == "b-first" ? (b, a) : (a, b)
    first.running = false
    waitForCPU(second, 50)
    second.running = false
    while !(threadA.isFinished && threadB.isFinished) { usleep(10_000) }
    print("a: \(a.report)")
    print("b: \(b.report)")
    exit(0)
case "huge-frames":
    // Each frame is larger than the host reserve below the stack limit:
    // the prologue must trap before it moves rsp past the limit. Every
    // position of the limit within a frame is tried: the wasm is entered
    // with 0, 64, 128, ... bytes more of the stack in use, up to a frame.
    let locals = Int(arguments.dropFirst().first ?? "") ?? 40_000
    let hugeStore = Store(engine: engine)
    let hugeModule = try Module(engine: engine, binary: recursionWithLocals(locals))
    nonisolated(unsafe) let big = try Instance(store: hugeStore, module: hugeModule, imports: Imports()).export("big")!
    let sweep: @Sendable () -> String = {
        var outcomes: [String: Int] = [:]
        final class Context { let body: () -> Void; init(_ body: @escaping () -> Void) { self.body = body } }
        // Padding beyond what the thread's stack holds would overflow it
        // in host code: keep 96 KiB for the host code that enters wasm.
        var here = 0
        let free = withUnsafeMutablePointer(to: &here) { UInt(bitPattern: $0) } - ThreadStack.current().lowerBound
        for padding in stride(from: 0, to: min(8 * locals + 64, Int(free) - 96 * 1024), by: 64) {
            let context = Context {
                let outcome: String
                do { outcome = "returned \(try big.call([.i32(1_000_000)]))" } catch { outcome = "\(error)".split(separator: "\n").last.map(String.init) ?? "" }
                outcomes[outcome, default: 0] += 1
            }
            withExtendedLifetime(context) {
                call_with_stack_padding(UInt(padding), { Unmanaged<Context>.fromOpaque($0!).takeUnretainedValue().body() },
                                        Unmanaged.passUnretained(context).toOpaque())
            }
        }
        return outcomes.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value) times)" }.joined(separator: ", ")
    }
    for place in arguments.dropFirst(2) {
        if place == "main" {
            print("main: \(sweep())")
        } else {
            nonisolated(unsafe) var text = ""
            onNewThread(stackSize: (Int(place) ?? 256) * 1024) { text = sweep() }
            print("\(place): \(text)")
        }
        fflush(nil)
    }
    exit(0)
case "two-threads":
    let waiting = DispatchSemaphore(value: 0)
    final class Box: @unchecked Sendable { let module: Module; init(_ module: Module) { self.module = module } }
    let shared = Box(module)
    let second = Thread {
        // Its own store: a store runs on one thread at a time.
        let otherStore = Store(engine: engine)
        var otherImports = Imports()
        otherImports.define(module: "host", name: "crash", .host(HostFunction(signature: Signature(parameters: [], results: [])) { caller, _ in
            record("waiting", caller)
            waiting.signal()
            while true { sleep(1000) }
        }))
        let other = try! Instance(store: otherStore, module: shared.module, imports: otherImports)
        _ = try? other.export("call_host")!.call([])
    }
    second.start()
    waiting.wait()
    // Two activations on the crashing thread: the host re-enters wasm, and
    // the second host call records its backtrace and faults.
    hostAction = {
        hostAction = {
            record("crashing", currentCaller!)
            fault("segv")
        }
        _ = try? instance.export("call_host")!.call([])
    }
    _ = try? instance.export("call_host")!.call([])
    print("survived")
    exit(0)
case "interrupt-allocations":
    // Interruption.request() stops the spinner (InterruptTests.spinner, in
    // the file given) at depths 0, 5 and 300, in a process of its own (no
    // other test's threads or children): the allocations made on this
    // thread while the handler ran.
    let spinner = try! String(contentsOfFile: arguments[2], encoding: .utf8)
    let spinEngine = Engine(configuration: Engine.Configuration(exitRecording: arguments.dropFirst().first == "inline" ? .inline : .trampoline))
    let spinInstance = try! Instance(store: Store(engine: spinEngine), module: Module(engine: spinEngine, text: spinner))
    try! Interruption.install()
    let before = malloc_counter_in_trap_handler_on_this_thread()
    var stops = 0, frames: [Int] = []
    for depth in [0, 5, 300] {
        Thread { Thread.sleep(forTimeInterval: 0.05); Interruption.request() }.start()
        do { _ = try spinInstance.export("run")!.call([.i32(Int32(depth))]) } catch let trap as Trap where trap.code == .interrupt {
            stops += 1
            frames.append(trap.backtrace.frames.count)
        } catch {}
    }
    print("stops \(stops) frames \(frames) allocations \(malloc_counter_in_trap_handler_on_this_thread() - before)")
    exit(0)
case "peer-allocations":
    // Coredumps at traps with two other threads in wasm — one spinning,
    // one blocked in a host call — in a process of its own: what the peer
    // handler allocated (nothing, or it would not be async-signal-safe),
    // how many requests it answered, and the threads each coredump held.
    let count = Int(arguments.dropFirst().first ?? "") ?? 100
    let spinModule = try! Module(engine: engine, text: """
        (module (memory (export "memory") 1)
          (func $spin (loop $wait (br_if $wait (i32.eqz (i32.load (i32.const 0))))))
          (func (export "run") (i32.store (i32.const 4) (i32.const 1)) (call $spin)))
        """)
    let blockModule = try! Module(engine: engine, text: """
        (module (import "host" "block" (func $block)) (func (export "run") (call $block)))
        """)
    final class Peers: @unchecked Sendable {
        let entered = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        var memory: Memory?
    }
    let peers = Peers()
    Thread {
        let spinStore = Store(engine: engine)
        let instance = try! Instance(store: spinStore, module: spinModule)
        peers.memory = instance.memory
        _ = try! instance.export("run")!.call([])
    }.start()
    Thread {
        let blockStore = Store(engine: engine)
        var blockImports = Imports()
        blockImports.define(module: "host", name: "block", .host(HostFunction(signature: Signature(parameters: [], results: [])) { _, _ in
            peers.entered.signal()
            peers.release.wait()
            return []
        }))
        _ = try! Instance(store: blockStore, module: blockModule, imports: blockImports).export("run")!.call([])
    }.start()
    peers.entered.wait()
    while peers.memory.map({ $0.withBytes { $0.load(fromByteOffset: 4, as: Int32.self) } }) != 1 { usleep(1000) }
    let trapStore = Store(engine: engine)
    trapStore.coredumpOnTrap = true
    let trapInstance = try! Instance(store: trapStore, module: Module(engine: engine, text: "(module (func (export \"run\") unreachable))"))
    var threads: [Int] = []
    for _ in 0..<count {
        do { _ = try trapInstance.export("run")!.call([]) } catch let trap as Trap { threads.append(trap.coredump?.dump.threads.count ?? 0) } catch {}
    }
    peers.memory!.withBytes { $0.storeBytes(of: Int32(1), toByteOffset: 0, as: Int32.self) }
    peers.release.signal()
    print("coredumps \(threads.count) threads \(Set(threads).sorted()) answers \(wu_peer_answer_count()) allocations \(malloc_counter_in_peer_handler())")
    exit(0)
case "trap-loop":
    let count = Int(arguments.dropFirst().first ?? "") ?? 10_000
    let die = instance.export("die")!
    for _ in 0..<500 { _ = try? die.call([]) }
    let before = memoryUse().resident
    for _ in 0..<count { _ = try? die.call([]) }
    print("resident before \(before) after \(memoryUse().resident)")
    exit(0)
case "thread-exit":
    let count = Int(arguments.dropFirst().first ?? "") ?? 1000
    func trapOnce() {
        store.enableTrapSnapshots()
        _ = try? instance.export("die")!.call([])
    }
    for _ in 0..<50 { onNewThread(trapOnce) }
    let before = memoryUse()
    for _ in 0..<count { onNewThread(trapOnce) }
    let after = memoryUse()
    print("resident \(before.resident) \(after.resident) virtual \(before.virtual) \(after.virtual)")
    exit(0)
case "alternate-stack":
    print("before \(describeAlternateStack())")
    _ = try? instance.export("die")!.call([])
    print("taking traps \(describeAlternateStack())")
    TrapHandling.releaseCurrentThread()
    print("released \(describeAlternateStack())")
    // A thread that already has a big enough alternate stack keeps it.
    onNewThread {
        let size = 256 * 1024
        let memory = malloc(size)!
        var own = stack_t(ss_sp: memory, ss_flags: 0, ss_size: size)
        sigaltstack(&own, nil)
        print("own \(describeAlternateStack())")
        _ = try? instance.export("die")!.call([])
        print("own, taking traps \(describeAlternateStack())")
    }
    exit(0)
case "live":
    // Its own engine: the exit recording of the command line.
    let recording = ExitRecording(rawValue: arguments.dropFirst().first ?? "trampoline") ?? .trampoline
    let liveEngine = Engine(configuration: Engine.Configuration(exitRecording: recording),
                            publishing: ToolPublishing(debugInfo: true, postMortem: true))
    let liveModule = try Module(engine: liveEngine, text: """
        (module $live
          (import "host" "block" (func $block))
          (import "host" "reenter" (func $reenter))
          (import "host" "tick" (func $tick))
          (func $wait (export "wait") call $block)
          (func $main (export "main") call $middle)
          (func $middle call $reenter)
          (func $inner (export "inner") call $spin)
          (func $spin (local i32)
            (loop $l
              (local.set 0 (i32.add (local.get 0) (i32.const 1)))
              (if (i32.eqz (i32.and (local.get 0) (i32.const 0xffff))) (then (call $tick)))
              (br $l))))
        """)
    final class Shared: @unchecked Sendable { let module: Module; init(_ module: Module) { self.module = module } }
    let shared = Shared(liveModule)
    let blocked = DispatchSemaphore(value: 0)
    let waiter = Thread {
        let waitStore = Store(engine: liveEngine)
        let waiting = try! Instance(store: waitStore, module: shared.module, imports: LiveProbe.imports({ caller in
            record("waiting", caller)
            blocked.signal()
            while true { sleep(1000) }
        }, tick: { _ in }))
        _ = try? waiting.export("wait")!.call([])
    }
    waiter.start()
    blocked.wait()
    if arguments.dropFirst(2).first == "foreign-version" {
        // SAFETY: the descriptor is this process's own global; nothing else
        // writes its version.
        UnsafeMutablePointer(mutating: wu_debug_descriptor_address()).pointee.version = 2
    }
    if arguments.dropFirst(2).first == "churn" {
        let churn = Thread {
            while true {
                _ = try? Module(engine: liveEngine, text: "(module (func (export \"f\") (result i32) i32.const 1))")
            }
        }
        churn.start()
    }
    signal(SIGUSR1) { _ in LiveProbe.requests.add(1, ordering: .relaxed) }
    // A parent may have started us with it blocked (the mask is inherited).
    var usr1 = sigset_t()
    sigemptyset(&usr1)
    sigaddset(&usr1, SIGUSR1)
    pthread_sigmask(SIG_UNBLOCK, &usr1, nil)
    let spinStore = Store(engine: liveEngine)
    let spinning = try Instance(store: spinStore, module: liveModule, imports: LiveProbe.imports({ _ in }, tick: { caller in
        if LiveProbe.ready.exchange(true, ordering: .relaxed) == false {
            _ = Array("ready\n".utf8).withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        }
        let requests = LiveProbe.requests.load(ordering: .relaxed)
        if requests > LiveProbe.answered.load(ordering: .relaxed) {
            LiveProbe.answered.store(requests, ordering: .relaxed)
            record("spinning", caller)
        }
    }))
    _ = try spinning.export("main")!.call([])
case "crash":
    let signal = arguments.dropFirst().first ?? ""
    let place = arguments.dropFirst(2).first ?? ""
    switch place {
    case "before":
        fault(signal)
    case "host":
        hostAction = { fault(signal) }
        _ = try? instance.export("call_host")!.call([])
    case "after":
        _ = try instance.export("call_host")!.call([])
        fault(signal)
    case "after-trap":
        _ = try? instance.export("die")!.call([])
        fault(signal)
    case "other-thread":
        hostAction = { onNewThread { fault(signal) } }
        _ = try? instance.export("call_host")!.call([])
    default:
        print("unknown place \(place)")
        exit(2)
    }
    print("survived")
    exit(0)
case "chain-siginfo-default":
    hostAction = { crash_ill() }
    _ = try? instance.export("call_host")!.call([])
    print("survived")
    exit(0)
default:
    break
}

hostAction = {
    switch mode {
    case "null-dereference":
        // Address 8: the first page is never mapped. Computed at run time
        // so the optimiser cannot see it coming.
        let pointer = UnsafePointer<Int>(bitPattern: 8 + (Int(getpid()) & 0))!
        print(pointer.pointee)
    case "fatal-error":
        fatalError("host code gave up")
    default:
        break
    }
}
do {
    _ = try instance.export(mode == "wasm-trap" ? "die" : "call_host")!.call([])
    print("returned")
} catch let trap as Trap {
    print(trap)
}
