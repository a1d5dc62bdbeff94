import Foundation
import UnwindReports
import WasmUnwind

/// The formats the command line offers (`--format`).
enum OutputFormat: String, Hashable, Sendable, CaseIterable {
    /// Wasmtime's layout, for people (`TextFormatter`).
    case text
    /// One JSON document, for programs (`JSONFormatter`, schemas in
    /// docs/output-format.md).
    case json

    /// Where a command's reports go in this format.
    func sink() -> any ReportSink {
        switch self {
        case .text: return TextSink()
        case .json: return JSONSink()
        }
    }
}

/// Where a command's reports go as it runs. Text writes each one when it
/// happens (an event before wasm goes on, a file's dump before the next
/// file is read), so nothing already found is lost if the process dies;
/// JSON keeps them and writes one document when the command finishes.
protocol ReportSink: AnyObject {
    /// Something a run reported (a backtrace, a print, a collection).
    func emit(_ event: RunEvent)
    /// The end of a run: its results, or its trap, or its error.
    func finish(_ run: RunReport) throws
    /// One file's dump (or why it could not be read: said on standard
    /// error already).
    func emit(_ entry: DumpReport.Entry) throws
    /// The end of a dump.
    func finishDump()
}

/// Text, written as it happens: events and results on standard output, a
/// trap (Wasmtime's display) and an error on standard error.
final class TextSink: ReportSink {
    let formatter = TextFormatter()
    private var dumpsWritten = 0

    func emit(_ event: RunEvent) { output(formatter.render(event)) }

    func finish(_ run: RunReport) throws {
        for result in run.results ?? [] { output(result.value) }
        if let trap = run.trap {
            try flushStandardOutput()
            printError(formatter.render(trap))
        }
        if let error = run.error {
            try flushStandardOutput()
            printError("error: \(error)")
        }
    }

    func emit(_ entry: DumpReport.Entry) throws {
        // Each file's dump is written (and flushed) before the next file is
        // read: nothing already read is lost.
        if dumpsWritten > 0 { output() }
        dumpsWritten += 1
        if case .failure = entry {} else { output(formatter.render(DumpReport(entries: [entry]))) }
        try flushStandardOutput()
    }

    func finishDump() {}
}

/// One JSON document on standard output, written at the end; an error is
/// also said on standard error.
final class JSONSink: ReportSink {
    let formatter = JSONFormatter()
    private var events: [RunEvent] = []
    private var entries: [DumpReport.Entry] = []

    func emit(_ event: RunEvent) { events.append(event) }

    func finish(_ run: RunReport) throws {
        var run = run
        run.events = events + run.events
        if let error = run.error { printError("error: \(error)") }
        output(formatter.render(run))
    }

    func emit(_ entry: DumpReport.Entry) { entries.append(entry) }

    func finishDump() { output(formatter.render(DumpReport(entries: entries))) }
}
