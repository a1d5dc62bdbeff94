import WasmUnwind

/// Renders reports (`Reports.swift`) in one output format.
///
/// Producers hand over values — a trap, the dumps of captured stacks — and
/// the formatter alone decides how they read. Adding an output format is
/// adding one type that conforms (and, for the command line's runs, a
/// sink: see `ReportSink` in the wasm-unwind target).
public protocol ReportFormatter: Sendable {
    /// A trap, as Wasmtime displays it.
    func render(_ trap: TrapReport) -> String
    /// The dumps of captured stacks.
    func render(_ dump: DumpReport) -> String
}
