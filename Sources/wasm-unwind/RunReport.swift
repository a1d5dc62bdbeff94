import WasmDWARF
import UnwindReports
import WasmUnwind

/// What a garbage collection found and did.
struct CollectionSummary: Hashable, Sendable {
    /// The references found in wasm frames, newest frame first.
    var stackRoots: [RootReport]
    /// Objects kept because the host holds them.
    var hostRootCount: Int
    var freedCount: Int
    var aliveCount: Int

    init(stackRoots: [RootReport], hostRootCount: Int, freedCount: Int, aliveCount: Int) {
        self.stackRoots = stackRoots
        self.hostRootCount = hostRootCount
        self.freedCount = freedCount
        self.aliveCount = aliveCount
    }
}

/// Something that happened while a module ran, worth reporting in order.
enum RunEvent: Hashable, Sendable {
    /// Wasm asked for its backtrace (with its frames' source lines when
    /// backtrace details are on).
    case backtrace(SymbolicatedBacktrace, sourceSymbols: [[SourceSymbol]]?)
    /// Wasm asked for every frame on the stack.
    case hybrid([HybridFrame])
    /// A collection ran.
    case collection(CollectionSummary)
    /// Wasm printed a value.
    case printed(type: String, value: String)
}

/// Everything `wasm-unwind run` reports: the events in order, then the
/// results or the trap.
struct RunReport: Hashable, Sendable {
    var events: [RunEvent]
    /// The export's results, as (type, value), if it returned.
    var results: [TypedValue]?
    /// The trap, if it trapped.
    var trap: TrapReport?
    /// An error that stopped the run before or outside wasm.
    var error: String?

    init(events: [RunEvent] = [], results: [TypedValue]? = nil, trap: TrapReport? = nil, error: String? = nil) {
        self.events = events
        self.results = results
        self.trap = trap
        self.error = error
    }
}

/// A wasm value as reports show it: its type and its value in text.
struct TypedValue: Hashable, Sendable {
    var type: String
    var value: String

    init(type: String, value: String) {
        self.type = type
        self.value = value
    }
}

// MARK: Rendering

extension TextFormatter {
    /// One event of a run, on its own.
    func render(_ event: RunEvent) -> String {
        switch event {
        case .backtrace(let backtrace, let symbols):
            return "wasm backtrace:\n" + (symbols.map { renderDetails(backtrace, $0, foldingThreshold: foldingThreshold) } ?? render(backtrace))
        case .hybrid(let frames):
            return render(frames)
        case .collection(let summary):
            var lines = ["gc: \(summary.stackRoots.count) roots in wasm frames, \(summary.hostRootCount) held by the host; "
                         + "\(summary.freedCount) objects freed, \(summary.aliveCount) alive"]
            lines += summary.stackRoots.map(render)
            return lines.joined(separator: "\n")
        case .printed(_, let value):
            return value
        }
    }
}

extension JSONFormatter {
    /// A whole run as one document: its events, then its results or its trap.
    func render(_ run: RunReport) -> String {
        JSONValue.object([
            ("schema", .string("wasm-unwind.run")),
            ("version", .integer(Int64(Self.schemaVersion))),
            ("events", .array(run.events.map(json))),
            ("results", run.results.map { .array($0.map(json)) } ?? .null),
            ("trap", run.trap.map(json) ?? .null),
            ("error", .string(run.error)),
        ]).rendered()
    }

    func json(_ event: RunEvent) -> JSONValue {
        switch event {
        case .backtrace(let backtrace, let symbols):
            return .object([("event", .string("backtrace")), ("backtrace", json(backtrace, sourceSymbols: symbols))])
        case .hybrid(let frames):
            return .object([("event", .string("hybrid-backtrace")), ("frames", json(frames))])
        case .collection(let summary):
            return .object([
                ("event", .string("gc")),
                ("stack_roots", .array(summary.stackRoots.map(json))),
                ("host_roots", .integer(Int64(summary.hostRootCount))),
                ("freed", .integer(Int64(summary.freedCount))),
                ("alive", .integer(Int64(summary.aliveCount))),
            ])
        case .printed(let type, let value):
            return .object([("event", .string("print")), ("type", .string(type)), ("value", .string(value))])
        }
    }

    func json(_ value: TypedValue) -> JSONValue {
        .object([("type", .string(value.type)), ("value", .string(value.value))])
    }
}
