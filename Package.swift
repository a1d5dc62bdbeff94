// swift-tools-version: 6.1
//
// WasmUnwind: backtraces of WebAssembly code running as native JIT code.
//
// This package is the library an embedder links — the C records generated
// code shares with it, and the walker, registry and stack maps — and
// depends on nothing (the DocC plugin is used by `make docs` only; a
// package that depends on this one does not resolve it). Everything else —
// the reference runtime, the oracles, the capture format, the tools, the
// tests and benchmarks of all of it — is the package in Tools/, which
// depends on this one. The module table in docs/design.md maps each target
// to what it owns.

import PackageDescription

let package = Package(
    name: "WasmUnwind",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "WasmUnwind", targets: ["WasmUnwind"]),
        // The records generated code reads and writes, in C (what a JIT's
        // code generator needs the offsets of).
        .library(name: "CWasmUnwindABI", targets: ["CWasmUnwindABI"]),
        // Source lines: a wasm module's DWARF read for backtraces.
        .library(name: "WasmDWARF", targets: ["WasmDWARF"]),
    ],
    dependencies: [
        // `make docs`: the DocC catalog of WasmUnwind, with its snippets.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // C layout of the records that generated code reads and writes, the
        // thread-local activation head, and the few libc facilities Swift
        // cannot call directly (stack bounds, the C++ demangler).
        .target(name: "CWasmUnwindABI", linkerSettings: [.linkedLibrary("stdc++")]),

        // The embedder library: records, activations, the frame-pointer walker,
        // the code registry, stack maps and GC roots. No JIT, no libunwind.
        .target(
            name: "WasmUnwind",
            dependencies: ["CWasmUnwindABI"]
        ),

        // A wasm module's DWARF: for a module offset, the functions inlined
        // there with their files, lines and columns. Depends on nothing.
        .target(name: "WasmDWARF"),

        .testTarget(
            name: "WasmUnwindTests",
            dependencies: ["WasmUnwind", "CWasmUnwindABI"]
        ),
    ]
)
