// What the interruption checks cost (issue 27): a loop-heavy C program
// compiled without checks, with the epoch check at every function entry
// and loop header (what --timeout and Ctrl-C use), with fuel counting
// (--fuel), and with both; the same calls, alternated round by round.
import Foundation
import WasmJIT

/// A sieve of Eratosthenes over 64 Ki entries and an FNV hash of the
/// primes, `rounds` times: tight loops, most of them a few instructions
/// long — the worst case for a check per loop header.
let interruptionWorkload = """
    static unsigned char composite[1 << 16];
    __attribute__((export_name("work"))) unsigned work(int rounds) {
        unsigned hash = 2166136261u;
        for (int round = 0; round < rounds; round++) {
            for (int i = 0; i < (1 << 16); i++) composite[i] = (unsigned char)(round & 0);
            for (int i = 2; i < (1 << 16); i++) {
                if (composite[i]) continue;
                hash = (hash ^ (unsigned)i) * 16777619u;
                for (int j = i * 2; j < (1 << 16); j += i) composite[j] = 1;
            }
        }
        return hash;
    }
    """

/// A 48x48 integer matrix product, `rounds` times: three nested loops
/// with a multiply-add body, a more usual shape than the sieve's.
let matrixWorkload = """
    enum { N = 48 };
    static int a[N][N], b[N][N], c[N][N];
    __attribute__((export_name("work"))) unsigned work(int rounds) {
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) { a[i][j] = i * 7 + j; b[i][j] = i - j * 3; }
        unsigned hash = 0;
        for (int round = 0; round < rounds; round++) {
            for (int i = 0; i < N; i++)
                for (int j = 0; j < N; j++) {
                    int sum = 0;
                    for (int k = 0; k < N; k++) sum += a[i][k] * b[k][j];
                    c[i][j] = sum + round;
                }
            hash = hash * 31 + (unsigned)c[round % N][(round * 7) % N];
        }
        return hash;
    }
    """

func interruptionBenchmarks(_ harness: inout Harness, notes: inout [String]) throws {
    try interruptionBenchmark(&harness, notes: &notes, source: interruptionWorkload, rounds: 1,
                              group: "interruption checks: a loop-heavy C program (-O2 sieve, 64 Ki entries: the tightest loops), one call")
    try interruptionBenchmark(&harness, notes: &notes, source: matrixWorkload, rounds: 4,
                              group: "interruption checks: a loop-heavy C program (-O2 48x48 matrix product, 4 times), one call")
}

func interruptionBenchmark(_ harness: inout Harness, notes: inout [String], source: String, rounds: Int32, group: String) throws {
    if let filter = harness.groupFilter, !group.contains(filter) { return }
    guard let binary = try compileCProgram(source, flags: ["-O2"]) else {
        notes.append("interruption checks: no clang next to swift; the rows are missing")
        return
    }
    let variants: [(String, Bool, Bool)] = [
        ("no checks (default)", false, false),
        ("epoch checks (--timeout, Ctrl-C)", true, false),
        ("fuel counting (--fuel)", false, true),
        ("epoch checks and fuel", true, true),
    ]
    var results: Set<UInt32> = []
    for (name, epoch, fuel) in variants {
        let engine = Engine(configuration: Engine.Configuration(epochInterruption: epoch, consumesFuel: fuel))
        let store = Store(engine: engine)
        let work = try Instance(store: store, module: Module(engine: engine, binary: binary)).export("work")!
        if epoch { store.setEpochDeadline(.max) }
        if fuel { try store.setFuel(.max) }
        guard case .i32(let hash)? = try work.call([.i32(rounds)]).first else { continue }
        results.insert(UInt32(bitPattern: hash))
        harness.measure(group, name) {
            if fuel { try! store.setFuel(.max) }
            consume(UInt(try! work.call([.i32(rounds)]).count))
        }
    }
    harness.run()
    if results.count != 1 { notes.append("interruption checks: the variants computed different hashes \(results)") }
}
