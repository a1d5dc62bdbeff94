// A child process for the trap tests: runs wasm whose host function
// crashes in one of several ways, so the test can check that a host crash
// is not mistaken for a wasm trap and kills the process with its signal.
//
//   trap-probe null-dereference   host code reads address 8        -> SIGSEGV
//   trap-probe fatal-error        host code calls fatalError (ud2) -> SIGILL
//   trap-probe wasm-trap          wasm executes `unreachable`      -> caught, exit 0
//   trap-probe trap-loop N        N traps after a warm-up; prints resident bytes before and after
#if canImport(Glibc)
import Glibc
#endif
import WasmJIT

let mode = CommandLine.arguments.dropFirst().first ?? ""
let engine = Engine()
let store = Store(engine: engine)
var imports = Imports()
imports.define(module: "host", name: "crash", .host(HostFunction(signature: Signature(parameters: [], results: [])) { _, _ in
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
    return []
}))
let module = try Module(engine: engine, text: """
    (module $probe
      (import "host" "crash" (func $crash))
      (func $call_host (export "call_host") call $crash)
      (func $die (export "die") unreachable))
    """)
let instance = try Instance(store: store, module: module, imports: imports)
if mode == "trap-loop" {
    let count = Int(CommandLine.arguments.dropFirst(2).first ?? "") ?? 10_000
    let die = instance.export("die")!
    for _ in 0..<500 { _ = try? die.call([]) }
    let before = residentBytes()
    for _ in 0..<count { _ = try? die.call([]) }
    print("resident before \(before) after \(residentBytes())")
    exit(0)
}

/// Resident set size, from /proc/self/statm.
func residentBytes() -> Int {
    guard let file = fopen("/proc/self/statm", "r") else { return 0 }
    defer { fclose(file) }
    var size = 0, resident = 0
    withUnsafeMutablePointer(to: &size) { sizePointer in
        withUnsafeMutablePointer(to: &resident) { residentPointer in
            _ = withVaList([sizePointer, residentPointer]) { vfscanf(file, "%ld %ld", $0) }
        }
    }
    return resident * Int(sysconf(Int32(_SC_PAGESIZE)))
}

do {
    _ = try instance.export(mode == "wasm-trap" ? "die" : "call_host")!.call([])
    print("returned")
} catch let trap as Trap {
    print(trap)
}
