// swift-tools-version: 6.1
//
// The tools around the WasmUnwind library (the package one directory up):
// the reference runtime, the oracles, the capture format, the debugger and
// profiler interfaces, the command-line tool, the tests and benchmarks.
// Kept apart so that an embedder who depends on the library resolves no
// third-party package. Sources/, Tests/ and Benchmarks/ here are links to
// the package's own; the module table in docs/design.md maps each target to
// what it owns.
//
//   swift build --package-path Tools      (make test, make verify, make bench)

import PackageDescription

/// The library's product and its C records, from the package one up.
let wasmUnwind = Target.Dependency.product(name: "WasmUnwind", package: "WasmUnwind")
let abi = Target.Dependency.product(name: "CWasmUnwindABI", package: "WasmUnwind")
let dwarf = Target.Dependency.product(name: "WasmDWARF", package: "WasmUnwind")

let package = Package(
    name: "WasmUnwindTools",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "WasmJIT", targets: ["WasmJIT"]),
        .library(name: "JITTools", targets: ["JITTools"]),
        .executable(name: "wasm-unwind", targets: ["wasm-unwind"]),
        .executable(name: "wasm-unwind-server", targets: ["wasm-unwind-server"]),
        .executable(name: "wasm-unwind-bench", targets: ["wasm-unwind-bench"]),
    ],
    dependencies: [
        // The embedder library: WasmUnwind and its C records.
        .package(name: "WasmUnwind", path: ".."),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.0"),
        .package(url: "https://github.com/swiftwasm/WasmKit", exact: "0.4.2"),
        // The backtrace service's storage (SQLite); only its own targets use it.
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        // The fleet's store: events and groups in PostgreSQL (serve --database).
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
    ],
    targets: [
        // The reference runtime's C: entering wasm (sigsetjmp), the trap
        // handler, the sampler's timer and SIGPROF handler.
        .target(name: "CWasmRuntime", dependencies: [abi]),
        // The tools' C: the GDB JIT interface, the post-mortem descriptor,
        // the crash capture writer (hooked into the runtime by the tools).
        .target(name: "CWasmTools", dependencies: [abi]),

        // What debuggers and profilers need to see JIT code: the GDB JIT
        // interface (in-memory ELF objects with symbols, CFI and DWARF lines),
        // the perf map and the jitdump (docs/debugging.md).
        .target(
            name: "JITTools",
            dependencies: [wasmUnwind, abi, "CWasmTools"]
        ),

        // What the tools print: reports (traps, dumps, roots, hybrid
        // backtraces, comparisons), rendered as text or JSON, and sampled
        // profiles rendered as folded stacks, flame graphs and Firefox
        // profiles. A backtrace alone renders itself (the library).
        .target(
            name: "UnwindReports",
            dependencies: [wasmUnwind, dwarf, "WasmCoredumpFormat"]
        ),

        // The captured-stack file format: writer, reader, and reading a
        // capture the way a live stack is read (docs/capture-format.md).
        .target(
            name: "StackCapture",
            dependencies: [wasmUnwind, "UnwindReports", "CWasmTools", dwarf]
        ),

        // The reference embedder: assembler, code memory, trampolines, a baseline
        // wasm compiler and its runtime.
        // The standard wasm coredump format: model, encoder, reader (no
        // runtime dependency: `dump` and the fuzzer read coredumps with it).
        .target(name: "WasmCoredumpFormat"),
        .target(
            name: "WasmJIT",
            dependencies: [
                wasmUnwind,
                dwarf,
                "WasmCoredumpFormat",
                abi,
                "CWasmRuntime",
                "UnwindReports",
                .product(name: "WAT", package: "WasmKit"),
                .product(name: "WasmParser", package: "WasmKit"),
            ]
        ),
        // The reference runtime published to the tools, through its
        // engine's `didCompile` hook: gdb's JIT interface, perf's map and
        // jitdump, the post-mortem descriptor; and the crash capture.
        .target(
            name: "WasmJITTools",
            dependencies: ["WasmJIT", "JITTools", "JITCapture", "StackCapture", "CWasmTools", abi, "CWasmRuntime", dwarf]
        ),

        // libunwind, for the oracle only (the embedder library never links it).
        .systemLibrary(
            name: "CLibunwind",
            pkgConfig: "libunwind-generic",
            providers: [.apt(["libunwind-dev"])]
        ),
        // What are macros in libunwind's headers, as functions; dynamic
        // registration records; swift_demangle.
        .target(
            name: "CUnwindShim",
            dependencies: ["CLibunwind", abi, "CWasmRuntime"],
            // libunwind-ptrace (libunwind-dev): the live-process check.
            linkerSettings: [.linkedLibrary("unwind-ptrace"), .linkedLibrary("lzma")]
        ),
        // libunwind as an independent unwinder: local and signal-context
        // unwinding, CFI registration, frame-by-frame comparison, hybrid
        // host+wasm backtraces, and captured stacks unwound offline.
        .target(
            name: "UnwindOracle",
            dependencies: [wasmUnwind, "StackCapture", "UnwindReports", "CUnwindShim"]
        ),
        // Captures of the reference runtime's stacks: at host calls, and at
        // traps from the handler's snapshot.
        .target(
            name: "JITCapture",
            dependencies: ["WasmJIT", "StackCapture", "UnwindOracle"]
        ),

        // WASI preview 1 for the reference runtime: stdio, args, environment,
        // clocks, random, proc_exit (programs built with wasi-libc and Rust's
        // wasm32-wasi std).
        .target(
            name: "WasmWASI",
            dependencies: ["WasmJIT"]
        ),

        // The oracle applied to the reference runtime: CFI registration of
        // every compiled module, comparisons at host calls and traps, and the
        // randomized differential run (`wasm-unwind verify`).
        .target(
            name: "Verification",
            dependencies: ["WasmJIT", "WasmJITTools", "WasmWASI", "UnwindOracle", "UnwindReports", "WasmCoredumpFormat",
                           .product(name: "WasmParser", package: "WasmKit")]
        ),

        // The spec test scripts (.wast) on the reference runtime
        // (`wasm-unwind wast`).
        .target(
            name: "WastRunner",
            dependencies: [
                "WasmJIT",
                .product(name: "WAT", package: "WasmKit"),
                .product(name: "WasmParser", package: "WasmKit"),
            ]
        ),

        .executableTarget(
            name: "wasm-unwind",
            dependencies: [
                wasmUnwind,
                "WasmWASI",
                abi,
                "CWasmRuntime",
                "WasmJIT",
                "WasmJITTools",
                "WastRunner",
                "UnwindOracle",
                "Verification",
                "StackCapture",
                "JITCapture",
                "UnwindReports",
                "CrashReporter",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // The benchmarks: methods side by side with their baselines, in one
        // process (`make bench`). Not part of the tests.
        .executableTarget(
            name: "wasm-unwind-bench",
            dependencies: [wasmUnwind, "WasmJIT", "WasmJITTools", "UnwindOracle", "Verification", "StackCapture", "JITCapture", "UnwindReports",
                           "CMallocCounter", "CBenchmarkSupport", "WasmCoredumpFormat", dwarf, "BacktraceService", "PostgresScratch"],
            path: "Benchmarks/WasmUnwindBenchmarks"
        ),
        // The C baselines: the frame-pointer floor, libunwind's loops, and
        // Wasmtime through its C API (dlopen of the PyPI package's library).
        .target(
            name: "CBenchmarkSupport",
            dependencies: ["CLibunwind"],
            path: "Benchmarks/CBenchmarkSupport",
            cSettings: [.unsafeFlags(["-O2"])],
            linkerSettings: [.linkedLibrary("dl")]
        ),

        // A child process for the trap tests (host crashes must stay crashes).
        .executableTarget(
            name: "trap-probe",
            dependencies: ["WasmJIT", "WasmJITTools", wasmUnwind, "CrashSupport", "CMallocCounter", "CWasmTools", "CWasmRuntime"],
            path: "Tests/TrapProbe"
        ),
        // Real faults in host code (SIGSEGV, SIGBUS, SIGILL, SIGFPE) for the probe.
        .target(
            name: "CrashSupport",
            path: "Tests/CrashSupport"
        ),

        // Test-only malloc interposer: proves the trap handler allocates nothing.
        .target(
            name: "CMallocCounter",
            dependencies: ["CWasmRuntime"],
            path: "Tests/MallocCounter"
        ),

        // The backtrace service (docs/service.md): uploads read, grouped and
        // stored. Its server dependencies are its own: the embedder's
        // library and the CLI's core build without them.
        .target(
            name: "BacktraceService",
            dependencies: ["StackCapture", "CWasmTools", "UnwindReports", "WasmCoredumpFormat", wasmUnwind, dwarf,
                           .product(name: "GRDB", package: "GRDB.swift"),
                           .product(name: "PostgresNIO", package: "postgres-nio"),
                           .product(name: "Logging", package: "swift-log")]
        ),
        // The runtime's side of the service: reports spooled, then uploaded
        // (Foundation only: the CLI and embedders use it).
        .target(name: "CrashReporter"),
        .target(
            name: "BacktraceServer",
            dependencies: ["BacktraceService", .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "Prometheus", package: "swift-prometheus"),
                           .product(name: "Mustache", package: "swift-mustache")]
        ),
        .executableTarget(
            name: "wasm-unwind-server",
            dependencies: ["BacktraceServer", "BacktraceService", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // A PostgreSQL server of the tests' and benchmarks' own (initdb in a
        // temporary directory, on loopback).
        .target(name: "PostgresScratch", path: "Tests/PostgresScratch"),
        .testTarget(
            name: "BacktraceServiceTests",
            dependencies: ["BacktraceService", "StackCapture", "CrashReporter", "PostgresScratch", "wasm-unwind", "wasm-unwind-server", dwarf]
        ),

        .testTarget(
            name: "UnwindReportsTests",
            dependencies: ["UnwindReports", wasmUnwind]
        ),
        .testTarget(
            name: "StackCaptureTests",
            dependencies: ["StackCapture", "UnwindReports", wasmUnwind, dwarf]
        ),
        .testTarget(
            name: "WasmJITTests",
            dependencies: [
                "WasmJIT",
                "WasmJITTools",
                wasmUnwind,
                abi,
                "CWasmRuntime",
                "CWasmTools",
                "StackCapture",
                "JITCapture",
                "wasm-unwind",
                "trap-probe",
                "CMallocCounter",
                "UnwindOracle",
                "Verification",
                "WasmWASI",
                "WastRunner",
                "JITTools",
                "UnwindReports",
                .product(name: "WAT", package: "WasmKit"),
                .product(name: "WasmKit", package: "WasmKit"),
            ]
        ),
    ]
)
