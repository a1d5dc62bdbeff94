// swift-tools-version: 6.1
//
// WasmUnwind: backtraces of WebAssembly code running as native JIT code.
// The module table in docs/design.md maps each target to what it owns.

import PackageDescription

let package = Package(
    name: "WasmUnwind",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "WasmUnwind", targets: ["WasmUnwind"]),
    ],
    dependencies: [
    ],
    targets: [
        // C layout of the records that generated code reads and writes, and the
        // few libc facilities Swift cannot call directly (thread-local activation
        // head, sigsetjmp).
        .target(name: "CWasmUnwindABI"),

        // The embedder library: records, activations, the frame-pointer walker,
        // the code registry and rendering. No JIT, no libunwind.
        .target(
            name: "WasmUnwind",
            dependencies: ["CWasmUnwindABI"]
        ),

        .testTarget(
            name: "WasmUnwindTests",
            dependencies: ["WasmUnwind", "CWasmUnwindABI"]
        ),
    ]
)
