import Foundation
import WAT
import WasmJIT
import WasmParser

/// What running one `.wast` script found: every directive is counted once,
/// as passed, failed (with where and why), skipped (with the feature it
/// needs that this runtime does not implement) or not parsed (WasmKit's
/// text parser could not read it).
public struct WastFileResult: Sendable {
    public struct Problem: Sendable, CustomStringConvertible {
        /// 1-based line of the directive in the script.
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    public var file: String
    public var passed = 0
    public var failures: [Problem] = []
    /// Directives skipped, by the reason (a feature outside the runtime).
    public var skipped: [String: Int] = [:]
    /// Directives the text parser could not read.
    public var notParsed: [Problem] = []

    public var skippedCount: Int { skipped.values.reduce(0, +) }
    /// Every directive passed (none failed, none skipped, all parsed).
    public var isClean: Bool { failures.isEmpty && skipped.isEmpty && notParsed.isEmpty }

    /// `i32.wast: 460 passed, 0 failed, 0 skipped`, then a line per skip
    /// reason, failure and unparsed directive.
    public var summary: String {
        var lines = ["\(file): \(passed) passed, \(failures.count) failed, \(skippedCount) skipped"
            + (notParsed.isEmpty ? "" : ", \(notParsed.count) not parsed")]
        for (reason, count) in skipped.sorted(by: { $0.key < $1.key }) {
            lines.append("  skipped \(count): \(reason)")
        }
        for problem in notParsed { lines.append("  not parsed: \(problem)") }
        for problem in failures { lines.append("  FAILED \(problem)") }
        return lines.joined(separator: "\n")
    }
}

/// Runs WebAssembly spec test scripts (`.wast`) on the reference runtime:
/// `module`, `register`, `invoke`, `get`, `assert_return` (with NaN
/// patterns), `assert_trap` (by message, against Wasmtime's wording),
/// `assert_exhaustion`, `assert_invalid`, `assert_malformed` and
/// `assert_unlinkable`. Each script gets its own store and its own
/// `spectest` module.
public struct WastRunner {
    public var configuration: Engine.Configuration

    public init(configuration: Engine.Configuration = Engine.Configuration()) {
        self.configuration = configuration
    }

    /// Runs the script at `path` (on a thread with a large stack: the text
    /// parser recurses once per level of nesting).
    public func run(path: String) throws -> WastFileResult {
        let name = URL(fileURLWithPath: path).lastPathComponent
        guard let data = FileManager.default.contents(atPath: path) else {
            throw WastError("\(path): cannot read the file")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw WastError("\(path): not UTF-8 text") }
        let configuration = self.configuration
        return runOnLargeStack {
            var session = WastSession(file: name, text: text, configuration: configuration)
            session.run()
            return session.result
        }
    }
}

/// A problem with the runner's input (not a failed assertion).
public struct WastError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
