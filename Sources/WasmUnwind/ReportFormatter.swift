/// Renders reports (`Reports.swift`) in one output format.
///
/// Producers hand over values — a trap, a dump, the events of a run — and
/// the formatter alone decides how they read. Adding an output format is
/// adding one type that conforms; the command line picks one with
/// `--format` (`OutputFormat`).
public protocol ReportFormatter: Sendable {
    /// Whether a run's events may be written one by one as they happen
    /// (text), or the run must be rendered as one document at its end
    /// (`render(_: RunReport)`, JSON).
    var rendersEventsAsTheyHappen: Bool { get }
    /// One event of a run, on its own.
    func render(_ event: RunEvent) -> String
    /// A trap, as Wasmtime displays it.
    func render(_ trap: TrapReport) -> String
    /// A whole run: its events, then its results or its trap.
    func render(_ run: RunReport) -> String
    /// The dumps of captured stacks.
    func render(_ dump: DumpReport) -> String
}

/// The formats the command line offers.
public enum OutputFormat: String, Hashable, Sendable, CaseIterable {
    /// Wasmtime's layout, for people (`TextFormatter`).
    case text
    /// One JSON document, for programs (`JSONFormatter`, schemas in
    /// docs/output-format.md).
    case json

    public var formatter: any ReportFormatter {
        switch self {
        case .text: return TextFormatter()
        case .json: return JSONFormatter()
        }
    }
}
