import WasmJIT

/// The calls made on each C fixture (fixtures/c, built by
/// scripts/build-c-fixtures.sh) and Rust fixture (fixtures/rust,
/// scripts/build-rust-fixtures.sh): its checksum, and every export that
/// traps, with arguments that trap at different depths.
public enum CFixtureCalls {
    public static let calls: [String: [(String, [Value])]] = [
        "recursion": [("checksum", []), ("abort_deep", [.i32(0)]), ("abort_deep", [.i32(3)]),
                      ("abort_deep", [.i32(30)]), ("overflow", []), ("exhaust", [])],
        "qsort": [("checksum", []), ("null_comparator", []), ("mistyped_comparator", [])],
        "interpreter": [("checksum", []), ("bad_opcode", [.i32(16)]), ("bad_opcode", [.i32(99)]),
                        ("bad_opcode", [.i32(0)])],
        "allocator": [("checksum", []), ("write_past_end", [.i32(0)]), ("write_past_end", [.i32(4096)])],
        "shapes": [("checksum", []), ("degenerate", [.i32(0)]), ("degenerate", [.i32(-2)]),
                   ("degenerate", [.i32(3)])],
        "floats": [("checksum", []), ("convert", [.f64(1.5)]), ("convert", [.f64(3e9)]),
                   ("convert", [.f64(-3e9)]), ("convert", [.f64(.nan)])],
        // fixtures/rust (scripts/build-rust-fixtures.sh): Rust panics
        // through std's panic machinery.
        "panics": [("checksum", []), ("index_out_of_bounds", [.i32(7)]), ("index_out_of_bounds", [.i32(2)]),
                   ("unwrap_none", [.i32(3)]), ("explicit_panic", [.i32(500)]), ("explicit_panic", [.i32(5)])],
    ]

    /// The fixture's program name: `qsort` of `qsort-mvp.wasm`.
    public static func program(ofFile name: String) -> String {
        String(name.prefix { $0 != "-" && $0 != "." })
    }
}
